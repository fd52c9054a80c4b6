"""`sparkctl init`: write a new inventory, the file every other command and playbook reads."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress
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
    group_file = directory / "group_vars" / "sparks.yml"
    existing = [f for f in (hosts_file, group_file) if f.exists() or f.is_symlink()]
    if existing and not force:
        raise InputError("already exists", file=existing[0],
                         fix="pass --force to overwrite the inventory, or pick another directory")
    hosts = {"all": {"children": {"sparks": {"hosts": {n: {"ansible_host": a} for n, a in parsed}}}}}
    group_vars: dict[str, object] = {
        "ansible_user": user,
        "sparkctl_topology": topology,
        "sparkctl_mtu": DEFAULT_MTU,
        "sparkctl_fabric_pool": fabric_pool,
    }
    if user != "root":
        group_vars["ansible_become"] = True  # the fabric, sysctl and systemd files need root
    contents = {
        hosts_file: yaml.safe_dump(hosts, sort_keys=False),
        group_file: yaml.safe_dump(group_vars, sort_keys=False),
    }
    with _undone_on_error(directory, list(contents)):
        for path, text in contents.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        _check_it_plans(directory)
    click.echo(f"wrote {hosts_file} and {group_file}")
    click.echo(f"next: sparkctl plan --inventory {directory}")


def _check_it_plans(directory: Path) -> None:
    """What was written must plan: fail now, not at provisioning time.

    Cabling that has no convention (direct cables between more than two Sparks) is fine: provisioning
    discovers it, as `sparkctl provision` does; every setting is still checked.
    """
    from sparkctl.cabling import CablingUnknown
    from sparkctl.cluster import load_cluster
    from sparkctl.inventory import load_inventory
    from sparkctl.settings import read_settings

    try:
        load_cluster(directory)
    except CablingUnknown:
        read_settings(load_inventory(directory))
    except InputError as error:
        raise InputError(
            f"the inventory would not plan, so nothing was written: {error}",
            fix="change the options of `sparkctl init` (--node, --topology, --fabric-pool) and run it again",
        ) from None


@contextmanager
def _undone_on_error(directory: Path, files: list[Path]) -> Iterator[None]:
    """Put back what `files` held (or remove them) and remove the directories made, if the block fails."""
    before = {path: path.read_bytes() if path.is_file() else None for path in files}
    made = [d for d in (directory / "group_vars", directory, *directory.parents) if not d.exists()]
    try:
        yield
    except BaseException:
        for path, content in before.items():
            if content is None:
                path.unlink(missing_ok=True)
            else:
                path.write_bytes(content)
        for made_dir in made:  # deepest first
            with suppress(OSError):
                made_dir.rmdir()
        raise
