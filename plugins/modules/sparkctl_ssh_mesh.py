"""Ansible module `sparkctl_ssh_mesh`: read what a Spark has of the cluster SSH key, or keep its files as planned.

Documentation only (for ansible-doc): the action plugin of the same name (plugins/action) runs the
step `sparkctl_ssh_mesh` of `sparkctl.node.steps` on the node, in one round trip; the work is in `sparkctl.node.mesh_files`.
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
  - With O(key_pair), O(state=read) also returns the cluster key's C(private_key) and C(public_key), so give such a
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
