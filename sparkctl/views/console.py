"""The console reports are printed on."""

from __future__ import annotations

from rich.console import Console

PIPE_WIDTH = 200
"""A log or a pipe has no width: wide enough that a table keeps one line per row instead of folding."""


def report_console() -> Console:
    """stdout at the terminal's width, or PIPE_WIDTH columns when it is not a terminal."""
    out = Console(highlight=False)
    return out if out.is_terminal else Console(highlight=False, width=PIPE_WIDTH)
