"""Fixtures of the provisioning tests: every lab comes down by the name it was made with."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from provkit import ProvLab, running_lab


@pytest.fixture(scope="session")
def prov_lab_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private SPARKCTL_LAB_ROOT, so these tests never see or touch the machine user's labs."""
    return tmp_path_factory.mktemp("provlabs")


@pytest.fixture(scope="module")
def direct_lab(prov_lab_root: Path) -> Iterator[ProvLab]:
    """A 2-node direct lab shared by the tests of one module, in order (they build on each other)."""
    with running_lab(prov_lab_root, nodes=2, topology="direct") as lab:
        yield lab
