"""`sparkctl_services`: each declared service read and checked, before any node is touched.

A service is one entry of the list; every mistake is reported with the file that sets the list, the
key of the entry (`sparkctl_services[2].port`) and what to write instead. Values that end up in a
unit file, an env file or a container's command line admit only characters that mean nothing in
those syntaxes (no line breaks, no NUL), and are quoted for each when written (layout.py).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

from sparkctl import validate
from sparkctl.errors import InputError
from sparkctl.inventory import Inventory
from sparkctl.validate import Invalid, short

Kind = Literal["vllm", "ollama", "orpheus-tts", "qwen-tts", "container"]
KINDS: tuple[Kind, ...] = get_args(Kind)
Bind = Literal["management", "fabric", "localhost", "all"]
BINDS: tuple[Bind, ...] = get_args(Bind)

KEY = "sparkctl_services"
NODE_MEMORY_KEY = "sparkctl_node_memory_gb"
RESERVE_KEY = "sparkctl_memory_reserve_gb"
CLI_KEY = "sparkctl_container_cli"
NODE_MEMORY_GB = 128
"""A Spark's unified memory, shared by CPU and GPU."""
MEMORY_RESERVE_GB = 16
"""Kept for the OS, the desktop and the page cache when services are budgeted."""
CONTAINER_CLI = "/usr/bin/docker"
MASTER_PORT = 29500

DEFAULT_IMAGES: dict[Kind, str] = {
    "vllm": "vllm/vllm-openai:gemma4-cu130",
    "ollama": "ollama/ollama:0.12.10",
    "orpheus-tts": "ghcr.io/lex-au/orpheus-fastapi:1.0.0",
    "qwen-tts": "ghcr.io/andimarafioti/faster-qwen3-tts:0.2.0",
}
"""Pinned per kind (vLLM's is the CUDA 13 arm64 build NVIDIA's Spark guide runs); `image` overrides."""
READY_TIMEOUT_S: dict[Kind, int] = {"vllm": 900, "ollama": 300, "orpheus-tts": 300, "qwen-tts": 300, "container": 120}
"""How long deploy waits for a service to answer: a large model takes minutes to load."""
MULTI_NODE_KINDS: tuple[Kind, ...] = ("vllm",)
NEEDS_MODEL: tuple[Kind, ...] = ("vllm", "ollama")

_NAME = re.compile(r"^[a-z][a-z0-9-]{0,30}[a-z0-9]$|^[a-z]$")
_ENV_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
_MODEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,199}$")
_IMAGE = re.compile(
    r"^(?:[a-z0-9.-]+(?::[0-9]{1,5})?/)?[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*"
    r"(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?(?:@sha256:(?P<digest>[a-f0-9]{64}))?$"
)
_HEALTH_PATH = re.compile(r"^/[A-Za-z0-9._~/?=&%+-]*$")
_FORBIDDEN = ("\n", "\r", "\0")
FIELDS = frozenset({
    "name", "kind", "nodes", "port", "backend_port", "model", "memory_gb", "image", "env", "args", "bind",
    "health", "tensor_parallel", "pipeline_parallel", "master_port", "connect",
})


@dataclass(frozen=True)
class Health:
    path: str | None
    """HTTP path that answers 200 when ready; None for a plain container without one: its port is tried."""
    timeout_s: int


@dataclass(frozen=True)
class Service:
    """One declared service, checked."""

    index: int
    name: str
    kind: Kind
    nodes: tuple[str, ...]
    port: int
    memory_gb: float
    image: str
    bind: Bind
    health: Health
    model: str | None = None
    backend_port: int | None = None
    env: tuple[tuple[str, str], ...] = ()
    args: tuple[str, ...] = ()
    tensor_parallel: int = 1
    pipeline_parallel: int = 1
    master_port: int | None = None
    connect: tuple[tuple[str, str], ...] = ()

    @property
    def head(self) -> str:
        return self.nodes[0]

    def ports_on(self, node: str) -> list[tuple[int, str]]:
        """The ports this service takes on `node`, each with what it is for."""
        taken: list[tuple[int, str]] = []
        if node == self.head:
            taken.append((self.port, "port"))
            if self.backend_port is not None:
                taken.append((self.backend_port, "backend_port"))
        if self.master_port is not None:
            taken.append((self.master_port, "master_port"))
        return taken


