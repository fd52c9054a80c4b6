#!/usr/bin/env python3
"""Learn who is on the other end of a cable, before any address exists. Stdlib only.

Copy this file to a node and run it as root on one fabric interface while the node at the other end
runs it too (both listen for the same window, so their runs only need to overlap):

    python3 peer_probe.py --iface enp1s0f0np0 --announce spark1:enp1s0f0np0 --listen 3

It broadcasts a few Ethernet frames of the IEEE local experimental ethertype 0x88B5 carrying a small
JSON identity ("spark1:enp1s0f0np0" and the interface MAC), listens on the same interface, and prints
one JSON object naming every identity it heard.

Why raw frames: sparkctl's netplan sets `link-local: []`, so there is no IPv6 link-local address to
ping ff02::1 from, and before provisioning there is no IPv4 address for ARP either (an ARP probe
from 0.0.0.0 is answered only by the owner of the target address). LLDP would do, but lldpd is not
installed or enabled on a stock Spark and transmits every 30 s. An AF_PACKET socket needs only root
and an interface that is administratively up; `--bring-up` sets it up for the run and puts it back
down afterwards.

Frames heard from the probe's own node name are reported apart (`own_node`): the two PCIe halves of
one ConnectX-7 port share the port, and a half may hear its twin. Through a switch, several peers
answer; on a direct cable exactly one.

With `--arp-target ADDR` (repeatable) the probe also asks, by ARP probes from 0.0.0.0 (RFC 5227), for
each storage server address and reports which ones answered (`answered`). That is how a storage split
learns which cage really goes to storage: only the owner of an address answers such a probe, and a
storage switch that carries other Sparks' probe frames looks, to frames alone, just like a cable.

A node probing all its netdevs at once (`probe_all`, given the cage of each) may end before the window
(`settled` in the reports) once every cage has met its far end: each cage with carrier hears exactly one
far cage, and that cage's frames say it heard this one (every frame lists the cages its own cage heard).
Both ends then have what they need, and the final frame each sends carries its answer. A re-run of
provisioning, where every cable is known and up, then costs about a second instead of the window. Any
doubt keeps the whole window: a cage that hears nobody or several cages, a netdev the probe had to bring
up (its link may still be training), ARP targets to wait for, and the first SETTLE_AFTER seconds, so
that a Spark whose probe starts a little later is still heard on a cage that turns out to be shared.
"""

from __future__ import annotations

import argparse
import errno
import fcntl
import json
import os
import select
import socket
import struct
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

ETHERTYPE = 0x88B5
ETH_P_ARP = 0x0806
ARP_REQUEST, ARP_REPLY = 1, 2
MAGIC = "sparkctl-peer-probe"
VERSION = 1
BROADCAST = b"\xff" * 6
SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1
PACKET_OUTGOING = 4
SETTLE_AFTER = 0.5
"""Seconds every probe of a node listens before it may end early: Ansible starts the probes of all nodes
within a fraction of a second, so a Spark that starts later is still heard before anyone stops."""


class Rendezvous:
    """What the probes of one node heard, cage by cage, shared between their threads, and whether they
    may stop before their window (see the module docstring)."""

    def __init__(self, node: str, cages: Mapping[str, str], *, hold_window: bool) -> None:
        self.node = node
        self.cages = dict(cages)
        """netdev -> the cage (port) it belongs to; a netdev missing here is its own cage."""
        self._heard: dict[str, set[tuple[str, str]]] = {}
        self._answered: dict[str, set[tuple[str, str]]] = {}
        self._hold = hold_window
        self._start = time.monotonic()
        self._lock = threading.Lock()
        self._settled = False

    def cage(self, iface: str) -> str:
        return self.cages.get(iface, iface)

    def hold_window(self) -> None:
        """Give up ending early (a netdev was brought up: its link may not have trained yet)."""
        with self._lock:
            self._hold = True

    def heard(self, iface: str, far_node: str, far_cage: str, far_heard: list[Any]) -> None:
        """Note a frame from another node's cage and whether that cage says it heard this one."""
        cage = self.cage(iface)
        with self._lock:
            self._heard.setdefault(cage, set()).add((far_node, far_cage))
            if f"{self.node}:{cage}" in far_heard:
                self._answered.setdefault(cage, set()).add((far_node, far_cage))

    def heard_by(self, iface: str) -> list[str]:
        """The far cages the cage of `iface` heard, as NODE:CAGE, for its frames to carry."""
        with self._lock:
            return sorted(f"{node}:{cage}" for node, cage in self._heard.get(self.cage(iface), ()))

    def settled(self) -> bool:
        """True once every cage with carrier heard exactly one far cage and was heard by it."""
        with self._lock:
            if not self._settled and not self._hold and time.monotonic() - self._start >= SETTLE_AFTER:
                self._settled = all(
                    len(self._heard.get(cage, ())) == 1 and self._heard[cage] == self._answered.get(cage)
                    for cage in set(self.cages.values())
                    if any(_carrier(dev) for dev, owner in self.cages.items() if owner == cage))
            return self._settled


