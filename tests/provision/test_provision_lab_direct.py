"""Provisioning a 2-node direct lab end to end, then recabling it; the tests run in order on one lab.

Each step checks the nodes themselves against the plan for the cabling the lab really has.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from sparkctl import hardware
from tests.labkit import SPARKCTL, Lab
from tests.provision.provkit import (
    assert_environment,
    assert_fabric_as_planned,
    flat,
    recap,
    unchanged,
)

pytestmark = pytest.mark.lab

NETPLAN = "/etc/netplan/60-sparkctl-fabric.yaml"


def test_sparkctl_provision_configures_two_direct_nodes(direct_lab: Lab) -> None:
    result = subprocess.run([SPARKCTL, "provision", "--inventory", str(direct_lab.inventory)],
                            capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stderr
    assert "equivalent: ANSIBLE_CONFIG=" in result.stderr and "playbooks/site.yml" in result.stderr
    cluster = assert_fabric_as_planned(direct_lab)
    assert [c.name for c in cluster.plan.cables] == ["spark1:p0-spark2:p0"]
    assert_environment(direct_lab, cluster)
    # SSH mesh: by name, cluster key, host key checked against the cluster's known_hosts.
    assert direct_lab.sh("spark1", "ssh", "-o", "BatchMode=yes", "spark2", "hostname").stdout.strip() == "spark2"
    config = direct_lab.sh("spark2", "cat", "/root/.ssh/config").stdout
    assert "StrictHostKeyChecking yes" in config and "StrictHostKeyChecking no" not in config


def mesh_key_sources(lab: Lab, node: str) -> list[str]:
    """The from= addresses of the cluster key's line in the node's authorized_keys (the only such line)."""
    lines = [line for line in lab.sh(node, "cat", "/root/.ssh/authorized_keys").stdout.splitlines()
             if line.endswith(" sparkctl cluster key")]
    assert len(lines) == 1 and lines[0].startswith('from="'), lines
    return lines[0].split('"')[1].split(",")


def cluster_addresses(lab: Lab) -> set[str]:
    """Management addresses of the lab's nodes and every fabric address the plan gives them."""
    plan = lab.expected().plan
    found = {node.mgmt_address for node in lab.state.nodes.values()}
    return found | {str(a.ip) for node in plan.nodes.values() for i in node.interfaces for a in i.addresses}


def test_mesh_key_is_accepted_only_from_the_clusters_addresses(direct_lab: Lab) -> None:
    for node in ("spark1", "spark2"):
        assert set(mesh_key_sources(direct_lab, node)) == cluster_addresses(direct_lab)
    mgmt = direct_lab.state.nodes["spark1"].mgmt_address
    outsider = mgmt.rsplit(".", 1)[0] + ".250"  # on spark1's management network, but no node's address
    with direct_lab.addresses({("spark1", hardware.MANAGEMENT_INTERFACE): f"{outsider}/24"}):
        # The inner ssh's status is printed, so it is not taken for a failure of the outer connection.
        refused = direct_lab.sh("spark1", "sh", "-c",
                                f"ssh -o BatchMode=yes -b {outsider} spark2 true 2>&1; echo status=$?").stdout
        assert "Permission denied" in refused and refused.endswith("status=255\n"), refused
        assert direct_lab.sh("spark1", "ssh", "-o", "BatchMode=yes", "spark2", "hostname").stdout.strip() == "spark2"
    fabric = direct_lab.expected().plan.links[0]
    assert fabric.a.address is not None and fabric.b.address is not None
    over_fabric = direct_lab.sh(fabric.a.node, "ssh", "-o", "BatchMode=yes", "-b", str(fabric.a.address.ip),
                                "-o", f"HostName={fabric.b.address.ip}", fabric.b.node, "hostname")
    assert over_fabric.stdout.strip() == fabric.b.node


def test_second_run_changes_nothing(direct_lab: Lab) -> None:
    outcome = direct_lab.provision_api()
    assert outcome.status == "successful", outcome.failures
    assert unchanged(outcome.recap) == {"spark1": 0, "spark2": 0}


