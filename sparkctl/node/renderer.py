"""Make a node ready for systemd-networkd to render the fabric, whichever daemon runs the rest of it.

sparkctl's netplan drop-in gives each fabric device `renderer: networkd` and nothing else: the
management port stays with whatever renders it. On DGX OS (Ubuntu with a desktop) that is
NetworkManager, and systemd-networkd is installed but neither enabled nor running. Two things then
have to be true before the drop-in can go live:

- systemd-networkd runs and starts at boot. When NetworkManager owns management, networkd's
  wait-online unit is masked: every fabric link is `optional`, so that unit finds no link it must
  wait for and holds network-online.target (and Docker, which waits for it) back until its
  two-minute timeout on every boot. Disabling is not enough: enabling networkd pulls the unit in
  again (`Also=`), and `netplan generate` links it into network-online.target at run time.
- NetworkManager leaves the fabric devices alone. Out of the box it puts a "Wired connection" with
  DHCP on every Ethernet port it sees, the ConnectX-7 ports included, and would fight networkd for
  their addresses. A drop-in in NetworkManager's conf.d lists them as unmanaged, and
  `nmcli general reload conf` makes that take effect at once; it also holds after a reboot.
  (netplan's own deny-list for NetworkManager is a udev rule matched on ID_NET_NAME that only takes
  effect after `udevadm trigger`; the conf.d drop-in does not depend on udev.)

The decision is a pure function of what was observed, so it is unit-tested without a node.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .files import write_atomically
from .networkd import Runner as Run

"""Runs a command; returns (exit code, stdout, stderr)."""

NM_CONF_PATH = "/etc/NetworkManager/conf.d/60-sparkctl-fabric.conf"
NETWORKD = "systemd-networkd.service"
NETWORKD_SOCKET = "systemd-networkd.socket"
WAIT_ONLINE = "systemd-networkd-wait-online.service"
NETWORKMANAGER = "NetworkManager.service"
INTERFACE_NAME = re.compile(r"[A-Za-z0-9_.-]{1,15}")


class NotReady(Exception):
    """The node cannot run systemd-networkd as it is; the message says what the user must change."""


@dataclass(frozen=True)
class Observed:
    """What the node runs, read with systemctl and from NetworkManager's conf.d."""

    networkmanager_active: bool
    networkd_active: bool
    networkd_enabled: str
    """`systemctl is-enabled` of networkd: enabled, disabled, masked, not-found, ..."""
    wait_online_enabled: str
    nm_conf: str | None
    """The current sparkctl drop-in in NetworkManager's conf.d, None when there is none."""


@dataclass(frozen=True)
class Step:
    """One change: a command to run, or the NetworkManager drop-in to write (content) or remove (None)."""

    what: str
    argv: tuple[str, ...] = ()
    nm_conf: str | None = None
    remove_nm_conf: bool = False
    settle: tuple[str, ...] = ()
    """After the command: wait until NetworkManager reports these devices unmanaged. Letting go of a device
    takes it a moment (it tears its own connection down, link included), and networkd must configure the
    device only after that, or NetworkManager sets it down again behind networkd's back."""


def nm_conf_text(interfaces: Sequence[str]) -> str:
    """The NetworkManager drop-in that keeps NetworkManager off `interfaces`.

    Interface names are validated by the planner (letters, digits, `_ . -`), so none can end the
    value or start a new key in this keyfile; they are checked again here, where the file is written.
    """
    for name in interfaces:
        if not INTERFACE_NAME.fullmatch(name):
            raise NotReady(f"{name!r} is not an interface name (letters, digits, _ . -, at most 15)")
    devices = ";".join(f"interface-name:{name}" for name in sorted(set(interfaces)))
    return (
        "# Written by sparkctl: systemd-networkd renders these fabric devices (netplan drop-in\n"
        "# /etc/netplan/60-sparkctl-fabric.yaml), so NetworkManager must not manage them.\n"
        "[keyfile]\n"
        f"unmanaged-devices+={devices}\n"
    )


def management_renderer(observed: Observed) -> str:
    return "NetworkManager" if observed.networkmanager_active else "systemd-networkd"


