"""Read an Ansible YAML inventory the way ansible-playbook does, and remember where each value came from.

The inventory is sparkctl's one source of truth. Reading it here (instead of through Ansible's own
InventoryManager) keeps `sparkctl plan` fast and lets every error name the file that holds the bad
key. The subset read is the standard layout: `hosts.yml` (or `hosts.yaml`/`inventory.yml`) with groups
under `all`, plus `group_vars/<group>.yml|yaml` or `group_vars/<group>/*.yml` and
`host_vars/<host>.yml`. Precedence follows Ansible's: `all` < parent groups < child groups, inventory
file vars < group_vars files, host vars last. The Ansible side of sparkctl reads the same values from
hostvars, and a test checks both readings agree.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from sparkctl.errors import InputError
from sparkctl.validate import Invalid, bounded, short

SPARK_GROUP = "sparks"
HOSTS_FILES = ("hosts.yml", "hosts.yaml", "inventory.yml", "inventory.yaml")


@dataclass(frozen=True)
class HostVars:
    """A host's merged variables and, for each, the file that set the winning value."""

    name: str
    values: dict[str, Any]
    sources: dict[str, Path]

    def source(self, key: str) -> Path | None:
        """The file that set `key` (the top-level variable of a dotted key)."""
        return self.sources.get(key.split(".", 1)[0].split("[", 1)[0])


@dataclass(frozen=True)
class Inventory:
    """The Spark hosts of an inventory, in inventory order, with their variables."""

    path: Path
    hosts_file: Path
    hosts: dict[str, HostVars] = field(default_factory=dict)

    def __iter__(self) -> Iterator[HostVars]:
        return iter(self.hosts.values())


class _StrictLoader(yaml.SafeLoader):
    """A YAML loader that refuses a key given twice in one mapping (YAML would keep the last silently)."""


def _no_duplicates(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> Any:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if isinstance(key, list | dict | set):
            raise yaml.constructor.ConstructorError(
                None, None, f"a {type(key).__name__} is used as a key ({short(key)})", key_node.start_mark
            )
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"`{key}` is given twice in one mapping", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _no_duplicates)


def _load_yaml(path: Path) -> Any:
    """A file's YAML, refused unless it is UTF-8 and small enough to be an inventory."""
    try:
        with path.open(encoding="utf-8") as handle:
            data = yaml.load(handle, Loader=_StrictLoader)
        bounded(data)
        return data
    except UnicodeDecodeError as exc:
        raise InputError(f"is not UTF-8 text (byte {exc.start} is {exc.object[exc.start]:#04x})", file=path,
                         fix="save the file as UTF-8") from None
    except Invalid as exc:
        raise InputError(exc.message, file=path, fix=exc.fix) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise InputError(
            f"is not valid YAML{where}: {exc.problem}", file=path, fix="fix the YAML syntax there"
        ) from None
    except yaml.YAMLError as exc:
        raise InputError(f"is not valid YAML: {exc}", file=path, fix="fix the YAML syntax") from None
    except OSError as exc:
        raise InputError(f"cannot be read: {exc.strerror}", file=path) from None