def test_check_mode_on_a_provisioned_cluster_reports_no_change(direct_lab: Lab) -> None:
    outcome = direct_lab.provision_api(check=True)
    assert outcome.status == "successful", outcome.failures
    assert unchanged(outcome.recap) == {"spark1": 0, "spark2": 0}


def test_second_run_ends_discovery_early_and_confirms_in_the_apply_step(direct_lab: Lab) -> None:
    """Nothing changed: every probe ends once each cabled cage has met its far end (not after the whole
    window), and each node, having nothing to apply, proves its peers in the apply step itself."""
    result = direct_lab.playbook("-v")
    assert result.returncode == 0, result.stdout[-3000:]
    probed = result.stdout.split("TASK [sparkctl_discover : Probe", 1)[1].split("TASK [", 1)[0]
    assert probed.count("settled: true") == 8 and "settled: false" not in probed  # 4 netdevs on each node
    confirm = result.stdout.split("TASK [sparkctl_fabric : Say why the fabric was applied, then prove", 1)[1]
    confirm = confirm.split("TASK [", 1)[0]
    assert "skipping: [spark1]" in confirm and "skipping: [spark2]" in confirm
    assert "Ping every fabric peer" not in result.stdout  # the confirm step's tasks were not even included
    assert result.stdout.count("confirmed: true") == 2


def test_check_mode_shows_a_renumbering_and_changes_nothing(direct_lab: Lab) -> None:
    """--check --diff with a new fabric pool: the run reports the change and shows the new addresses, and
    every node keeps its drop-in and its live addresses."""
    before = {node: (direct_lab.sh(node, "cat", NETPLAN).stdout, direct_lab.sh(node, "ip", "-4", "-o", "address").stdout)
              for node in ("spark1", "spark2")}
    result = direct_lab.playbook("--check", "--diff", extravars={"sparkctl_fabric_pool": "198.19.128.0/17"})
    assert result.returncode == 0, result.stdout[-3000:]
    counts = recap(result.stdout)
    assert set(counts) == {"spark1", "spark2"} and all(c["changed"] > 0 for c in counts.values()), result.stdout[-2000:]
    assert "+        - 198.19.128." in result.stdout
    for node, (netplan, addresses) in before.items():
        assert direct_lab.sh(node, "cat", NETPLAN).stdout == netplan
        assert direct_lab.sh(node, "ip", "-4", "-o", "address").stdout == addresses


def test_install_mode_asks_apt_and_names_what_the_distribution_lacks(direct_lab: Lab) -> None:
    """sparkctl_packages_mode: install, in check mode (a lab node has no apt sources of its own): the packages
    the node's apt offers go to the apt task, and the RDMA ones it does not offer are named, not failed on."""
    result = direct_lab.playbook("--check", playbook="playbooks/packages.yml",
                                 extravars={"sparkctl_packages_mode": "install", "sparkctl_packages_rdma_enabled": True})
    assert result.returncode == 0, result.stdout[-3000:]
    installed = result.stdout.split("TASK [sparkctl_packages : Install the packages the distribution has]", 1)[1]
    assert "ok: [spark1]" in installed.split("TASK [", 1)[0]
    assert "the apt sources of spark1 do not offer them: rdma-core" in flat(result.stdout)


def test_discovery_refuses_a_run_that_leaves_out_a_spark(direct_lab: Lab) -> None:
    """Unpinned cabling is learnt from every Spark's probe: a --limit run would miss the others' frames."""
    before = direct_lab.sh("spark1", "cat", NETPLAN).stdout
    result = direct_lab.playbook("--limit", "spark1")
    assert result.returncode != 0
    assert "this run leaves out spark2 (--limit?)" in flat(result.stdout), result.stdout[-3000:]
    assert direct_lab.sh("spark1", "cat", NETPLAN).stdout == before


