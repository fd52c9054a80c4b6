"""Ansible module `sparkctl_services_models`: put a node's models in its cache, fetched once or copied from the head.

What to fetch and from where to copy is laid out by the sparkctl package (the `sparkctl_services`
lookup); the work on the node is sparkctl/node/model_cache.py, shipped as module_utils.
"""

from __future__ import annotations

DOCUMENTATION = r"""
module: sparkctl_services_models
author: sparkctl
short_description: Fetch a service's model on its head node, or copy it from the head over the fabric
description:
  - With O(action=fetch), downloads each model this Spark is the head (or the only node) for with the image's own
    C(hf download), unless the cache already holds all of it (sparkctl's marker C(.sparkctl-complete.json) in the
    model's directory, every listed file present with its size).
  - With O(action=copy), receives each model of a multi-node service this Spark is a worker of from the head with
    rsync over SSH to the head's fabric address (the cluster key and known_hosts of the SSH mesh, host key checked),
    unless the cache already holds all of it. The head's marker is copied last and checked against the files.
options:
  models:
    description: The node's model tasks from the C(sparkctl_services) lookup (model, action, cache, argv or from_node
      and from_address).
    type: list
    elements: dict
    required: true
  action:
    description: Which of the tasks to carry out.
    type: str
    choices: [fetch, copy]
    required: true
attributes:
  check_mode:
    support: full
"""

EXAMPLES = r"""
- name: Fetch the models this Spark is head for
  sparkctl_services_models:
    models: "{{ view.models }}"
    action: fetch
"""

RETURN = r"""
models:
  description: One record per model (model, result, changed).
  type: list
  elements: dict
  returned: always
"""

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.sparkctl_node import model_cache
from ansible.module_utils.sparkctl_node.networkd import module_runner


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "models": {"type": "list", "elements": "dict", "required": True},
            "action": {"type": "str", "choices": ["fetch", "copy"], "required": True},
        },
        supports_check_mode=True,
    )
    try:
        records = model_cache.ensure(module.params["models"], module.params["action"], module_runner(module),
                                     module.check_mode)
    except model_cache.ModelError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=any(r["changed"] for r in records), models=records)


if __name__ == "__main__":
    main()
