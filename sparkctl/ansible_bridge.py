"""The planner as Ansible sees it: hostvars in, the same plan `sparkctl plan` computes out.

Used by the `sparkctl_plan` lookup plugin (plugins/lookup/sparkctl_plan.py). Ansible has already
merged group_vars and host_vars; this only rebuilds the host list of group `sparks` in inventory
order, so both front doors feed `build_plan` identical settings.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

from sparkctl import hardware
from sparkctl.errors import InputError
from sparkctl.inventory import HostVars, Inventory
from sparkctl.model import Cable, ClusterPlan, Endpoint
from sparkctl.planner import build_plan
from sparkctl.reachability import ping_targets
from sparkctl.render import CABLING_PATH, node_files
from sparkctl.services import layout
from sparkctl.services.spec import read_services
from sparkctl.settings import ClusterSettings, read_settings
from sparkctl.validate import short

DISCOVERED = "the cables discovered on the nodes (sparkctl_discover_cables)"


DISCOVERED_FIX = (
    "re-run `sparkctl provision` to discover the cables again, or pin them in sparkctl_cabling "
    '(e.g. ["spark1:p0 spark2:p0"])'
)


def parse_discovered(items: Sequence[Any], nodes: Collection[str], source: str = DISCOVERED) -> list[Cable]:
    """Cables discovered on the nodes, written `node:port node:port`; repeats (seen from both ends) merge.

    Each cable must join two ports (p0, p1) of two different Sparks of group `sparks`, and a port
    belongs to one cable only; anything else is an InputError naming `source` and the entry.
    """
    if not isinstance(items, (list, tuple)):
        raise InputError(f"must be a list of cables, found {short(items)}", file=source, key="cables",
                         fix=DISCOVERED_FIX)
    cables: dict[str, Cable] = {}
    used: dict[Endpoint, Cable] = {}
    for number, item in enumerate(items):
        key = f"cables[{number}]"
        parts = item.split() if isinstance(item, str) else []
        ends: list[Endpoint] = []
        for part in parts:
            node, sep, port = part.partition(":")
            if not sep or port not in hardware.PORTS or not node:
                break
            ends.append(Endpoint(node, port))
        if len(parts) != 2 or len(ends) != 2:
            raise InputError(f"{short(item)} is not a cable written NODE:PORT NODE:PORT", file=source, key=key,
                             fix=DISCOVERED_FIX)
        for end in ends:
            if end.node not in nodes:
                raise InputError(
                    f"{short(item)} reaches {short(end.node)}, which is not in group sparks of the inventory",
                    file=source, key=key,
                    fix=f"add {short(end.node)} to the inventory, or unplug that cable; the Sparks are "
                        f"{', '.join(nodes)}",
                )
        if ends[0].node == ends[1].node:
            raise InputError(f"{short(item)} connects {ends[0].node} to itself", file=source, key=key,
                             fix="a cable joins two different Sparks: unplug it or move one end")
        cable = Cable.between(ends[0], ends[1])
        for end in ends:
            other = used.setdefault(end, cable)
            if other != cable:
                raise InputError(f"port {end} is in two cables, {other} and {cable}", file=source, key=key,
                                 fix=DISCOVERED_FIX)
        cables[cable.name] = cable
    return list(cables.values())


def settings_from_hostvars(
    hosts: Sequence[str],
    hostvars: Mapping[str, Mapping[str, Any]],
    inventory_file: str,
    topology: str | None = None,
) -> ClusterSettings:
    """The cluster's settings from Ansible's view of the inventory (the same checks as `sparkctl plan`)."""
    return read_settings(_inventory(hosts, hostvars, inventory_file), topology or None)


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
    settings = settings_from_hostvars(hosts, hostvars, inventory_file, topology)
    names = [node.name for node in settings.nodes]
    return build_plan(settings, parse_discovered(discovered, names) or None)


def services_view(
    hosts: Sequence[str],
    hostvars: Mapping[str, Mapping[str, Any]],
    inventory_file: str,
    node: str,
    recorded: Sequence[str] = (),
    only: Sequence[str] = (),
) -> dict[str, Any]:
    """The service units of one node, placed on the fabric plan for the cabling provisioning recorded; with
    `only`, the units and models a run touches are those of the named services (the layout stays whole)."""
    inventory = _inventory(hosts, hostvars, inventory_file)
    settings = read_settings(inventory)
    spec = read_services(inventory)
    if not spec.services:  # nothing to place on the fabric, so no plan (and no recorded cabling) is needed
        return layout.node_files(spec, [], node)
    source = f"{CABLING_PATH} on {node}"
    plan = build_plan(settings, parse_discovered(recorded, list(inventory.hosts), source) or None)
    view: dict[str, Any] = layout.node_files(spec, layout.lay_out(spec, settings, plan), node)
    if only:
        view["units"] = [unit for unit in view["units"] if unit["service"] in only]
        view["models"] = [model for model in view["models"] if model["service"] in only]
    return view


def cluster_addresses(settings: ClusterSettings, plan: ClusterPlan) -> list[str]:
    """Every address a node of the cluster may connect from: management addresses (resolved) and fabric
    addresses (ports and bonds), in inventory order, each once."""
    found: dict[str, None] = {str(node.management_ip): None for node in settings.nodes}
    for node in plan.nodes.values():
        for addresses in [*(i.addresses for i in node.interfaces), *(b.addresses for b in node.bonds)]:
            found.update((str(address.ip), None) for address in addresses)
    return list(found)


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
    view["ping_targets"] = [t.to_dict() for t in ping_targets(plan, node)]
    return view
