"""`sparkctl init`: write a new inventory, the file every other command and playbook reads."""

from __future__ import annotations

import getpass
import os
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import click
import yaml

from sparkctl import validate
from sparkctl.errors import EnvironmentProblem, InputError
from sparkctl.model import TOPOLOGIES
from sparkctl.settings import DEFAULT_MTU, DEFAULT_POOL


def _node(text: str) -> tuple[str, str]:
    name, sep, address = text.partition("=")
    if not sep or not name or not address:
        raise InputError(f"{text!r} is not NAME=MGMT_ADDRESS", key="--node", fix="write e.g. --node spark1=192.168.1.101")
    for value, what in ((name, "name"), (address, "management address")):
        try:
            validate.host_name(value)
        except validate.Invalid as exc:
            raise InputError(f"{what} {exc.message}", key="--node", fix=exc.fix) from None
    return name, address


def _invoking_user() -> str:
    """Who runs init: under sudo the user who typed it, as on DGX OS where people log in as themselves."""
    return os.environ.get("SUDO_USER") or getpass.getuser()


def _check_ssh(parsed: list[tuple[str, str]], user: str, accept_new: bool) -> list[str]:
    """Each Spark must answer SSH with a host key this machine knows (or, asked to, records now).

    A refused host key or a Spark that does not answer stops init (nothing is written); a login that
    is refused only warns: the inventory is right, the key still has to be installed.
    """
    from sparkctl import ssh
    from sparkctl.parallel import parallel

    targets = [ssh.SSHTarget(name=name, address=address, user=user, trust_on_first_use=accept_new)
               for name, address in parsed]

    def probe(target: ssh.SSHTarget) -> str | None:
        try:
            ssh.run(target, ["true"], timeout=20)
        except ssh.HostKeyProblem as problem:
            raise InputError(f"{problem.message}", key="--node",
                             fix="if this is the Spark you mean, run init again with --accept-new-host-keys "
                                 "to record its key on first contact") from None
        except EnvironmentProblem as problem:
            if "login was refused" in problem.message:
                return problem.message
            raise InputError(problem.message, key="--node",
                             fix="check the address, or pass --skip-ssh-check to write the inventory without "
                                 "contacting the Sparks") from None
        return None

    return [warning for warning in parallel(probe, targets) if warning]


@click.command()
@click.argument("directory", type=click.Path(path_type=Path), default="inventory")
@click.option("--node", "nodes", multiple=True, required=True, metavar="NAME=MGMT_ADDR",
              help="A Spark and the address of its management port; repeat for each.")
@click.option("--topology", type=click.Choice(TOPOLOGIES), default="direct", show_default=True)
@click.option("--fabric-pool", default=DEFAULT_POOL, show_default=True, help="CIDR the fabric subnets come from.")
@click.option("--user", default=None, help="SSH user on the Sparks [default: you; not root means sudo (become)].")
@click.option("--accept-new-host-keys", is_flag=True,
              help="Record the host key of a Spark this machine has never seen (first contact only).")
@click.option("--skip-ssh-check", is_flag=True, help="Write the inventory without contacting the Sparks.")
@click.option("--force", is_flag=True, help="Overwrite an existing inventory.")
def init(directory: Path, nodes: tuple[str, ...], topology: str, fabric_pool: str, user: str | None,
         accept_new_host_keys: bool, skip_ssh_check: bool, force: bool) -> None:
    """Write DIRECTORY/hosts.yml and DIRECTORY/group_vars/sparks.yml for your Sparks (DIRECTORY: ./inventory).

    Each Spark must answer SSH with a known host key first.
    """
    user = user or _invoking_user()
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
    warnings = [] if skip_ssh_check else _check_ssh(parsed, user, accept_new_host_keys)
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
    for warning in warnings:
        click.echo(f"warning: {warning}", err=True)
    click.echo(f"wrote {hosts_file} and {group_file}")
    if user != "root":
        click.echo(f"{user} becomes root with sudo on the Sparks: if sudo asks for a password, give it with -K "
                   "(sparkctl provision -K), or keep it in the inventory as ansible_become_password (vault)")
    click.echo("next: sparkctl plan" + ("" if directory == Path("inventory") else f" --inventory {directory}"))


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
