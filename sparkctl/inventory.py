"""Read the inventory with Ansible's own engine, and remember which file set each value.

The inventory is sparkctl's one source of truth, and it must mean to sparkctl what it means to
`ansible-playbook -i DIR`: so ansible-core reads it (DataLoader with the vault secrets,
InventoryManager, VariableManager). INI and YAML hosts files, group_vars/ and host_vars/ next to
them, vault-encrypted files and inline `!vault` values, inventory scripts and plugins all work, with
Ansible's precedence, because it is Ansible doing it.

Every value ansible-core loads carries an `Origin` tag (file, line). That is how an error names the
file and line of the bad value. Values YAML cannot tag (true, false, null) are named by the origin of
their key, which is exact unless a lower-precedence file set the same key too.

Ansible's failures become one-line InputErrors (exit 2) naming the file: a hosts file no inventory
plugin could parse (with the reason of the plugin meant for it), a YAML error in group_vars, a vault
value with no password to open it, a duplicate key (refused: YAML would keep the last silently).
Ansible is imported only here, when an inventory is read, never for `sparkctl --help`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from sparkctl.errors import InputError
from sparkctl.validate import Invalid, bounded
from sparkctl.vault import PASSWORD_FIX, VaultPasswords

SPARK_GROUP = "sparks"
PLAY_VARIABLES = ("ansible_facts", "playbook_dir", "ansible_playbook_python", "ansible_config_file", "groups",
                  "ansible_version")
"""What VariableManager adds for a play; there is no play here, and they are no setting of the inventory."""
FULL_REPORT = "`ansible-inventory -i {path} --list` shows Ansible's full report"
_ORIGIN = re.compile(r"^Origin: (?P<path>/.*?)(?::(?P<line>\d+))?(?::(?P<col>\d+))?$", re.MULTILINE)


@dataclass(frozen=True)
class HostVars:
    """A host's merged variables and, for each, the file (and line) that set the winning value."""

    name: str
    values: dict[str, Any]
    sources: dict[str, Path]
    lines: dict[str, int] = field(default_factory=dict)

    def source(self, key: str) -> Path | None:
        """The file that set `key` (the top-level variable of a dotted key)."""
        return self.sources.get(_top(key))

    def location(self, key: str) -> str | None:
        """`FILE:LINE` (or FILE) that set `key`, for error messages."""
        path = self.source(key)
        if path is None:
            return None
        line = self.lines.get(_top(key))
        return f"{path}:{line}" if line else str(path)


@dataclass(frozen=True)
class Inventory:
    """The Spark hosts of an inventory, in inventory order, with their variables."""

    path: Path
    hosts_file: Path
    hosts: dict[str, HostVars] = field(default_factory=dict)

    def __iter__(self) -> Iterator[HostVars]:
        return iter(self.hosts.values())


def _top(key: str) -> str:
    return key.split(".", 1)[0].split("[", 1)[0]


@contextmanager
def _duplicates_refused() -> Iterator[None]:
    """Ansible's YAML loader refuses a key given twice in one mapping while sparkctl reads (by default it
    only warns and keeps the last value, silently dropping the first)."""
    name = "ANSIBLE_DUPLICATE_YAML_DICT_KEY"
    before = os.environ.get(name)
    os.environ[name] = "error"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before


def load_inventory(path: Path | str, vault: VaultPasswords | None = None) -> Inventory:
    """Read the hosts of group `sparks` and their variables as ansible-playbook would see them."""
    from ansible.errors import AnsibleError  # type: ignore[import-untyped]

    source = Path(path).expanduser().absolute()
    if not source.exists():
        raise InputError("does not exist", file=path, fix="pass --inventory DIR of an Ansible inventory")
    vault = vault or VaultPasswords()
    secrets = vault.secrets()
    with _duplicates_refused():
        try:
            return _read(source, secrets)
        except AnsibleError as exc:
            raise _failure(exc, source) from None


