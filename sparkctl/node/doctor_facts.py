"""Everything `sparkctl doctor` compares on one node, read in one SSH round trip.

Runs on the node with the stock python3 (standard library only), fed on stdin:
`python3 - REQUEST` where REQUEST is JSON: {"devices": [fabric netdevs], "files": [paths], "images":
[container images of the services deployed here], "container_cli": the docker CLI, "units": [unit files
sparkctl installs]}. Prints one
JSON object: the live addresses, links and routes (`ip -json`), IPv4 forwarding, the iptables FORWARD
and DOCKER-USER chains (Docker sets the FORWARD policy to DROP, which breaks a routed ring while
looking like a dead cable), the kernel, the NCCL library version, per fabric netdev its carrier, MTU
and speed, driver and firmware (what `ethtool -i` shows), PCIe link (current and maximum width and speed) and
error counters, the RoCE GID tables, which daemon manages which device (NetworkManager, networkd),
the local image ID of each service image, the content of the FILEs sparkctl wrote (None when absent), and
the program each UNIT runs with whether the node has it.

The one thing written is doctor's own bookkeeping, never the node's configuration: the error counters
of this look go to COUNTERS, and the ones of the previous look are returned beside them, so growth
"since the last look" survives between runs of doctor. Anything that cannot be read is reported as
None, never guessed (a veth has no PCI device behind it; a node without RDMA has no GID table).
"""

from __future__ import annotations

import array
import fcntl
import json
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

SYS_NET = Path("/sys/class/net")
COUNTERS = Path("/var/lib/sparkctl/doctor-counters.json")
"""doctor's last look at the fabric's error counters (the watch keeps its own in health.json)."""
SYSFS_ERRORS = (
    "rx_errors", "tx_errors", "tx_dropped", "rx_crc_errors", "rx_frame_errors", "rx_length_errors",
    "rx_missed_errors", "rx_over_errors", "rx_fifo_errors", "tx_aborted_errors", "tx_carrier_errors",
    "tx_fifo_errors", "tx_heartbeat_errors", "tx_window_errors",
)
"""The kernel's generic counters (statistics/ of each netdev) that only grow on a fault. rx_dropped is
left out: it also counts frames no protocol wanted (discovery probes, LLDP), which is no fault; the
NIC's own receive drops come from `ethtool -S` (rx_discards_phy, rx_out_of_buffer on mlx5)."""
_ERROR_NAME = re.compile(r"err|crc|symbol|drop|discard|out_of_buffer|jabber|fragments|undersize|oversize"
                         r"|out_of_range|signal_integrity|link_down_events")
_PER_QUEUE_OR_XDP = re.compile(r"^(rx|tx|ch|ptp)\d+_|_queue_\d+_|xdp")
"""Per-queue counters repeat the totals; XDP drops are a program's choice, not a fault."""
_STATS_LINE = re.compile(r"^\s+([^:\s][^:]*):\s+(-?\d+)\s*$")


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


def _int(text: str | None) -> int | None:
    value = (text or "").strip()
    return int(value) if value.lstrip("-").isdigit() else None


def link_figures(devices: list[str], sys_net: Path = SYS_NET) -> dict[str, dict[str, Any]]:
    """carrier (1/0, None when down), MTU and negotiated speed (Mb/s, None when unknown) of each device."""
    out: dict[str, dict[str, Any]] = {}
    for device in devices:
        root = sys_net / device
        carrier, speed = _int(_read(str(root / "carrier"))), _int(_read(str(root / "speed")))
        out[device] = {
            "present": root.exists(),
            "carrier": carrier if carrier in (0, 1) else None,
            "mtu": _int(_read(str(root / "mtu"))),
            "speed_mbps": speed if speed is not None and speed > 0 else None,
        }
    return out


