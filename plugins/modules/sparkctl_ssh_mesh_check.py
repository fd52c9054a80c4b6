"""Ansible module `sparkctl_ssh_mesh_check`: SSH from this Spark to each of its peers, batch mode, and report.

Documentation only (for ansible-doc): the action plugin of the same name (plugins/action) runs the
step `sparkctl_ssh_mesh_check` of `sparkctl.node.steps` on the node, in one round trip; the work is in `sparkctl.node.ssh_mesh`.

It only reports: which peers answered and what ssh said for those that did not. The role decides
what a failure means.
"""

from __future__ import annotations

DOCUMENTATION = r"""
module: sparkctl_ssh_mesh_check
author: sparkctl
short_description: SSH from a Spark to its peers in batch mode and report each peer
description:
  - Connects to every peer at once and runs C(true), in batch mode, as O(user).
  - Without O(identity), by name through the user's C(~/.ssh/config) (as mpirun and Ray connect).
  - With O(identity), with that key only and no configuration file read, the peer's host key checked against
    O(known_hosts) under its inventory name; used to prove a new cluster key before it is put in use.
  - Does not fail because a peer did not answer (C(peers) says which did not, and why) unless O(required) is
    true, and then it fails naming every peer it could not reach and what ssh said.
options:
  peers:
    description: The Sparks to reach, each with C(name) (the inventory name), C(address) and C(port).
    type: list
    elements: dict
    required: true
  user:
    description: The account to connect as, on both ends.
    type: str
    required: true
  identity:
    description: Private key to connect with, and no other.
    type: path
  known_hosts:
    description: The cluster's known_hosts (required with O(identity)).
    type: path
  timeout:
    description: Seconds to wait for each peer to answer (ssh ConnectTimeout).
    type: int
    default: 5
  required:
    description: Fail when a peer does not answer.
    type: bool
    default: false
attributes:
  check_mode:
    support: full
"""

EXAMPLES = r"""
- name: Prove the new key
  sparkctl_ssh_mesh_check:
    peers: [{name: spark2, address: 192.168.1.102, port: 22}]
    user: root
    identity: /root/.ssh/id_ed25519_sparkctl.new
    known_hosts: /root/.ssh/known_hosts_sparkctl
"""

RETURN = r"""
peers:
  description: Per peer, in the order given, C(name), C(ok), C(rc) and C(error) (what ssh said last).
  type: list
  elements: dict
  returned: always
"""
