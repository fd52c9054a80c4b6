"""The planner, topology by topology: interfaces, addresses, subnets, bonds, routes and environment."""

from __future__ import annotations

from ipaddress import IPv4Network

import pytest

from sparkctl.cluster import load_cluster
from sparkctl.model import ClusterPlan
from tests.unit.conftest import InventoryWriter


def addresses(plan: ClusterPlan, node: str) -> dict[str, list[str]]:
    return {i.name: [str(a) for a in i.addresses] for i in plan.nodes[node].interfaces}


def test_direct_single_cable_uses_both_halves_each_on_its_own_subnet(write_inventory: InventoryWriter) -> None:
    plan = load_cluster(write_inventory(sparkctl_topology="direct")).plan
    assert [c.name for c in plan.cables] == ["spark1:p0-spark2:p0"]
    assert addresses(plan, "spark1") == {"enp1s0f0np0": ["10.20.0.1/24"], "enP2p1s0f0np0": ["10.20.1.1/24"]}
    assert addresses(plan, "spark2") == {"enp1s0f0np0": ["10.20.0.2/24"], "enP2p1s0f0np0": ["10.20.1.2/24"]}
    assert {str(link.subnet) for link in plan.links} == {"10.20.0.0/24", "10.20.1.0/24"}
    assert all(i.mtu == 9000 for n in plan.nodes.values() for i in n.interfaces)
    env = plan.nodes["spark1"].env
    assert env["NCCL_IB_HCA"] == "rocep1s0f0,roceP2p1s0f0"
    assert env["NCCL_SOCKET_IFNAME"] == env["OMPI_MCA_btl_tcp_if_include"] == "enP7s7"
    assert env["UCX_NET_DEVICES"] == env["GLOO_SOCKET_IFNAME"] == "enP7s7"
    assert "NCCL_IB_GID_INDEX" not in env  # found at run time, never pinned
    assert env["NCCL_IB_ROCE_VERSION_NUM"] == "2" and env["NCCL_IB_ADDR_FAMILY"] == "AF_INET"
    assert plan.nodes["spark1"].interface("enp1s0f0np0").peer == "spark2:enp1s0f0np0"  # type: ignore[union-attr]


def test_direct_dual_cable_addresses_all_four_netdevs(write_inventory: InventoryWriter) -> None:
    inv = write_inventory(sparkctl_cabling=["spark1:p0 spark2:p0", "spark1:p1 spark2:p1"])
    plan = load_cluster(inv).plan
    assert plan.cabling_source == "pinned"
    got = addresses(plan, "spark2")
    assert got == {
        "enp1s0f0np0": ["10.20.0.2/24"], "enP2p1s0f0np0": ["10.20.1.2/24"],
        "enp1s0f1np1": ["10.20.2.2/24"], "enP2p1s0f1np1": ["10.20.3.2/24"],
    }
    assert plan.nodes["spark1"].env["NCCL_IB_HCA"] == "rocep1s0f0,roceP2p1s0f0,rocep1s0f1,roceP2p1s0f1"
    assert len({link.subnet for link in plan.links}) == 4


def test_seed_bond_is_reproduced(write_inventory: InventoryWriter) -> None:
    inv = write_inventory(
        sparkctl_topology="bond", sparkctl_fabric_pool="10.0.0.0/24",
        sparkctl_bond={"members": ["enp1s0f0np0", "enp1s0f1np1"]},
    )
    plan = load_cluster(inv).plan
    for node, address in (("spark1", "10.0.0.1/24"), ("spark2", "10.0.0.2/24")):
        bond = plan.nodes[node].bonds[0]
        assert bond.name == "bond0"
        assert bond.members == ["enp1s0f0np0", "enp1s0f1np1"]
        assert (bond.mode, bond.transmit_hash_policy, bond.mtu) == ("802.3ad", "layer3+4", 9000)
        assert [str(a) for a in bond.addresses] == [address]
        assert all(not i.addresses and i.role == "bond-member" for i in plan.nodes[node].interfaces)
    assert any("enP2p1s0f0np0" in w for w in plan.warnings)  # the idle halves are called out


