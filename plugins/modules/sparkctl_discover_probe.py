"""Ansible module `sparkctl_discover_probe`: learn who is on the other end of each fabric cable.

Documentation only (for ansible-doc): the action plugin of the same name (plugins/action) runs the
step `sparkctl_discover_probe` of `sparkctl.node.steps` on the node, in one round trip; the work is in `sparkctl.node.peer_probe`.
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
