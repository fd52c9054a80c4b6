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
  - With O(step=probe), the fabric netdevs of O(present) that O(host) probes (all of them, except the storage
    port's in a storage-split topology, which goes to storage, often a switch carrying other Sparks' frames).
  - With O(step=merge), the cables every host of the play heard (their registered O(reports_var)), each
    C(node:port node:port). Fails naming each cage that hears several Sparks, each probe that could not run,
    and each way the wires contradict a pinned C(sparkctl_cabling).
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
  description: One list, of netdev names (probe) or of cables C(node:port node:port) (merge).
  type: list
  elements: list
"""

from typing import Any

from ansible.errors import AnsibleError

try:
    from sparkctl import hardware
    from sparkctl.ansible_bridge import settings_from_hostvars
    from sparkctl.ansible_lookup import ClusterLookup, ClusterVars
    from sparkctl.discovery import as_discovered, contradictions, discovered_cables, probe_errors
except ImportError as exc:
    raise AnsibleError(
        f"the sparkctl package is not importable ({exc}): run ansible-playbook from the "
        "virtual environment where sparkctl is installed (.venv/bin/ansible-playbook)"
    ) from exc


class LookupModule(ClusterLookup):
    """Returns `[netdevs to probe]` (step probe) or `[cables]` (step merge)."""

    def answer(self, cluster: ClusterVars) -> Any:
        settings = settings_from_hostvars(cluster.hosts, cluster.hostvars, cluster.inventory_file)
        if self.get_option("step") == "probe":
            skip = settings.storage.port if settings.topology == "storage-split" and settings.storage else None
            return [dev for dev in self.get_option("present")
                    if dev in hardware.ALL_NETDEVS and hardware.port_of(dev)[0] != skip]
        played = [h for h in cluster.variables.get("ansible_play_hosts", []) if h in cluster.hosts]
        name = self.get_option("reports_var")
        reports = {h: list(cluster.hostvars[h].get(name, {}).get("reports", [])) for h in played}
        errors = probe_errors(reports)
        if errors:
            raise AnsibleError("; ".join(errors))
        found = discovered_cables(reports)
        if not found and settings.cabling is None:
            raise AnsibleError(
                "No probe frame crossed from one Spark to another on any ConnectX-7 port: check the cables are "
                "plugged in (QSFP56, not QSFP-DD) and the link lights are on, or pin the cables in sparkctl_cabling.")
        problems = contradictions(found, settings.cabling, played) if settings.cabling is not None else []
        if problems:
            raise AnsibleError("The cabling contradicts sparkctl_cabling: " + "; ".join(problems))
        return as_discovered(found)
