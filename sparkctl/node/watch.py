"""The on-node fabric watch: finds drift between ticks of a systemd timer, before a job hangs on it.

What breaks a Spark cluster mostly happens after setup: an MTU back at 1500 after a firmware update,
addresses gone after a network service restart, a link without carrier, the RoCE GID index moving
under NCCL. The fabric module keeps, with the last known-good config, the plan it confirmed; each tick
compares the live fabric with it (`fabric_state.drift`, the same answer provisioning and doctor use),
reads carrier, MTU, speed, PCIe link and error counters of each planned link and the RoCE v2 IPv4
GID index of each RDMA device (all read by doctor_facts, as doctor reads them), and keeps the result
in health.json:

- `findings`: the drift seen now, each with when it was first seen;
- `history`: each change once (first seen, cleared, healed, GID index moved, error counters grew),
  newest last, bounded;
- `links`, `pcie`, `counters` (this tick's, the baseline of the next), `gid_index`, `checked_at`.

Each change is printed once (the journal of the watch's unit), not every tick. With --textfile, the same
figures are written for node_exporter's textfile collector. With --heal, drifted fabric links (never
management, which the plan does not contain) are reconfigured by systemd-networkd and checked again.

Run by the timer as `python3 -m sparkctl_node.watch` from the copy of the node code in /var/lib/sparkctl/lib.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from . import doctor_facts, fabric_state, networkd, rollback
from .files import write_atomically
from .networkd import Runner
from .rollback import CODE_DIR, STATE_DIR, Store, run_command

HEALTH = Path("/var/lib/sparkctl/health.json")
UNIT_DIR = Path("/etc/systemd/system")
UNIT = "sparkctl-watch"
HISTORY_KEPT = 200
HEAL_WAIT_S = 10.0


def gid_indexes(root: Path = Path("/sys/class/infiniband")) -> dict[str, int | None]:
    """Per RDMA device, the lowest index of port 1 holding a RoCE v2 IPv4-mapped GID (None: none yet)."""
    return {device: int(entries[0]["index"]) if entries else None
            for device, entries in doctor_facts.roce_v2_ipv4_gids(root).items()}


def observe(plan: Mapping[str, Any], run: Runner) -> dict[str, Any]:
    """What this tick sees: the drift from the plan, the links' figures, PCIe links and error counters, and
    the GID indexes."""
    interfaces = [i["name"] for i in plan.get("interfaces", [])]
    devices = interfaces + [b["name"] for b in plan.get("bonds", [])]
    drift = fabric_state.drift(plan, *fabric_state.read_live(run)) if devices else []
    return {"drift": [{"interface": d.interface, "text": str(d)} for d in drift],
            "links": doctor_facts.link_figures(devices),
            "pcie": {d: doctor_facts.pcie_link(d) for d in interfaces},
            "counters": {d: c for d in interfaces if (c := doctor_facts.error_counters(d)) is not None},
            "gid_index": gid_indexes()}


def step(previous: Mapping[str, Any] | None, seen: Mapping[str, Any], now: float,
         healed: Sequence[str] = ()) -> tuple[dict[str, Any], list[str]]:
    """The new health state and the changes to log once, from the last state and this tick's view."""
    before = {f["text"]: f for f in (previous or {}).get("findings", [])}
    history = list((previous or {}).get("history", []))
    events: list[dict[str, Any]] = []
    findings = []
    for item in seen["drift"]:
        first = before.get(item["text"], {}).get("first_seen", now)
        findings.append({**item, "first_seen": first})
        if item["text"] not in before:
            events.append({"at": now, "event": "drift", "text": item["text"]})
    current = {f["text"] for f in findings}
    for text, old in before.items():
        if text not in current:
            events.append({"at": now, "event": "healed" if text in healed else "cleared", "text": text,
                           "first_seen": old["first_seen"]})
    for device, now_counters in seen.get("counters", {}).items():
        grown = doctor_facts.counter_growth((previous or {}).get("counters", {}).get(device), now_counters)
        if grown:
            text = ", ".join(f"{name} +{count}" for name, count in sorted(grown.items()))
            events.append({"at": now, "event": "errors grew", "text": f"{device}: {text}"})
    for device, index in seen["gid_index"].items():
        was = (previous or {}).get("gid_index", {}).get(device)
        if previous is not None and was is not None and index != was:
            events.append({"at": now, "event": "gid index moved", "text": f"{device}: RoCE v2 IPv4 GID index {was} -> {index}"})
    history = (history + events)[-HISTORY_KEPT:]
    state = {"checked_at": now, "findings": findings, "history": history, "links": seen["links"],
             "pcie": seen.get("pcie", {}), "counters": seen.get("counters", {}), "gid_index": seen["gid_index"]}
    return state, [f"{e['event']}: {e['text']}" for e in events]


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(text: str | None) -> float | None:
    """The leading number of a PCIe link file (`4`, `32.0 GT/s PCIe`); None for `Unknown` or nothing."""
    try:
        return float((text or "").split()[0])
    except (IndexError, ValueError):
        return None


