"""Ansible module `sparkctl_services_ready`: wait until a node's services answer on their own APIs.

The checks live in sparkctl/node/health.py (shipped as module_utils), the same code `sparkctl status`
runs on the nodes.
"""

from __future__ import annotations

DOCUMENTATION = r"""
module: sparkctl_services_ready
author: sparkctl
short_description: Wait until the services sparkctl deployed on a Spark are healthy
description:
  - Reads the manifest sparkctl wrote (C(/etc/sparkctl/services.json)) and waits, each within its own timeout, until
    every unit is active and its API answers as the real server does when ready (vLLM C(/health) and C(/v1/models),
    Ollama C(/api/tags), after pulling a missing model through C(/api/pull), TTS voices or C(/health), a container's
    health path or port).
  - Fails naming each service that did not come up, with the last lines of its journal.
options:
  manifest:
    description: The manifest of the node's services.
    type: path
    default: /etc/sparkctl/services.json
  services:
    description: Only these services (all when empty).
    type: list
    elements: str
    default: []
attributes:
  check_mode:
    support: full
"""

EXAMPLES = r"""
- name: Wait for the services
  sparkctl_services_ready:
"""

RETURN = r"""
services:
  description: One verdict per unit (service, node, unit, url, state, healthy, detail, journal when it failed).
  type: list
  elements: dict
  returned: always
"""

import json

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.sparkctl_node import health
from ansible.module_utils.sparkctl_node.networkd import module_runner


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "manifest": {"type": "path", "default": "/etc/sparkctl/services.json"},
            "services": {"type": "list", "elements": "str", "default": []},
        },
        supports_check_mode=True,
    )

    run = module_runner(module)
    try:
        with open(module.params["manifest"], encoding="utf-8") as handle:
            instances = json.load(handle)["instances"]
    except FileNotFoundError:
        instances = []
    chosen = set(module.params["services"])
    instances = [i for i in instances if not chosen or i["service"] in chosen]
    if module.check_mode:
        module.exit_json(changed=False, services=[health.verdict(i, run) for i in instances])
    verdicts = health.wait_ready(instances, run)
    failed = [v for v in verdicts if not v["healthy"]]
    if failed:
        lines = [f"{v['service']} ({v['unit']}): {v['detail']}; last journal lines: "
                 + " | ".join(v.get("journal", [])[-8:]) for v in failed]
        module.fail_json(msg="services that did not come up: " + " ;; ".join(lines), services=verdicts)
    module.exit_json(changed=False, services=verdicts)


if __name__ == "__main__":
    main()
