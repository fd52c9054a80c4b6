"""Ansible module `sparkctl_fabric`: bring a node's fabric to its plan, with a rollback the node arms itself.

Documentation only (for ansible-doc): the action plugin of the same name (plugins/action) runs the
step `sparkctl_fabric` of `sparkctl.node.steps` on the node, in one round trip; the work is in `sparkctl.node.fabric`.
"""

from __future__ import annotations

DOCUMENTATION = r"""
module: sparkctl_fabric
author: sparkctl
short_description: Apply, confirm or restore a node's sparkctl fabric config, the way netplan try does
description:
  - O(state=applied) reads the node's netplan files and live links and refuses, changing nothing, a planned
    device the node lacks, another netplan file that configures a fabric device, a drop-in netplan rejects, a
    bond without a bonding driver, or a planned subnet or route that overlaps the node's management networks or
    contains the address of an SSH session that reached it over management. When the drop-in or the live state
    differs from the plan, it arms a systemd timer that restores the last known-good config unless confirmed
    within O(confirm_window) seconds, installs the drop-in, applies it to the fabric devices only and waits
    until the live fabric matches the plan. If that fails it restores the last known-good config at once.
    It also makes systemd-networkd run and NetworkManager leave the fabric devices alone. When nothing differs,
    it does what O(state=confirmed) does in the same call and returns C(confirmed), unless a target does not
    answer within a second (a peer applying at that moment), which leaves it to O(state=confirmed).
  - O(state=confirmed) pings every fabric target with full-MTU frames that may not fragment; when all answer,
    the config becomes the known-good one, the cabling it is configured for is written to the plan's
    C(cabling) file (verify-link checks the wires against it) and the timer stops; when one does not, the known-good config is
    restored at once. Devices the fabric no longer uses are given back to NetworkManager.
  - O(state=restored) restores the known-good config if an apply is still pending, or reports that the node
    restored it by itself.
options:
  state:
    description: Which step to run.
    type: str
    choices: [applied, confirmed, restored]
    required: true
  plan:
    description: The node's plan as the C(sparkctl_plan) lookup returns it (files, interfaces, bonds, routes,
      management, ping_targets, cabling_source, cables).
    type: dict
    required: true
  armed_at:
    description: The C(armed_at) the applied step returned, for the confirmed and restored steps.
    type: float
  settle_timeout:
    description: Seconds the live fabric may take to match the plan, and each ping to be answered.
    type: float
    default: 15
  confirm_window:
    description: Seconds the node waits for the confirmation before it restores the known-good config itself.
    type: float
    default: 60
  apply_method:
    description: C(networkctl) applies to the fabric devices only; C(netplan_apply) runs C(netplan apply).
    type: str
    choices: [networkctl, netplan_apply]
    default: networkctl
  guard_management:
    description: Refuse planned subnets that overlap management (see above).
    type: bool
    default: true
  management_port:
    description: The SSH port whose sessions count as management.
    type: int
    default: 22
  verify_peers:
    description: Ping the fabric targets before confirming.
    type: bool
    default: true
  verify_storage:
    description: Ping the storage targets too.
    type: bool
    default: true
  state_dir:
    description: Where the node keeps its known-good config and the pending apply (root only).
    type: path
    default: /var/lib/sparkctl/fabric
"""

EXAMPLES = r"""
- name: Apply the fabric
  sparkctl_fabric:
    state: applied
    plan: "{{ plan }}"
  register: applied

- name: Confirm it
  sparkctl_fabric:
    state: confirmed
    plan: "{{ plan }}"
    armed_at: "{{ applied.armed_at }}"
"""

RETURN = r"""
reasons:
  description: (applied) Why the fabric was applied; empty when it matched the plan.
  type: list
  elements: str
  returned: when state is applied
armed_at:
  description: (applied) When the rollback was armed (seconds since the epoch); null when nothing was applied.
  type: float
  returned: when state is applied
confirmed:
  description: (applied) True when nothing was to be applied and every fabric target answered, so the config
    was confirmed, kept and its cabling recorded in this same call (the C(confirmed) step is then not needed).
  type: bool
  returned: when state is applied and the node confirmed at once
answered:
  description: (confirmed, or applied when it confirmed at once) How many fabric targets answered.
  type: int
  returned: when state is confirmed, or applied and confirmed
by:
  description: (restored) Who restored the known-good config, C(controller) or C(node); null if nobody did.
  type: str
  returned: when state is restored
message:
  description: (restored) What happened, in one sentence.
  type: str
  returned: when state is restored
"""