def pcie_link(device: str, sys_net: Path = SYS_NET) -> dict[str, str | None] | None:
    """The PCI function behind a netdev and its link files as the kernel formats them (`32.0 GT/s PCIe`,
    `4`); None when there is no PCI device behind it (a veth, a bridge)."""
    function = sys_net / device / "device"
    if not (function / "current_link_width").exists():
        return None
    found: dict[str, str | None] = {"address": function.resolve().name}
    for key in ("current_link_speed", "current_link_width", "max_link_speed", "max_link_width"):
        found[key] = (_read(str(function / key)) or "").strip() or None
    return found


def parse_ethtool_stats(text: str) -> dict[str, int]:
    """`ethtool -S` output (a `NIC statistics:` header, then `     name: value` lines) as a dict."""
    found = {}
    for line in text.splitlines():
        match = _STATS_LINE.match(line)
        if match:
            found[match.group(1)] = int(match.group(2))
    return found


def is_error_counter(name: str) -> bool:
    """An `ethtool -S` counter that only grows on a fault (CRC, symbol, discards, link-down events...)."""
    return bool(_ERROR_NAME.search(name)) and not _PER_QUEUE_OR_XDP.search(name)


def error_counters(device: str, sys_net: Path = SYS_NET) -> dict[str, int] | None:
    """The error counters of one netdev: the kernel's (SYSFS_ERRORS) and the driver's (`ethtool -S`, named
    as the driver names them: mlx5 says rx_crc_errors_phy, veth has none). None when the netdev is gone."""
    stats = sys_net / device / "statistics"
    if not stats.is_dir():
        return None
    found = {name: value for name in SYSFS_ERRORS if (value := _int(_read(str(stats / name)))) is not None}
    driver = parse_ethtool_stats(_run(["ethtool", "-S", device]) or "")
    found.update({name: value for name, value in driver.items() if is_error_counter(name)})
    return found


def counter_growth(before: dict[str, int] | None, now: dict[str, int] | None) -> dict[str, int]:
    """How much each counter grew. A counter below its last value was reset (reboot, driver reload): all
    it holds now came after the last look. A counter absent from the last look has no growth yet."""
    if not before or not now:
        return {}
    grown = {}
    for name, value in now.items():
        if name in before:
            delta = value - before[name] if value >= before[name] else value
            if delta > 0:
                grown[name] = delta
    return grown


def _last_look(counters: dict[str, Any], path: Path = COUNTERS) -> dict[str, Any] | None:
    """The counters of doctor's previous look, and this look's kept in their place."""
    try:
        before = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        before = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.tmp")
        temporary.write_text(json.dumps({"at": time.time(), "counters": counters}), encoding="utf-8")
        temporary.replace(path)
    except OSError:
        pass  # a read-only node: no growth next time, nothing else lost
    return before if isinstance(before, dict) else None


def _chains(rules: str | None) -> dict[str, str | None]:
    """The FORWARD and DOCKER-USER chains out of one `iptables -S` (as `iptables -S CHAIN` prints each);
    None for what is not there."""
    lines = (rules or "").splitlines()

    def chain(name: str) -> str | None:
        picked = [line for line in lines if line.split()[1:2] == [name]]
        return "".join(f"{line}\n" for line in picked) if picked else None
    return {"forward_chain": chain("FORWARD"), "docker_user_chain": chain("DOCKER-USER")}


def _nccl_version(dpkg_info: Path = Path("/var/lib/dpkg/info")) -> str | None:
    """The NCCL library installed on the host (libnccl2), None without it (NCCL inside images only). dpkg is
    asked only when the package's file list exists: most hosts have none, and dpkg-query is slow to start."""
    if not any(dpkg_info.glob("libnccl2*.list")):
        return None
    out = _run(["dpkg-query", "-W", "-f=${Version}", "libnccl2"])
    return (out or "").strip() or None


def image_ids(images: list[str], cli: str | None) -> dict[str, str | None]:
    """The local image ID (`docker image inspect`) of each image reference; None when not pulled here."""
    if not images or not cli:
        return {}
    return {image: (_run([cli, "image", "inspect", "--format", "{{.Id}}", image]) or "").strip() or None
            for image in images}


