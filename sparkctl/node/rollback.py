"""A node's last known-good fabric, and the rollback it arms for itself before every apply.

An apply that cuts a node off its management network cannot be undone from the controller: the
controller can no longer reach it. So, as `netplan try` and NetworkManager's checkpoints do, the node
arms its own undo before it applies anything: a systemd timer that, unless the controller confirms the
new config within a window, restores the last known-good drop-ins and applies them again. A boot unit
does the same if the node restarts inside the window. The controller confirms only after it has reached
the node's management address again and every fabric peer has answered; only then does the new config
become the known-good one, replacing the old in one rename.

State, under the state directory (root only):
- `known-good.json`: the sparkctl drop-ins of the last verified apply, and the devices and bonds they
  configure.
- `pending.json`: an apply waiting for its confirmation: what to restore and what the new config adds.
  Whoever renames it first, the confirmation or the rollback, wins; the other finds it gone.
- `last-rollback.json`: what the last rollback restored, when, and whether it worked.

The timer runs this file as `python3 -m sparkctl_node.rollback`, from a copy of the node package the
fabric module keeps under /var/lib/sparkctl/lib (Ansible's own copy is gone when the module returns).
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

from . import files, netplan_files, networkd
from .files import write_atomically
from .networkd import Runner

STATE_DIR = Path("/var/lib/sparkctl/fabric")
CODE_DIR = Path("/var/lib/sparkctl/lib")
TIMER = "sparkctl-fabric-rollback"
BOOT_UNIT = Path("/etc/systemd/system/sparkctl-fabric-restore.service")
SYS_NET = Path("/sys/class/net")

ApplyMethod = Literal["networkctl", "netplan_apply"]


class RollbackError(Exception):
    """Arming, confirming or restoring failed; the message says what and what state the node is in."""


@dataclass
class Snapshot:
    """sparkctl's drop-ins at one moment, and the devices and bonds they configure."""

    files: dict[str, dict[str, str]] = field(default_factory=dict)
    """path -> {"content": text, "mode": "0600"}"""
    devices: list[str] = field(default_factory=list)
    bonds: list[str] = field(default_factory=list)
    plan: dict[str, Any] = field(default_factory=dict)
    """The confirmed plan's interfaces, bonds and routes (what the on-node watch compares the fabric with);
    empty in what an apply restores when no config was ever confirmed."""

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Snapshot:
        return cls(dict(data.get("files", {})), list(data.get("devices", [])), list(data.get("bonds", [])),
                   dict(data.get("plan", {})))


@dataclass
class Pending:
    armed_at: float
    window: float
    method: ApplyMethod
    settle_timeout: float
    restore: Snapshot
    new_devices: list[str]
    new_bonds: list[str]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Pending:
        return cls(float(data["armed_at"]), float(data["window"]), data["method"], float(data["settle_timeout"]),
                   Snapshot.from_dict(data["restore"]), list(data["new_devices"]), list(data["new_bonds"]))


