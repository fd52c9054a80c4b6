"""Suite-wide: tests marked `lab` build virtual Spark labs and need root; without it they are skipped."""

from __future__ import annotations

import os

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if os.geteuid() == 0:
        return
    skip = pytest.mark.skip(reason="lab tests need root (network namespaces, containers)")
    for item in items:
        if item.get_closest_marker("lab"):
            item.add_marker(skip)
