"""Ansible module `sparkctl_services_images`: pull a node's missing images in the background, then wait for them.

Documentation only (for ansible-doc): the action plugin of the same name (plugins/action) runs the
step `sparkctl_services_images` of `sparkctl.node.steps` on the node, in one round trip; the work is in `sparkctl.node.image_pulls`.

Started on every Spark in one task, the pulls run side by side; the waiting task is retried by
Ansible and reports each node's progress (`progress`) on every try, which `sparkctl deploy` shows per
node.
"""

from __future__ import annotations

DOCUMENTATION = r"""
module: sparkctl_services_images
author: sparkctl
short_description: Pull the container images a Spark's services need, all at once, and report progress
description:
  - Without O(wait), starts a C(docker pull) in a transient systemd unit for every image the engine does not have
    and that is not already being pulled, and returns at once (changed when a pull was started or is running).
  - With O(wait=true), reports where each image stands (C(done) once no pull runs, C(progress) as layers done per
    image); meant to be retried with C(until) until C(done). Fails naming each image whose pull failed, with the end
    of its output.
options:
  images:
    description: The images the node's services run (pinned references).
    type: list
    elements: str
    required: true
  container_cli:
    description: The container CLI.
    type: path
    default: /usr/bin/docker
  wait:
    description: Report progress instead of starting pulls.
    type: bool
    default: false
  requires:
    description: Files the units need (the fabric environment file provisioning writes); without O(wait), the module
      fails before pulling anything when one is missing, naming it.
    type: list
    elements: path
    default: []
attributes:
  check_mode:
    support: full
"""

EXAMPLES = r"""
- name: Start the pulls
  sparkctl_services_images:
    images: [vllm/vllm-openai:v0.11.0]
  register: pulls

- name: Wait for them
  sparkctl_services_images:
    images: [vllm/vllm-openai:v0.11.0]
    wait: true
  register: pulled
  until: pulled.done | default(true)
  retries: 1800
  delay: 2
  when: pulls is changed
"""

RETURN = r"""
images:
  description: One record per image (image, state present/pulling/failed/missing, layers_done, layers, detail).
  type: list
  elements: dict
  returned: always
progress:
  description: One line saying how many images are in and how far each other one is.
  type: str
  returned: always
done:
  description: No pull is running any more (with O(wait)).
  type: bool
  returned: always
"""
