"""Fixtures of the lab tests: one 2-node lab shared by a module, taken down whatever happens."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.labkit import Lab, running_lab


@pytest.fixture(scope="module")
def lab2(lab_root: Path) -> Iterator[Lab]:
    """A 2-node direct lab shared by the tests of one module; each test undoes what it changes."""
    with running_lab(lab_root, nodes=2, topology="direct") as lab:
        yield lab
