"""Ansible module `sparkctl_services_units`: a Spark's service units written in one go, then (re)started.

Documentation only (for ansible-doc): the action plugin of the same name (plugins/action) runs the
step `sparkctl_services_units` of `sparkctl.node.steps` on the node, in one round trip; the work is in `sparkctl.node.service_units`.

The units come from the sparkctl package (the `sparkctl_services` lookup). One call writes every
file instead of one task round trip per file, which is most of what a deploy that changes nothing costs.
"""

from __future__ import annotations

DOCUMENTATION = r"""
module: sparkctl_services_units
author: sparkctl
short_description: Write a Spark's service units and env files, remove undeclared ones, and (re)start them
description:
  - With O(step=write), writes each unit, its env file (mode 0600, root only, as it may hold tokens; it is never
    shown in a diff) and the manifest where they differ; with O(prune), stops, disables and removes the units of
    services no longer declared; reloads systemd once when a unit file changed.
  - With O(step=start), restarts each running unit whose unit or env file is newer than its start (so a change is
    applied even after a run that stopped half way) and each running unit that is no longer healthy (a vLLM
    whose engine died, or any service not healthy past its start timeout, as the O(manifest) describes them),
    starts the others and enables them all at boot.
options:
  layout:
    description: The C(layout) of the C(sparkctl_services) lookup, C(declared) (the paths of every unit the node runs), C(manifest)
      (path, content), C(unit_prefix) and C(env_dir).
    type: dict
    required: true
  units:
    description: The units this run touches (all of the node's, or those of the services chosen).
    type: list
    elements: dict
    required: true
  env_files:
    description: The env file contents by path (from the lookup's C(env_files)).
    type: dict
    default: {}
  written:
    description: With O(step=start), the files the write step changed (its C(changed_files)); their units restart,
      which check mode can only know this way.
    type: list
    elements: str
    default: []
  prune:
    description: Remove the units of services the node no longer runs.
    type: bool
    default: false
  step:
    description: Write the files, or start the units.
    type: str
    choices: [write, start]
    required: true
  manifest:
    description: With O(step=start), the node's services manifest (what the write step wrote), for the health checks.
    type: path
    default: /etc/sparkctl/services.json
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
"""

EXAMPLES = r"""
- name: Write the units
  sparkctl_services_units:
    layout: "{{ view.layout }}"
    units: "{{ view.units }}"
    env_files: "{{ view.env_files }}"
    prune: true
    step: write
"""

RETURN = r"""
changed_files:
  description: Files written (or that would be).
  type: list
  elements: str
  returned: with step=write
removed:
  description: Units (and the manifest) removed.
  type: list
  elements: str
  returned: with step=write
restarted:
  description: Units restarted because their files changed or they ran unhealthy.
  type: list
  elements: str
  returned: with step=start
started:
  description: Units that were not running and were started.
  type: list
  elements: str
  returned: with step=start
unhealthy:
  description: The units restarted because they ran unhealthy, each with what its health check saw.
  type: dict
  returned: with step=start
"""