def probe(iface: str, announce: str, listen: float = 3.0, interval: float = 0.25,
          bring_up: bool = False, arp_targets: tuple[str, ...] = (),
          rendezvous: Rendezvous | None = None) -> dict[str, Any]:
    """Probe one interface: the report of every identity heard and of every `arp_targets` address that
    answered (`error` set when the probe could not run). With a `rendezvous` shared by the node's other
    probes, it may end before `listen` (then `settled` is true)."""
    node, _, announced_iface = announce.partition(":")
    rendezvous = rendezvous or Rendezvous(node, {}, hold_window=True)
    report: dict[str, Any] = {
        "probe": MAGIC,
        "version": VERSION,
        "iface": iface,
        "announce": announce,
        "mac": None,
        "sent": 0,
        "heard": [],
        "own_node": [],
        "answered": [],
        "brought_up": False,
        "settled": False,
        "error": None,
    }
    if not Path(f"/sys/class/net/{iface}").exists():
        report["error"] = f"{iface}: no such interface"
        return report
    try:
        report["mac"] = _mac(iface)
        # Protocol 0 receives nothing until bind() names interface and ethertype: a socket opened with
        # the ethertype would queue frames from every interface in between, and probes running at once
        # on a node's other ports would be heard here.
        with socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0) as sock, \
                socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0) as arp:
            sock.bind((iface, ETHERTYPE))
            if bring_up and not _is_up(sock, iface):
                rendezvous.hold_window()
                _set_up(sock, iface, True)
                report["brought_up"] = True
            try:
                # Bound only once the interface is up: binding to a down interface leaves ENETDOWN pending
                # on the socket, which its first receive would raise.
                arp.bind((iface, ETH_P_ARP))
                identity = {"magic": MAGIC, "v": VERSION, "node": node, "iface": announced_iface,
                            "cage": rendezvous.cage(iface), "mac": report["mac"], "run": os.urandom(8).hex()}
                _exchange(sock, arp, report, identity, listen, interval, arp_targets, rendezvous)
            finally:
                if report["brought_up"]:
                    _set_up(sock, iface, False)
    except OSError as exc:
        rendezvous.hold_window()
        report["error"] = f"{iface}: {exc.strerror or exc}"
        if exc.errno == errno.ENETDOWN:
            report["error"] += " (the interface is down: rerun with --bring-up)"
        elif exc.errno == errno.EPERM:
            report["error"] += " (raw sockets need root or CAP_NET_RAW)"
    return report


def probe_all(node: str, interfaces: list[str], listen: float, arp_targets: tuple[str, ...] = (),
              cages: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """Probe every interface at once (the windows of all probes on all nodes must overlap), each brought up
    for its run if it is down; reports in the order of `interfaces`. Given the cage of every interface
    (`cages`), the probes end as soon as every cage has met its far end; ARP targets keep the window."""
    reports: list[dict[str, Any]] = [{} for _ in interfaces]
    rendezvous = Rendezvous(node, cages or {}, hold_window=cages is None or bool(arp_targets))

    def run(index: int) -> None:
        reports[index] = probe(interfaces[index], f"{node}:{interfaces[index]}", listen, bring_up=True,
                               arp_targets=arp_targets, rendezvous=rendezvous)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(interfaces))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return reports


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    report = probe(args.iface, args.announce, args.listen, args.interval, args.bring_up, tuple(args.arp_target))
    print(json.dumps(report, sort_keys=True))
    return 1 if report["error"] else 0


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--iface", required=True, help="interface to probe on")
    parser.add_argument("--announce", required=True, help="identity to send, NODE:IFACE")
    parser.add_argument("--listen", type=float, default=3.0, help="seconds to send and listen (default 3)")
    parser.add_argument("--interval", type=float, default=0.25, help="seconds between frames (default 0.25)")
    parser.add_argument("--bring-up", action="store_true",
                        help="set the interface up for the run if it is down, and down again afterwards")
    parser.add_argument("--arp-target", action="append", default=[], metavar="ADDR",
                        help="an IPv4 address to ask for by ARP probe; repeatable")
    args = parser.parse_args(argv)
    node, sep, iface = args.announce.partition(":")
    if not (node and sep and iface):
        parser.error("--announce must be NODE:IFACE")
    if args.listen <= 0 or args.interval <= 0:
        parser.error("--listen and --interval must be positive")
    for target in args.arp_target:
        try:
            socket.inet_aton(target)
        except OSError:
            parser.error(f"--arp-target {target!r} is not an IPv4 address")
    return args