@dataclass(frozen=True)
class ServicesSpec:
    services: tuple[Service, ...]
    container_cli: str
    source: Path = field(compare=False)

    def on(self, node: str) -> list[Service]:
        return [s for s in self.services if node in s.nodes]


class _Entry:
    """Reads one entry of the list; failures name `sparkctl_services[i].field`."""

    def __init__(self, index: int, body: Mapping[str, Any], source: Path) -> None:
        self.index = index
        self.body = body
        self.source = source

    def key(self, name: str | None = None) -> str:
        return f"{KEY}[{self.index}]" + (f".{name}" if name else "")

    def fail(self, name: str | None, message: str, fix: str) -> InputError:
        return InputError(message, file=self.source, key=self.key(name), fix=fix)

    def check(self, name: str, rule: Any, *args: Any) -> Any:
        try:
            return rule(self.body[name], *args)
        except Invalid as exc:
            raise self.fail(name, exc.message, exc.fix) from None

    def text(self, name: str, pattern: re.Pattern[str], fix: str, default: str | None = None) -> str | None:
        value = self.body.get(name, default)
        if value is None:
            return None
        if not isinstance(value, str) or not pattern.match(value):
            raise self.fail(name, f"{short(value)} is not allowed here", fix)
        return value

    def integer(self, name: str, low: int, high: int, example: int, default: int | None = None) -> int | None:
        if name not in self.body:
            return default
        result: int = self.check(name, validate.integer, low, high, example)
        return result


