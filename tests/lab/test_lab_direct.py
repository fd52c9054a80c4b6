"""A 2-node direct lab, looked at from outside: SSH, netdevs, carrier, isolation, faults, recabling.

One lab serves the module; every test puts back what it changed (addresses, MTU, faults, cables).
Fabric test addresses come from 198.19.0.0/16, a different /24 per test.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from sparkctl import hardware, ssh
from sparkctl.errors import EnvironmentProblem
from tests.labkit import Lab, iperf3_gbps, loss_percent

pytestmark = pytest.mark.lab

P0 = hardware.NETDEVS["p0"]
P1 = hardware.NETDEVS["p1"]


def test_every_node_answers_ssh_with_host_keys_checked(lab2: Lab) -> None:
    for node in ("spark1", "spark2"):
        target = lab2.target(node)
        argv = ssh.command(target, ["true"])
        assert "StrictHostKeyChecking=yes" in argv
        out = lab2.sh(node, "sh", "-c", "hostname; systemctl is-system-running; readlink /proc/1/exe").stdout
        assert out.split() == [node, "running", "/usr/lib/systemd/systemd"]


def test_a_wrong_known_hosts_entry_makes_ssh_fail(lab2: Lab, tmp_path: Path) -> None:
    state = lab2.state
    impostor = tmp_path / "known_hosts"
    impostor.write_text(f"{state.nodes['spark1'].mgmt_address} {state.nodes['spark2'].host_key}\n")
    with pytest.raises(EnvironmentProblem, match="host key verification failed"):
        ssh.run(lab2.target("spark1", known_hosts=impostor), ["true"])
    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    with pytest.raises(EnvironmentProblem, match="spark1"):
        ssh.run(lab2.target("spark1", known_hosts=empty), ["true"])


def test_nodes_have_the_spark_netdevs_at_mtu_1500(lab2: Lab) -> None:
    for node in ("spark1", "spark2"):
        links = json.loads(lab2.sh(node, "ip", "-j", "link", "show").stdout)
        by_name = {link["ifname"]: link for link in links}
        assert set(by_name) == {"lo", hardware.MANAGEMENT_INTERFACE, *hardware.ALL_NETDEVS}
        assert all(by_name[dev]["mtu"] == 1500 for dev in hardware.ALL_NETDEVS)
        assert "10000Mb/s" in lab2.sh(node, "ethtool", P0[0]).stdout


def test_carrier_only_on_cabled_ports(lab2: Lab) -> None:
    expected = {P0[0]: "1", P0[1]: "1", P1[0]: "0", P1[1]: "0"}
    for node in ("spark1", "spark2"):
        assert lab2.wait_carriers(node, expected) == expected


def test_ansible_reaches_every_node_and_writes_stay_private(lab2: Lab) -> None:
    ping = lab2.ansible("sparks", "ansible.builtin.ping")
    assert ping.returncode == 0, ping.stdout + ping.stderr
    assert ping.stdout.count("SUCCESS") == 2
    copy = lab2.ansible(
        "spark1", "ansible.builtin.copy", "content=only-on-spark1 dest=/etc/sparkctl/labtest.conf mode=0644"
    )
    assert copy.returncode == 0, copy.stdout + copy.stderr
    home = lab2.ansible("spark1", "ansible.builtin.copy", "content=x dest=/root/labtest.txt")
    assert home.returncode == 0, home.stdout + home.stderr
    assert lab2.sh("spark1", "cat", "/etc/sparkctl/labtest.conf").stdout == "only-on-spark1"
    assert lab2.sh("spark2", "test", "-e", "/etc/sparkctl/labtest.conf", check=False).returncode == 1
    assert lab2.sh("spark2", "test", "-e", "/root/labtest.txt", check=False).returncode == 1
    assert not Path("/etc/sparkctl/labtest.conf").exists()
    assert not Path("/root/labtest.txt").exists()
    assert (lab2.paths.node_etc("spark1") / "sparkctl" / "labtest.conf").read_text() == "only-on-spark1"


def test_services_are_real_systemd_units_ansible_can_drive(lab2: Lab) -> None:
    unit = lab2.ansible("spark2", "ansible.builtin.systemd", "name=systemd-networkd state=restarted")
    assert unit.returncode == 0 and "CHANGED" in unit.stdout, unit.stdout + unit.stderr
    assert lab2.sh("spark2", "systemctl", "is-active", "systemd-networkd", "ssh").stdout.split() == [
        "active", "active",
    ]


def test_netplan_is_applied_by_networkd_on_a_node(lab2: Lab) -> None:
    """The provisioning path on a lab node: netplan generate, then networkd reloads (a cabled port)."""
    netplan = (
        "network:\n  version: 2\n  renderer: networkd\n  ethernets:\n"
        f"    {P0[0]}:\n      mtu: 9000\n      addresses: [198.19.12.1/24]\n      link-local: []\n"
    )
    write = ["sh", "-c", "umask 077; cat > /etc/netplan/40-labtest.yaml"]
    ssh.run(lab2.target("spark1"), write, input=netplan, check=True)
    try:
        apply = f"netplan generate && networkctl reload && networkctl reconfigure {P0[0]}"
        lab2.sh("spark1", "sh", "-c", apply)
        deadline = time.monotonic() + 10
        while True:
            link = json.loads(lab2.sh("spark1", "ip", "-j", "address", "show", "dev", P0[0]).stdout)[0]
            addresses = [a["local"] for a in link["addr_info"]]
            if "198.19.12.1" in addresses and link["mtu"] == 9000 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert "198.19.12.1" in addresses and link["mtu"] == 9000
        assert not lab2.paths.node_etc("spark2").joinpath("netplan", "40-labtest.yaml").exists()
    finally:
        undo = "rm -f /etc/netplan/40-labtest.yaml; netplan generate; networkctl reload"
        lab2.sh("spark1", "sh", "-c", undo)
        lab2.ip("spark1", "address", "flush", "dev", P0[0])
        lab2.ip("spark1", "link", "set", P0[0], "mtu", "1500")


def test_rate_fault_limits_both_directions(lab2: Lab) -> None:
    with lab2.addresses({("spark1", P0[0]): "198.19.21.1/24", ("spark2", P0[0]): "198.19.21.2/24"}):
        lab2.cli("fault", f"spark1:{P0[0]}", "--rate", "2gbit")
        try:
            assert lab2.status()["faults"][0]["kind"] == "rate"
            forward = iperf3_gbps(lab2, "spark2", "spark1", "198.19.21.2")
            reverse = iperf3_gbps(lab2, "spark2", "spark1", "198.19.21.2", "-R")
            assert 1.0 < forward < 2.2, forward
            assert 1.0 < reverse < 2.2, reverse
        finally:
            lab2.cli("fault", f"spark1:{P0[0]}", "--clear")
        assert lab2.status()["faults"] == []
        assert iperf3_gbps(lab2, "spark2", "spark1", "198.19.21.2") > 3.0


def test_loss_fault_drops_packets(lab2: Lab) -> None:
    with lab2.addresses({("spark1", P0[1]): "198.19.22.1/24", ("spark2", P0[1]): "198.19.22.2/24"}):
        assert loss_percent(lab2.ping("spark1", "198.19.22.2", count=20, interval=0.01).stdout) == 0
        lab2.cli("fault", f"spark2:{P0[1]}", "--loss", "30%")
        try:
            lossy = loss_percent(lab2.ping("spark1", "198.19.22.2", count=300, interval=0.005).stdout)
            assert 25 < lossy < 75, lossy  # 30% each way: about 51% of echo round trips are lost
        finally:
            lab2.cli("fault", f"spark2:{P0[1]}", "--clear")
        assert loss_percent(lab2.ping("spark1", "198.19.22.2", count=20, interval=0.01).stdout) == 0


def test_mtu_fault_breaks_jumbo_frames(lab2: Lab) -> None:
    ends = [("spark1", P0[0]), ("spark2", P0[0])]
    with lab2.addresses({ends[0]: "198.19.23.1/24", ends[1]: "198.19.23.2/24"}), lab2.mtu(ends, 9000):
        assert lab2.ping("spark1", "198.19.23.2", "-M", "do", "-s", "8972", count=2).returncode == 0
        lab2.cli("fault", f"spark2:{P0[0]}", "--mtu", "1500")
        try:
            assert lab2.ping("spark1", "198.19.23.2", "-M", "do", "-s", "8972", count=2).returncode != 0
        finally:
            lab2.cli("fault", f"spark2:{P0[0]}", "--clear")
        assert lab2.ping("spark1", "198.19.23.2", "-M", "do", "-s", "8972", count=2).returncode == 0


def test_down_fault_removes_carrier(lab2: Lab) -> None:
    lab2.cli("fault", f"spark1:{P0[1]}", "--down")
    try:
        assert lab2.wait_carriers("spark2", {P0[1]: "0"})[P0[1]] == "0"
        assert lab2.carriers("spark1")[P0[1]] == "down"
        assert lab2.status()["cables"][0]["carrier"] == [True, False]
    finally:
        lab2.cli("fault", f"spark1:{P0[1]}", "--clear")
    assert lab2.wait_carriers("spark2", {P0[1]: "1"})[P0[1]] == "1"


def test_recabling_moves_the_peer(lab2: Lab) -> None:
    lab2.cli("uncable", "spark1:p0")
    try:
        for node in ("spark1", "spark2"):
            no_carrier = {dev: "0" for dev in hardware.ALL_NETDEVS}
            assert lab2.wait_carriers(node, no_carrier) == no_carrier
        lab2.cli("cable", "spark1:p0", "spark2:p1")
        try:
            moved = {P0[0]: "0", P0[1]: "0", P1[0]: "1", P1[1]: "1"}
            assert lab2.wait_carriers("spark2", moved) == moved
            assert lab2.wait_carriers("spark1", {P0[0]: "1", P0[1]: "1"})[P0[0]] == "1"
            peers = {("spark1", P0[1]): "198.19.24.1/24", ("spark2", P1[1]): "198.19.24.2/24"}
            with lab2.addresses(peers):
                assert lab2.ping("spark1", "198.19.24.2").returncode == 0
            assert [c["b"] for c in lab2.status()["cables"]] == ["spark2:p1"]
        finally:
            lab2.cli("uncable", "spark2:p1")
    finally:
        lab2.cli("cable", "spark1:p0", "spark2:p0")
    assert lab2.wait_carriers("spark2", {P0[0]: "1", P1[0]: "0"})[P0[0]] == "1"


def test_recabling_keeps_netdev_config(lab2: Lab) -> None:
    with lab2.addresses({("spark1", P0[0]): "198.19.25.1/24"}), lab2.mtu([("spark1", P0[0])], 9000):
        lab2.cli("uncable", "spark1:p0")
        lab2.cli("cable", "spark1:p0", "spark2:p0")
        link = json.loads(lab2.sh("spark1", "ip", "-j", "address", "show", "dev", P0[0]).stdout)[0]
        assert link["mtu"] == 9000
        assert "198.19.25.1" in [a["local"] for a in link["addr_info"]]


def test_remote_command_started_over_ssh_ends_when_terminated(lab2: Lab) -> None:
    process = ssh.start(lab2.target("spark2"), ["sleep", "317"])
    try:
        time.sleep(1)
        assert lab2.sh("spark2", "pgrep", "-x", "-f", "sleep 317", check=False).returncode == 0
    finally:
        process.terminate()
        process.wait(timeout=10)
    time.sleep(0.5)
    assert lab2.sh("spark2", "pgrep", "-x", "-f", "sleep 317", check=False).returncode == 1


def test_status_reports_live_nodes(lab2: Lab) -> None:
    data = lab2.status()
    assert [(n["name"], n["running"], n["sshd"]) for n in data["nodes"]] == [
        ("spark1", True, True), ("spark2", True, True),
    ]
    assert data["cables"] == [{"a": "spark1:p0", "b": "spark2:p0", "carrier": [True, True]}]
    assert data["inventory"] == str(lab2.inventory)
