"""`sparkctl init`: write a new inventory, the file every other command and playbook reads."""

from __future__ import annotations

from ipaddress import ip_address
from pathlib import Path

import click
import yaml

from sparkctl.errors import InputError
from sparkctl.model import TOPOLOGIES
from sparkctl.settings import DEFAULT_MTU, DEFAULT_POOL


def _node(text: str) -> tuple[str, str]:
    name, sep, address = text.partition("=")
    if not sep or not name or not address:
        raise InputError(f"{text!r} is not NAME=MGMT_ADDRESS", key="--node", fix="write e.g. --node spark1=192.168.1.101")
    if not name.replace("-", "").replace("_", "").isalnum():
        raise InputError(f"{name!r} is not a usable host name", key="--node", fix="use letters, digits, - and _")
    try:
        ip_address(address)
    except ValueError:
        if not all(part.replace("-", "").isalnum() for part in address.split(".")):
            raise InputError(f"{address!r} is neither an address nor a host name", key="--node",
                             fix="give the management address of the Spark's enP7s7 port") from None
    return name, address


@click.command()
@click.argument("directory", type=click.Path(path_type=Path))
@click.option("--node", "nodes", multiple=True, required=True, metavar="NAME=MGMT_ADDR",
              help="A Spark and the address of its management port; repeat for each.")
@click.option("--topology", type=click.Choice(TOPOLOGIES), default="direct", show_default=True)
@click.option("--fabric-pool", default=DEFAULT_POOL, show_default=True, help="CIDR the fabric subnets come from.")
@click.option("--user", default="root", show_default=True, help="SSH user on the Sparks.")
@click.option("--force", is_flag=True, help="Overwrite an existing inventory.")
def init(directory: Path, nodes: tuple[str, ...], topology: str, fabric_pool: str, user: str, force: bool) -> None:
    """Write DIRECTORY/hosts.yml and DIRECTORY/group_vars/sparks.yml for your Sparks."""
    parsed = [_node(n) for n in nodes]
    names = [n for n, _ in parsed]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise InputError(f"{duplicates[0]} is given twice", key="--node", fix="give every Spark its own name")
    hosts_file = directory / "hosts.yml"
    if hosts_file.exists() and not force:
        raise InputError("already exists", file=hosts_file, fix="pass --force to overwrite it, or pick another directory")
    hosts = {"all": {"children": {"sparks": {"hosts": {n: {"ansible_host": a} for n, a in parsed}}}}}
    group_vars: dict[str, object] = {
        "ansible_user": user,
        "sparkctl_topology": topology,
        "sparkctl_mtu": DEFAULT_MTU,
        "sparkctl_fabric_pool": fabric_pool,
    }
    if user != "root":
        group_vars["ansible_become"] = True  # the fabric, sysctl and systemd files need root
    (directory / "group_vars").mkdir(parents=True, exist_ok=True)
    hosts_file.write_text(yaml.safe_dump(hosts, sort_keys=False), encoding="utf-8")
    (directory / "group_vars" / "sparks.yml").write_text(yaml.safe_dump(group_vars, sort_keys=False), encoding="utf-8")
    from sparkctl.cluster import load_cluster

    load_cluster(directory)  # what was written must plan: fail now, not at provisioning time
    click.echo(f"wrote {hosts_file} and {directory / 'group_vars' / 'sparks.yml'}")
    click.echo(f"next: sparkctl plan --inventory {directory}")
