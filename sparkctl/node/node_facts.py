"""Collect what verify-link needs to know about a node's fabric interfaces, in one SSH round trip.

Runs on the node with the stock /usr/bin/python3 (stdlib only), fed on stdin:
`python3 - IFACE [IFACE ...]`. Prints one JSON object. Raw tool output (ethtool, ethtool -m) is
returned verbatim so the controller parses it with the same parsers the tests check against
captured output; sysfs values are returned as read. Anything missing is reported as null, never
guessed: veth has no PCIe device and no module EEPROM, a real ConnectX-7 has both.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

TOOLS = ("iperf3", "ethtool", "ping", "ib_write_bw", "all_gather_perf", "mpirun")
CABLING_RECORD = Path("/etc/sparkctl/cabling.json")
"""Written by provisioning: the cabling the fabric was configured for (pinned or discovered)."""


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError:
        return None


def _run(argv: list[str]) -> dict[str, Any] | None:
    if shutil.which(argv[0]) is None:
        return None
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except subprocess.TimeoutExpired:
        return {"rc": None, "out": "", "err": "timed out"}
    return {"rc": done.returncode, "out": done.stdout, "err": done.stderr}


def _addresses() -> dict[str, list[str]]:
    result = _run(["ip", "-j", "-4", "addr", "show"])
    if not result or result["rc"] != 0:
        return {}
    found: dict[str, list[str]] = {}
    for link in json.loads(result["out"] or "[]"):
        found[link["ifname"]] = [f"{a['local']}/{a['prefixlen']}" for a in link.get("addr_info", [])]
    return found


def _record() -> Any:
    try:
        return json.loads(_read(CABLING_RECORD) or "null")
    except json.JSONDecodeError:
        return None


def interface(name: str, addresses: dict[str, list[str]]) -> dict[str, Any]:
    base = Path("/sys/class/net") / name
    if not base.exists():
        return {"name": name, "exists": False}
    device = base / "device"
    return {
        "name": name,
        "exists": True,
        "carrier": _read(base / "carrier"),
        "operstate": _read(base / "operstate"),
        "mtu": _read(base / "mtu"),
        "speed": _read(base / "speed"),
        "mac": _read(base / "address"),
        "addresses": addresses.get(name, []),
        "ethtool": _run(["ethtool", name]),
        "module": _run(["ethtool", "-m", name]),
        "pcie": {
            key: _read(device / key)
            for key in ("current_link_speed", "current_link_width", "max_link_speed", "max_link_width")
        } if device.exists() else None,
    }


def main(names: list[str]) -> int:
    addresses = _addresses()
    rdma = Path("/sys/class/infiniband")
    report = {
        "hostname": os.uname().nodename,
        "tools": {tool: shutil.which(tool) is not None for tool in TOOLS},
        "rdma_devices": sorted(p.name for p in rdma.iterdir()) if rdma.is_dir() else [],
        "interfaces": {name: interface(name, addresses) for name in names},
        "cabling": _record(),
    }
    json.dump(report, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