class Store:
    def __init__(self, directory: Path = STATE_DIR) -> None:
        self.directory = directory

    def _read(self, name: str) -> dict[str, Any] | None:
        try:
            data = json.loads((self.directory / name).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        return data if isinstance(data, dict) else None

    def _write(self, name: str, data: dict[str, Any]) -> None:
        write_atomically(self.directory / name, json.dumps(data, indent=1, sort_keys=True) + "\n")

    def known_good(self) -> Snapshot | None:
        data = self._read("known-good.json")
        return Snapshot.from_dict(data) if data is not None else None

    def save_known_good(self, snapshot: Snapshot) -> None:
        self._write("known-good.json", asdict(snapshot))

    def pending(self) -> Pending | None:
        data = self._read("pending.json")
        return Pending.from_dict(data) if data is not None else None

    def write_pending(self, pending: Pending) -> None:
        self._write("pending.json", asdict(pending))

    def claim(self, by: str) -> Pending | None:
        """Take the pending apply for `by` (`confirming` or `restoring`); None if the other side took it."""
        taken = self.directory / f"{by}.json"
        try:
            os.rename(self.directory / "pending.json", taken)
        except FileNotFoundError:
            return None
        data = json.loads(taken.read_text(encoding="utf-8"))
        return Pending.from_dict(data)

    def release(self, by: str) -> None:
        (self.directory / f"{by}.json").unlink(missing_ok=True)

    def busy_restoring(self) -> bool:
        return (self.directory / "restoring.json").exists()

    def last_rollback(self) -> dict[str, Any] | None:
        return self._read("last-rollback.json")

    def record_rollback(self, record: dict[str, Any]) -> None:
        self._write("last-rollback.json", record)


def present_devices(sys_net: Path = SYS_NET) -> set[str]:
    return {p.name for p in sys_net.iterdir()} if sys_net.is_dir() else set()


def _checked(run: Runner, argv: list[str]) -> str:
    return networkd.checked(run, argv, RollbackError)


def apply_links(run: Runner, up: Sequence[str], down: Iterable[str], down_bonds: Iterable[str],
                method: ApplyMethod, settle_timeout: float) -> networkd.Outcome | None:
    """Apply what /etc/netplan holds to the devices `up`; delete `down_bonds` and clear the addresses of
    `down` (configured by sparkctl before, not any more). Returns networkd's outcome (None for netplan apply)."""
    outcome = None
    if method == "netplan_apply":
        _checked(run, ["netplan", "apply"])
    else:
        outcome = networkd.Applier(run, list(up), settle_timeout).apply()
    for bond in down_bonds:
        _checked(run, ["ip", "link", "delete", "dev", bond])
    for device in down:
        _checked(run, ["ip", "-4", "address", "flush", "dev", device])
    return outcome


def install_drop_ins(netplan_dir: Path, files: dict[str, dict[str, str]]) -> None:
    """Make `files` sparkctl's only drop-ins in `netplan_dir`."""
    for path in netplan_files.read(netplan_dir):
        if netplan_files.is_ours(path) and path not in files:
            Path(path).unlink()
    for path, spec in files.items():
        write_atomically(Path(path), spec["content"], int(spec["mode"], 8))


def restore(run: Runner, pending: Pending, netplan_dir: Path = netplan_files.NETPLAN_DIR,
            sys_net: Path = SYS_NET) -> list[str]:
    """Put the known-good drop-ins back and apply them; returns the paths restored."""
    install_drop_ins(netplan_dir, pending.restore.files)
    present = present_devices(sys_net)
    old = pending.restore
    apply_links(
        run,
        [d for d in old.devices + old.bonds if d in present],
        [d for d in pending.new_devices if d not in old.devices and d in present],
        [b for b in pending.new_bonds if b not in old.bonds and b in present],
        pending.method, pending.settle_timeout,
    )
    return sorted(pending.restore.files)


# --- the timer and the boot unit ------------------------------------------------------------------------


SYSTEM_PYTHON = "/usr/bin/python3"


def unit_python(running: str = sys.executable, system: str = SYSTEM_PYTHON) -> str:
    """The interpreter the units this package installs name: the system's `python3` when it is the one
    running now. Ansible discovers a versioned path (/usr/bin/python3.12); a unit naming it would stop
    working, the boot-time restore with it, once a release upgrade replaces that Python."""
    try:
        same = os.path.samefile(running, system)
    except OSError:
        same = False
    return system if same else running


def install_code(target: Path = CODE_DIR, extra: Sequence[ModuleType] = ()) -> None:
    """Keep a copy of the node package the rollback (and, with `extra`, other programs of it such as the
    watch) runs from; each file is rewritten only when it differs."""
    package = sys.modules[__package__]
    modules = [package, sys.modules[__name__], files, netplan_files, networkd, *extra]
    for module in modules:
        leaf = "__init__" if module is package else module.__name__.rsplit(".", 1)[1]
        path = target / "sparkctl_node" / f"{leaf}.py"
        source = inspect.getsource(module)
        if not path.exists() or path.read_text(encoding="utf-8") != source:
            write_atomically(path, source, 0o644)


def _command(python: str, state_dir: Path, netplan_dir: Path) -> list[str]:
    return [python, "-m", "sparkctl_node.rollback", "--state-dir", str(state_dir), "--netplan-dir", str(netplan_dir)]


def boot_unit_text(python: str, state_dir: Path, netplan_dir: Path, code_dir: Path = CODE_DIR) -> str:
    return (
        "# Managed by sparkctl: restores the last known-good fabric config at boot when the node restarted\n"
        "# before the controller confirmed an apply.\n"
        "[Unit]\n"
        "Description=sparkctl: restore the fabric config of an apply nobody confirmed\n"
        f"ConditionPathExists={state_dir}/pending.json\n"
        "After=systemd-networkd.service\n\n"
        "[Service]\n"
        "Type=oneshot\n"
        f"Environment=PYTHONPATH={code_dir}\n"
        f"ExecStart={' '.join(_command(python, state_dir, netplan_dir))}\n\n"
        "[Install]\n"
        "WantedBy=multi-user.target\n"
    )


def install_boot_unit(run: Runner, state_dir: Path, netplan_dir: Path, python: str, code_dir: Path = CODE_DIR,
                      boot_unit: Path = BOOT_UNIT, check_mode: bool = False) -> bool:
    """Write and enable the boot-time restore unit unless it is current; whether it was (or would be) changed.
    Every run keeps it current, not only an apply: a unit left naming a Python the node lost would fail."""
    unit = boot_unit_text(python, state_dir, netplan_dir, code_dir)
    stale = not boot_unit.exists() or boot_unit.read_text(encoding="utf-8") != unit
    disabled = run(["systemctl", "is-enabled", "--quiet", boot_unit.name])[0] != 0
    if not check_mode:
        if stale:
            write_atomically(boot_unit, unit, 0o644)
            _checked(run, ["systemctl", "daemon-reload"])
        if disabled:
            _checked(run, ["systemctl", "enable", "--quiet", boot_unit.name])
    return stale or disabled


def arm(run: Runner, store: Store, pending: Pending, netplan_dir: Path, python: str,
        code_dir: Path = CODE_DIR, boot_unit: Path = BOOT_UNIT) -> None:
    """Record `pending` and start the timer that restores it unless confirmed within its window."""
    deadline = time.monotonic() + pending.settle_timeout + 10
    while store.busy_restoring():  # a rollback of an earlier apply is running: let it finish first
        if time.monotonic() > deadline:
            raise RollbackError("a rollback of an earlier apply is still running; nothing was changed")
        time.sleep(0.2)
    install_code(code_dir)
    install_boot_unit(run, store.directory, netplan_dir, python, code_dir, boot_unit)
    disarm(run)
    store.write_pending(pending)
    _checked(run, [
        "systemd-run", "--quiet", f"--unit={TIMER}", f"--on-active={pending.window:g}s",
        "--timer-property=AccuracySec=1s", "--property=Type=oneshot",
        "--description=sparkctl: restore the last known-good fabric unless the apply is confirmed",
        f"--setenv=PYTHONPATH={code_dir}", "--", *_command(python, store.directory, netplan_dir),
    ])


def disarm(run: Runner) -> None:
    """Stop the timer (if any) and forget a failed run of its service."""
    run(["systemctl", "stop", f"{TIMER}.timer"])
    run(["systemctl", "reset-failed", f"{TIMER}.service", f"{TIMER}.timer"])


# --- what the timer and the boot unit run ---------------------------------------------------------------


def run_command(argv: Sequence[str]) -> tuple[int, str, str]:
    done = subprocess.run(list(argv), capture_output=True, text=True, check=False)
    return done.returncode, done.stdout, done.stderr


def describe(record: dict[str, Any]) -> str:
    """A rollback record (last-rollback.json) as one sentence."""
    what = ", ".join(record["restored"]) or "no earlier sparkctl drop-in, so the new one was removed"
    if record["error"]:
        return f"restoring the last known-good fabric config ({what}) failed: {record['error']}"
    return f"restored the last known-good fabric config ({what}) and applied it again"


def roll_back(store: Store, netplan_dir: Path, by: Literal["node", "controller"],
              run: Runner = run_command, sys_net: Path = SYS_NET) -> dict[str, Any] | None:
    """Restore the pending apply's known-good config unless it was confirmed; the record, or None.
    `by` says who asked: the node (its timer ran out) or the controller (a check after the apply failed)."""
    pending = store.claim("restoring")
    if pending is None:
        return None
    record: dict[str, Any] = {"at": time.time(), "armed_at": pending.armed_at, "window": pending.window,
                              "restored": sorted(pending.restore.files), "error": None, "by": by}
    try:
        restore(run, pending, netplan_dir, sys_net)
    except (RollbackError, networkd.NetworkdError, OSError) as error:
        record["error"] = str(error)
    store.record_rollback(record)
    store.release("restoring")
    return record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sparkctl_node.rollback", description=__doc__.split("\n")[0])
    parser.add_argument("--state-dir", type=Path, default=STATE_DIR)
    parser.add_argument("--netplan-dir", type=Path, default=netplan_files.NETPLAN_DIR)
    args = parser.parse_args(argv)
    record = roll_back(Store(args.state_dir), args.netplan_dir, "node")
    print(describe(record) if record else "nothing to roll back: the last apply was confirmed", flush=True)
    return 1 if record and record["error"] else 0


if __name__ == "__main__":
    sys.exit(main())
