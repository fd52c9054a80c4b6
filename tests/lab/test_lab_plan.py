"""The lab's pure parts, without root: cabling plans, names, fault values, state, inventory, preflight."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from sparkctl.errors import EnvironmentProblem, InputError
from sparkctl.lab import faults, inventory, nodes, preflight
from sparkctl.lab.paths import LabPaths, bridge_name, check_name, mgmt_host_interface, namespace
from sparkctl.lab.state import Applied, Fault, LabState, NodeState
from sparkctl.lab.topology import Cable, Hub, Port, conventional, node_names, parse_end, parse_port


def _cables(topology: str, count: int) -> list[str]:
    return [str(c) for c in conventional(topology, node_names(count))]


def test_conventional_cabling_of_each_topology() -> None:
    assert _cables("direct", 2) == ["spark1:p0 <-> spark2:p0"]
    assert _cables("bond", 2) == ["spark1:p0 <-> spark2:p0", "spark1:p1 <-> spark2:p1"]
    assert _cables("ring", 3) == [
        "spark1:p0 <-> spark2:p1", "spark2:p0 <-> spark3:p1", "spark3:p0 <-> spark1:p1",
    ]
    assert _cables("storage-split", 2) == [
        "spark1:p0 <-> spark2:p0", "spark1:p1 <-> storage", "spark2:p1 <-> storage",
    ]
    assert _cables("switch", 3) == ["spark1:p0 <-> switch", "spark2:p0 <-> switch", "spark3:p0 <-> switch"]


@pytest.mark.parametrize(
    ("topology", "count"), [("direct", 3), ("bond", 4), ("ring", 2), ("ring", 9), ("switch", 9)]
)
def test_sizes_a_topology_cannot_be_cabled_with(topology: str, count: int) -> None:
    with pytest.raises(InputError) as error:
        conventional(topology, node_names(count))
    assert error.value.key == "--nodes"


def test_ports_and_cable_ends_are_parsed_strictly() -> None:
    assert parse_port("spark2:p1", ["spark1", "spark2"]) == Port("spark2", "p1")
    assert parse_end("storage", ["spark1"], ["storage"]) == Hub("storage")
    for bad in ("spark1", "spark1:p2", "spark1:enp1s0f0np0"):
        with pytest.raises(InputError):
            parse_port(bad)
    with pytest.raises(InputError, match="no node"):
        parse_port("spark3:p0", ["spark1", "spark2"])
    with pytest.raises(InputError, match="no switch"):
        parse_end("switch", ["spark1"], ["storage"])


def test_cables_round_trip_through_their_dict_form() -> None:
    cables = (Cable(Port("spark1", "p0"), Port("spark2", "p1")), Cable(Port("spark3", "p1"), Hub("storage")))
    for cable in cables:
        assert Cable.from_dict(cable.to_dict()) == cable


def test_names_fit_linux_interface_names() -> None:
    longest = "abcdefghij"
    assert check_name(longest) == longest
    assert max(len(bridge_name(longest)), len(mgmt_host_interface(longest, 8))) <= 15
    assert namespace("lab", "spark1") == "sparklab-lab-spark1"
    for bad in ("", "1lab", "Lab", "lab-1", "abcdefghijk"):
        with pytest.raises(InputError):
            check_name(bad)


def test_fault_values() -> None:
    assert faults.parse_rate("2gbit") == 2_000_000_000
    assert faults.parse_rate("500Mbit") == 500_000_000
    assert faults.parse_loss("1%") == 1.0 and faults.parse_loss("30") == 30.0
    for bad_rate in ("2gb", "fast", "0gbit"):
        with pytest.raises(InputError):
            faults.Request.checked("rate", bad_rate)
    for bad_loss in ("0%", "100%", "lots"):
        with pytest.raises(InputError):
            faults.Request.checked("loss", bad_loss)
    with pytest.raises(InputError):
        faults.Request.checked("mtu", "40")


def test_fault_targets_are_a_netdev_or_both_halves_of_a_port() -> None:
    assert faults.devices_of("spark1:enp1s0f0np0", ["spark1"]) == ("spark1", ["enp1s0f0np0"])
    assert faults.devices_of("spark1:p1", ["spark1"]) == ("spark1", ["enp1s0f1np1", "enP2p1s0f1np1"])
    with pytest.raises(InputError):
        faults.devices_of("spark1:eth0", ["spark1"])
    with pytest.raises(InputError):
        faults.devices_of("spark2:p0", ["spark1"])


def _state(topology: str = "storage-split") -> LabState:
    state = LabState(name="demo", topology=topology, speed_mbps=10000, mgmt_subnet="198.18.7.0/24",
                     hubs=["storage"] if topology == "storage-split" else [])
    for i in (1, 2):
        state.nodes[f"spark{i}"] = NodeState(
            f"spark{i}", namespace("demo", f"spark{i}"), f"198.18.7.{10 + i}", f"demo-m{i}",
            pid=100 + i, pid_start=5, cgroups=["/sys/fs/cgroup/x"],
        )
    state.cables = conventional(topology, list(state.nodes))
    state.faults = [Fault("spark1", "enp1s0f0np0", "loss", "1%", [Applied("ns", "dev", rule=["-i", "dev"])])]
    return state


def test_lab_bandwidth_floors_share_one_budget_among_every_half_the_lab_can_have() -> None:
    assert inventory.bandwidth_floors(2) == (2.0, 4.0)  # 2 nodes: at most 2 cables, 4 halves
    assert inventory.bandwidth_floors(8) == (0.5, 1.0)
    for count in range(2, 9):
        half, cable = inventory.bandwidth_floors(count)
        assert half * 2 * count <= inventory.LAB_BANDWIDTH_GBPS and cable == 2 * half


def test_state_round_trips_through_json_form() -> None:
    state = _state()
    assert LabState.from_dict(state.to_dict()) == state


def test_inventory_is_the_contract_other_parts_rely_on(tmp_path: Path) -> None:
    paths = LabPaths(tmp_path, "demo")
    directory = inventory.write(paths, _state())
    hosts = yaml.safe_load((directory / "hosts.yml").read_text())
    assert hosts == {"all": {"children": {"sparks": {"hosts": {
        "spark1": {"ansible_host": "198.18.7.11"}, "spark2": {"ansible_host": "198.18.7.12"},
    }}}}}
    values = yaml.safe_load((directory / "group_vars" / "sparks.yml").read_text())
    assert values["ansible_user"] == "root"
    assert values["ansible_ssh_private_key_file"] == str(paths.client_key.resolve())
    assert values["ansible_ssh_common_args"] == (
        f"-o UserKnownHostsFile={paths.known_hosts.resolve()} -o StrictHostKeyChecking=yes"
    )
    assert values["ansible_python_interpreter"] == "/usr/bin/python3"
    assert {k: values[k] for k in (
        "sparkctl_topology", "sparkctl_mtu", "sparkctl_fabric_pool", "sparkctl_link_speed_mbps",
        "sparkctl_min_half_gbps", "sparkctl_min_cable_gbps", "sparkctl_lab",
    )} == {
        "sparkctl_topology": "storage-split", "sparkctl_mtu": 9000, "sparkctl_fabric_pool": "198.19.0.0/16",
        "sparkctl_link_speed_mbps": 10000, "sparkctl_min_half_gbps": 2.0, "sparkctl_min_cable_gbps": 4.0,
        "sparkctl_lab": "demo",
    }
    assert values["sparkctl_storage"]["targets"] == ["198.19.200.250", "198.19.201.250"]
    assert "sparkctl_cabling" not in values
    assert all(k.startswith(("ansible_", "sparkctl_")) for k in values)


def test_inventory_without_storage_has_no_storage_key(tmp_path: Path) -> None:
    values = inventory.group_vars(LabPaths(tmp_path, "demo"), _state("direct"))
    assert "sparkctl_storage" not in values


def test_container_command_boots_systemd_in_the_node_namespace(tmp_path: Path) -> None:
    paths = LabPaths(tmp_path / "odd:dir", "demo")
    argv = nodes.container_argv(paths, _state().nodes["spark1"])
    assert argv[:3] == ["nsenter", "--net=/run/netns/sparklab-demo-spark1", "--"]
    assert {"--volatile=yes", "--register=no", "--keep-unit", "--boot", "systemd.firstboot=off"} <= set(argv)
    overlay = next(a for a in argv if a.startswith("--overlay="))
    assert overlay == f"--overlay=/etc:{str(paths.node_etc('spark1')).replace(':', chr(92) + ':')}:/etc"


def test_preflight_names_the_apt_package_of_a_missing_tool(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(preflight, "TOOLS", {**preflight.TOOLS, "no-such-tool-xyz": "pkg-xyz"})
    assert preflight.missing_packages()["no-such-tool-xyz"] == "pkg-xyz"
    monkeypatch.setattr("sparkctl.lab.preflight.os.geteuid", lambda: 0)
    with pytest.raises(EnvironmentProblem, match="apt-get install .*pkg-xyz"):
        preflight.check()


def test_preflight_refuses_without_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sparkctl.lab.preflight.os.geteuid", lambda: 1000)
    with pytest.raises(EnvironmentProblem, match="needs root"):
        preflight.check()
