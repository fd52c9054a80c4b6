"""Ansible module `sparkctl_sysctl`: make the planned kernel settings live, naming those a node cannot set.

Documentation only (for ansible-doc): the action plugin of the same name (plugins/action) runs the
step `sparkctl_sysctl` of `sparkctl.node.steps` on the node, in one round trip; the work is in `sparkctl.node.sysctl`.
"""

from __future__ import annotations

DOCUMENTATION = r"""
module: sparkctl_sysctl
author: sparkctl
short_description: Install the fabric's sysctl file and set planned sysctls whose live value differs
description:
  - Writes O(file) (the planner's sysctl.d file, applied at every boot) when its content or mode differ.
  - Reads every key of O(settings) from /proc/sys and sets, with one C(sysctl -w), those whose live value
    differs (whitespace aside) and that are writable here; then reads them back and fails if one did not take.
  - A differing key that does not exist or is read-only here (a node in a network namespace, whose
    machine-wide keys belong to the host) fails when O(unavailable=fail), and is returned in C(unapplied)
    with why when O(unavailable=report).
options:
  file:
    description: The planner's sysctl.d file, C(path), C(content) and C(mode).
    type: dict
  settings:
    description: Key -> planned value.
    type: dict
    required: true
  unavailable:
    description: What a key this node cannot set does.
    type: str
    choices: [fail, report]
    default: fail
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
"""

EXAMPLES = r"""
- name: Set the fabric sysctls
  sparkctl_sysctl:
    file: "{{ sparkctl_plan_node.files.sysctl }}"
    settings: {net.core.rmem_max: "268435456"}
"""

RETURN = r"""
set:
  description: The keys set (would be set, in check mode).
  type: list
  elements: str
  returned: always
unapplied:
  description: One sentence per key this node cannot set, empty when there is none.
  type: list
  elements: str
  returned: always
"""
