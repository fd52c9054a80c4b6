"""Ansible module `sparkctl_services_images`: pull a node's missing images in the background, then wait for them.

The work on the node is sparkctl/node/image_pulls.py, shipped as module_utils. Started on every
Spark in one task, the pulls run side by side; the waiting task is retried by Ansible and reports
each node's progress (`progress`) on every try, which `sparkctl deploy` shows per node.
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

import os
from dataclasses import asdict

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.sparkctl_node import image_pulls
from ansible.module_utils.sparkctl_node.networkd import module_runner


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "images": {"type": "list", "elements": "str", "required": True},
            "container_cli": {"type": "path", "default": "/usr/bin/docker"},
            "wait": {"type": "bool", "default": False},
            "requires": {"type": "list", "elements": "path", "default": []},
        },
        supports_check_mode=True,
    )
    run = module_runner(module)
    cli, images = module.params["container_cli"], module.params["images"]
    if not module.params["wait"]:
        absent = [path for path in module.params["requires"] if not os.path.exists(path)]
        if absent:
            module.fail_json(msg=f"there is no {', '.join(absent)} here: provision the fabric first (sparkctl provision, "
                             "or playbooks/site.yml). Nothing was changed.")
        try:
            pulls = image_pulls.start_missing(run, cli, images, module.check_mode)
        except RuntimeError as exc:
            module.fail_json(msg=str(exc))
        module.exit_json(changed=any(p.state != "present" for p in pulls), done=False,
                         images=[asdict(p) for p in pulls], progress=image_pulls.progress(pulls))
    pulls = [image_pulls.look(run, cli, image) for image in images]
    result = {"images": [asdict(p) for p in pulls], "progress": image_pulls.progress(pulls),
              "done": all(p.state != "pulling" for p in pulls)}
    failed = [p for p in pulls if p.state in ("failed", "missing")]
    if result["done"] and failed:
        module.fail_json(msg="image pulls failed: " + "; ".join(p.line() for p in failed), **result)
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