def metrics(state: Mapping[str, Any]) -> str:
    """The state in Prometheus' text format, for node_exporter's textfile collector."""
    lines = [
        "# HELP sparkctl_fabric_drift Differences between the live fabric and the confirmed plan.",
        "# TYPE sparkctl_fabric_drift gauge",
        f"sparkctl_fabric_drift {len(state['findings'])}",
        "# HELP sparkctl_watch_last_run_timestamp_seconds When the sparkctl watch last looked.",
        "# TYPE sparkctl_watch_last_run_timestamp_seconds gauge",
        f"sparkctl_watch_last_run_timestamp_seconds {state['checked_at']:.0f}",
    ]
    for name, what in (("carrier", "1 with carrier, 0 without"), ("mtu", "MTU in bytes"),
                       ("speed_mbps", "negotiated speed in Mb/s")):
        lines += [f"# HELP sparkctl_link_{name} Fabric link {what}.", f"# TYPE sparkctl_link_{name} gauge"]
        lines += [f'sparkctl_link_{name}{{interface="{_label(dev)}"}} {figures[name]}'
                  for dev, figures in sorted(state["links"].items()) if figures[name] is not None]
    lines += ["# HELP sparkctl_link_errors_total Fabric link error counters (kernel and driver names).",
              "# TYPE sparkctl_link_errors_total counter"]
    lines += [f'sparkctl_link_errors_total{{interface="{_label(dev)}",counter="{_label(name)}"}} {value}'
              for dev, counters in sorted(state.get("counters", {}).items())
              for name, value in sorted(counters.items())]
    for name, key, what in (("pcie_width", "current_link_width", "negotiated PCIe lanes"),
                            ("pcie_max_width", "max_link_width", "PCIe lanes the device can use"),
                            ("pcie_speed_gts", "current_link_speed", "negotiated PCIe speed in GT/s"),
                            ("pcie_max_speed_gts", "max_link_speed", "PCIe speed the device can use in GT/s")):
        lines += [f"# HELP sparkctl_link_{name} Fabric link {what}.", f"# TYPE sparkctl_link_{name} gauge"]
        lines += [f'sparkctl_link_{name}{{interface="{_label(dev)}"}} {value:g}'
                  for dev, link in sorted(state.get("pcie", {}).items())
                  if (value := _number((link or {}).get(key))) is not None]
    lines += ["# HELP sparkctl_roce_gid_index RoCE v2 IPv4 GID index of port 1 (-1: none).",
              "# TYPE sparkctl_roce_gid_index gauge"]
    lines += [f'sparkctl_roce_gid_index{{device="{_label(dev)}"}} {-1 if index is None else index}'
              for dev, index in sorted(state["gid_index"].items())]
    return "\n".join(lines) + "\n"


def heal(run: Runner, plan: Mapping[str, Any], seen: Mapping[str, Any]) -> list[str]:
    """Have systemd-networkd reconfigure the drifted fabric links (only links of the plan); their names."""
    planned = {i["name"] for i in plan.get("interfaces", [])} | {b["name"] for b in plan.get("bonds", [])}
    links = sorted({d["interface"] for d in seen["drift"]} & planned)
    if links:
        run(["networkctl", "reconfigure", *links])
    return links