def test_second_cable_is_discovered_and_both_cables_configured(direct_lab: Lab) -> None:
    direct_lab.cli("cable", "spark1:p1", "spark2:p1")
    result = direct_lab.playbook()
    assert result.returncode == 0, result.stdout[-3000:]
    cluster = assert_fabric_as_planned(direct_lab)
    assert len(cluster.plan.cables) == 2 and len(cluster.plan.links) == 4
    assert_environment(direct_lab, cluster)  # NCCL_IB_HCA now lists all four halves
    assert set(mesh_key_sources(direct_lab, "spark1")) == cluster_addresses(direct_lab)  # the new cable's too


def test_pinned_cabling_that_contradicts_the_wires_fails_naming_both_ends(direct_lab: Lab) -> None:
    before = direct_lab.sh("spark1", "cat", NETPLAN).stdout
    result = direct_lab.playbook(extravars={"sparkctl_cabling": ["spark1:p0 spark2:p1", "spark1:p1 spark2:p0"]})
    assert result.returncode != 0
    output = flat(result.stdout)
    assert "found a cable spark1:p0 <-> spark2:p0, but sparkctl_cabling pins spark1:p0 <-> spark2:p1" in output
    assert "pins spark1:p1 <-> spark2:p0, but no probe frame crossed it" in output
    assert direct_lab.sh("spark1", "cat", NETPLAN).stdout == before  # nothing was changed


def test_recabling_removes_stale_config_and_brings_up_the_new_links(direct_lab: Lab) -> None:
    stale = "/etc/netplan/50-sparkctl-old.yaml"
    direct_lab.sh("spark1", "sh", "-c", f"umask 077; printf 'network:\\n  version: 2\\n' > {stale}")
    previous = direct_lab.expected()
    direct_lab.cli("uncable", "spark1:p0")
    result = direct_lab.playbook()
    assert result.returncode == 0, result.stdout[-3000:]
    cluster = assert_fabric_as_planned(direct_lab)
    assert [c.name for c in cluster.plan.cables] == ["spark1:p1-spark2:p1"]
    assert direct_lab.sh("spark1", "ls", stale, check=False).returncode != 0, "stale drop-in left behind"
    for node in ("spark1", "spark2"):
        for iface in ("enp1s0f0np0", "enP2p1s0f0np0"):  # p0, configured before the recabling
            shown = direct_lab.sh(node, "ip", "-4", "-o", "address", "show", "dev", iface).stdout
            assert shown.strip() == "", f"{node} {iface} kept its old address: {shown}"
    assert previous.plan.cables != cluster.plan.cables


def test_a_change_that_breaks_peer_reachability_is_rolled_back(direct_lab: Lab) -> None:
    """Renumbering one node alone (--limit) leaves its peer on the old subnets: no peer answers the new
    addresses, so the node restores its previous drop-in, re-applies it and the play says so."""
    before = {node: direct_lab.sh(node, "cat", NETPLAN).stdout for node in ("spark1", "spark2")}
    cluster = direct_lab.expected()
    result = direct_lab.playbook(
        "--limit", "spark1", playbook="playbooks/fabric.yml",
        extravars={"sparkctl_fabric_pool": "198.19.128.0/17", "sparkctl_cabling": ["spark1:p1 spark2:p1"],
                   "sparkctl_fabric_settle_seconds": 4},
    )
    assert result.returncode != 0
    output = flat(result.stdout)
    assert "the new fabric config failed and was rolled back" in output, output[-3000:]
    assert "does not answer" in output and "still answers on its management address" in output
    assert recap(result.stdout)["spark1"]["failed"] == 1
    assert {node: direct_lab.sh(node, "cat", NETPLAN).stdout for node in ("spark1", "spark2")} == before
    assert_fabric_as_planned(direct_lab, cluster)  # the old addresses are back and the peers answer again


