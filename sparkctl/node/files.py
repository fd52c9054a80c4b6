"""Files sparkctl writes on a node, written so that no reader and no crash ever sees half of one.

Every write goes to a temporary file in the same directory, is flushed to disk, gets its mode and
replaces the target in one rename: a reader sees the old file or the new one, and a link left at the
target is replaced, never followed. `ensure` is how a module keeps a file as planned: it writes only
when content, mode or owner differ, and hands back the diff Ansible shows (`--diff`, also in check mode).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

SECRET = "(secret, not shown)"
"""What a diff shows instead of the content of a file that holds a secret (a private key, a token)."""


def write_atomically(path: Path, text: str, mode: int = 0o600, dir_mode: int = 0o700,
                     owner: tuple[int, int] | None = None) -> None:
    """Write `text` to `path` with `mode` (and `owner`, uid and gid), making its directory with `dir_mode`
    if it is missing."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=dir_mode)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temporary, mode)
        if owner is not None:
            os.chown(temporary, *owner)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def ensure(path: Path, text: str, mode: int, check_mode: bool, *, dir_mode: int = 0o755,
           owner: tuple[int, int] | None = None, secret: bool = False) -> dict[str, str] | None:
    """Make `path` hold `text` with `mode` (and `owner`); None when it already did, else the diff (content
    hidden for a `secret`). In check mode nothing is written and the diff says what would change."""
    try:
        stat = path.lstat()
        before = path.read_text(encoding="utf-8") if path.is_file() and not path.is_symlink() else ""
    except FileNotFoundError:
        stat, before = None, ""
    same = (stat is not None and before == text and not path.is_symlink() and stat.st_mode & 0o7777 == mode
            and (owner is None or (stat.st_uid, stat.st_gid) == owner))
    if same:
        return None
    if not check_mode:
        write_atomically(path, text, mode, dir_mode, owner)
    name = str(path)
    if secret:
        return {"before": SECRET if stat else "", "after": SECRET, "before_header": name, "after_header": name}
    return {"before": before, "after": text, "before_header": name, "after_header": name}


def planned(spec: Mapping[str, Any]) -> tuple[Path, str, int]:
    """A file as the planner hands it to a node (`{path, content, mode}`, mode in octal text): its path,
    content and mode."""
    return Path(str(spec["path"])), str(spec["content"]), int(str(spec["mode"]), 8)