def test_bond_by_default_takes_every_half_of_both_cables(write_inventory: InventoryWriter) -> None:
    plan = load_cluster(write_inventory(sparkctl_topology="bond")).plan
    assert plan.nodes["spark1"].bonds[0].members == [
        "enp1s0f0np0", "enP2p1s0f0np0", "enp1s0f1np1", "enP2p1s0f1np1"]
    assert plan.warnings == []


def test_bond_address_can_be_pinned_per_host(write_inventory: InventoryWriter) -> None:
    inv = write_inventory(
        sparkctl_topology="bond",
        host_vars={"spark1": {"sparkctl_fabric_addresses": {"bond0": "10.0.0.1/24"}},
                   "spark2": {"sparkctl_fabric_addresses": {"bond0": "10.0.0.2/24"}}},
    )
    plan = load_cluster(inv).plan
    assert [str(a) for a in plan.nodes["spark2"].bonds[0].addresses] == ["10.0.0.2/24"]


def test_nvidia_three_node_ring_cabling(write_inventory: InventoryWriter) -> None:
    plan = load_cluster(write_inventory(3, sparkctl_topology="ring")).plan
    # NVIDIA: N1-P0 -> N2-P1, N2-P0 -> N3-P1, N3-P0 -> N1-P1
    assert sorted(c.name for c in plan.cables) == sorted(
        ["spark1:p0-spark2:p1", "spark2:p0-spark3:p1", "spark1:p1-spark3:p0"])
    for node in plan.nodes.values():
        assert sorted(i.name for i in node.interfaces) == sorted(
            ["enp1s0f0np0", "enP2p1s0f0np0", "enp1s0f1np1", "enP2p1s0f1np1"])
        assert node.routes == []  # everyone is a neighbour in a ring of three
        assert node.env["NCCL_IB_MERGE_NICS"] == "0" and node.env["NCCL_ALGO"] == "Ring"
    assert len({link.subnet for link in plan.links}) == 6


@pytest.mark.parametrize("size", [4, 5, 8])
def test_larger_rings_route_to_non_neighbours_the_short_way(write_inventory: InventoryWriter, size: int) -> None:
    plan = load_cluster(write_inventory(size, sparkctl_topology="ring")).plan
    subnets = {link.subnet for link in plan.links}
    assert len(subnets) == 2 * size
    for node in plan.nodes.values():
        attached = {a.network for i in node.interfaces for a in i.addresses}
        routed = {r.to for r in node.routes}
        assert attached | routed == subnets and not attached & routed
        assert node.sysctl["net.ipv4.ip_forward"] == "1"
        own = {str(a.ip) for i in node.interfaces for a in i.addresses}
        for route in node.routes:
            via_net = next(a.network for i in node.interfaces if i.name == route.interface for a in i.addresses)
            assert IPv4Network(f"{route.via}/24", strict=False) == via_net and route.via not in own
    # spark1's route to the far cable spark3-spark4 (ring of 4 => two hops either way) is deterministic
    if size == 4:
        far = next(link for link in plan.links if {link.a.node, link.b.node} == {"spark3", "spark4"}
                   and link.half == 0)
        route = next(r for r in plan.nodes["spark1"].routes if r.to == far.subnet)
        assert route.interface == "enp1s0f1np1"  # backwards via spark4 over p1


def test_switch_puts_each_half_on_one_shared_subnet(write_inventory: InventoryWriter) -> None:
    plan = load_cluster(write_inventory(5, sparkctl_topology="switch", sparkctl_switch_ports=["p0", "p1"])).plan
    assert addresses(plan, "spark5") == {
        "enp1s0f0np0": ["10.20.0.5/24"], "enP2p1s0f0np0": ["10.20.1.5/24"],
        "enp1s0f1np1": ["10.20.2.5/24"], "enP2p1s0f1np1": ["10.20.3.5/24"],
    }
    assert plan.cables == []
    assert len(plan.links) == 5 * 4


