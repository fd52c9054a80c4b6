"""The Ansible inventory a lab writes: the contract every other part of sparkctl runs against.

Plain `ansible-playbook -i <state>/inventory` reaches the nodes with it: the lab's key, its
known_hosts and strict host-key checking. It names the topology but never the cabling
(`sparkctl_cabling`), so provisioning has to discover the cables, and recabling stays realistic.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from sparkctl.lab.paths import LabPaths
from sparkctl.lab.state import LabState
from sparkctl.lab.topology import STORAGE, STORAGE_NETWORKS, STORAGE_PORT, STORAGE_TARGETS

FABRIC_MTU = 9000
FABRIC_POOL = "198.19.0.0/16"
MIN_HALF_GBPS = 4
MIN_CABLE_GBPS = 8
"""What veth sustains on 2 cores with room to spare (20-35 Gbit/s measured for one link)."""


def group_vars(paths: LabPaths, state: LabState) -> dict[str, Any]:
    """The variables of group `sparks` for this lab."""
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
        "sparkctl_min_half_gbps": MIN_HALF_GBPS,
        "sparkctl_min_cable_gbps": MIN_CABLE_GBPS,
        "sparkctl_lab": state.name,
        # What a lab node cannot do, said to the roles instead of skipped silently: its dpkg database is
        # read-only (tools come from the host), it has no RDMA device, and the machine-wide sysctls
        # belong to the host, so they are reported rather than set.
        "sparkctl_packages_mode": "verify",
        "sparkctl_packages_rdma_enabled": False,
        "sparkctl_tuning_unavailable": "report",
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
