#!/usr/bin/python
"""Ansible module `sparkctl_discover_probe`: learn who is on the other end of each fabric cable.

The logic lives in `sparkctl.node.peer_probe` (shipped as module_utils); this file only maps Ansible
parameters and results onto it.
"""

from __future__ import annotations

DOCUMENTATION = r"""
module: sparkctl_discover_probe
author: sparkctl
short_description: Probe fabric netdevs with raw Ethernet frames to find the far end of each cable
description:
  - On every netdev of O(interfaces) at once, broadcasts frames of the local experimental ethertype 0x88B5
    naming O(node) and the netdev, and listens for O(listen_seconds) for the frames of the other Sparks, which
    probe at the same time. No address is needed. A netdev that is down is brought up for the run and put back
    down afterwards, so the module changes nothing.
  - On each netdev it also asks for every address of O(arp_targets) with ARP probes from 0.0.0.0, which only
    the owner of the address answers, and reports which answered.
options:
  node:
    description: The name this node announces (its inventory name).
    type: str
    required: true
  interfaces:
    description: The netdevs to probe.
    type: list
    elements: str
    required: true
  listen_seconds:
    description: How long each probe sends and listens.
    type: float
    default: 3.0
  arp_targets:
    description: IPv4 addresses (the storage servers of a storage split) to ask for on every netdev.
    type: list
    elements: str
    default: []
  cages:
    description:
      - The cage (port) of each netdev of O(interfaces). Given, the probes end before O(listen_seconds) once
        every cage with carrier has heard exactly one far cage and been heard by it (never with O(arp_targets),
        nor when a netdev had to be brought up). Empty, every probe listens for the whole window.
    type: dict
    default: {}
"""

EXAMPLES = r"""
- name: Probe
  sparkctl_discover_probe:
    node: "{{ inventory_hostname }}"
    interfaces: [enp1s0f0np0, enP2p1s0f0np0]
    cages: {enp1s0f0np0: p0, enP2p1s0f0np0: p0}
"""

RETURN = r"""
reports:
  description: One report per netdev, with C(iface), C(heard) (each C(node), C(iface), C(mac), C(frames)),
    C(own_node) (frames from this node's other netdevs), C(answered) (the O(arp_targets) that answered) and
    C(settled) (the probe ended early, every cage having met its far end) and C(error) (null unless the
    probe could not run).
  type: list
  elements: dict
  returned: always
"""

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.sparkctl_node.peer_probe import probe_all


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "node": {"type": "str", "required": True},
            "interfaces": {"type": "list", "elements": "str", "required": True},
            "listen_seconds": {"type": "float", "default": 3.0},
            "arp_targets": {"type": "list", "elements": "str", "default": []},
            "cages": {"type": "dict", "default": {}},
        },
        supports_check_mode=True,
    )
    params = module.params
    cages = {str(iface): str(cage) for iface, cage in params["cages"].items()} or None
    module.exit_json(changed=False, reports=probe_all(params["node"], params["interfaces"], params["listen_seconds"],
                                                      tuple(params["arp_targets"]), cages))


if __name__ == "__main__":
    main()