def _mapping(value: Any, path: Path, key: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InputError(
            f"must be a mapping, found {type(value).__name__}", file=path, key=key,
            fix="write it as `name: value` pairs",
        )
    return value


@dataclass
class _Group:
    name: str
    parents: list[str] = field(default_factory=list)
    hosts: list[str] = field(default_factory=list)
    vars: dict[str, Any] = field(default_factory=dict)


def _walk_groups(name: str, body: Any, parent: str | None, path: Path, groups: dict[str, _Group]) -> None:
    body = _mapping(body, path, name)
    group = groups.setdefault(name, _Group(name))
    if parent and parent not in group.parents:
        group.parents.append(parent)
    for host, host_body in _mapping(body.get("hosts"), path, f"{name}.hosts").items():
        if host not in group.hosts:
            group.hosts.append(str(host))
        host_group = groups.setdefault(f"host:{host}", _Group(f"host:{host}"))
        host_group.vars.update(_mapping(host_body, path, f"{name}.hosts.{host}"))
    group.vars.update(_mapping(body.get("vars"), path, f"{name}.vars"))
    for child, child_body in _mapping(body.get("children"), path, f"{name}.children").items():
        _walk_groups(str(child), child_body, name, path, groups)


def _vars_files(directory: Path, name: str) -> list[Path]:
    files = [directory / f"{name}{ext}" for ext in (".yml", ".yaml", "")]
    found = [f for f in files if f.is_file()]
    folder = directory / name
    if folder.is_dir():
        found += sorted(p for p in folder.iterdir() if p.suffix in (".yml", ".yaml") and p.is_file())
    return found


def _cycle(group: str, path: tuple[str, ...], hosts_file: Path) -> InputError:
    """A group reached again through its own children: Ansible would loop, so the inventory is refused."""
    cycle = " -> ".join((*path[path.index(group):], group))
    return InputError(f"group {group} is its own child ({cycle})", file=hosts_file, key="children",
                      fix="remove one of the `children` entries that close the loop")


def _group_chain(name: str, groups: dict[str, _Group], hosts_file: Path) -> list[str]:
    """Groups from the most general to the most specific, as Ansible applies them."""
    seen: list[str] = []

    def visit(group: str, path: tuple[str, ...]) -> None:
        if group in path:
            raise _cycle(group, path, hosts_file)
        for parent in groups[group].parents:
            visit(parent, (*path, group))
        if group not in seen:
            seen.append(group)

    visit(name, ())
    if "all" in seen:
        seen.remove("all")
    return ["all", *seen]


def find_hosts_file(path: Path) -> Path:
    """The hosts file of an inventory given as a directory or as the file itself."""
    if path.is_file():
        return path
    if not path.exists():
        raise InputError("does not exist", file=path, fix="pass --inventory DIR of an Ansible inventory")
    for candidate in HOSTS_FILES:
        if (path / candidate).is_file():
            return path / candidate
    raise InputError(
        f"has no {HOSTS_FILES[0]}", file=path,
        fix="create one with `sparkctl init` or copy examples/inventory",
    )


def load_inventory(path: Path | str) -> Inventory:
    """Read the hosts of group `sparks` and their merged variables."""
    hosts_file = find_hosts_file(Path(path))
    root = hosts_file.parent
    data = _mapping(_load_yaml(hosts_file), hosts_file, "(top level)")
    groups: dict[str, _Group] = {"all": _Group("all")}
    for top, body in data.items():
        _walk_groups(str(top), body, None if top == "all" else "all", hosts_file, groups)
    if SPARK_GROUP not in groups or not _members(SPARK_GROUP, groups, hosts_file):
        raise InputError(
            f"has no hosts in group `{SPARK_GROUP}`", file=hosts_file, key=f"all.children.{SPARK_GROUP}.hosts",
            fix="list your Sparks there, each with ansible_host set to its management address",
        )

    file_vars: dict[str, list[tuple[Path, dict[str, Any]]]] = {}
    for group in groups:
        if group.startswith("host:"):
            continue
        file_vars[group] = [
            (f, _mapping(_load_yaml(f), f, "(top level)")) for f in _vars_files(root / "group_vars", group)
        ]

    inventory = Inventory(path=root, hosts_file=hosts_file)
    for host in _members(SPARK_GROUP, groups, hosts_file):
        values: dict[str, Any] = {}
        sources: dict[str, Path] = {}
        layers: list[tuple[Mapping[str, Any], Path]] = []
        for group in _group_chain(_host_group(host, groups), groups, hosts_file):
            layers.append((groups[group].vars, hosts_file))
            layers += [(layer, origin) for origin, layer in file_vars.get(group, [])]
        layers.append((groups[f"host:{host}"].vars, hosts_file))
        layers += [(_mapping(_load_yaml(f), f, "(top level)"), f) for f in _vars_files(root / "host_vars", host)]
        for layer, origin in layers:
            for key, value in layer.items():
                values[str(key)] = value
                sources[str(key)] = origin
        values.setdefault("inventory_hostname", host)
        inventory.hosts[host] = HostVars(host, values, sources)
    return inventory


def _members(group: str, groups: dict[str, _Group], hosts_file: Path, path: tuple[str, ...] = ()) -> list[str]:
    """Hosts of a group and its children, in inventory order, without repeats."""
    if group in path:
        raise _cycle(group, path, hosts_file)
    found: list[str] = list(groups[group].hosts)
    for child in (g for g in groups.values() if group in g.parents):
        found += [h for h in _members(child.name, groups, hosts_file, (*path, group)) if h not in found]
    return found


def _host_group(host: str, groups: dict[str, _Group]) -> str:
    """A synthetic group standing for the host itself, whose parents are the groups listing it."""
    synthetic = f"host-groups:{host}"
    groups[synthetic] = _Group(synthetic, parents=[g.name for g in groups.values() if host in g.hosts])
    return synthetic