def inventory_claiming_management(lab: Lab, directory: Path) -> Path:
    """A copy of the lab's inventory that puts the first fabric link (spark1 .1, spark2 .2 in a /30) inside the
    lab's management /24, where the controller is .1, while telling the planner the management network is
    only the nodes' /29: the mistake a user makes who sets sparkctl_management_network too narrow."""
    inventory = directory / "inventory"
    shutil.copytree(lab.inventory, inventory)
    first = lab.expected().plan.nodes["spark1"].interfaces[0].name  # a direct cable: the same netdev both ends
    prefix = lab.state.nodes["spark1"].mgmt_address.rsplit(".", 1)[0]
    with (inventory / "group_vars" / "sparks.yml").open("a", encoding="utf-8") as out:
        out.write(f"sparkctl_management_network: {prefix}.8/29\n")
    (inventory / "host_vars").mkdir(exist_ok=True)
    for host, number in (("spark1", 1), ("spark2", 2)):
        (inventory / "host_vars" / f"{host}.yml").write_text(
            json.dumps({"sparkctl_fabric_addresses": {first: f"{prefix}.{number}/30"}}), encoding="utf-8")
    return inventory


def test_a_fabric_subnet_on_the_management_network_is_refused_by_the_node(direct_lab: Lab, tmp_path: Path) -> None:
    """The planner trusts sparkctl_management_network; the node sees its real management /24 and the
    controller's SSH session, refuses, and changes nothing."""
    before = {node: direct_lab.sh(node, "cat", NETPLAN).stdout for node in ("spark1", "spark2")}
    result = direct_lab.playbook(playbook="playbooks/fabric.yml",
                                 inventory=inventory_claiming_management(direct_lab, tmp_path))
    assert result.returncode != 0
    output = flat(result.stdout)
    prefix = direct_lab.state.nodes["spark1"].mgmt_address.rsplit(".", 1)[0]
    assert f"/30 overlaps {prefix}.0/24, the management network on enP7s7" in output, output[-3000:]
    assert f"contains {prefix}.1, which reaches this node over SSH" in output
    assert "Nothing was changed" in output
    assert {node: direct_lab.sh(node, "cat", NETPLAN).stdout for node in ("spark1", "spark2")} == before
    assert_fabric_as_planned(direct_lab)


def test_an_apply_that_cuts_management_is_undone_by_the_node_itself(direct_lab: Lab, tmp_path: Path) -> None:
    """With the node's guard off, the apply takes the controller's address onto the fabric: both nodes
    lose management, the session breaks off, and nothing from the controller can undo it. Each node's
    timer restores its last known-good drop-in within the confirmation window, and the run says so."""
    before = {node: direct_lab.sh(node, "cat", NETPLAN).stdout for node in ("spark1", "spark2")}
    cluster = direct_lab.expected()
    result = direct_lab.playbook(
        playbook="playbooks/fabric.yml", inventory=inventory_claiming_management(direct_lab, tmp_path),
        extravars={"sparkctl_fabric_management_guard": False, "sparkctl_fabric_confirm_seconds": 10,
                   "sparkctl_fabric_settle_seconds": 4},
    )
    assert result.returncode != 0
    output = flat(result.stdout)
    for node in ("spark1", "spark2"):
        address = direct_lab.state.nodes[node].mgmt_address
        assert f"{node}: the fabric apply cut the node off its management address" in output, output[-4000:]
        assert f"The node still answers on its management address {address}" in output
        record = json.loads(direct_lab.sh(node, "cat", "/var/lib/sparkctl/fabric/last-rollback.json").stdout)
        assert record["by"] == "node" and record["error"] is None
        assert 10 <= record["at"] - record["armed_at"] < 20, record
        assert direct_lab.sh(node, "test", "-e", "/var/lib/sparkctl/fabric/pending.json", check=False).returncode == 1
    assert ("The node restored the last known-good fabric config (/etc/netplan/60-sparkctl-fabric.yaml) and "
            "applied it again by itself") in output
    assert {node: direct_lab.sh(node, "cat", NETPLAN).stdout for node in ("spark1", "spark2")} == before
    assert_fabric_as_planned(direct_lab, cluster)
