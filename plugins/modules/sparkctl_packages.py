"""Ansible module `sparkctl_packages`: check a node has the fabric tools, or ask apt which ones it offers.

Documentation only (for ansible-doc): the action plugin of the same name (plugins/action) runs the
step `sparkctl_packages` of `sparkctl.node.steps` on the node, in one round trip; the work is in `sparkctl.node.packages`.
"""

from __future__ import annotations

DOCUMENTATION = r"""
module: sparkctl_packages
author: sparkctl
short_description: Check the fabric tools are on a node (verify), or decide what apt installs (install)
description:
  - O(mode=verify) looks for a command of every package of O(base) and O(optional) (from O(commands), else the
    package's own name) and fails naming the packages whose command is missing.
  - O(mode=install) fails when the node has no apt-get, and asks apt, in one C(apt-cache policy) call, which of
    O(optional) it offers; C(install) is what to install, C(not_offered) the optional packages apt lacks.
  - Changes nothing.
options:
  mode:
    type: str
    choices: [install, verify]
    required: true
    description: Whether sparkctl installs the packages on this node or only checks they are there.
  base:
    type: list
    elements: str
    required: true
    description: Packages every node needs.
  optional:
    type: list
    elements: str
    default: []
    description: Packages installed where the distribution offers them (the RDMA user space).
  commands:
    type: dict
    default: {}
    description: Package -> a command it installs (what O(mode=verify) looks for).
  node:
    type: str
    required: true
    description: The node's inventory name, for messages.
attributes:
  check_mode:
    support: full
"""

EXAMPLES = r"""
- name: Check the tools
  sparkctl_packages:
    mode: verify
    base: [iperf3, ethtool]
    commands: {iputils-ping: ping}
    node: "{{ inventory_hostname }}"
"""

RETURN = r"""
install:
  description: (install) The packages for apt to install.
  type: list
  elements: str
  returned: when mode is install
not_offered:
  description: (install) The optional packages the node's apt sources do not offer.
  type: list
  elements: str
  returned: when mode is install
"""