def test_storage_split_one_cage_to_peer_one_to_storage(write_inventory: InventoryWriter) -> None:
    inv = write_inventory(
        sparkctl_topology="storage-split",
        sparkctl_storage={"port": "p1", "networks": ["10.30.0.0/24", "10.31.0.0/24"], "targets": ["10.30.0.100"]},
    )
    plan = load_cluster(inv).plan
    roles = {i.name: (i.role, [str(a) for a in i.addresses]) for i in plan.nodes["spark2"].interfaces}
    assert roles == {
        "enp1s0f0np0": ("peer", ["10.20.0.2/24"]), "enP2p1s0f0np0": ("peer", ["10.20.1.2/24"]),
        "enp1s0f1np1": ("storage", ["10.30.0.2/24"]), "enP2p1s0f1np1": ("storage", ["10.31.0.2/24"]),
    }
    assert plan.nodes["spark2"].env["NCCL_IB_HCA"] == "rocep1s0f0,roceP2p1s0f0"  # storage halves stay out of NCCL
    storage = {link.name: [str(t) for t in link.targets] for link in plan.links if link.kind == "storage"}
    assert storage["spark2:enp1s0f1np1-storage"] == ["10.30.0.100"]
    assert storage["spark2:enP2p1s0f1np1-storage"] == []  # no target in the second half's network


def test_moving_one_cable_changes_only_that_cable(write_inventory: InventoryWriter) -> None:
    before = load_cluster(write_inventory(4, name="a", sparkctl_cabling=[
        "spark1:p0 spark2:p0", "spark3:p0 spark4:p0", "spark1:p1 spark3:p1"])).plan
    after = load_cluster(write_inventory(4, name="b", sparkctl_cabling=[
        "spark1:p0 spark2:p0", "spark3:p0 spark4:p1", "spark1:p1 spark3:p1"])).plan
    old = {link.name: link.to_dict() for link in before.links}
    new = {link.name: link.to_dict() for link in after.links}
    changed = {name for name in old.keys() | new.keys() if old.get(name) != new.get(name)}
    assert changed == {name for name in changed if "spark4" in name}
    assert len(changed) == 4  # two halves gone, two halves new
    for node in ("spark1", "spark2"):
        assert before.nodes[node].to_dict()["interfaces"] == after.nodes[node].to_dict()["interfaces"]


def test_adding_a_spark_at_the_end_keeps_every_existing_address(write_inventory: InventoryWriter) -> None:
    small = load_cluster(write_inventory(3, name="a", sparkctl_topology="switch")).plan
    large = load_cluster(write_inventory(4, name="b", sparkctl_topology="switch")).plan
    for name, node in small.nodes.items():
        assert node.to_dict()["interfaces"] == large.nodes[name].to_dict()["interfaces"]


def test_cli_topology_overrides_inventory(write_inventory: InventoryWriter) -> None:
    plan = load_cluster(write_inventory(3, sparkctl_topology="switch"), "ring").plan
    assert plan.topology == "ring"


def test_group_vars_all_host_vars_precedence(write_inventory: InventoryWriter) -> None:
    inv = write_inventory(sparkctl_mtu=9000, host_vars={"spark2": {"ansible_host": "192.168.1.222"}})
    (inv / "group_vars" / "all.yml").write_text("sparkctl_mtu: 1500\nsparkctl_fabric_pool: 10.50.0.0/16\n")
    plan = load_cluster(inv).plan
    assert plan.mtu == 9000  # group sparks beats group all
    assert str(plan.fabric_pool) == "10.50.0.0/16"  # inherited from all
    assert plan.nodes["spark2"].management_address == "192.168.1.222"  # host_vars beat the hosts file
    assert addresses(plan, "spark1")["enp1s0f0np0"] == ["10.50.0.1/24"]


def test_explicit_interface_address_overrides_the_pool(write_inventory: InventoryWriter) -> None:
    inv = write_inventory(host_vars={
        "spark1": {"sparkctl_fabric_addresses": {"enp1s0f0np0": "172.16.5.1/24"}},
        "spark2": {"sparkctl_fabric_addresses": {"enp1s0f0np0": "172.16.5.2/24"}},
    })
    plan = load_cluster(inv).plan
    assert addresses(plan, "spark2")["enp1s0f0np0"] == ["172.16.5.2/24"]
    assert addresses(plan, "spark2")["enP2p1s0f0np0"] == ["10.20.1.2/24"]
    assert str(plan.links[0].subnet) == "172.16.5.0/24"
