"""Provisioning nodes that run as DGX OS ships: NetworkManager owns management, systemd-networkd is off.

The lab's `dgx-os` flavor gives each node NetworkManager with the management port in a netplan file,
NetworkManager's own DHCP connections on the fabric ports and systemd-networkd disabled. The tests run
in order on one lab and check, besides the fabric, that the management connection NetworkManager had
before provisioning is still the same one, with the same addresses, and never changed state.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.labkit import SPARKCTL, Lab, running_lab
from tests.provision.provkit import assert_fabric_as_planned, flat, recap, unchanged

pytestmark = pytest.mark.lab

NODES = ("spark1", "spark2")
NETPLAN = "/etc/netplan/60-sparkctl-fabric.yaml"
NM_CONF = "/etc/NetworkManager/conf.d/60-sparkctl-fabric.conf"
P0 = ("enp1s0f0np0", "enP2p1s0f0np0")
P1 = ("enp1s0f1np1", "enP2p1s0f1np1")


@pytest.fixture(scope="module")
def dgx_lab(lab_root: Path) -> Iterator[Lab]:
    with running_lab(lab_root, nodes=2, topology="direct", prefix="nm", flavor="dgx-os") as lab:
        yield lab


def _management(lab: Lab, node: str) -> dict[str, str]:
    """NetworkManager's active management connection (its D-Bus path changes on any re-activation)."""
    fields = "GENERAL.STATE,GENERAL.CONNECTION,GENERAL.CON-PATH,IP4.ADDRESS,IP4.GATEWAY"
    shown = lab.sh(node, "nmcli", "-t", "-f", fields, "device", "show", "enP7s7").stdout
    active = lab.sh(node, "nmcli", "-t", "-f", "NAME,UUID,ACTIVE-PATH", "connection", "show", "--active").stdout
    route = lab.sh(node, "ip", "-4", "route", "show", "default").stdout.strip()
    return {"device": shown, "active": next(line for line in active.splitlines() if "netplan-enP7s7" in line),
            "route": route}


def _device_states(lab: Lab, node: str) -> dict[str, str]:
    listed = lab.sh(node, "nmcli", "-t", "-f", "DEVICE,STATE", "device").stdout
    return dict(line.split(":", 1) for line in listed.splitlines() if ":" in line)


def _management_state_changes(lab: Lab, node: str, since: str) -> list[str]:
    log = lab.sh(node, "journalctl", "-u", "NetworkManager", "--since", since, "--no-pager", "-o", "cat").stdout
    return [line for line in log.splitlines() if "device (enP7s7): state change" in line]


def _now(lab: Lab, node: str) -> str:
    return lab.sh(node, "date", "+%Y-%m-%d %H:%M:%S").stdout.strip()


@pytest.fixture(scope="module")
def before(dgx_lab: Lab) -> dict[str, dict[str, str]]:
    return {node: _management(dgx_lab, node) for node in NODES}


def test_lab_nodes_run_as_dgx_os_ships(dgx_lab: Lab, before: dict[str, dict[str, str]]) -> None:
    for node in NODES:
        assert dgx_lab.sh(node, "systemctl", "is-active", "NetworkManager").stdout.strip() == "active"
        networkd = dgx_lab.sh(node, "systemctl", "is-active", "systemd-networkd", check=False).stdout.strip()
        assert networkd == "inactive"
        assert "GENERAL.CONNECTION:netplan-enP7s7" in before[node]["device"], before[node]["device"]
        states = _device_states(dgx_lab, node)
        assert all(states[port] != "unmanaged" for port in P0), states  # NetworkManager's DHCP on the fabric


