#!/usr/bin/python
"""Ansible module `sparkctl_packages`: check a node has the fabric tools, or ask apt which ones it offers.

The logic lives in `sparkctl.node.packages` (shipped as module_utils); this file only maps Ansible
parameters and results onto it.
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

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.sparkctl_node import packages
from ansible.module_utils.sparkctl_node.networkd import module_runner


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "mode": {"type": "str", "choices": ["install", "verify"], "required": True},
            "base": {"type": "list", "elements": "str", "required": True},
            "optional": {"type": "list", "elements": "str", "default": []},
            "commands": {"type": "dict", "default": {}},
            "node": {"type": "str", "required": True},
        },
        supports_check_mode=True,
    )
    params = module.params
    if params["mode"] == "verify":
        lacking = packages.missing([*params["base"], *params["optional"]],
                                   {str(k): str(v) for k, v in params["commands"].items()})
        if lacking:
            module.fail_json(msg=f"sparkctl_packages_mode is verify (packages are not installed here) and "
                                 f"{params['node']} lacks {', '.join(lacking)}. Install them, or set "
                                 "sparkctl_packages_mode: install.", missing=lacking)
        module.exit_json(changed=False, missing=[])
    try:
        install, not_offered = packages.to_install(params["base"], params["optional"], module_runner(module),
                                                   node=params["node"])
    except packages.PackagesError as error:
        module.fail_json(msg=str(error))
    module.exit_json(changed=False, install=install, not_offered=not_offered)


if __name__ == "__main__":
    main()
