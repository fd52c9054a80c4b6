"""Run SSH-bound work on every node at once: the one thread pool of the project."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def parallel(func: Callable[[T], R], items: Sequence[T]) -> list[R]:
    """Run `func` over `items` at once, results in order; the first error propagates."""
    if not items:
        return []
    with ThreadPoolExecutor(max_workers=min(32, len(items))) as pool:
        return list(pool.map(func, items))