def test_provision_enables_networkd_and_keeps_networkmanager_off_the_fabric(
    dgx_lab: Lab, before: dict[str, dict[str, str]]
) -> None:
    since = {node: _now(dgx_lab, node) for node in NODES}
    result = subprocess.run([SPARKCTL, "provision", "--inventory", str(dgx_lab.inventory)],
                            capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    assert_fabric_as_planned(dgx_lab)
    for node in NODES:
        for unit_check in (("is-active", "systemd-networkd"), ("is-enabled", "systemd-networkd")):
            assert dgx_lab.sh(node, "systemctl", *unit_check).stdout.strip() in ("active", "enabled")
        wait_online = dgx_lab.sh(node, "systemctl", "is-enabled", "systemd-networkd-wait-online", check=False)
        assert wait_online.stdout.strip() == "masked"  # else every boot waits 2 min for the optional fabric
        conf = dgx_lab.sh(node, "cat", NM_CONF).stdout
        assert "unmanaged-devices+=interface-name:enP2p1s0f0np0;interface-name:enp1s0f0np0" in conf
        states = _device_states(dgx_lab, node)
        assert all(states[port] == "unmanaged" for port in P0), states
        assert _management(dgx_lab, node) == before[node]
        assert _management_state_changes(dgx_lab, node, since[node]) == []


def test_second_run_changes_nothing(dgx_lab: Lab, before: dict[str, dict[str, str]]) -> None:
    outcome = dgx_lab.provision_api()
    assert outcome.status == "successful", outcome.failures
    assert unchanged(outcome.recap) == {"spark1": 0, "spark2": 0}
    assert {node: _management(dgx_lab, node) for node in NODES} == before


def test_recabling_moves_the_fabric_and_gives_networkmanager_back_the_unused_ports(
    dgx_lab: Lab, before: dict[str, dict[str, str]]
) -> None:
    since = {node: _now(dgx_lab, node) for node in NODES}
    dgx_lab.cli("uncable", "spark1:p0")
    dgx_lab.cli("cable", "spark1:p1", "spark2:p1")
    result = dgx_lab.playbook()
    assert result.returncode == 0, result.stdout[-3000:]
    cluster = assert_fabric_as_planned(dgx_lab)
    assert [c.name for c in cluster.plan.cables] == ["spark1:p1-spark2:p1"]
    for node in NODES:
        conf = dgx_lab.sh(node, "cat", NM_CONF).stdout
        assert "interface-name:enp1s0f1np1" in conf and "enp1s0f0np0" not in conf, conf
        states = _device_states(dgx_lab, node)
        assert all(states[port] == "unmanaged" for port in P1), states
        assert all(states[port] != "unmanaged" for port in P0), states
        assert _management(dgx_lab, node) == before[node]
        assert _management_state_changes(dgx_lab, node, since[node]) == []


def test_a_failed_change_is_rolled_back_and_management_stays(
    dgx_lab: Lab, before: dict[str, dict[str, str]]
) -> None:
    netplan = {node: dgx_lab.sh(node, "cat", NETPLAN).stdout for node in NODES}
    cluster = dgx_lab.expected()
    result = dgx_lab.playbook(
        "--limit", "spark1", playbook="playbooks/fabric.yml",
        extravars={"sparkctl_fabric_pool": "198.19.128.0/17", "sparkctl_cabling": ["spark1:p1 spark2:p1"],
                   "sparkctl_fabric_settle_seconds": 4},
    )
    assert result.returncode != 0
    output = flat(result.stdout)
    assert "the new fabric config failed and was rolled back" in output, output[-3000:]
    assert "still answers on its management address" in output
    assert recap(result.stdout)["spark1"]["failed"] == 1
    assert {node: dgx_lab.sh(node, "cat", NETPLAN).stdout for node in NODES} == netplan
    assert_fabric_as_planned(dgx_lab, cluster)
    assert {node: _management(dgx_lab, node) for node in NODES} == before


def test_doctor_names_a_fabric_port_networkmanager_took_back_and_fix_heals_it(dgx_lab: Lab) -> None:
    doctor = [SPARKCTL, "doctor", "--inventory", str(dgx_lab.inventory), "--json"]
    clean = subprocess.run(doctor, capture_output=True, text=True, timeout=300, check=False)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    # Someone removes sparkctl's NetworkManager drop-in: NetworkManager takes the fabric port back.
    dgx_lab.sh("spark1", "rm", NM_CONF)
    dgx_lab.sh("spark1", "nmcli", "general", "reload", "conf")
    found = subprocess.run(doctor, capture_output=True, text=True, timeout=300, check=False)
    findings = [(f["node"], f["check"]) for f in json.loads(found.stdout)["findings"]]
    assert found.returncode == 1 and ("spark1", "enp1s0f1np1 renderer") in findings, found.stdout
    fixed = subprocess.run([*doctor, "--fix"], capture_output=True, text=True, timeout=900, check=False)
    assert fixed.returncode == 0, fixed.stdout[-3000:] + fixed.stderr[-3000:]
    assert _device_states(dgx_lab, "spark1")["enp1s0f1np1"] == "unmanaged"
