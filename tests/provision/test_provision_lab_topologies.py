"""Provisioning the other lab topologies: a 3-node ring (also provisioned as direct cables), a switch, and a
bond the kernel cannot build. A routed 4-ring is test_recabling_grow's: it ends with one."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.labkit import SPARKCTL, Lab, running_lab
from tests.provision.provkit import assert_environment, assert_fabric_as_planned, flat, unchanged

pytestmark = pytest.mark.lab

NETPLAN = "/etc/netplan/60-sparkctl-fabric.yaml"


@pytest.fixture(scope="module")
def ring_lab(lab_root: Path) -> Iterator[Lab]:
    with running_lab(lab_root, prefix="p", nodes=3, topology="ring") as lab:
        yield lab


def test_check_mode_on_fresh_ring_changes_nothing(ring_lab: Lab) -> None:
    result = subprocess.run([SPARKCTL, "provision", "-i", str(ring_lab.inventory), "--check"],
                            capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stderr
    assert "--check --diff" in result.stderr
    for node in ("spark1", "spark2", "spark3"):
        assert ring_lab.sh(node, "ls", NETPLAN, check=False).returncode != 0, f"--check wrote {NETPLAN} on {node}"


def test_three_node_ring_is_discovered_and_every_half_answers(ring_lab: Lab) -> None:
    result = ring_lab.playbook()
    assert result.returncode == 0, result.stdout[-3000:]
    cluster = assert_fabric_as_planned(ring_lab)
    assert len(cluster.plan.cables) == 3 and len(cluster.plan.links) == 6
    assert cluster.plan.cabling_source == "discovered"
    assert_environment(ring_lab, cluster)


def test_bond_is_validated_with_netplan_generate_but_refused_without_the_bonding_driver(
    lab_root: Path,
) -> None:
    """This kernel has no bonding driver: the rendered bond must still pass `netplan generate`, and the
    play must stop before anything goes live instead of half-applying a bond."""
    with running_lab(lab_root, prefix="p", nodes=2, topology="bond") as lab:
        result = subprocess.run([SPARKCTL, "provision", "-i", str(lab.inventory)],
                                capture_output=True, text=True, timeout=600, check=False)
        assert result.returncode == 1, result.stderr
        output = flat(result.stderr)
        assert "kernel has no bonding driver" in output
        assert "The rendered bond config is valid (netplan generate accepted it) and nothing was changed" in output
        for node in ("spark1", "spark2"):
            assert lab.sh(node, "ls", NETPLAN, check=False).returncode != 0
            assert lab.sh(node, "ip", "link", "show", "bond0", check=False).returncode != 0


def test_three_sparks_cabled_directly_are_discovered_and_verified(ring_lab: Lab) -> None:
    """Direct cabling between three Sparks has no convention: provision discovers it, verify-link reads it back.

    Every node probes all its ports at once, so this also proves a probe hears only its own cable. The ring
    lab serves: provisioned as a ring or not, `-t direct` plans its three cables anew from what is discovered.
    """
    plan = subprocess.run([SPARKCTL, "plan", "-i", str(ring_lab.inventory), "-t", "direct"], capture_output=True,
                          text=True, check=False)
    assert plan.returncode == 2 and "must be discovered" in plan.stderr
    result = subprocess.run([SPARKCTL, "provision", "-i", str(ring_lab.inventory), "-t", "direct"],
                            capture_output=True, text=True, check=False, timeout=600)
    assert result.returncode == 0, flat(result.stderr[-3000:])
    verify = subprocess.run([SPARKCTL, "verify-link", "-i", str(ring_lab.inventory), "-t", "direct", "--json",
                             "--duration", "2"], capture_output=True, text=True, check=False, timeout=300)
    report = json.loads(verify.stdout)
    assert verify.returncode == 0 and report["ok"] is True, report["problems"]
    assert report["topology"] == "direct"
    assert len([link for link in report["links"] if "np" in link["name"]]) == 6


def test_switch_is_provisioned_and_verified_with_every_member_reaching_the_others(lab_root: Path) -> None:
    """Three Sparks on a switch (p0 of each into one bridge per half): plain `sparkctl provision` gives every
    node its planned address on both halves at MTU 9000, each reaches every other member through the switch
    at full MTU, a re-run changes nothing and verify-link checks the paths through the switch."""
    with running_lab(lab_root, prefix="p", nodes=3, topology="switch") as lab:
        result = subprocess.run([SPARKCTL, "provision", "-i", str(lab.inventory)], capture_output=True, text=True,
                                timeout=900, check=False)
        assert result.returncode == 0, flat(result.stderr[-3000:])
        cluster = assert_fabric_as_planned(lab)
        assert cluster.plan.topology == "switch" and not cluster.plan.cables
        for name, node in cluster.plan.nodes.items():
            assert [(i.name, i.role, i.mtu) for i in node.interfaces] == [
                ("enp1s0f0np0", "switch", 9000), ("enP2p1s0f0np0", "switch", 9000)], name
            live = {link["ifname"]: link for link in json.loads(lab.sh(name, "ip", "-json", "address").stdout)}
            for iface in node.interfaces:
                assert live[iface.name]["mtu"] == 9000
                for other in cluster.plan.nodes.values():
                    theirs = other.interface(iface.name)
                    if other.name == name or theirs is None:
                        continue
                    ping = lab.sh(name, "ping", "-n", "-q", "-c", "1", "-W", "2", "-M", "do", "-s",
                                  str(cluster.plan.mtu - 28), "-I", iface.name, str(theirs.addresses[0].ip),
                                  check=False)
                    assert ping.returncode == 0, f"{name} {iface.name} -> {other.name}: {ping.stdout}"
        before = {node: lab.sh(node, "cat", NETPLAN).stdout for node in cluster.plan.nodes}
        again = lab.provision_api()
        assert again.status == "successful", again.failures
        assert unchanged(again.recap) == {"spark1": 0, "spark2": 0, "spark3": 0}
        assert {node: lab.sh(node, "cat", NETPLAN).stdout for node in cluster.plan.nodes} == before
        verify = subprocess.run([SPARKCTL, "verify-link", "-i", str(lab.inventory), "--json", "--duration", "2"],
                                capture_output=True, text=True, check=False, timeout=300)
        report = json.loads(verify.stdout)
        assert verify.returncode == 0 and report["ok"] is True, report["problems"]
        assert report["topology"] == "switch"
        paths = {link["name"] for link in report["links"] if "np" in link["name"]}
        assert paths == {f"{a}:{dev}-{b}:{dev}" for a, b in (("spark1", "spark2"), ("spark2", "spark3"),
                                                              ("spark3", "spark1"))
                         for dev in ("enp1s0f0np0", "enP2p1s0f0np0")}
        # One member's half at MTU 1500 fails the two paths it is on, and only those.
        lab.cli("fault", "spark3:enp1s0f0np0", "--mtu", "1500")
        try:
            faulty = subprocess.run([SPARKCTL, "verify-link", "-i", str(lab.inventory), "--json", "--duration",
                                     "2"], capture_output=True, text=True, check=False, timeout=300)
        finally:
            lab.cli("fault", "spark3:enp1s0f0np0", "--clear")
        assert faulty.returncode == 1, faulty.stdout[-3000:] + faulty.stderr[-3000:]
        failed = {problem["link"] for problem in json.loads(faulty.stdout)["problems"]}
        assert failed == {"spark2:enp1s0f0np0-spark3:enp1s0f0np0", "spark3:enp1s0f0np0-spark1:enp1s0f0np0"}, failed
