"""Ansible lookup `sparkctl_plan`: the fabric plan of one Spark, or of several at once, from the sparkctl planner.

The playbooks get the plan only through here, so `ansible-playbook` and `sparkctl provision`
compute the same plan from the same inventory with the same code.
"""

from __future__ import annotations

DOCUMENTATION = r"""
name: sparkctl_plan
author: sparkctl
short_description: The fabric plan of one Spark, from the sparkctl planner
description:
  - Reads every host of group C(sparks) from hostvars, runs the sparkctl planner and returns the plan
    of O(host) with its rendered files (netplan drop-in, environment, sysctl).
  - With O(hosts) instead, plans once and returns every named node's plan, by node name (what the plan role
    does once per run, instead of planning the whole cluster again for each host).
options:
  host:
    description: The node whose plan to return.
    type: str
  hosts:
    description: The nodes whose plans to return, as a dict by node name.
    type: list
    elements: str
  topology:
    description: Overrides C(sparkctl_topology).
    type: str
  discovered:
    description: Cables discovered on the nodes, each C(node:port node:port); used when no cabling is pinned.
    type: list
    elements: str
    default: []
"""

RETURN = r"""
_raw:
  description: One dict, the node's plan (interfaces, bonds, routes, sysctl, env, files, links); with O(hosts),
    one dict of those by node name.
  type: list
  elements: dict
"""

from typing import Any

from ansible.errors import AnsibleError

try:
    from sparkctl.ansible_bridge import node_view, plan_from_hostvars
    from sparkctl.ansible_lookup import ClusterLookup, ClusterVars
except ImportError as exc:
    raise AnsibleError(
        f"the sparkctl package is not importable ({exc}): run ansible-playbook from the "
        "virtual environment where sparkctl is installed (.venv/bin/ansible-playbook)"
    ) from exc


class LookupModule(ClusterLookup):
    """Returns `[node_view]` for the requested host, or `[{host: node_view}]` for the requested hosts."""

    def answer(self, cluster: ClusterVars) -> Any:
        host, hosts = self.get_option("host"), self.get_option("hosts")
        if (host is None) == (hosts is None):
            raise AnsibleError("sparkctl_plan: give either host or hosts")
        plan = plan_from_hostvars(cluster.hosts, cluster.hostvars, cluster.inventory_file,
                                  self.get_option("topology"), self.get_option("discovered"))
        return node_view(plan, host) if hosts is None else {name: node_view(plan, name) for name in hosts}
