"""Fixtures of the provisioning tests: every lab comes down by the name it was made with."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.labkit import Lab, running_lab


@pytest.fixture(scope="module")
def direct_lab(lab_root: Path) -> Iterator[Lab]:
    """A 2-node direct lab shared by the tests of one module, in order (they build on each other)."""
    with running_lab(lab_root, nodes=2, topology="direct", prefix="p") as lab:
        yield lab
