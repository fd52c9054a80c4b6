"""The Ansible inventory a lab writes: the contract every other part of sparkctl runs against.

Plain `ansible-playbook -i <state>/inventory` reaches the nodes with it: the lab's key, its
known_hosts and strict host-key checking. It names the topology but never the cabling
(`sparkctl_cabling`), so provisioning has to discover the cables, and recabling stays realistic.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import yaml

from sparkctl.lab import nodes
from sparkctl.lab.paths import LabPaths
from sparkctl.lab.state import LabState
from sparkctl.lab.topology import STORAGE, STORAGE_NETWORKS, STORAGE_PORT, STORAGE_TARGETS

FABRIC_MTU = 9000
FABRIC_POOL = "198.19.0.0/16"
LAB_BANDWIDTH_GBPS = 8.0
"""What the lab promises all its halves together, a third of what veth carried on 2 cores (25-35 Gbit/s).

verify-link measures every half at once, as it should on Sparks, where each half has its own NIC.
In a lab they all share this machine's CPUs, so a floor per half only holds if it is a share of
one budget: a lab of N nodes has at most 2N halves (two ports a node, two halves a port).
"""


def bandwidth_floors(nodes: int) -> tuple[float, float]:
    """(per half, per cable) Gbit/s floors for a lab of `nodes`: a share of the budget for every half it can have."""
    half = math.floor(100 * LAB_BANDWIDTH_GBPS / (2 * nodes)) / 100  # rounded down: never over budget
    return half, 2 * half


def group_vars(paths: LabPaths, state: LabState) -> dict[str, Any]:
    """The variables of group `sparks` for this lab."""
    min_half, min_cable = bandwidth_floors(len(state.nodes))
    values: dict[str, Any] = {
        "ansible_user": "root",
        "ansible_ssh_private_key_file": str(paths.client_key.resolve()),
        "ansible_ssh_common_args": (
            f"-o UserKnownHostsFile={paths.known_hosts.resolve()} -o StrictHostKeyChecking=yes"
        ),
        "ansible_pipelining": True,
        "ansible_python_interpreter": "/usr/bin/python3",
        "sparkctl_topology": state.topology,
        "sparkctl_mtu": FABRIC_MTU,
        "sparkctl_fabric_pool": FABRIC_POOL,
        "sparkctl_link_speed_mbps": state.speed_mbps,
        "sparkctl_min_half_gbps": min_half,
        "sparkctl_min_cable_gbps": min_cable,
        "sparkctl_lab": state.name,
        # What a lab node cannot do, said to the roles instead of skipped silently: its dpkg database is
        # read-only (tools come from the host), it has no RDMA device, and the machine-wide sysctls
        # belong to the host, so they are reported rather than set.
        "sparkctl_packages_mode": "verify",
        "sparkctl_packages_rdma_enabled": False,
        "sparkctl_tuning_unavailable": "report",
        # No container engine and no GPU here: services run through the lab's stand-in for the docker CLI,
        # which checks the arguments a real `docker run` gets and starts stand-in servers with the real APIs.
        "sparkctl_container_cli": nodes.STANDIN_DOCKER,
    }
    if STORAGE in state.hubs:
        values["sparkctl_storage"] = {
            "port": STORAGE_PORT,
            "networks": list(STORAGE_NETWORKS),
            "targets": list(STORAGE_TARGETS),
        }
    return values


def hosts(state: LabState) -> dict[str, Any]:
    return {
        "all": {
            "children": {
                "sparks": {
                    "hosts": {name: {"ansible_host": node.mgmt_address} for name, node in state.nodes.items()}
                }
            }
        }
    }


def write(paths: LabPaths, state: LabState) -> Path:
    """Write hosts.yml and group_vars/sparks.yml; returns the inventory directory."""
    directory = paths.inventory
    (directory / "group_vars").mkdir(parents=True, exist_ok=True)
    header = f"# Written by `sparkctl lab up --name {state.name}`; removed by `sparkctl lab down`.\n"
    (directory / "hosts.yml").write_text(
        header + yaml.safe_dump(hosts(state), sort_keys=False), encoding="utf-8"
    )
    (directory / "group_vars" / "sparks.yml").write_text(
        header + yaml.safe_dump(group_vars(paths, state), sort_keys=False), encoding="utf-8"
    )
    return directory
