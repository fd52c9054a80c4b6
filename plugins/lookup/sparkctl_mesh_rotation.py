"""Ansible lookup `sparkctl_mesh_rotation`: may a cluster key rotation go past a step, and if not, why.

A failed task drops a Spark from the play while the others go on, so before every step that could
leave Sparks unable to reach each other the `sparkctl_ssh_mesh` role asks this lookup, with the
play's hosts and every Spark's SSH check, whether all of them got through. The decision and its
message are sparkctl/mesh_key.py `rotation_verdict`.
"""

from __future__ import annotations

DOCUMENTATION = r"""
name: sparkctl_mesh_rotation
author: sparkctl
short_description: Whether every Spark got through a step of a cluster key rotation
description:
  - Returns C(ok) true only when every Spark of O(everyone) is still in the run (O(active)) and every SSH check
    in O(checks) succeeded; otherwise C(failed) names the Sparks and C(message) says what failed and that the
    old key stays authorized and in use.
options:
  stage:
    description: The step just done.
    type: str
    choices: [start, staged, in use]
    required: true
  everyone:
    description: Every Spark of the run (C(ansible_play_hosts_all)).
    type: list
    elements: str
    required: true
  active:
    description: The Sparks still in the run (C(ansible_play_hosts)).
    type: list
    elements: str
    required: true
  checks:
    description: Per Spark, the C(peers) list its C(sparkctl_ssh_mesh_check) returned.
    type: dict
    default: {}
  old_fingerprint:
    description: Fingerprint of the key being replaced, for the message.
    type: str
    default: ""
"""

RETURN = r"""
_raw:
  description: One dict with C(ok), C(failed) (Spark names) and C(message).
  type: list
  elements: dict
"""

from typing import Any

from ansible.errors import AnsibleError
from ansible.plugins.lookup import LookupBase


class LookupModule(LookupBase):
    """Returns `[{ok, failed, message}]`."""

    def run(self, terms: list[Any], variables: dict[str, Any] | None = None, **kwargs: Any) -> list[Any]:
        self.set_options(var_options=variables, direct=kwargs)
        try:
            from sparkctl.mesh_key import rotation_verdict
        except ImportError as exc:
            raise AnsibleError(
                f"the sparkctl package is not importable ({exc}): run ansible-playbook from the "
                "virtual environment where sparkctl is installed (.venv/bin/ansible-playbook)"
            ) from exc
        checks = self.get_option("checks") or {}
        verdict = rotation_verdict(
            str(self.get_option("stage")),
            [str(h) for h in self.get_option("everyone")],
            [str(h) for h in self.get_option("active")],
            {str(host): list(peers or []) for host, peers in dict(checks).items()},
            str(self.get_option("old_fingerprint") or ""),
        )
        return [verdict.to_dict()]
