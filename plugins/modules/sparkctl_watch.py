#!/usr/bin/python
"""Ansible module `sparkctl_watch`: install (or remove) the on-node fabric watch's systemd timer.

The logic lives in `sparkctl.node.watch` (shipped as module_utils); this file only maps Ansible
parameters and results onto it.
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

import sys
from pathlib import Path

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.sparkctl_node import watch
from ansible.module_utils.sparkctl_node.networkd import module_runner
from ansible.module_utils.sparkctl_node.rollback import RollbackError


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "enabled": {"type": "bool", "default": True},
            "interval_minutes": {"type": "int", "default": 5},
            "heal": {"type": "bool", "default": False},
            "textfile": {"type": "path"},
        },
        supports_check_mode=True,
    )
    params = module.params

    run = module_runner(module)
    textfile = Path(params["textfile"]) if params["textfile"] else None
    files = watch.unit_files(sys.executable, params["interval_minutes"], params["heal"], textfile)
    try:
        steps = watch.install(run, files, params["enabled"], module.check_mode)
    except RollbackError as error:
        module.fail_json(msg=str(error))
    module.exit_json(changed=bool(steps), steps=steps)


if __name__ == "__main__":
    main()
