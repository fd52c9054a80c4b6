"""Ansible lookup `sparkctl_discovery`: which netdevs a Spark probes, and the cabling the probes found.

The decisions are sparkctl's Python (`sparkctl.discovery`, the settings reader for the pins), so
`ansible-playbook` and `sparkctl provision` discover the same cabling with the same code.
"""

from __future__ import annotations

DOCUMENTATION = r"""
name: sparkctl_discovery
author: sparkctl
short_description: The netdevs to probe, and the cabling merged from every Spark's probe reports
description:
  - With O(step=probe), what O(host) probes (failing when it has no fabric netdev, or when the cabling is not
    pinned and the run leaves out some Spark, whose probe the others would then miss), as C(interfaces) (the fabric netdevs of O(present)), C(cages)
    (the cage of each) and C(arp_targets) (in a storage-split topology the storage servers' addresses, asked for by ARP so the merge
    learns which cage really goes to storage; otherwise none).
  - With O(step=merge), the cables every host of the play heard (their registered O(reports_var)), each
    C(node:port node:port), leaving out what the storage cage hears. Fails naming each cage that hears several
    Sparks, each probe that could not run, each node whose storage servers answer on the other cage than
    C(sparkctl_storage.port), and each way the wires contradict a pinned C(sparkctl_cabling).
options:
  step:
    description: Which answer to give.
    type: str
    choices: [probe, merge]
    required: true
  host:
    description: The node asking (step probe).
    type: str
  present:
    description: The fabric netdevs present on the node (step probe).
    type: list
    elements: str
    default: []
  reports_var:
    description: The name of the variable each host registered the probe module's result in (step merge).
    type: str
"""

RETURN = r"""
_raw:
  description: One answer, a mapping with C(interfaces), C(cages) and C(arp_targets) (probe) or a list of cables
    C(node:port node:port) (merge).
  type: list
  elements: raw
"""

from typing import Any

from ansible.errors import AnsibleError

try:
    from sparkctl import hardware
    from sparkctl.ansible_bridge import settings_from_hostvars
    from sparkctl.ansible_lookup import ClusterLookup, ClusterVars
    from sparkctl.discovery import (
        CablingContradicted,
        as_discovered,
        contradictions,
        discovered_cables,
        probe_errors,
        storage_cage_moved,
    )
except ImportError as exc:
    raise AnsibleError(
        f"the sparkctl package is not importable ({exc}): run ansible-playbook from the "
        "virtual environment where sparkctl is installed (.venv/bin/ansible-playbook)"
    ) from exc


class LookupModule(ClusterLookup):
    """Returns `[{interfaces, arp_targets}]` (step probe) or `[cables]` (step merge)."""

    def answer(self, cluster: ClusterVars) -> Any:
        settings = settings_from_hostvars(cluster.hosts, cluster.hostvars, cluster.inventory_file)
        storage = settings.storage if settings.topology == "storage-split" else None
        if self.get_option("step") == "probe":
            left_out = [h for h in cluster.hosts if h not in cluster.variables.get("ansible_play_hosts_all", [])]
            if settings.cabling is None and left_out:
                raise AnsibleError(f"Discovering the cabling needs every Spark to announce itself, and this run leaves "
                                   f"out {', '.join(left_out)} (--limit?). Run on all Sparks, or pin the cables in "
                                   "sparkctl_cabling.")
            interfaces = [dev for dev in self.get_option("present") if dev in hardware.ALL_NETDEVS]
            if not interfaces:
                raise AnsibleError(f"{self.get_option('host')} has none of the ConnectX-7 netdevs "
                                   f"{', '.join(hardware.ALL_NETDEVS)}: is this a DGX Spark, and is the mlx5 driver "
                                   "loaded?")
            return {"interfaces": interfaces, "cages": {dev: hardware.port_of(dev)[0] for dev in interfaces},
                    "arp_targets": [str(t) for t in storage.targets] if storage else []}
        played = [h for h in cluster.variables.get("ansible_play_hosts", []) if h in cluster.hosts]
        name = self.get_option("reports_var")
        reports = {h: list(cluster.hostvars[h].get(name, {}).get("reports", [])) for h in played}
        errors = probe_errors(reports)
        if errors:
            raise AnsibleError("; ".join(errors))
        moved = storage_cage_moved(reports, storage.port) if storage else []
        if storage and moved:
            raise CablingContradicted(
                "; ".join(moved) + ": the storage and peer cables are on each other's cages",
                file=settings.source("sparkctl_storage"), key="sparkctl_storage.port",
                fix=f"set sparkctl_storage.port to the cage the storage cable is in, or move the storage cables "
                    f"back to {storage.port}")
        found = discovered_cables(reports, storage.port if storage else None)
        if not found and settings.cabling is None:
            raise AnsibleError(
                "No probe frame crossed from one Spark to another on any ConnectX-7 port: check the cables are "
                "plugged in (QSFP56, not QSFP-DD) and the link lights are on, or pin the cables in sparkctl_cabling.")
        problems = contradictions(found, settings.cabling, played) if settings.cabling is not None else []
        if problems:
            raise AnsibleError("The cabling contradicts sparkctl_cabling: " + "; ".join(problems))
        return as_discovered(found)
