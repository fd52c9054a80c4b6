"""Shared helpers for the verify-link tests: access to the real captured tool output."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

CAPTURED = Path(__file__).parent / "captured"


@pytest.fixture
def captured() -> Callable[[str], str]:
    """Read one file of tests/verify/captured/ (raw output of a real run, see the file names)."""

    def read(name: str) -> str:
        return (CAPTURED / name).read_text(encoding="utf-8")

    return read
