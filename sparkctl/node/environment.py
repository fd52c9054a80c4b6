"""The fabric's NCCL / UCX / MPI environment on a node: written, and proven to reach shells and units.

Three files carry it (the planner renders them): a KEY=value file for `docker --env-file` and
`EnvironmentFile=`, a profile.d script for login shells and a systemd drop-in (`DefaultEnvironment=`)
for every unit. Writing them is not enough: a /etc/profile that does not read profile.d, or a service
manager that was not reloaded, leaves jobs without the variables, and NCCL then picks the management
interface without a word. So after writing, the node asks a fresh login shell and the service manager
what they see and names every planned variable either of them lacks. One call does all of it, so a
re-run costs one round trip. Standard library only: this runs on the node.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from .files import ensure, planned
from .networkd import Runner as Run

SYSTEMD_RUNNING = Path("/run/systemd/system")
LOGIN_SHELL = ["env", "-i", "HOME=/root", "bash", "-l", "-c", "env"]
MANAGER = ["systemctl", "show-environment"]


class FabricEnvironmentError(Exception):
    """The environment cannot be written or does not reach shells or units; the message says what to do."""


def missing(wanted: Mapping[str, str], listing: Iterable[str]) -> list[str]:
    """`KEY (has X, planned Y)` for every planned variable a KEY=value listing lacks or holds otherwise."""
    have: dict[str, str] = {}
    for line in listing:
        key, sep, value = line.partition("=")
        if sep:
            have[key] = value
    return [f"{key} (has {have.get(key, 'nothing')}, planned {value})"
            for key, value in wanted.items() if have.get(key) != value]


def _listing(run: Run, argv: list[str]) -> list[str]:
    rc, out, err = run(argv)
    if rc != 0:
        raise FabricEnvironmentError(f"{' '.join(argv)} failed ({rc}): {err.strip() or out.strip()}")
    return out.splitlines()


def converge(files: Mapping[str, Mapping[str, Any]], wanted: Mapping[str, str], *, node: str, systemd_reload: bool,
             verify_login_shell: bool, check_mode: bool, run: Run,
             systemd_running: Path = SYSTEMD_RUNNING) -> dict[str, Any]:
    """Write the planned `files` (`env`, `profile`, `systemd`), reload systemd when one changed, then check a
    login shell and the service manager. Returns `changed`, `written` (paths) and `diff`; raises
    FabricEnvironmentError naming what is wrong."""
    if systemd_reload and not systemd_running.exists():
        raise FabricEnvironmentError(
            f"{node} does not run systemd ({systemd_running} is absent), so units cannot be given the fabric "
            "environment now. Set sparkctl_environment_systemd_reload: false to write the drop-in for the next "
            "boot only.")
    diffs = []
    for spec in files.values():
        path, content, mode = planned(spec)
        diff = ensure(path, content, mode, check_mode, dir_mode=0o755)
        if diff is not None:
            diffs.append(diff)
    written = [d["after_header"] for d in diffs]
    if check_mode:
        return {"changed": bool(diffs), "written": written, "diff": diffs}
    if diffs and systemd_reload:
        _listing(run, ["systemctl", "daemon-reload"])
    if verify_login_shell and (lacking := missing(wanted, _listing(run, LOGIN_SHELL))):
        raise FabricEnvironmentError(f"A login shell on {node} lacks: {'; '.join(lacking)}. "
                                     "Does /etc/profile source /etc/profile.d/*.sh?")
    if systemd_reload and (lacking := missing(wanted, _listing(run, MANAGER))):
        raise FabricEnvironmentError(f"systemd on {node} does not pass on: {'; '.join(lacking)} "
                                     f"(after a daemon-reload of {files['systemd']['path']}).")
    return {"changed": bool(diffs), "written": written, "diff": diffs}