SIOCETHTOOL = 0x8946
ETHTOOL_GDRVINFO = 0x3
_DRVINFO = struct.Struct("I32s32s32s32s32s12s5I")
"""struct ethtool_drvinfo: cmd, driver, version, fw_version, bus_info, erom_version, reserved, 5 counts."""


def driver_info(netdev: str) -> dict[str, str] | None:
    """What `ethtool -i` prints as driver, version and firmware-version, asked of the kernel directly (the
    same ETHTOOL_GDRVINFO request, without a process per netdev); None when the netdev does not answer."""
    buffer = array.array("B", _DRVINFO.pack(ETHTOOL_GDRVINFO, *[b""] * 6, *[0] * 5))
    request = struct.pack("16sP", netdev.encode()[:15], buffer.buffer_info()[0]).ljust(40, b"\0")
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            fcntl.ioctl(sock.fileno(), SIOCETHTOOL, request)
    except OSError:
        return None
    fields = _DRVINFO.unpack(buffer.tobytes())
    return {key: fields[i].split(b"\0", 1)[0].decode(errors="replace")
            for key, i in (("driver", 1), ("version", 2), ("firmware-version", 3))}


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
    listed = _json(["networkctl", "list", "--json=short"]) if active else None  # only judged beside NetworkManager
    for link in (listed or {}).get("Interfaces", []):
        networkd[str(link.get("Name"))] = str(link.get("AdministrativeState", ""))
    return {"networkmanager_active": active, "networkmanager": nm, "networkd": networkd}


_EXEC_PREFIXES = "-@:+!"
"""What may precede an ExecStart program (ignore failure, argv[0], no specifiers, privileges)."""


def unit_programs(units: list[str]) -> dict[str, dict[str, Any]]:
    """Per installed unit file, the program its ExecStart runs and whether the node has it: a unit naming
    a Python that a release upgrade removed fails when it next starts (the boot-time restore among them)."""
    found: dict[str, dict[str, Any]] = {}
    for unit in units:
        for line in (_read(unit) or "").splitlines():
            if line.startswith("ExecStart="):
                words = line.partition("=")[2].lstrip(_EXEC_PREFIXES).split()
                if words:
                    found[unit] = {"program": words[0], "present": os.access(words[0], os.X_OK)}
                break
    return found


def collect(devices: list[str], files: list[str], images: tuple[str, ...] | list[str] = (), container_cli: str | None = None,
            counters_file: Path = COUNTERS, units: tuple[str, ...] | list[str] = ()) -> dict[str, Any]:
    present = [d for d in devices if (SYS_NET / d).exists()]
    counters = {d: error_counters(d) for d in present}
    return {
        "hostname": os.uname().nodename,
        "kernel": os.uname().release,
        "nccl": _nccl_version(),
        "addresses": _json(["ip", "-json", "address", "show"]) or [],
        "routes": _json(["ip", "-json", "-4", "route", "show"]) or [],
        "ip_forward": (_read("/proc/sys/net/ipv4/ip_forward") or "").strip() or None,
        **_chains(_run(["iptables", "-S"])),
        "links": link_figures(present),
        "drivers": {d: driver_info(d) for d in present},
        "pcie": {d: pcie_link(d) for d in present},
        "counters": counters,
        "counters_before": _last_look(counters, counters_file),
        "gids": roce_v2_ipv4_gids(),
        "renderers": _renderers(),
        "images": image_ids(list(images), container_cli),
        "files": {path: _read(path) for path in files},
        "unit_programs": unit_programs(list(units)),
    }


if __name__ == "__main__":
    request = json.loads(sys.argv[1])
    json.dump(collect(request["devices"], request["files"], request.get("images", []), request.get("container_cli"),
                      units=request.get("units", [])), sys.stdout)
    sys.exit(0)