def decide(observed: Observed, interfaces: Sequence[str]) -> list[Step]:
    """The steps that make networkd render `interfaces` with NetworkManager off them; [] when ready.

    Raises NotReady when networkd is masked or missing: sparkctl does not undo a deliberate mask.
    """
    if observed.networkd_enabled == "masked":
        raise NotReady(
            f"{NETWORKD} is masked, and sparkctl renders the fabric with systemd-networkd: unmask it "
            f"(systemctl unmask {NETWORKD}) and run again; nothing was changed"
        )
    if observed.networkd_enabled in ("not-found", ""):
        raise NotReady(
            f"{NETWORKD} is not installed, and sparkctl renders the fabric with systemd-networkd: install it "
            "(on Ubuntu it is part of the systemd package, or the systemd-networkd package on newer releases) "
            "and run again; nothing was changed"
        )
    steps: list[Step] = []
    if observed.networkmanager_active or observed.nm_conf is not None:
        wanted = nm_conf_text(interfaces) if interfaces else None
        if wanted != observed.nm_conf:
            if wanted is None:
                steps.append(Step(f"remove {NM_CONF_PATH}: no fabric device left", remove_nm_conf=True))
            else:
                steps.append(Step(
                    f"tell NetworkManager to leave {', '.join(sorted(set(interfaces)))} alone ({NM_CONF_PATH})",
                    nm_conf=wanted,
                ))
            if observed.networkmanager_active:
                steps.append(Step("make NetworkManager re-read its configuration",
                                  argv=("nmcli", "general", "reload", "conf"), settle=tuple(sorted(set(interfaces)))))
    if observed.networkd_enabled not in ("enabled", "static", "alias", "indirect", "generated", "enabled-runtime"):
        steps.append(Step(f"enable {NETWORKD} at boot",
                          argv=("systemctl", "enable", NETWORKD_SOCKET, NETWORKD)))
    if observed.networkmanager_active and observed.wait_online_enabled not in ("enabled", "masked"):
        # "enabled" in /etc is the user's own choice; anything else is netplan's or networkd's doing.
        reason = "NetworkManager brings the node online and every fabric link is optional"
        steps.append(Step(f"disable {WAIT_ONLINE}: {reason}", argv=("systemctl", "disable", WAIT_ONLINE)))
        steps.append(Step(f"mask {WAIT_ONLINE}, which netplan links in at run time",
                          argv=("systemctl", "mask", WAIT_ONLINE)))
    if not observed.networkd_active:
        steps.append(Step(f"start {NETWORKD}", argv=("systemctl", "start", NETWORKD_SOCKET, NETWORKD)))
    return steps


def _systemctl(run: Run, verb: str, unit: str) -> str:
    _, out, _ = run(("systemctl", verb, unit))
    return out.strip().splitlines()[0] if out.strip() else ""


def observe(run: Run, nm_conf_path: str = NM_CONF_PATH) -> Observed:
    try:
        with open(nm_conf_path, encoding="utf-8") as handle:
            nm_conf: str | None = handle.read()
    except FileNotFoundError:
        nm_conf = None
    return Observed(
        networkmanager_active=_systemctl(run, "is-active", NETWORKMANAGER) == "active",
        networkd_active=_systemctl(run, "is-active", NETWORKD) == "active",
        networkd_enabled=_systemctl(run, "is-enabled", NETWORKD),
        wait_online_enabled=_systemctl(run, "is-enabled", WAIT_ONLINE),
        nm_conf=nm_conf,
    )


class StepFailed(Exception):
    """A command of the preparation failed; the message names it and what it printed."""


SETTLE_TIMEOUT_S = 15.0


def managed_by_networkmanager(run: Run, devices: Sequence[str]) -> dict[str, str]:
    """Those of `devices` NetworkManager still manages, with their state."""
    _, out, _ = run(("nmcli", "-t", "-f", "DEVICE,STATE", "device"))
    states = dict(line.rpartition(":")[::2] for line in out.splitlines() if ":" in line)
    return {device: states[device] for device in devices if states.get(device, "unmanaged") != "unmanaged"}


def carry_out(steps: Sequence[Step], run: Run, nm_conf_path: str = NM_CONF_PATH,
              sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic) -> None:
    for step in steps:
        if step.nm_conf is not None:
            write_atomically(Path(nm_conf_path), step.nm_conf, 0o644, dir_mode=0o755)
        elif step.remove_nm_conf:
            os.unlink(nm_conf_path)
        elif step.argv:
            code, out, err = run(step.argv)
            if code != 0:
                raise StepFailed(f"{' '.join(step.argv)} failed (exit {code}): {(err or out).strip()}")
        if step.settle:
            deadline = clock() + SETTLE_TIMEOUT_S
            while still := managed_by_networkmanager(run, step.settle):
                if clock() > deadline:
                    held = ", ".join(f"{d} ({state})" for d, state in still.items())
                    raise StepFailed(f"NetworkManager still manages {held} {SETTLE_TIMEOUT_S:g} s after "
                                     f"being told to leave them alone ({NM_CONF_PATH})")
                sleep(0.2)
