#!/usr/bin/python
"""Ansible module `sparkctl_ssh_mesh`: read what a Spark has of the cluster SSH key, or keep its files as planned.

The logic lives in `sparkctl.node.mesh_files` (shipped as module_utils); this file only maps Ansible
parameters and results onto it.
"""

from __future__ import annotations

DOCUMENTATION = r"""
module: sparkctl_ssh_mesh
author: sparkctl
short_description: The cluster SSH key's files on a Spark, read or kept as planned in one call
description:
  - O(state=read) changes nothing and returns the mesh user's C(home), C(uid), C(gid), C(group), whether the
    cluster key exists (C(key_exists)) and the node's SSH host keys (C(host_keys)).
  - O(state=installed) makes C(~/.ssh) (0700), writes the key pair (O(private_key) 0600, O(public_key) 0644),
    removes every C(authorized_keys) line matching O(stale) and adds O(line), writes the cluster's known_hosts
    and sets sparkctl's marked block at the top of C(~/.ssh/config), each only when it differs, all owned by
    the mesh user; and removes O(leftovers). The private key never appears in a diff or a log.
  - With O(key_pair), O(state=read) also returns the cluster key's C(private_key) and C(public_key): give such a
    task C(no_log).
options:
  state:
    type: str
    choices: [read, installed]
    required: true
    description: Read, or keep the files as planned.
  user:
    type: str
    required: true
    description: The mesh user (mpirun and Ray log in as it).
  key_name:
    type: str
    required: true
    description: The cluster key's file name in C(~/.ssh).
  known_hosts_name:
    type: str
    description: The cluster's known_hosts file name in C(~/.ssh) (O(state=installed)).
  private_key:
    type: str
    description: The cluster private key (never logged).
  public_key:
    type: str
    description: The cluster public key.
  line:
    type: str
    description: The authorized_keys line of the cluster key.
  stale:
    type: str
    description: A regular expression matching the key's other authorized_keys lines, to remove.
  known_hosts:
    type: str
    description: The content of the cluster's known_hosts.
  config_block:
    type: str
    description: The ~/.ssh/config block, without its markers.
  key_pair:
    type: bool
    default: false
    description: (read) Return the cluster key pair too.
  leftovers:
    type: list
    elements: path
    default: []
    description: Files to remove if present (the staged key of a rotation that stopped part way).
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
"""

EXAMPLES = r"""
- name: Read the mesh user and host keys
  sparkctl_ssh_mesh:
    state: read
    user: root
    key_name: id_ed25519_sparkctl
"""

RETURN = r"""
host_keys:
  description: (read) The node's SSH host keys, C(TYPE BLOB) each.
  type: list
  elements: str
  returned: when state is read
key_exists:
  description: (read) Whether the cluster key exists in the mesh user's C(~/.ssh).
  type: bool
  returned: when state is read
removed:
  description: (installed) The leftover files removed.
  type: list
  elements: str
  returned: when state is installed
"""

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.sparkctl_node import mesh_files


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "state": {"type": "str", "choices": ["read", "installed"], "required": True},
            "user": {"type": "str", "required": True},
            "key_name": {"type": "str", "required": True},
            "known_hosts_name": {"type": "str"},
            "private_key": {"type": "str", "no_log": True},
            "public_key": {"type": "str"},
            "line": {"type": "str"},
            "stale": {"type": "str", "no_log": False},
            "known_hosts": {"type": "str"},
            "config_block": {"type": "str"},
            "key_pair": {"type": "bool", "default": False},
            "leftovers": {"type": "list", "elements": "path", "default": []},
        },
        required_if=[("state", "installed", ("known_hosts_name", "known_hosts", "config_block"))],
        required_together=[("private_key", "public_key"), ("line", "stale")],
        supports_check_mode=True,
    )
    params = module.params
    try:
        if params["state"] == "read":
            module.exit_json(changed=False, **mesh_files.read(params["user"], params["key_name"],
                                                              key_pair=params["key_pair"]))
        result = mesh_files.install(
            mesh_files.Account.of(params["user"]), params["key_name"], params["known_hosts_name"], private_key=params["private_key"],
            public_key=params["public_key"], line=params["line"], stale=params["stale"],
            known_hosts=params["known_hosts"], config_block=params["config_block"], leftovers=params["leftovers"],
            check_mode=module.check_mode)
    except (mesh_files.MeshFilesError, OSError) as error:
        module.fail_json(msg=str(error))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