def _exchange(sock: socket.socket, arp: socket.socket, report: dict[str, Any], identity: dict[str, Any],
              listen: float, interval: float, arp_targets: tuple[str, ...], rendezvous: Rendezvous) -> None:
    """Send the identity (and the ARP probes) every `interval` seconds and collect other identities (and ARP
    replies from the targets) until `listen` ends, or until the rendezvous settles (after one last frame,
    which tells the far end it was heard)."""
    src = bytes.fromhex(str(identity["mac"]).replace(":", ""))
    header = BROADCAST + src + struct.pack("!H", ETHERTYPE)
    probes = [_arp_probe(src, target) for target in arp_targets]
    wanted = {socket.inet_aton(target) for target in arp_targets}
    heard: dict[tuple[str, str, str], dict[str, Any]] = {}
    answered: set[str] = set()
    deadline = time.monotonic() + listen
    next_send = time.monotonic()
    while (now := time.monotonic()) < deadline:
        settled = rendezvous.settled()
        if now >= next_send or settled:
            frame = header + json.dumps({**identity, "heard": rendezvous.heard_by(report["iface"])}).encode()
            for out, data in [(sock, frame)] + [(arp, request) for request in probes]:
                try:
                    out.send(data)
                except OSError:
                    continue  # no carrier yet (e.g. just brought up): later frames cover it
                if out is sock:
                    report["sent"] += 1
            next_send = now + interval
        if settled:
            report["settled"] = True
            break
        ready, _, _ = select.select([sock, arp], [], [], max(0.0, min(next_send, deadline) - time.monotonic()))
        for receiver in ready:
            data, address = receiver.recvfrom(65535)
            if address[0] != report["iface"]:  # belt and braces: only frames of this interface
                continue
            if receiver is sock:
                _record(data, address, identity, heard, rendezvous)
            elif (sender := _arp_reply_from(data, src)) in wanted:
                answered.add(socket.inet_ntoa(sender))
    for (peer_node, peer_iface, peer_mac), entry in sorted(heard.items()):
        key = "own_node" if peer_node == identity["node"] else "heard"
        report[key].append({"node": peer_node, "iface": peer_iface, "mac": peer_mac, **entry})
    report["answered"] = sorted(answered, key=socket.inet_aton)


def _arp_probe(src: bytes, target: str) -> bytes:
    """A broadcast ARP request for `target` from sender address 0.0.0.0: no address of ours is needed, and
    only the owner of `target` answers."""
    return (BROADCAST + src + struct.pack("!H", ETH_P_ARP)
            + struct.pack("!HHBBH", 1, 0x0800, 6, 4, ARP_REQUEST)
            + src + b"\0" * 4 + b"\0" * 6 + socket.inet_aton(target))


def _arp_reply_from(data: bytes, own_mac: bytes) -> bytes | None:
    """The sender address of an ARP reply to this interface's MAC, or None for any other frame."""
    if len(data) < 42 or data[0:6] != own_mac:
        return None
    htype, ptype, hlen, plen, op = struct.unpack("!HHBBH", data[14:22])
    if (htype, ptype, hlen, plen, op) != (1, 0x0800, 6, 4, ARP_REPLY):
        return None
    return data[28:32]


def _record(data: bytes, address: Any, identity: dict[str, Any],
            heard: dict[tuple[str, str, str], dict[str, Any]], rendezvous: Rendezvous) -> None:
    """Count one received frame if it is another probe's identity, and tell the rendezvous of other nodes'."""
    if address[2] == PACKET_OUTGOING or len(data) < 15:
        return
    try:
        payload = json.loads(data[14:].rstrip(b"\x00"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return
    if not isinstance(payload, dict) or payload.get("magic") != MAGIC or payload.get("run") == identity["run"]:
        return
    key = (str(payload.get("node")), str(payload.get("iface")), str(payload.get("mac")))
    entry = heard.setdefault(key, {"src_mac": data[6:12].hex(":"), "frames": 0})
    entry["frames"] += 1
    far_heard = payload.get("heard")
    if key[0] != identity["node"]:
        rendezvous.heard(address[0], key[0], str(payload.get("cage") or key[1]),
                         far_heard if isinstance(far_heard, list) else [])


def _carrier(iface: str) -> bool:
    """Whether the link of `iface` is up (reading the file of an interface that is down fails)."""
    try:
        return Path(f"/sys/class/net/{iface}/carrier").read_text().strip() == "1"
    except OSError:
        return False


def _mac(iface: str) -> str:
    return Path(f"/sys/class/net/{iface}/address").read_text().strip()


def _flags(sock: socket.socket, iface: str) -> int:
    request = struct.pack("16sH22x", iface.encode(), 0)
    return int(struct.unpack("16sH22x", fcntl.ioctl(sock.fileno(), SIOCGIFFLAGS, request))[1])


def _is_up(sock: socket.socket, iface: str) -> bool:
    return bool(_flags(sock, iface) & IFF_UP)


def _set_up(sock: socket.socket, iface: str, up: bool) -> None:
    flags = _flags(sock, iface)
    flags = flags | IFF_UP if up else flags & ~IFF_UP
    fcntl.ioctl(sock.fileno(), SIOCSIFFLAGS, struct.pack("16sH22x", iface.encode(), flags))


if __name__ == "__main__":
    sys.exit(main())
