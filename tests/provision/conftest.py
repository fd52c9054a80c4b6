"""Fixtures of the provisioning tests: lab tests skip without root, every lab comes down by name."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from provkit import ProvLab, running_lab


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if os.geteuid() == 0:
        return
    skip = pytest.mark.skip(reason="lab tests need root (network namespaces, containers)")
    for item in items:
        if item.get_closest_marker("lab") and "tests/provision" in str(item.path):
            item.add_marker(skip)


@pytest.fixture(scope="session")
def prov_lab_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private SPARKCTL_LAB_ROOT, so these tests never see or touch the machine user's labs."""
    return tmp_path_factory.mktemp("provlabs")


@pytest.fixture(scope="module")
def direct_lab(prov_lab_root: Path) -> Iterator[ProvLab]:
    """A 2-node direct lab shared by the tests of one module, in order (they build on each other)."""
    with running_lab(prov_lab_root, nodes=2, topology="direct") as lab:
        yield lab
