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
  - With O(identity), also the cluster's known_hosts (from the host keys each Spark reported in O(host_keys_var))
    and the ~/.ssh/config block that points SSH at the cluster key and that known_hosts.
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
  identity:
    description: The cluster key's path on the nodes, for the ~/.ssh/config block.
    type: str
  known_hosts_path:
    description: The cluster's known_hosts path on the nodes, for the ~/.ssh/config block.
    type: str
  user:
    description: The account mpirun and Ray log in as.
    type: str
    default: root
  host_keys_var:
    description: The host variable holding what C(sparkctl_ssh_mesh) O(state=read) reported (its C(host_keys)).
    type: str
"""

RETURN = r"""
_raw:
  description: One dict with C(line) (the authorized_keys line), C(stale) (a regexp of the key's other lines),
    C(every) (a regexp of every line of the key, to withdraw it),
    C(retired) (a regexp of the lines a rotation removes at its end), C(fingerprint) (SHA256, as ssh-keygen -l
    prints it), C(sources) (the addresses of the from= list) and C(peers) (every Spark's C(name), C(address)
    and C(port), to SSH to); with O(identity) also C(known_hosts) and C(config) (file and block contents).
  type: list
  elements: dict
"""

from typing import Any

from ansible.errors import AnsibleError

try:
    from sparkctl.ansible_bridge import cluster_addresses, parse_discovered, settings_from_hostvars
    from sparkctl.ansible_lookup import ClusterLookup, ClusterVars
    from sparkctl.mesh_key import (
        PublicKey,
        every_line,
        known_hosts,
        mesh_authorization,
        retired_lines,
        ssh_config_block,
        ssh_peers,
    )
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
        answer = {**authorization, "sources": sources, "every": every_line(public_key),
                  "retired": retired_lines(authorization["line"], list(self.get_option("retired"))),
                  "fingerprint": PublicKey.parse(public_key).fingerprint,
                  "peers": ssh_peers(settings.nodes, cluster.hostvars)}
        if identity := self.get_option("identity"):
            reported = {host: cluster.hostvars[host].get(self.get_option("host_keys_var") or "", {})
                        for host in cluster.hosts}
            answer["known_hosts"] = known_hosts(
                cluster.hosts, {host: list(r.get("host_keys") or []) for host, r in reported.items() if r})
            answer["config"] = ssh_config_block(cluster.hosts, cluster.hostvars, str(self.get_option("user")),
                                                str(identity), str(self.get_option("known_hosts_path")))
        return answer
