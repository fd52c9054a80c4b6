"""Ansible module `sparkctl_node_read`: the connection's user id and the node's fabric netdevs, in one read.

Documentation only (for ansible-doc): the action plugin of the same name (plugins/action) runs the
step `sparkctl_node_read` of `sparkctl.node.steps` on the node, in one round trip.
"""

from __future__ import annotations

DOCUMENTATION = r"""
module: sparkctl_node_read
author: sparkctl
short_description: Read the user id the connection runs as and the links of the fabric netdevs present
description:
  - Returns the effective user id of the connection on the node (after become) and, from C(ip -json link show),
    the links whose name is one of O(netdevs). Changes nothing.
options:
  netdevs:
    description: The netdev names to report (those a DGX Spark's ConnectX-7 has).
    type: list
    elements: str
    required: true
  require_root:
    description: Fail, before reading anything, unless the connection runs as root (uid 0).
    type: bool
    default: false
  links_fact:
    description: Also set the links as this host fact, for the roles that run after.
    type: str
"""

EXAMPLES = r"""
- name: Read
  sparkctl_node_read:
    netdevs: [enp1s0f0np0, enP2p1s0f0np0, enp1s0f1np1, enP2p1s0f1np1]
  register: read
"""

RETURN = r"""
uid:
  description: The effective user id on the node.
  type: int
  returned: always
links:
  description: C(ip -json link show) entries of the present O(netdevs).
  type: list
  elements: dict
  returned: always
ansible_facts:
  description: O(links_fact) set to RV(links).
  type: dict
  returned: when O(links_fact) is given
"""
