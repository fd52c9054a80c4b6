"""Does a node's live fabric match its plan: the differences, one per fact, from `ip -json` output.

Reads what `ip -json address show` and `ip -json -4 route show` print and the node's plan (in the
form the planner hands to plays, `NodePlan.to_dict()`); returns
each difference with what is and what should be: an interface missing, down or without carrier, its
MTU, an address missing or unplanned, a bond member not enslaved, a planned route absent. A link that
is down or has no carrier is one finding: the addresses and routes it lost with it are not listed.

It runs on the nodes (the fabric module decides from it whether to apply and when an apply has
settled) and on the controller (`sparkctl doctor`): one answer to "does the fabric match the plan".
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .networkd import NetworkdError, Runner, checked


@dataclass(frozen=True)
class Drift:
    interface: str
    check: str
    found: str
    expected: str

    def __str__(self) -> str:
        return f"{self.interface}: {self.check} is {self.found}, planned {self.expected}"


def read_live(run: Runner, error: type[Exception] = NetworkdError) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The node's links with their addresses and its IPv4 routes, as `drift` reads them (`error` if `ip` fails)."""
    links = json.loads(checked(run, ["ip", "-json", "address", "show"], error) or "[]")
    routes = json.loads(checked(run, ["ip", "-json", "-4", "route", "show"], error) or "[]")
    return links, routes


def drift(plan: Mapping[str, Any], links: Sequence[Mapping[str, Any]],
          routes: Sequence[Mapping[str, Any]]) -> list[Drift]:
    """Every way the live links and routes differ from `plan`; [] when the fabric is as planned."""
    by_name = {link.get("ifname"): link for link in links}
    found: list[Drift] = []
    down: set[str] = set()
    wanted = [(i["name"], i["mtu"], list(i["addresses"])) for i in [*plan["interfaces"], *plan["bonds"]]]
    for name, mtu, addresses in wanted:
        live = by_name.get(name)
        if live is None:
            found.append(Drift(name, "existence", "absent", "present"))
            continue
        if live.get("mtu") != mtu:
            found.append(Drift(name, "MTU", str(live.get("mtu")), str(mtu)))
        if "UP" not in live.get("flags", []):
            found.append(Drift(name, "admin state", "down", "up"))
            down.add(name)
            continue  # its addresses and routes are gone because it is down: one finding, not five
        if "LOWER_UP" not in live.get("flags", []):
            found.append(Drift(name, "carrier", "none", "carrier"))
            down.add(name)
            continue  # networkd drops the config of a link without carrier: the cable is the finding
        have = [f"{a['local']}/{a['prefixlen']}" for a in live.get("addr_info", [])
                if a.get("family") == "inet" and a.get("scope") == "global"]
        for address in addresses:
            if address not in have:
                found.append(Drift(name, "address", "absent", address))
        for address in have:
            if address not in addresses:
                found.append(Drift(name, "address", address, "not planned"))
    for bond in plan["bonds"]:
        for member in bond["members"]:
            master = by_name.get(member, {}).get("master")
            if master != bond["name"]:
                found.append(Drift(member, "bond", f"enslaved to {master or 'nothing'}", f"member of {bond['name']}"))
    for route in plan["routes"]:
        if route["interface"] in down:
            continue
        if not any(r.get("dst") == route["to"] and r.get("gateway") == route["via"] and r.get("dev") == route["interface"]
                   for r in routes):
            found.append(Drift(route["interface"], f"route to {route['to']}", "absent", f"via {route['via']}"))
    return found
