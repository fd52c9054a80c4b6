"""The fabric module's node-side parts that need no network: the management guard, the ping targets and
verdicts, the known-good store and its race, the rollback, and the copy of the node code the timer runs."""

from __future__ import annotations

import ipaddress
import os
import subprocess
import sys
from pathlib import Path

from sparkctl.cluster import load_cluster
from sparkctl.node import management, ping, rollback
from sparkctl.node.rollback import Pending, Snapshot, Store
from sparkctl.reachability import ping_targets
from tests.unit.conftest import InventoryWriter

# /proc/net/tcp and tcp6 of a node with sshd on :22: the controller (198.18.2.1) over management, a fabric
# peer (198.19.0.1) over the fabric, an IPv4-mapped session in tcp6, and a listening socket.
TCP = """  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1
   1: 0C0212C6:0016 010212C6:C350 01 00000000:00000000 02:000A7B1B 00000000     0        0 2 4
   2: 020013C6:0016 010013C6:D431 01 00000000:00000000 02:000A7B1B 00000000     0        0 3 4
"""
TCP6 = """  sl  local_address                         remote_address                        st tx_queue rx_queue
   0: 0000000000000000FFFF00000C0212C6:0016 0000000000000000FFFF0000050212C6:9C40 01 00000000:00000000
"""
LINKS = [
    {"ifname": "lo", "addr_info": [{"family": "inet", "local": "127.0.0.1", "prefixlen": 8}]},
    {"ifname": "enP7s7", "addr_info": [{"family": "inet", "local": "198.18.2.12", "prefixlen": 24}]},
    {"ifname": "enp1s0f0np0", "addr_info": [{"family": "inet", "local": "198.19.0.2", "prefixlen": 24}]},
]


def net(text: str) -> ipaddress.IPv4Network:
    return ipaddress.IPv4Network(text)


def test_ssh_sessions_are_read_from_both_tables_ipv4_mapped_included() -> None:
    sessions = management.ssh_sessions([TCP, TCP6], 22)
    assert [(str(a), str(b)) for a, b in sessions] == [
        ("198.18.2.12", "198.18.2.1"), ("198.19.0.2", "198.19.0.1"), ("198.18.2.12", "198.18.2.5")]
    assert management.ssh_sessions([TCP], 2222) == []


def test_the_guard_protects_management_networks_and_sessions_but_not_fabric_peers() -> None:
    guard = management.protected(LINKS, "198.18.2.12", ["enp1s0f0np0"], management.ssh_sessions([TCP, TCP6], 22))
    assert [(i, str(a)) for i, a in guard.networks] == [("enP7s7", "198.18.2.12/24")]
    assert [str(s) for s in guard.sessions] == ["198.18.2.1", "198.18.2.5"]  # the fabric peer's session is not
    assert management.conflicts([("fabric", net("198.19.0.0/24"))], guard) == []
    found = management.conflicts([("the address planned on enp1s0f0np0", net("198.18.2.0/30"))], guard)
    assert found == [
        "the address planned on enp1s0f0np0 198.18.2.0/30 overlaps 198.18.2.0/24, the management network on enP7s7",
        ("the address planned on enp1s0f0np0 198.18.2.0/30 contains 198.18.2.1, which reaches this node over SSH "
        "(the controller): its replies would leave through the fabric"),
    ]


def test_a_controller_behind_a_router_is_protected_by_its_session() -> None:
    links = [{"ifname": "enP7s7", "addr_info": [{"family": "inet", "local": "192.168.1.12", "prefixlen": 24}]}]
    sessions = [(ipaddress.IPv4Address("192.168.1.12"), ipaddress.IPv4Address("10.99.0.5"))]
    guard = management.protected(links, "192.168.1.12", [], sessions)
    assert management.conflicts([("pool", net("10.99.0.0/16"))], guard)
    assert not management.conflicts([("pool", net("10.20.0.0/16"))], guard)