def _plain(entry: _Entry, name: str, value: Any) -> str:
    """A scalar that may go into an env file or a command line: no line break or NUL can end it early."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise entry.fail(name, f"{short(value)} is not a plain value", "write a string or a number")
    text = str(value)
    if any(char in text for char in _FORBIDDEN) or len(text) > 4096:
        raise entry.fail(name, f"{short(text)} holds a line break or NUL (or is over 4096 characters)",
                         "write the value on one line")
    return text


def _one(index: int, body: Any, source: Path, hosts: list[str]) -> Service:
    entry = _Entry(index, body if isinstance(body, Mapping) else {}, source)
    if not isinstance(body, Mapping):
        raise entry.fail(None, f"{short(body)} is not a mapping", "write each service as `- name: ...`")
    unknown = sorted(set(map(str, body)) - FIELDS)
    if unknown:
        raise entry.fail(unknown[0], "is not a service field", f"use only: {', '.join(sorted(FIELDS))}")
    name = entry.text("name", _NAME, "use 1-32 lowercase letters, digits and '-', starting with a letter")
    if name is None:
        raise entry.fail("name", "is missing", "give every service a unique name, e.g. name: gemma")
    kind = body.get("kind")
    if kind not in KINDS:
        raise entry.fail("kind", f"unknown kind {short(kind)}", f"use one of: {', '.join(KINDS)}")
    nodes = body.get("nodes")
    if not isinstance(nodes, list) or not nodes or not all(isinstance(n, str) for n in nodes):
        raise entry.fail("nodes", f"{short(nodes)} is not a list of Sparks", "write e.g. nodes: [spark1]")
    for node in nodes:
        if node not in hosts:
            raise entry.fail("nodes", f"{short(node)} is not a Spark of the inventory",
                             f"use the names of group sparks: {', '.join(hosts)}")
    if len(set(nodes)) != len(nodes):
        raise entry.fail("nodes", "names a Spark twice", "list each Spark once")
    if len(nodes) > 1 and kind not in MULTI_NODE_KINDS:
        raise entry.fail("nodes", f"a {kind} service runs on one Spark, not {len(nodes)}",
                         "list one Spark, or declare one service per Spark")
    port = entry.integer("port", 1, 65535, 8000)
    if port is None:
        raise entry.fail("port", "is missing", "give the port it serves on, e.g. port: 8000")
    memory = body.get("memory_gb")
    if memory is None:
        raise entry.fail("memory_gb", "is missing", "give its share of the Spark's memory in GB, e.g. memory_gb: 24")
    memory_gb = entry.check("memory_gb", validate.number, 0.1, NODE_MEMORY_GB, 24)
    model = entry.text("model", _MODEL, "write a model id such as google/gemma-4-26b-it or qwen2.5:32b")
    if kind in NEEDS_MODEL and model is None:
        raise entry.fail("model", f"is missing: a {kind} service serves one model", "write e.g. model: qwen2.5:32b")
    image = entry.text("image", _IMAGE, "write a registry reference such as vllm/vllm-openai:v0.11.0")
    if image is None:
        if kind == "container":
            raise entry.fail("image", "is missing: a container service runs your image",
                             "write e.g. image: example/voice-proxy:1.0")
        image = DEFAULT_IMAGES[kind]
    match = _IMAGE.match(image)
    assert match is not None
    if not (match.group("digest") or (match.group("tag") and match.group("tag") != "latest")):
        raise entry.fail("image", f"{image} is not pinned", "add a tag other than latest, or a @sha256: digest")
    bind = body.get("bind", "management")
    if bind not in BINDS:
        raise entry.fail("bind", f"{short(bind)} is not a place to listen", f"use one of: {', '.join(BINDS)}")
    backend_port = entry.integer("backend_port", 1, 65535, 5006, 5006 if kind == "orpheus-tts" else None)
    if backend_port is not None and kind != "orpheus-tts":
        raise entry.fail("backend_port", f"a {kind} service has no backend", "remove it")
    env = body.get("env", {})
    if not isinstance(env, Mapping):
        raise entry.fail("env", f"{short(env)} is not a mapping", "write e.g. env: {HF_TOKEN: ...}")
    env_items: list[tuple[str, str]] = []
    for key, value in env.items():
        if not isinstance(key, str) or not _ENV_KEY.match(key):
            raise entry.fail(f"env.{short(key)}", "is not an environment variable name",
                             "use letters, digits and '_', not starting with a digit")
        env_items.append((key, _plain(entry, f"env.{key}", value)))
    args = body.get("args", [])
    if not isinstance(args, list):
        raise entry.fail("args", f"{short(args)} is not a list", "write e.g. args: [--max-model-len, '32768']")
    health_body = body.get("health", {})
    if not isinstance(health_body, Mapping) or set(map(str, health_body)) - {"path", "timeout"}:
        raise entry.fail("health", f"{short(health_body)} is not a health check",
                         "write e.g. health: {path: /healthz, timeout: 120}")
    path = health_body.get("path")
    if path is not None and (not isinstance(path, str) or not _HEALTH_PATH.match(path)):
        raise entry.fail("health.path", f"{short(path)} is not an HTTP path", "write e.g. /healthz")
    timeout = READY_TIMEOUT_S[kind]
    if "timeout" in health_body:
        try:
            timeout = validate.integer(health_body["timeout"], 1, 7200, 900)
        except Invalid as exc:
            raise entry.fail("health.timeout", exc.message, exc.fix) from None
    tp = entry.integer("tensor_parallel", 1, 8, 2, 1) or 1
    pp = entry.integer("pipeline_parallel", 1, 8, 2, 1) or 1
    if kind != "vllm" and (tp, pp) != (1, 1):
        raise entry.fail("tensor_parallel", f"a {kind} service is not split across GPUs", "remove it")
    if tp * pp != len(nodes):
        raise entry.fail("tensor_parallel" if "tensor_parallel" in body else "pipeline_parallel",
                         f"tensor_parallel {tp} x pipeline_parallel {pp} = {tp * pp}, but it runs on "
                         f"{len(nodes)} Spark(s) (one GPU each)",
                         f"make tensor_parallel x pipeline_parallel equal {len(nodes)}")
    master_port = entry.integer("master_port", 1024, 65535, MASTER_PORT, MASTER_PORT if len(nodes) > 1 else None)
    connect = body.get("connect", {})
    if not isinstance(connect, Mapping):
        raise entry.fail("connect", f"{short(connect)} is not a mapping", "write e.g. connect: {LLM_URL: gemma}")
    for key, value in connect.items():
        if not isinstance(key, str) or not _ENV_KEY.match(key):
            raise entry.fail(f"connect.{short(key)}", "is not an environment variable name",
                             "use letters, digits and '_'")
        if not isinstance(value, str):
            raise entry.fail(f"connect.{key}", f"{short(value)} is not a service name", "name a declared service")
    return Service(
        index=index, name=name, kind=kind, nodes=tuple(nodes), port=port, memory_gb=memory_gb, image=image,
        bind=bind, health=Health(path, timeout), model=model, backend_port=backend_port, env=tuple(env_items),
        args=tuple(_plain(entry, f"args[{i}]", arg) for i, arg in enumerate(args)),
        tensor_parallel=tp, pipeline_parallel=pp, master_port=master_port,
        connect=tuple((str(k), str(v)) for k, v in connect.items()),
    )


def _check_together(services: list[Service], inventory: Inventory, source: Path) -> None:
    by_name: dict[str, Service] = {}
    for service in services:
        if service.name in by_name:
            raise InputError(f"{service.name} is declared twice (also {KEY}[{by_name[service.name].index}])",
                             file=source, key=f"{KEY}[{service.index}].name", fix="give each service its own name")
        by_name[service.name] = service
    for service in services:
        for variable, target in service.connect:
            if target not in by_name or target == service.name:
                raise InputError(f"{target} is not another declared service", file=source,
                                 key=f"{KEY}[{service.index}].connect.{variable}",
                                 fix=f"name one of: {', '.join(n for n in by_name if n != service.name)}")
    for host in inventory:
        taken: dict[int, str] = {}
        for service in services:
            for port, what in service.ports_on(host.name):
                if port in taken:
                    raise InputError(
                        f"{service.name}'s {what} {port} on {host.name} is already {taken[port]}'s", file=source,
                        key=f"{KEY}[{service.index}].{what}", fix="give every service on a Spark its own ports",
                    )
                taken[port] = f"{service.name} {what}"
        memory = _budget(inventory, host.name)
        used = [(s.name, s.memory_gb) for s in services if host.name in s.nodes]
        total = sum(gb for _, gb in used)
        if total > memory:
            listed = ", ".join(f"{name} {gb:g} GB" for name, gb in used)
            raise InputError(
                f"the services on {host.name} need {total:g} GB ({listed}), but it has {memory:g} GB for services",
                file=source, key=KEY, fix=f"lower memory_gb or move a service to another Spark ({NODE_MEMORY_KEY} "
                f"minus {RESERVE_KEY} is the budget)",
            )


def _budget(inventory: Inventory, node: str) -> float:
    host = inventory.hosts[node]
    values = {}
    for key, default in ((NODE_MEMORY_KEY, NODE_MEMORY_GB), (RESERVE_KEY, MEMORY_RESERVE_GB)):
        try:
            values[key] = validate.number(host.values.get(key, default), 0, 4096, default)
        except Invalid as exc:
            raise InputError(exc.message, file=host.location(key) or inventory.hosts_file, key=key, fix=exc.fix) from None
    return values[NODE_MEMORY_KEY] - values[RESERVE_KEY]


def read_services(inventory: Inventory) -> ServicesSpec:
    """The checked `sparkctl_services` of the inventory (cluster-wide, like the fabric settings)."""
    hosts = list(inventory)
    first = hosts[0]
    source = first.source(KEY) or inventory.hosts_file
    cli = first.values.get(CLI_KEY, CONTAINER_CLI)
    try:
        cli = validate.absolute_path(cli)
    except Invalid as exc:
        raise InputError(exc.message, file=first.location(CLI_KEY) or inventory.hosts_file, key=CLI_KEY,
                         fix="write the container CLI's absolute path, e.g. /usr/bin/docker") from None
    for other in hosts[1:]:
        for key in (KEY, CLI_KEY):
            if other.values.get(key) != first.values.get(key):
                raise InputError(f"differs between {first.name} and {other.name}",
                                 file=other.location(key) or source, key=key,
                                 fix="declare services once for the cluster, in group_vars/sparks.yml")
    declared = first.values.get(KEY, [])
    try:
        validate.bounded(declared)
    except Invalid as exc:
        raise InputError(exc.message, file=source, key=KEY, fix=exc.fix) from None
    if not isinstance(declared, list):
        raise InputError(f"{short(declared)} is not a list", file=source, key=KEY,
                         fix="write a list of services, each `- name: ...`")
    services = [_one(index, body, source, list(inventory.hosts)) for index, body in enumerate(declared)]
    _check_together(services, inventory, source)
    return ServicesSpec(tuple(services), cli, source)
