#!/usr/bin/python
"""Ansible module `sparkctl_sysctl`: make the planned kernel settings live, naming those a node cannot set.

The logic lives in `sparkctl.node.sysctl` (shipped as module_utils); this file only maps Ansible
parameters and results onto it.
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

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.sparkctl_node import sysctl
from ansible.module_utils.sparkctl_node.files import ensure, planned
from ansible.module_utils.sparkctl_node.networkd import module_runner


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "file": {"type": "dict"},
            "settings": {"type": "dict", "required": True},
            "unavailable": {"type": "str", "choices": ["fail", "report"], "default": "fail"},
        },
        supports_check_mode=True,
    )

    written = ensure(*planned(module.params["file"]), module.check_mode) if module.params["file"] else None
    run = module_runner(module)
    wanted = {str(k): str(v) for k, v in module.params["settings"].items()}
    settable, stuck, failed = sysctl.apply(wanted, run, module.check_mode)
    unapplied = [d.why_stuck() for d in stuck]
    result = {"set": [d.key for d in settable], "unapplied": unapplied, "diff": written or {}}
    if stuck and module.params["unavailable"] == "fail":
        module.fail_json(msg="cannot set " + "; ".join(unapplied) + "; set them on the machine that owns the kernel, "
                         "or set sparkctl_tuning_unavailable: report to go on without them.", **result)
    if failed:
        module.fail_json(msg=failed, **result)
    module.exit_json(changed=bool(settable) or written is not None, **result)


if __name__ == "__main__":
    main()
