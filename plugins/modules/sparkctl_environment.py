#!/usr/bin/python
"""Ansible module `sparkctl_environment`: write the fabric environment files and prove shells and units see them.

The logic lives in `sparkctl.node.environment` (shipped as module_utils); this file only maps Ansible
parameters and results onto it.
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

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.sparkctl_node import environment
from ansible.module_utils.sparkctl_node.networkd import module_runner


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "files": {"type": "dict", "required": True},
            "wanted": {"type": "dict", "required": True},
            "node": {"type": "str", "required": True},
            "systemd_reload": {"type": "bool", "default": True},
            "verify_login_shell": {"type": "bool", "default": True},
        },
        supports_check_mode=True,
    )
    params = module.params
    try:
        result = environment.converge(
            params["files"], {str(k): str(v) for k, v in params["wanted"].items()}, node=params["node"],
            systemd_reload=params["systemd_reload"], verify_login_shell=params["verify_login_shell"],
            check_mode=module.check_mode, run=module_runner(module))
    except environment.FabricEnvironmentError as error:
        module.fail_json(msg=str(error))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
