"""Ansible lookup `sparkctl_services`: one Spark's service units, laid out by the sparkctl package.

The services role gets its units only through here, so `ansible-playbook playbooks/services.yml` and
`sparkctl deploy` place the same services from the same inventory with the same code.
"""

from __future__ import annotations

DOCUMENTATION = r"""
name: sparkctl_services
author: sparkctl
short_description: The service units, env files and manifest of one Spark, from sparkctl_services
description:
  - Reads every host of group C(sparks) from hostvars, checks C(sparkctl_services) and places each service on the
    fabric plan (addresses for the cabling provisioning recorded), returning what O(host) runs.
options:
  host:
    description: The node whose units to return.
    type: str
    required: true
  recorded:
    description: Cables provisioning recorded on the nodes (C(node:port node:port)); the conventional cabling if none.
    type: list
    elements: str
    default: []
  only:
    description: Return the units and models of these services only (C(sparkctl_services_only)); all when empty.
    type: list
    elements: str
    default: []
  checked:
    description: Only check the services (bad input fails with file, key and fix) and return C(true), so a task
      without C(no_log) shows the error while the layout, which holds the services' env files, stays out of logs.
    type: bool
    default: false
"""

RETURN = r"""
_raw:
  description: One dict with C(units) (name, path, content, env_path, env, image), C(images), C(manifest).
  type: list
  elements: dict
"""

from typing import Any

from ansible.errors import AnsibleError

try:
    from sparkctl.ansible_bridge import services_view
    from sparkctl.ansible_lookup import ClusterLookup, ClusterVars
except ImportError as exc:
    raise AnsibleError(
        f"the sparkctl package is not importable ({exc}): run ansible-playbook from the "
        "virtual environment where sparkctl is installed (.venv/bin/ansible-playbook)"
    ) from exc


class LookupModule(ClusterLookup):
    """Returns `[services_view]` for the requested host."""

    def answer(self, cluster: ClusterVars) -> Any:
        view = services_view(cluster.hosts, cluster.hostvars, cluster.inventory_file, self.get_option("host"),
                             self.get_option("recorded"), self.get_option("only"))
        return True if self.get_option("checked") else view
