"""What every sparkctl lookup plugin does around its answer, so each plugin holds only its own question.

A lookup gets Ansible's variables: the hosts of group `sparks`, their hostvars and the inventory file
name (for messages) are taken from them the same way for all; a SparkctlError (bad input, with file, key
and fix) becomes an AnsibleError, which fails the task with that message and no traceback.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ansible.errors import AnsibleError  # type: ignore[import-untyped]
from ansible.plugins.lookup import LookupBase  # type: ignore[import-untyped]

from sparkctl.errors import SparkctlError
from sparkctl.inventory import SPARK_GROUP


@dataclass(frozen=True)
class ClusterVars:
    """The Sparks of the inventory as Ansible sees them in this task."""

    hosts: list[str]
    hostvars: dict[str, Mapping[str, Any]]
    inventory_file: str
    variables: Mapping[str, Any]


class ClusterLookup(LookupBase):  # type: ignore[misc]  # ansible-core ships no type hints
    """Subclasses implement `answer`; `run` hands it the cluster's variables and returns `[answer]`."""

    def run(self, terms: list[Any], variables: dict[str, Any] | None = None, **kwargs: Any) -> list[Any]:
        self.set_options(var_options=variables, direct=kwargs)
        variables = variables or {}
        hosts = [str(h) for h in variables.get("groups", {}).get(SPARK_GROUP, [])]
        hostvars = variables.get("hostvars", {})
        cluster = ClusterVars(hosts, {name: hostvars[name] for name in hosts},
                              str(variables.get("inventory_file") or "inventory"), variables)
        try:
            return [self.answer(cluster)]
        except SparkctlError as exc:
            raise AnsibleError(f"sparkctl: {exc}") from None

    def answer(self, cluster: ClusterVars) -> Any:
        raise NotImplementedError
