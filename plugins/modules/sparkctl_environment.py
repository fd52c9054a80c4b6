"""Ansible module `sparkctl_environment`: write the fabric environment files and prove shells and units see them.

Documentation only (for ansible-doc): the action plugin of the same name (plugins/action) runs the
step `sparkctl_environment` of `sparkctl.node.steps` on the node, in one round trip; the work is in `sparkctl.node.environment`.
"""

from __future__ import annotations

DOCUMENTATION = r"""
module: sparkctl_environment
author: sparkctl
short_description: Write the fabric's NCCL / UCX / MPI environment and check a login shell and systemd see it
description:
  - Writes the planned files (only those whose content or mode differ), reloads systemd when one changed and
    O(systemd_reload) is true, then checks that a fresh login shell (O(verify_login_shell)) and the service
    manager (O(systemd_reload)) hold every variable of O(wanted), failing with the ones they lack.
  - Fails at once, changing nothing, when O(systemd_reload) is true and systemd is not the running init.
  - In check mode reports (and diffs) what it would write and checks nothing.
options:
  files:
    description: The planner's C(env), C(profile) and C(systemd) files, each C(path), C(content), C(mode).
    type: dict
    required: true
  wanted:
    description: Variable -> planned value.
    type: dict
    required: true
  node:
    description: The node's inventory name, for messages.
    type: str
    required: true
  systemd_reload:
    description: Reload systemd after a change and check the service manager's environment.
    type: bool
    default: true
  verify_login_shell:
    description: Check that a fresh login shell exports every planned variable.
    type: bool
    default: true
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
"""

EXAMPLES = r"""
- name: Write the fabric environment
  sparkctl_environment:
    files:
      env: "{{ sparkctl_plan_node.files.env }}"
      profile: "{{ sparkctl_plan_node.files.profile }}"
      systemd: "{{ sparkctl_plan_node.files.systemd }}"
    wanted: "{{ sparkctl_plan_node.env }}"
    node: "{{ inventory_hostname }}"
"""

RETURN = r"""
written:
  description: The paths written (would be written, in check mode).
  type: list
  elements: str
  returned: always
"""