def test_ping_targets_cover_each_half_storage_and_switch(write_inventory: InventoryWriter) -> None:
    plan = load_cluster(write_inventory(sparkctl_topology="direct")).plan
    assert [t.to_dict() for t in ping_targets(plan, "spark1")] == [
        {"interface": "enp1s0f0np0", "address": "10.20.0.2", "mtu": 9000, "kind": "peer",
         "who": "spark2 enp1s0f0np0", "payload": 8972},
        {"interface": "enP2p1s0f0np0", "address": "10.20.1.2", "mtu": 9000, "kind": "peer",
         "who": "spark2 enP2p1s0f0np0", "payload": 8972},
    ]
    split = load_cluster(write_inventory(
        sparkctl_topology="storage-split",
        sparkctl_storage={"port": "p1", "networks": ["10.30.0.0/24", "10.31.0.0/24"], "targets": ["10.30.0.100"]},
    )).plan
    assert [(t.interface, t.address, t.kind) for t in ping_targets(split, "spark2") if t.kind == "storage"] == [
        ("enp1s0f1np1", "10.30.0.100", "storage")]
    switch = load_cluster(write_inventory(sparkctl_topology="switch", nodes=3)).plan
    assert {(t.address, t.who) for t in ping_targets(switch, "spark1")} >= {
        (str(switch.nodes["spark2"].interfaces[0].addresses[0].ip), f"spark2 {switch.nodes['spark2'].interfaces[0].name}")}
    assert all(t.kind == "switch" for t in ping_targets(switch, "spark1"))


def test_unanswered_targets_say_which_and_why() -> None:
    targets = [{"interface": "enp1s0f0np0", "address": "10.20.0.2", "mtu": 9000, "who": "spark2 enp1s0f0np0"},
               {"interface": "enP2p1s0f0np0", "address": "10.20.1.2", "mtu": 9000, "who": "spark2 enP2p1s0f0np0"},
               {"interface": "enp1s0f1np1", "address": "10.20.2.2", "mtu": 9000, "who": "spark2 enp1s0f1np1"}]
    assert ping.unanswered(targets, ["ok", "small", "none"]) == [
        ("spark2 enP2p1s0f0np0 (10.20.1.2) via enP2p1s0f0np0 answers only small pings: frames of MTU 9000 are "
        "dropped on the way"),
        "spark2 enp1s0f1np1 (10.20.2.2) via enp1s0f1np1 does not answer",
    ]


def pending(old: str | None) -> Pending:
    files = {"/x/60-sparkctl-fabric.yaml": {"content": old, "mode": "0600"}} if old else {}
    return Pending(1.0, 10.0, "netplan_apply", 4.0, Snapshot(files, ["enp1s0f0np0"], []),
                   ["enp1s0f0np0", "enp1s0f1np1"], [])


def test_confirmation_and_rollback_race_for_one_pending_apply(tmp_path: Path) -> None:
    store = Store(tmp_path / "state")
    store.write_pending(pending("old\n"))
    assert os.stat(tmp_path / "state" / "pending.json").st_mode & 0o777 == 0o600
    assert store.claim("confirming") is not None
    assert store.claim("restoring") is None  # the confirmation won: the timer finds nothing to undo
    store.release("confirming")
    assert store.pending() is None and not list((tmp_path / "state").glob("confirming*"))


def test_a_rollback_restores_the_known_good_drop_in_and_clears_what_the_new_one_added(tmp_path: Path) -> None:
    netplan, sys_net = tmp_path / "netplan", tmp_path / "sys"
    netplan.mkdir()
    for device in ("enp1s0f0np0", "enp1s0f1np1", "enP7s7"):
        (sys_net / device).mkdir(parents=True)
    (netplan / "60-sparkctl-fabric.yaml").write_text("new\n")
    (netplan / "50-sparkctl-extra.yaml").write_text("stale\n")
    (netplan / "00-installer.yaml").write_text("management\n")
    old = pending("old\n")
    old.restore.files = {str(netplan / "60-sparkctl-fabric.yaml"): {"content": "old\n", "mode": "0600"}}
    store = Store(tmp_path / "state")
    store.write_pending(old)
    ran: list[list[str]] = []

    def run(argv: list[str]) -> tuple[int, str, str]:
        ran.append(argv)
        return 0, "", ""

    record = rollback.roll_back(store, netplan, "node", run, sys_net)
    assert record is not None and record["error"] is None and record["by"] == "node"
    assert sorted(p.name for p in netplan.iterdir()) == ["00-installer.yaml", "60-sparkctl-fabric.yaml"]
    assert (netplan / "60-sparkctl-fabric.yaml").read_text() == "old\n"
    assert (netplan / "00-installer.yaml").read_text() == "management\n"
    assert ran == [["netplan", "apply"], ["ip", "-4", "address", "flush", "dev", "enp1s0f1np1"]]
    assert store.last_rollback() == record and store.pending() is None


