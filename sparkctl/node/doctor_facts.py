"""Everything `sparkctl doctor` compares on one node, read in one SSH round trip.

Runs on the node with the stock python3 (standard library only), fed on stdin:
`python3 - FILE [FILE ...]`. Prints one JSON object: the live addresses, links and routes
(`ip -json`), IPv4 forwarding, the iptables FORWARD chain (Docker sets its policy to DROP, which
breaks a routed ring while looking like a dead cable), the kernel, each netdev's driver and firmware
(`ethtool -i`), the RoCE GID tables, which daemon manages which device (NetworkManager, networkd),
and the content of the FILEs sparkctl wrote (None when absent).
Nothing is changed on the node; anything that cannot be read is reported as None, never guessed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any


def _run(argv: list[str]) -> str | None:
    if shutil.which(argv[0]) is None:
        return None
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except subprocess.TimeoutExpired:
        return None
    return done.stdout if done.returncode == 0 else None


def _json(argv: list[str]) -> Any:
    out = _run(argv)
    try:
        return json.loads(out) if out else None
    except ValueError:
        return None


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def _driver(netdev: str) -> dict[str, str] | None:
    out = _run(["ethtool", "-i", netdev])
    if out is None:
        return None
    fields = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
    return {key: fields.get(key, "").strip() for key in ("driver", "version", "firmware-version")}


def roce_v2_ipv4_gids(root: Path = Path("/sys/class/infiniband")) -> dict[str, list[dict[str, str]]]:
    """Per RDMA device, the RoCE v2 IPv4 entries of port 1 in index order: index, GID and netdev."""
    found: dict[str, list[dict[str, str]]] = {}
    if not root.is_dir():
        return found
    for device in sorted(root.iterdir()):
        port = device / "ports" / "1"
        entries = []
        for gid_file in sorted((port / "gids").glob("*"), key=lambda p: int(p.name) if p.name.isdigit() else 0):
            gid = _read(str(gid_file))
            kind = _read(str(port / "gid_attrs" / "types" / gid_file.name))
            if gid and kind and kind.strip() == "RoCE v2" and gid.strip().startswith("0000:0000:0000:0000:0000:ffff"):
                netdev = _read(str(port / "gid_attrs" / "ndevs" / gid_file.name)) or ""
                entries.append({"index": gid_file.name, "gid": gid.strip(), "netdev": netdev.strip()})
        found[device.name] = entries
    return found


def _renderers() -> dict[str, Any]:
    """Who manages which device: NetworkManager's device states (when it runs) and networkd's setup states."""
    active = (_run(["systemctl", "is-active", "NetworkManager.service"]) or "").strip() == "active"
    nm: dict[str, str] = {}
    if active:
        for line in (_run(["nmcli", "-t", "-f", "DEVICE,STATE", "device"]) or "").splitlines():
            device, _, state = line.rpartition(":")
            if device:
                nm[device] = state
    networkd = {}
    listed = _json(["networkctl", "list", "--json=short"])
    for link in (listed or {}).get("Interfaces", []):
        networkd[str(link.get("Name"))] = str(link.get("AdministrativeState", ""))
    return {"networkmanager_active": active, "networkmanager": nm, "networkd": networkd}


def collect(files: list[str]) -> dict[str, Any]:
    links = _json(["ip", "-json", "address", "show"]) or []
    return {
        "hostname": os.uname().nodename,
        "kernel": os.uname().release,
        "addresses": links,
        "routes": _json(["ip", "-json", "-4", "route", "show"]) or [],
        "ip_forward": (_read("/proc/sys/net/ipv4/ip_forward") or "").strip() or None,
        "forward_chain": _run(["iptables", "-S", "FORWARD"]),
        "drivers": {link["ifname"]: _driver(link["ifname"]) for link in links if "ifname" in link},
        "gids": roce_v2_ipv4_gids(),
        "renderers": _renderers(),
        "files": {path: _read(path) for path in files},
    }


if __name__ == "__main__":
    json.dump(collect(sys.argv[1:]), sys.stdout)
    sys.exit(0)