def _read(source: Path, secrets: list[tuple[str, Any]]) -> Inventory:
    """Ansible's hostvars of every host of group `sparks` (VariableManager, no play), made plain.

    Ansible's warnings are held while it reads: when nothing could be parsed they make the one-line
    error, otherwise they are shown as ansible-playbook would show them.
    """
    from ansible._internal._display_utils import DeferredWarningContext  # type: ignore[import-untyped]
    from ansible.inventory.manager import InventoryManager  # type: ignore[import-untyped]
    from ansible.vars.manager import VariableManager  # type: ignore[import-untyped]

    loader = _loader()
    loader.set_vault_secrets(secrets)
    with DeferredWarningContext(variables={}) as warnings:
        manager = InventoryManager(loader=loader, sources=[str(source)])
        group = manager.groups.get(SPARK_GROUP)
        hosts = group.get_hosts() if group is not None else []
        variables = VariableManager(loader=loader, inventory=manager)
        merged = {host.name: variables.get_vars(host=host, include_hostvars=False) for host in hosts}
    failures = _parse_failures(warnings.get_warnings())
    if not merged and failures:
        raise _unparsed(source, failures)
    if not merged:
        raise InputError(
            f"has no hosts in group `{SPARK_GROUP}`", file=source, key=SPARK_GROUP,
            fix="list your Sparks there, each with ansible_host set to its management address",
        )
    for warning in warnings.get_warnings():  # what ansible-playbook would warn about too
        click.echo(f"warning: {' '.join(warning.event.msg.split())}", err=True)
    first = merged[hosts[0].name]
    inventory = Inventory(path=Path(str(first.get("inventory_dir") or source)),
                          hosts_file=Path(str(first.get("inventory_file") or source)))
    decrypt = _decrypter(secrets)
    for name, values in merged.items():
        inventory.hosts[name] = _host(name, _rendered(values, loader, decrypt), decrypt)
    return inventory


def _loader() -> Any:
    """Ansible's DataLoader, whose load errors name the file they come from (a vault file without its
    password says only "A vault password must be specified")."""
    from ansible._internal._datatag._tags import Origin  # type: ignore[import-untyped]
    from ansible.errors import AnsibleError
    from ansible.parsing.dataloader import DataLoader  # type: ignore[import-untyped]

    class Loader(DataLoader):  # type: ignore[misc]
        def load_from_file(self, file_name: str, *args: Any, **kwargs: Any) -> Any:
            try:
                return super().load_from_file(file_name, *args, **kwargs)
            except AnsibleError as exc:
                if exc.obj is None:
                    exc.obj = Origin(path=os.path.abspath(file_name))
                raise

    return Loader()


def _rendered(merged: dict[str, Any], loader: Any, decrypt: Any) -> dict[str, Any]:
    """The host's variables with Jinja in them rendered against the others, as a play renders them (a sudo
    password given as `"{{ vault_sudo_password }}"`, say). A value that needs what only a play has (facts,
    play variables) is kept as written: the plays render it themselves."""
    from ansible.errors import AnsibleError
    from ansible.parsing.vault import EncryptedString  # type: ignore[import-untyped]
    from ansible.template import Templar  # type: ignore[import-untyped]

    templated = [key for key, value in merged.items() if key not in PLAY_VARIABLES and _has_jinja(value)]
    if not templated:
        return merged
    # Vault values opened here, with the passwords given: Ansible's own decryption needs its CLI's context.
    opened = {key: decrypt(value, str(key), None) if isinstance(value, EncryptedString) else value
              for key, value in merged.items()}
    templar = Templar(loader=loader, variables=opened)
    rendered = dict(merged)
    for key in templated:
        try:
            rendered[key] = templar.template(merged[key])
        except AnsibleError:
            pass
    return rendered


def _has_jinja(value: Any) -> bool:
    if isinstance(value, str):
        return "{{" in value or "{%" in value
    if isinstance(value, dict):
        return any(_has_jinja(item) for item in value.values())
    if isinstance(value, list | tuple):
        return any(_has_jinja(item) for item in value)
    return False


def _host(name: str, merged: dict[str, Any], decrypt: Any) -> HostVars:
    """One host's variables as plain Python values, each with the file and line that set it."""
    from ansible._internal._datatag._tags import Origin

    values: dict[str, Any] = {}
    sources: dict[str, Path] = {}
    lines: dict[str, int] = {}
    for key, value in merged.items():
        if key in PLAY_VARIABLES:
            continue
        origin = Origin.get_tag(value) or Origin.get_tag(key)
        if origin is not None and origin.path:
            sources[str(key)] = Path(origin.path)
            if origin.line_num:
                lines[str(key)] = origin.line_num
        try:
            bounded(value)
        except Invalid as exc:
            raise InputError(exc.message, file=sources.get(str(key)), key=str(key), fix=exc.fix) from None
        values[str(key)] = _plain(value, decrypt, str(key), origin)
    return HostVars(name, values, sources, lines)