def test_the_copy_the_timer_runs_is_self_contained(tmp_path: Path) -> None:
    """The timer runs `python3 -m sparkctl_node.rollback` from the copy alone, on a node without sparkctl."""
    rollback.install_code(tmp_path / "lib")
    names = sorted(p.name for p in (tmp_path / "lib" / "sparkctl_node").iterdir())
    assert names == ["__init__.py", "files.py", "netplan_files.py", "networkd.py", "rollback.py"]
    done = subprocess.run(
        [sys.executable, "-I", "-c", ("import sys; sys.path.insert(0, sys.argv[1]); import runpy; "
         "sys.argv = ['rollback', '--state-dir', sys.argv[2]]; runpy.run_module('sparkctl_node.rollback', "
         "run_name='__main__')"), str(tmp_path / "lib"), str(tmp_path / "state")],
        capture_output=True, text=True, check=False, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "nothing to roll back: the last apply was confirmed"
    unit = rollback.boot_unit_text("/usr/bin/python3", Path("/var/lib/sparkctl/fabric"), Path("/etc/netplan"))
    assert "ConditionPathExists=/var/lib/sparkctl/fabric/pending.json" in unit
    assert "ExecStart=/usr/bin/python3 -m sparkctl_node.rollback --state-dir /var/lib/sparkctl/fabric" in unit


def test_units_name_the_systems_python3_not_the_versioned_path_ansible_discovered(tmp_path: Path) -> None:
    """A unit naming /usr/bin/python3.12 would fail, and the boot-time restore with it, after a release
    upgrade; /usr/bin/python3 follows the system's Python."""
    versioned = tmp_path / "python3.12"
    versioned.write_text("#!/bin/sh\n")
    system = tmp_path / "python3"
    system.symlink_to(versioned)
    assert rollback.unit_python(str(versioned), str(system)) == str(system)
    other = tmp_path / "python3.13"
    other.write_text("#!/bin/sh\n")
    assert rollback.unit_python(str(other), str(system)) == str(other)  # a Python of its own: keep it
    assert rollback.unit_python(str(versioned), str(tmp_path / "absent")) == str(versioned)


def test_the_boot_unit_is_rewritten_only_when_stale_and_never_in_check_mode(tmp_path: Path) -> None:
    ran: list[list[str]] = []

    def run(argv: list[str]) -> tuple[int, str, str]:
        ran.append(argv)
        return 0, "", ""

    unit = tmp_path / "sparkctl-fabric-restore.service"
    unit.write_text(rollback.boot_unit_text("/usr/bin/python3.99", tmp_path, tmp_path))
    args = (run, tmp_path, tmp_path, "/usr/bin/python3")
    assert rollback.install_boot_unit(*args, boot_unit=unit, check_mode=True) is True
    assert "python3.99" in unit.read_text() and ["systemctl", "daemon-reload"] not in ran
    assert rollback.install_boot_unit(*args, boot_unit=unit) is True
    assert unit.read_text() == rollback.boot_unit_text("/usr/bin/python3", tmp_path, tmp_path)
    assert ["systemctl", "daemon-reload"] in ran
    ran.clear()
    assert rollback.install_boot_unit(*args, boot_unit=unit) is False and ran == [
        ["systemctl", "is-enabled", "--quiet", unit.name]]