def tick(store: Store, health: Path, textfile: Path | None, do_heal: bool, run: Runner = run_command,
         clock: Callable[[], float] = time.time, sleep: Callable[[float], None] = time.sleep) -> list[str]:
    """One look; returns the changes it logged."""
    known = store.known_good()
    plan = known.plan if known is not None else {}
    try:
        previous = json.loads(health.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        previous = None
    seen = observe(plan, run)
    state, events = step(previous, seen, clock())
    if do_heal and seen["drift"] and heal(run, plan, seen):
        before = {d["text"] for d in seen["drift"]}
        deadline = clock() + HEAL_WAIT_S
        while (seen := observe(plan, run))["drift"] and clock() < deadline:
            sleep(0.5)
        state, more = step(state, seen, clock(), sorted(before - {d["text"] for d in seen["drift"]}))
        events += more
    write_atomically(health, json.dumps(state, indent=1, sort_keys=True) + "\n", 0o644)
    if textfile is not None:
        # node_exporter reads it as its own user: a directory made here must let it in
        write_atomically(textfile, metrics(state), 0o644, dir_mode=0o755)
    return events


# --- installing the timer (the sparkctl_watch module) ---------------------------------------------------


def unit_files(python: str, minutes: int, do_heal: bool, textfile: Path | None,
               state_dir: Path = STATE_DIR, health: Path = HEALTH, code_dir: Path = CODE_DIR) -> dict[str, str]:
    """The watch's service and timer, by file name."""
    argv = [python, "-m", "sparkctl_node.watch", "--state-dir", str(state_dir), "--health", str(health)]
    argv += ["--textfile", str(textfile)] if textfile else []
    argv += ["--heal"] if do_heal else []
    service = (
        "# Managed by sparkctl: the fabric watch (drift against the confirmed plan, logged once per change).\n"
        "[Unit]\nDescription=sparkctl: look for fabric drift\nAfter=network.target\n\n"
        f"[Service]\nType=oneshot\nEnvironment=PYTHONPATH={code_dir}\nExecStart={' '.join(argv)}\n"
    )
    timer = (
        "# Managed by sparkctl: runs the fabric watch.\n"
        f"[Unit]\nDescription=sparkctl: look for fabric drift every {minutes} min\n\n"
        f"[Timer]\nOnBootSec=2min\nOnUnitActiveSec={minutes}min\nAccuracySec=10s\n\n"
        "[Install]\nWantedBy=timers.target\n"
    )
    return {f"{UNIT}.service": service, f"{UNIT}.timer": timer}


def install(run: Runner, files: Mapping[str, str], enabled: bool, check_mode: bool,
            unit_dir: Path = UNIT_DIR) -> list[str]:
    """Bring the units to `files` and the timer to `enabled`; what changed (would change, in check mode)."""
    changed = []
    for name, text in files.items():
        path = unit_dir / name
        wanted = text if enabled else None
        have = path.read_text(encoding="utf-8") if path.exists() else None
        if have != wanted:
            changed.append(f"{'wrote' if wanted else 'removed'} {path}")
            if not check_mode:
                if enabled:
                    write_atomically(path, text, 0o644)
                else:
                    run(["systemctl", "disable", "--now", f"{UNIT}.timer"])
                    path.unlink()
    active = run(["systemctl", "is-active", "--quiet", f"{UNIT}.timer"])[0] == 0
    if enabled and not check_mode:
        rollback.install_code(CODE_DIR, [sys.modules[__name__], fabric_state, doctor_facts])
    if check_mode:
        return changed + (["would start the timer"] if enabled and not active else [])
    if changed:
        _checked(run, ["systemctl", "daemon-reload"])
    if enabled and (changed or not active):
        _checked(run, ["systemctl", "enable", "--now", f"{UNIT}.timer"])
        _checked(run, ["systemctl", "start", f"{UNIT}.service"])  # a first look now, not in 2 minutes
        changed.append("started the timer")
    return changed


def _checked(run: Runner, argv: list[str]) -> None:
    networkd.checked(run, argv, rollback.RollbackError)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sparkctl_node.watch", description=__doc__.split("\n")[0])
    parser.add_argument("--state-dir", type=Path, default=STATE_DIR)
    parser.add_argument("--health", type=Path, default=HEALTH)
    parser.add_argument("--textfile", type=Path, default=None, help="write Prometheus metrics to this file")
    parser.add_argument("--heal", action="store_true", help="reconfigure drifted fabric links")
    args = parser.parse_args(argv)
    for event in tick(Store(args.state_dir), args.health, args.textfile, args.heal):
        print(event, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
