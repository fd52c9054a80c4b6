"""Ansible module `sparkctl_services_models`: put a node's models in its cache, fetched once or copied from the head.

Documentation only (for ansible-doc): the action plugin of the same name (plugins/action) runs the
step `sparkctl_services_models` of `sparkctl.node.steps` on the node, in one round trip; the work is in `sparkctl.node.model_cache`.

What to fetch and from where to copy is laid out by the sparkctl package (the `sparkctl_services`
lookup).
"""

from __future__ import annotations

DOCUMENTATION = r"""
module: sparkctl_services_models
author: sparkctl
short_description: Fetch a service's model on its head node, or copy it from the head over the fabric
description:
  - With O(action=fetch), starts downloading each model this Spark is the head (or the only node) for with the
    image's own C(hf download) in a transient systemd unit, unless the cache already holds all of it (sparkctl's marker
    C(.sparkctl-complete.json) in the model's directory, every listed file present with its size) or a download of it
    runs. With O(wait=true) too, reports how far the downloads are (C(progress), C(done)) and marks each finished one
    complete; meant to be retried with C(until) until C(done); fails naming a download that failed.
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
  wait:
    description: With O(action=fetch), report on the downloads instead of starting them.
    type: bool
    default: false
attributes:
  check_mode:
    support: full
"""

EXAMPLES = r"""
- name: Start fetching the models this Spark is head for
  sparkctl_services_models:
    models: "{{ view.models }}"
    action: fetch
  register: fetches

- name: Wait for the downloads
  sparkctl_services_models:
    models: "{{ view.models }}"
    action: fetch
    wait: true
  register: fetched
  until: fetched.done | default(true)
  retries: 7200
  delay: 2
  when: fetches is changed
"""

RETURN = r"""
models:
  description: One record per model (model, result, changed; with O(wait), model, state, detail).
  type: list
  elements: dict
  returned: always
progress:
  description: With O(wait), one line saying how many models are in and how far each other one is.
  type: str
  returned: with wait
done:
  description: With O(wait), no download runs any more.
  type: bool
  returned: with wait
"""
