"""Fixtures of the lab tests: one state root per session and one 2-node lab shared by a module.

Lab tests need root; without it they are skipped (on CI they run as root). Every lab made here is
taken down by the name it was created with, in a `finally`, even when a test fails.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from labkit import Lab, running_lab


@pytest.fixture(scope="session")
def lab_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private SPARKCTL_LAB_ROOT, so tests never see or touch labs of the machine's user."""
    return tmp_path_factory.mktemp("labroot")


@pytest.fixture(scope="module")
def lab2(lab_root: Path) -> Iterator[Lab]:
    """A 2-node direct lab shared by the tests of one module; each test undoes what it changes."""
    with running_lab(lab_root, nodes=2, topology="direct") as lab:
        yield lab
