"""The planner as Ansible sees it: hostvars in, the same plan `sparkctl plan` computes out.

Used by the `sparkctl_plan` lookup plugin (plugins/lookup/sparkctl_plan.py). Ansible has already
merged group_vars and host_vars; this only rebuilds the host list of group `sparks` in inventory
order, so both front doors feed `build_plan` identical settings.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sparkctl.errors import InputError
from sparkctl.inventory import HostVars, Inventory
from sparkctl.model import Cable, ClusterPlan, Endpoint
from sparkctl.planner import build_plan
from sparkctl.render import node_files
from sparkctl.services import layout
from sparkctl.services.spec import read_services
from sparkctl.settings import read_settings


def parse_discovered(items: Sequence[str]) -> list[Cable]:
    """Cables discovered on the nodes, written `node:port node:port`; repeats (seen from both ends) merge."""
    cables: dict[str, Cable] = {}
    for item in items:
        one, other = str(item).split()
        a_node, _, a_port = one.partition(":")
        b_node, _, b_port = other.partition(":")
        cable = Cable.between(Endpoint(a_node, a_port), Endpoint(b_node, b_port))
        cables[cable.name] = cable
    return list(cables.values())


def _inventory(hosts: Sequence[str], hostvars: Mapping[str, Mapping[str, Any]], inventory_file: str) -> Inventory:
    if not hosts:
        raise InputError("has no hosts in group `sparks`", file=inventory_file,
                         fix="list your Sparks under all.children.sparks.hosts")
    inventory = Inventory(path=Path(inventory_file).parent, hosts_file=Path(inventory_file))
    for name in hosts:
        values = {str(k): v for k, v in dict(hostvars[name]).items()}
        inventory.hosts[name] = HostVars(name, values, {})
    return inventory


def plan_from_hostvars(
    hosts: Sequence[str],
    hostvars: Mapping[str, Mapping[str, Any]],
    inventory_file: str,
    topology: str | None = None,
    discovered: Sequence[str] = (),
) -> ClusterPlan:
    """Plan the cluster from Ansible's view of the inventory."""
    settings = read_settings(_inventory(hosts, hostvars, inventory_file), topology or None)
    return build_plan(settings, parse_discovered(discovered) or None)


def services_view(
    hosts: Sequence[str],
    hostvars: Mapping[str, Mapping[str, Any]],
    inventory_file: str,
    node: str,
    recorded: Sequence[str] = (),
) -> dict[str, Any]:
    """The service units of one node, placed on the fabric plan for the cabling provisioning recorded."""
    inventory = _inventory(hosts, hostvars, inventory_file)
    settings = read_settings(inventory)
    spec = read_services(inventory)
    plan = build_plan(settings, parse_discovered(recorded) or None)
    return layout.node_files(spec, layout.lay_out(spec, settings, plan), node)


def node_view(plan: ClusterPlan, node: str) -> dict[str, Any]:
    """What a play needs for one node: its plan, its rendered files and the cluster's links."""
    data = plan.to_dict()
    view: dict[str, Any] = dict(data["nodes"][node])
    view["files"] = {kind: f.to_dict() for kind, f in node_files(plan, node, data).items()}
    view["topology"] = plan.topology
    view["cabling_source"] = plan.cabling_source
    view["cables"] = data["cables"]
    view["links"] = [link for link in data["links"] if node in (link["a"]["node"], link["b"]["node"])]
    view["warnings"] = data["warnings"]
    return view
