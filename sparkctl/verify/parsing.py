"""What every parser shares: one error type that says which tool's output could not be read and why.

A parser that meets output it does not understand must say so instead of guessing a number: a
verdict built on a misread "0 Gb/s" would send the user to replace a good cable.
"""

from __future__ import annotations

from sparkctl.errors import SparkctlError

_EXCERPT_CHARS = 200


class ParseError(SparkctlError, ValueError):
    """Tool output that does not have the shape its parser expects.

    Exit code 2 like other environment problems: unreadable output usually means the tool is missing,
    too old or failed before printing anything, not that the link is bad.
    """

    exit_code = 2

    def __init__(self, tool: str, problem: str, text: str = "") -> None:
        self.tool = tool
        self.problem = problem
        self.excerpt = excerpt(text)
        message = f"cannot read {tool} output: {problem}"
        if self.excerpt:
            message = f"{message} (output began: {self.excerpt!r})"
        super().__init__(message)


def excerpt(text: str) -> str:
    """The start of `text` on one line, short enough for an error message."""
    flat = " ".join(text.split())
    return flat if len(flat) <= _EXCERPT_CHARS else flat[: _EXCERPT_CHARS - 3] + "..."
