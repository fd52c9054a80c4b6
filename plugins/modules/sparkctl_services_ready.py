"""Ansible module `sparkctl_services_ready`: wait until a node's services answer on their own APIs.

Documentation only (for ansible-doc): the action plugin of the same name (plugins/action) runs the
step `sparkctl_services_ready` of `sparkctl.node.steps` on the node, in one round trip; the work is in `sparkctl.node.health`.

The checks are the same code `sparkctl status` runs on the nodes.
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
