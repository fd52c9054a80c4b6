"""Ansible lookup `sparkctl_mesh_key`: the cluster key's authorized_keys line, usable only from the cluster.

The addresses come from the sparkctl planner (management addresses, resolved, and every fabric
address it plans), so the `from=` list is computed in Python from the same plan the fabric gets.
The lines themselves come from sparkctl/mesh_key.py.
"""

from __future__ import annotations

DOCUMENTATION = r"""
name: sparkctl_mesh_key
author: sparkctl
short_description: The authorized_keys line of the sparkctl cluster key, with from= limited to the cluster
description:
  - Plans the cluster from the hosts of group C(sparks) and returns the line that authorizes O(public_key)
    only from the management and fabric addresses of those hosts, with a regular expression matching any
    other line of the same key (to remove).
  - With O(retired) (a key rotation), also a regular expression matching every line to remove once the key
    is proven and in use - the retired keys' lines and any other line sparkctl wrote for a cluster key.
options:
  public_key:
    description: The cluster public key (one OpenSSH public key line).
    type: str
    required: true
  topology:
    description: Overrides C(sparkctl_topology).
    type: str
  discovered:
    description: Cables discovered on the nodes, each C(node:port node:port); used when no cabling is pinned.
    type: list
    elements: str
    default: []
  retired:
    description: Public keys this key replaces (a rotation); their lines are matched by C(retired).
    type: list
    elements: str
    default: []
"""

RETURN = r"""
_raw:
  description: One dict with C(line) (the authorized_keys line), C(stale) (a regexp of the key's other lines),
    C(every) (a regexp of every line of the key, to withdraw it),
    C(retired) (a regexp of the lines a rotation removes at its end), C(fingerprint) (SHA256, as ssh-keygen -l
    prints it), C(sources) (the addresses of the from= list) and C(peers) (every Spark's C(name), C(address)
    and C(port), to SSH to).
  type: list
  elements: dict
"""

from typing import Any

from ansible.errors import AnsibleError

try:
    from sparkctl.ansible_bridge import cluster_addresses, parse_discovered, settings_from_hostvars
    from sparkctl.ansible_lookup import ClusterLookup, ClusterVars
    from sparkctl.mesh_key import PublicKey, every_line, mesh_authorization, retired_lines, ssh_peers
    from sparkctl.planner import build_plan
except ImportError as exc:
    raise AnsibleError(
        f"the sparkctl package is not importable ({exc}): run ansible-playbook from the "
        "virtual environment where sparkctl is installed (.venv/bin/ansible-playbook)"
    ) from exc


class LookupModule(ClusterLookup):
    """Returns `[{line, stale, every, retired, fingerprint, sources, peers}]`."""

    def answer(self, cluster: ClusterVars) -> Any:
        settings = settings_from_hostvars(cluster.hosts, cluster.hostvars, cluster.inventory_file,
                                          self.get_option("topology"))
        names = [node.name for node in settings.nodes]
        plan = build_plan(settings, parse_discovered(self.get_option("discovered"), names) or None)
        sources = cluster_addresses(settings, plan)
        public_key = str(self.get_option("public_key"))
        authorization = mesh_authorization(public_key, sources)
        return {**authorization, "sources": sources, "every": every_line(public_key),
                "retired": retired_lines(authorization["line"], list(self.get_option("retired"))),
                "fingerprint": PublicKey.parse(public_key).fingerprint,
                "peers": ssh_peers(settings.nodes, cluster.hostvars)}