def _plain(value: Any, decrypt: Any, key: str, origin: Any) -> Any:
    """`value` without Ansible's tags (native str, int, dict...), vault values decrypted."""
    from ansible.module_utils._internal._datatag import AnsibleTagHelper  # type: ignore[import-untyped]
    from ansible.parsing.vault import EncryptedString

    if isinstance(value, EncryptedString):
        return decrypt(value, key, origin)
    if isinstance(value, dict):
        return {_plain(k, decrypt, key, origin): _plain(v, decrypt, f"{key}.{k}", origin) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item, decrypt, f"{key}[{number}]", origin) for number, item in enumerate(value)]
    return AnsibleTagHelper.as_native_type(value)


def _decrypter(secrets: list[tuple[str, Any]]) -> Any:
    """Opens inline `!vault` values with the given secrets; a value they cannot open is an InputError
    naming its file, line and key."""
    from ansible._internal._datatag._tags import Origin
    from ansible.errors import AnsibleError
    from ansible.parsing.vault import VaultHelper, VaultLib

    vault = VaultLib(secrets=secrets)

    def decrypt(value: Any, key: str, outer: Any) -> str:
        origin = Origin.get_tag(value) or outer
        try:
            return str(vault.decrypt(VaultHelper.get_ciphertext(value, with_tags=False)).decode())
        except AnsibleError as exc:
            reason = "no vault password was given" if not secrets else exc.message
            raise InputError(f"is vault-encrypted and cannot be decrypted: {reason}",
                             file=str(origin) if origin is not None else None, key=key, fix=PASSWORD_FIX) from None

    return decrypt


def _failure(exc: Any, source: Path) -> InputError:
    """An error Ansible raised while reading (a group_vars file, a vault file) as one line naming the file."""
    origin = _origin_of(exc)
    where = str(origin) if origin is not None else None
    message = str(exc.message).strip().splitlines()[0] if str(exc.message).strip() else type(exc).__name__
    if "vault" in message.lower():
        return InputError(f"cannot be decrypted: {message}", file=where, fix=PASSWORD_FIX)
    return InputError(message, file=where or source, fix="fix it there; " + FULL_REPORT.format(path=source))


def _origin_of(exc: BaseException | None) -> Any:
    """The first file Origin along an Ansible error and its causes (plugins re-raise without the file)."""
    from ansible._internal._datatag._tags import Origin

    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        obj = getattr(exc, "obj", None)
        origin = obj if isinstance(obj, Origin) else Origin.get_tag(obj) if obj is not None else None
        if origin is not None and origin.path:
            return origin
        exc = getattr(exc, "orig_exc", None) or exc.__cause__ or exc.__context__
    return None


def _parse_failures(warnings: list[Any]) -> list[tuple[str, str, str | None]]:
    """Each inventory plugin's failure on a file, as (plugin, reason, FILE:LINE) from Ansible's warnings."""
    failures: list[tuple[str, str, str | None]] = []
    for warning in warnings:
        match = re.match(r"Failed to parse inventory with '([^']+)' plugin", warning.event.msg)
        if not match:
            continue
        reason, where = "", None
        chain = warning.event.chain
        while chain is not None:
            event = chain.event
            found = _ORIGIN.search(event.formatted_source_context or "")
            if found and where is None:
                reason, where = event.msg, found.group(0).removeprefix("Origin: ")
            reason = reason or event.msg
            chain = event.chain
        failures.append((match.group(1), " ".join(reason.split()), where))
    return failures


def _unparsed(source: Path, failures: list[tuple[str, str, str | None]]) -> InputError:
    """No inventory plugin could read the source: the reason given by the plugin meant for that file.

    Ansible tries every enabled plugin on every file and reports each failure; the one that matters
    is the YAML plugin's for a .yml/.yaml/.json file, the INI plugin's for any other.
    """

    def meant(failure: tuple[str, str, str | None]) -> bool:
        plugin, _, where = failure
        suffix = Path((where or "").split(":", 1)[0]).suffix
        return (plugin == "yaml") == (suffix in (".yml", ".yaml", ".json"))

    _, reason, where = next((f for f in failures if meant(f) and f[0] in ("yaml", "ini")), failures[0])
    return InputError(f"is not an inventory Ansible can read: {reason}", file=where or source,
                      fix="fix the syntax there; " + FULL_REPORT.format(path=source))
