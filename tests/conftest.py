"""Suite-wide: tests marked `lab` build virtual Spark labs and need root; without it they are skipped.

Every lab test keeps its labs under one state root private to this run (`lab_root`), so it never
sees or touches the labs of the machine's user; what sparkctl saves between runs (verify-link's link
figures) goes to a state directory private to the run too.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if os.geteuid() == 0:
        return
    skip = pytest.mark.skip(reason="lab tests need root (network namespaces, containers)")
    for item in items:
        if item.get_closest_marker("lab"):
            item.add_marker(skip)


@pytest.fixture(scope="session")
def lab_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private SPARKCTL_LAB_ROOT for this run."""
    return tmp_path_factory.mktemp("labroot")


@pytest.fixture(scope="session", autouse=True)
def private_state_dir(tmp_path_factory: pytest.TempPathFactory) -> None:
    """SPARKCTL_STATE_DIR for this run, inherited by every sparkctl the tests start: the suite never writes
    into the state of the machine's user (~/.local/state/sparkctl)."""
    os.environ["SPARKCTL_STATE_DIR"] = str(tmp_path_factory.mktemp("state"))
