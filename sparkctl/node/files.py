"""Files sparkctl writes on a node, written so that no reader and no crash ever sees half of one.

Every write goes to a temporary file in the same directory, is flushed to disk, gets its mode and
replaces the target in one rename: a reader sees the old file or the new one, and a link left at the
target is replaced, never followed.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_atomically(path: Path, text: str, mode: int = 0o600, dir_mode: int = 0o700) -> None:
    """Write `text` to `path` with `mode`, making its directory with `dir_mode` if it is missing."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=dir_mode)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
