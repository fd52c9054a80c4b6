"""Ansible module `sparkctl_watch`: install (or remove) the on-node fabric watch's systemd timer.

Documentation only (for ansible-doc): the action plugin of the same name (plugins/action) runs the
step `sparkctl_watch` of `sparkctl.node.steps` on the node, in one round trip; the work is in `sparkctl.node.watch`.
"""

from __future__ import annotations

DOCUMENTATION = r"""
module: sparkctl_watch
author: sparkctl
short_description: The on-node fabric watch, a systemd timer comparing the fabric with the confirmed plan
description:
  - Writes C(sparkctl-watch.service) and C(sparkctl-watch.timer) under /etc/systemd/system, keeps the copy of the
    node code they run under /var/lib/sparkctl/lib, enables the timer and runs the watch once at once.
  - Each run compares the live fabric with the plan the fabric module last confirmed, keeps the result in
    /var/lib/sparkctl/health.json with each link's carrier, MTU, speed, PCIe link and error counters, logs
    each change once (error counter growth included), and optionally writes Prometheus metrics and heals
    drifted fabric links (never management).
options:
  enabled:
    description: Install and run the watch (true), or stop and remove it (false).
    type: bool
    default: true
  interval_minutes:
    description: Minutes between looks.
    type: int
    default: 5
  heal:
    description: Have systemd-networkd reconfigure drifted fabric links.
    type: bool
    default: false
  textfile:
    description: File for node_exporter's textfile collector; none when empty.
    type: path
"""

EXAMPLES = r"""
- name: Watch the fabric
  sparkctl_watch:
    interval_minutes: 5
    textfile: /var/lib/prometheus/node-exporter/sparkctl.prom
"""

RETURN = r"""
steps:
  description: What changed (would change, in check mode).
  type: list
  elements: str
  returned: always
"""
