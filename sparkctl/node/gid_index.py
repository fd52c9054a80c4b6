"""Find which GID index of an RDMA device is the RoCE v2 GID of one IPv4 address, at the moment of use.

Runs on the node with the stock /usr/bin/python3 (stdlib only), fed on stdin like node_facts.py:
`python3 - DEVICE ADDRESS [--netdev IFACE] [--sysfs-root ROOT]`. Prints one JSON object
`{"device", "index", "gid", "reason"}`; `index` is null when no entry fits and `reason` says why.

The index is what `ib_write_bw -x` needs, and it is not stable: the kernel fills the GID table as
addresses come and go, and on Sparks the IPv4 RoCE v2 entry has moved from 3 to 4 within half an
hour. So the caller runs this right before the test that uses the index and never stores it.

The table lives in /sys/class/infiniband/DEV/ports/1: `gids/N` holds the GID (an IPv4 address
appears IPv4-mapped, ::ffff:a.b.c.d), `gid_attrs/types/N` says "RoCE v2" or "IB/RoCE v1" and
`gid_attrs/ndevs/N` names the netdev the entry belongs to. Unused entries read as all-zero GIDs
or refuse to be read (EINVAL); both are skipped. `--sysfs-root` points at a copy of that tree so
the lookup can be tested without RDMA hardware.
"""

from __future__ import annotations

import argparse
import json
import sys
from ipaddress import AddressValueError, IPv4Address, IPv6Address
from pathlib import Path
from typing import Any

PORT = "1"
"""A Spark's ConnectX-7 exposes one port per RDMA device."""
ROCE_V2 = "RoCE v2"


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError:  # unused entries raise EINVAL on read
        return None


def _mapped_ipv4(gid: str) -> IPv4Address | None:
    try:
        return IPv6Address(gid).ipv4_mapped
    except (AddressValueError, ValueError):
        return None


def _report(device: str, index: int | None, gid: str | None, reason: str) -> dict[str, Any]:
    return {"device": device, "index": index, "gid": gid, "reason": reason}


def find_index(sysfs: Path, device: str, address: IPv4Address, netdev: str | None) -> dict[str, Any]:
    """The lowest RoCE v2 entry carrying `address` (on `netdev`, when given), or why there is none."""
    port = sysfs / "class" / "infiniband" / device / "ports" / PORT
    gids = port / "gids"
    if not gids.is_dir():
        return _report(device, None, None, f"no RDMA device {device} ({gids} does not exist)")
    elsewhere: list[str] = []
    for index in sorted(int(name) for name in (p.name for p in gids.iterdir()) if name.isdigit()):
        gid = _read(gids / str(index))
        if gid is None or _mapped_ipv4(gid) != address:
            continue
        kind = _read(port / "gid_attrs" / "types" / str(index))
        owner = _read(port / "gid_attrs" / "ndevs" / str(index))
        if netdev is not None and owner is not None and owner != netdev:
            elsewhere.append(f"index {index} belongs to {owner}, not {netdev}")
        elif kind == ROCE_V2:
            return _report(device, index, gid, f"{ROCE_V2} GID of {address} on {owner or device}")
        else:
            elsewhere.append(f"index {index} has it as {kind or 'an unknown type'}")
    reason = f"no {ROCE_V2} GID of {address} on {device}"
    if elsewhere:
        return _report(device, None, None, f"{reason} ({'; '.join(elsewhere)})")
    where = f" on {netdev}" if netdev else ""
    return _report(device, None, None, f"{reason}: is {address} configured{where} and the link up?")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="gid_index", description="Print an address's RoCE v2 GID index")
    parser.add_argument("device", help="RDMA device, e.g. rocep1s0f0")
    parser.add_argument("address", type=IPv4Address, help="IPv4 address of the device's netdev")
    parser.add_argument("--netdev", help="only entries of this netdev (gid_attrs/ndevs)")
    parser.add_argument("--sysfs-root", type=Path, default=Path("/sys"), help="where sysfs is mounted")
    args = parser.parse_args(argv)
    report = find_index(args.sysfs_root, args.device, args.address, args.netdev)
    json.dump(report, sys.stdout)
    return 0 if report["index"] is not None else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
