#!/usr/bin/python
"""Ansible module `sparkctl_networkd_apply`: apply netplan to fabric links through systemd-networkd, race-free.

The logic lives in `sparkctl.node.networkd` (shipped as module_utils); this file only maps Ansible
parameters and results onto it.
"""

from __future__ import annotations

DOCUMENTATION = r"""
module: sparkctl_networkd_apply
author: sparkctl
short_description: Apply netplan to fabric links through systemd-networkd without overlapping its own work
description:
  - Runs C(netplan generate), puts back every file under /run/systemd/network whose content did not
    change (so C(networkctl reload) leaves those links alone: networkd judges files by inode and mtime),
    and reloads only if something changed.
  - Waits, bounded by O(settle_timeout), until networkd is not configuring any wanted link before it
    starts, and after the reload until every link the reload reconfigures shows its new file (its
    addresses and MTU) in effect. C(networkctl reload) returns before it acts, and a
    C(networkctl reconfigure) overlapping that work makes systemd 252 fail the link.
  - Then reconfigures only the wanted links the reload did not and whose live state still differs from
    their file, or that networkd failed or does not manage, and waits for them too.
  - Fails naming the links and their networkd states when networkd does not settle or leaves a wanted
    link failed or unmanaged. A wanted link without carrier is reported, not waited for.
  - In check mode it generates into a scratch root and reports what it would reload and reconfigure.
options:
  links:
    description: The fabric links that must end up configured by networkd.
    type: list
    elements: str
    required: true
  settle_timeout:
    description: Seconds each wait for networkd may take before the apply fails.
    type: float
    default: 15
"""

EXAMPLES = r"""
- name: Apply the fabric drop-in
  sparkctl_networkd_apply:
    links: [enp1s0f0np0, enP2p1s0f0np0]
    settle_timeout: 15
"""

RETURN = r"""
changed_files:
  description: Files under /run/systemd/network that netplan generate added, removed or rewrote.
  type: list
  elements: str
  returned: always
reloaded:
  description: Whether networkctl reload ran (would run, in check mode).
  type: bool
  returned: always
reloaded_links:
  description: The links the reload reconfigured by itself (their .network file changed).
  type: list
  elements: str
  returned: always
reconfigured:
  description: Links reconfigured explicitly, each with why (failed, unmanaged, or live state drifted).
  type: dict
  returned: always
no_carrier:
  description: Wanted links without carrier (configured once a cable brings carrier).
  type: list
  elements: str
  returned: always
states:
  description: networkd's AdministrativeState of each wanted link at the end.
  type: dict
  returned: always
waited_seconds:
  description: How long the apply waited for networkd in all.
  type: float
  returned: always
"""

from dataclasses import asdict

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.sparkctl_node.networkd import Applier, NetworkdError


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "links": {"type": "list", "elements": "str", "required": True},
            "settle_timeout": {"type": "float", "default": 15.0},
        },
        supports_check_mode=True,
    )

    def run(argv: list[str]) -> tuple[int, str, str]:
        rc, out, err = module.run_command(argv)
        return int(rc), str(out), str(err)

    applier = Applier(run, module.params["links"], module.params["settle_timeout"])
    try:
        outcome = applier.apply(check_mode=module.check_mode)
    except NetworkdError as error:
        module.fail_json(msg=str(error), **asdict(applier.outcome))
    module.exit_json(**asdict(outcome))


if __name__ == "__main__":
    main()
