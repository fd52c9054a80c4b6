"""Errors that reach the user as one clear message and an exit code, never as a traceback.

Exit codes follow the validators users already script against: 0 all good, 1 a check or a node
failed, 2 bad input, unusable environment or unreachable node.
"""

from __future__ import annotations

from pathlib import Path


class SparkctlError(Exception):
    """Base of every error the CLI turns into a message and an exit code."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class InputError(SparkctlError):
    """Bad input: names the file and key at fault and says what to change."""

    exit_code = 2

    def __init__(
        self,
        message: str,
        *,
        file: Path | str | None = None,
        key: str | None = None,
        fix: str | None = None,
    ) -> None:
        self.file = str(file) if file is not None else None
        self.key = key
        self.fix = fix
        where = ""
        if self.file and key:
            where = f"{self.file}: {key}: "
        elif self.file:
            where = f"{self.file}: "
        elif key:
            where = f"{key}: "
        text = f"{where}{message}"
        if fix:
            text = f"{text} — {fix}"
        super().__init__(text)


class EnvironmentProblem(SparkctlError):
    """The machine cannot do what was asked (not root, no namespaces, missing tool, node unreachable)."""

    exit_code = 2
