"""Ansible module `sparkctl_fabric_renderer`: systemd-networkd ready to render the fabric, NetworkManager off it.

The decision lives in sparkctl/node/renderer.py (shipped as module_utils); this file only wires it to
Ansible: arguments, check mode, diff and the result.
"""

from __future__ import annotations

DOCUMENTATION = r"""
module: sparkctl_fabric_renderer
author: sparkctl
short_description: Make systemd-networkd render a Spark's fabric devices, whatever renders its management port
description:
  - Enables and starts systemd-networkd when it is not running (DGX OS runs NetworkManager only). When
    NetworkManager runs the node, systemd-networkd-wait-online stays disabled, so boot does not wait for the
    optional fabric links.
  - When NetworkManager runs (or sparkctl's drop-in for it exists), writes
    C(/etc/NetworkManager/conf.d/60-sparkctl-fabric.conf) listing O(interfaces) as unmanaged and makes
    NetworkManager re-read it, so NetworkManager never puts its own connections on the fabric ports.
  - Never touches the management port or any NetworkManager connection.
options:
  interfaces:
    description: The fabric devices (ports, bonds and bond members) systemd-networkd renders.
    type: list
    elements: str
    required: true
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
"""

EXAMPLES = r"""
- name: Make systemd-networkd render the fabric
  sparkctl_fabric_renderer:
    interfaces: [enp1s0f0np0, enP2p1s0f0np0]
"""

RETURN = r"""
management_renderer:
  description: The daemon that runs the rest of the node, C(NetworkManager) or C(systemd-networkd).
  type: str
  returned: always
steps:
  description: What was done (or, in check mode, would be done), one sentence each.
  type: list
  elements: str
  returned: always
"""

from collections.abc import Sequence

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.sparkctl_node import renderer


def main() -> None:
    module = AnsibleModule(
        argument_spec={"interfaces": {"type": "list", "elements": "str", "required": True}},
        supports_check_mode=True,
    )

    def run(argv: Sequence[str]) -> tuple[int, str, str]:
        code, out, err = module.run_command(list(argv))
        return code, out, err

    interfaces = module.params["interfaces"]
    observed = renderer.observe(run)
    try:
        steps = renderer.decide(observed, interfaces)
        if not module.check_mode:
            renderer.carry_out(steps, run)
    except (renderer.NotReady, renderer.StepFailed) as exc:
        module.fail_json(msg=str(exc), management_renderer=renderer.management_renderer(observed))
    diff = {}
    if any(step.nm_conf is not None or step.remove_nm_conf for step in steps):
        wanted = next((step.nm_conf for step in steps if step.nm_conf is not None), "")
        diff = {"before": observed.nm_conf or "", "after": wanted, "before_header": renderer.NM_CONF_PATH,
                "after_header": renderer.NM_CONF_PATH}
    module.exit_json(
        changed=bool(steps), steps=[step.what for step in steps],
        management_renderer=renderer.management_renderer(observed), diff=diff,
    )


if __name__ == "__main__":
    main()
