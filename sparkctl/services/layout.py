"""Services placed on the cluster: where each listens, the URL others reach it by, and the files a node gets.

Each service (or each rank of a vLLM service across Sparks) becomes one systemd unit that runs its
container in the foreground with the fabric environment provisioning wrote (so every node keeps its
own NCCL / UCX values), the service's own env file and a model cache. Addresses come from the fabric
plan: a service `connect`ed to one on a Spark it is cabled to gets that Spark's address on the cable,
so the traffic stays on the direct link; rank 0 of a multi-node vLLM is reached by its workers at its
address on the cable to the first worker, the port vLLM's ranks meet on never leaves the fabric.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from sparkctl.errors import InputError
from sparkctl.model import ClusterPlan
from sparkctl.render import ENV_PATH as FABRIC_ENV
from sparkctl.services.spec import KEY, Service, ServicesSpec
from sparkctl.settings import ClusterSettings

UNIT_DIR = "/etc/systemd/system"
ENV_DIR = "/etc/sparkctl/services"
MANIFEST_PATH = "/etc/sparkctl/services.json"
UNIT_PREFIX = "sparkctl-svc-"
MODEL_CACHE_DIR = "/var/lib/sparkctl/models"
"""The node's Hugging Face cache, mounted where the images look for it (HF_HOME of root in the container)."""
MODEL_CACHE = f"{MODEL_CACHE_DIR}:/root/.cache/huggingface"
FETCH_ENTRYPOINT = "hf"
"""The Hugging Face CLI the vLLM images ship (huggingface_hub's `hf download`), run in the service's own image."""
OLLAMA_STORE = "/var/lib/sparkctl/ollama:/root/.ollama"
SHM_SIZE = "16g"


def unit_name(service: str, rank: int) -> str:
    """The unit of a service on one node: `sparkctl-svc-NAME.service`, `...-rankR.service` for ranks > 0."""
    return f"{UNIT_PREFIX}{service}" + (f"-rank{rank}" if rank else "") + ".service"


def env_path_of(unit: str) -> str:
    """The env file a unit's container reads (root only: it may hold tokens)."""
    return f"{ENV_DIR}/{unit.removesuffix('.service')}.env"


@dataclass(frozen=True)
class Instance:
    """One unit on one node: a service, or one rank of a service that spans Sparks."""

    service: str
    kind: str
    node: str
    unit: str
    rank: int
    listen: str
    """The address it binds ("0.0.0.0" for all); a headless rank binds nothing."""
    url: str | None
    """Where the controller and other services reach it; None for a headless rank."""
    check_url: str | None
    """Where the node itself checks its health (loopback when it listens everywhere)."""
    model: str | None
    health_path: str | None
    timeout_s: int
    port: int
    master: str | None
    """Where the ranks of a service across Sparks meet (rank 0's fabric address and port); None on one Spark."""
    unit_text: str
    env_text: str
    image: str
    head: str
    """The node of rank 0 (this node for rank 0): where the model is fetched."""
    head_address: str | None
    """The head's fabric address on the cable to this node (ranks > 0): where the model is copied from."""

    @property
    def unit_path(self) -> str:
        return f"{UNIT_DIR}/{self.unit}"

    @property
    def env_path(self) -> str:
        return env_path_of(self.unit)

    def manifest(self) -> dict[str, object]:
        """What the node's health checks and `sparkctl status` need to know about this unit."""
        data = asdict(self)
        for key in ("unit_text", "env_text"):
            data.pop(key)
        return data


def _fail(service: Service, field: str, message: str, fix: str, spec: ServicesSpec) -> InputError:
    return InputError(message, file=spec.source, key=f"{KEY}[{service.index}].{field}", fix=fix)


class _Addresses:
    """Management and fabric addresses of every node, from the settings and the plan."""

    def __init__(self, settings: ClusterSettings, plan: ClusterPlan) -> None:
        self.plan = plan
        self.management = {n.name: str(n.management_ip) for n in settings.nodes}

    def fabric(self, node: str) -> str | None:
        plan = self.plan.nodes[node]
        addresses = [a for bond in plan.bonds for a in bond.addresses]
        addresses += [a for interface in plan.interfaces for a in interface.addresses]
        return str(addresses[0].ip) if addresses else None

    def on_cable(self, node: str, other: str) -> str | None:
        """`node`'s address on the first link that joins it to `other` (half 0 first), if they are cabled."""
        for link in sorted(self.plan.links, key=lambda lk: lk.half):
            ends = {link.a.node: link.a, link.b.node: link.b}
            if link.kind in ("peer", "bond") and set(ends) == {node, other} and ends[node].address:
                address = ends[node].address
                assert address is not None
                return str(address.ip)
        return None


def _listen(service: Service, addresses: _Addresses, spec: ServicesSpec) -> str:
    if service.bind == "localhost":
        return "127.0.0.1"
    if service.bind == "all":
        return "0.0.0.0"
    if service.bind == "fabric":
        fabric = addresses.fabric(service.head)
        if fabric is None:
            raise _fail(service, "bind", f"{service.head} has no fabric address in this plan",
                        "provision the fabric first, or bind to management", spec)
        return fabric
    return addresses.management[service.head]


def _url(service: Service, listen: str, client: str | None, addresses: _Addresses, spec: ServicesSpec) -> str:
    """How `client` (a node, or None for the controller) reaches `service`."""
    head = service.head
    if client == head:
        host = "127.0.0.1" if listen == "0.0.0.0" else listen
    elif service.bind == "localhost":
        raise _fail(service, "bind", f"listens on {head}'s loopback only, so {client or 'the controller'} "
                    "cannot reach it", "bind it to management, fabric or all", spec)
    elif service.bind == "all" and client is not None:
        host = addresses.on_cable(head, client) or addresses.management[head]
    elif service.bind == "all":
        host = addresses.management[head]
    else:
        host = listen
    return f"http://{host}:{service.port}"


def _quote_systemd(argument: str) -> str:
    """One ExecStart argument, quoted so systemd passes it as it is (no variable or specifier expansion)."""
    escaped = argument.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%").replace("$", "$$")
    return f'"{escaped}"'


def _args(service: Service, rank: int, listen: str, master: str | None) -> list[str]:
    if service.kind == "vllm":
        assert service.model is not None
        argv = [service.model, "--tensor-parallel-size", str(service.tensor_parallel),
                "--pipeline-parallel-size", str(service.pipeline_parallel)]
        if rank == 0:
            argv += ["--host", listen, "--port", str(service.port), "--served-model-name", service.name]
        if len(service.nodes) > 1:
            assert master is not None and service.master_port is not None
            argv += ["--nnodes", str(len(service.nodes)), "--node-rank", str(rank),
                     "--master-addr", master, "--master-port", str(service.master_port)]
            if rank > 0:
                argv.append("--headless")
        return argv + list(service.args)
    if service.kind == "ollama":
        return ["serve", *service.args]
    if service.kind == "orpheus-tts":
        return ["--host", listen, "--port", str(service.port), "--backend-port", str(service.backend_port),
                *service.args]
    if service.kind == "qwen-tts":
        return ["--host", listen, "--port", str(service.port), *service.args]
    return list(service.args)


def _env(service: Service, listen: str, host_ip: str | None, urls: dict[str, str]) -> list[tuple[str, str]]:
    env: list[tuple[str, str]] = []
    if host_ip:
        env.append(("VLLM_HOST_IP", host_ip))
    if service.kind == "vllm":
        env.append(("HF_HUB_OFFLINE", "1"))  # deploy put the model in the cache: never ask the hub again
    if service.kind == "ollama":
        env.append(("OLLAMA_HOST", f"{listen}:{service.port}"))
    if service.kind == "container":
        env += [("SPARKCTL_HOST", listen), ("SPARKCTL_PORT", str(service.port))]
        if service.health.path:
            env.append(("SPARKCTL_HEALTH_PATH", service.health.path))
    env += [(variable, urls[variable]) for variable, _ in service.connect]
    return env + list(service.env)


def _unit_text(spec: ServicesSpec, service: Service, node: str, unit: str, env_path: str, argv: list[str],
               multi: bool) -> str:
    container = unit.removesuffix(".service").replace(UNIT_PREFIX, "sparkctl-", 1)
    volumes = [OLLAMA_STORE] if service.kind == "ollama" else [MODEL_CACHE]
    run = [spec.container_cli, "run", "--rm", "--name", container,
           "--label", f"sparkctl.kind={service.kind}", "--label", f"sparkctl.service={service.name}",
           "--network", "host", "--ipc", "host", "--gpus", "all",
           "--ulimit", "memlock=-1", "--ulimit", "stack=67108864", "--shm-size", SHM_SIZE]
    if multi:
        run += ["--device", "/dev/infiniband"]
    run += ["--env-file", FABRIC_ENV, "--env-file", env_path]
    for volume in volumes:
        run += ["-v", volume]
    run += [service.image, *argv]
    exec_start = " ".join(_quote_systemd(arg) for arg in run)
    remove = " ".join(_quote_systemd(arg) for arg in (spec.container_cli, "rm", "-f", container))
    # Ordered after network-online.target, but not pulling it in (no Wants=): on a running node nothing may have
    # pulled it in yet, and starting the unit would then start systemd-networkd-wait-online, which holds the
    # start for its 2-minute timeout wherever networkd never calls the node online (as on the lab's nodes).
    # At boot docker.service pulls the target in, so the ordering still holds there.
    return (
        f"# Written by sparkctl: service {service.name} ({service.kind}) on {node}. Edit the inventory, not this file.\n"
        "[Unit]\n"
        f"Description=sparkctl service {service.name} ({service.kind})\n"
        "After=network-online.target docker.service\n"
        "\n"
        "[Service]\n"
        "Type=exec\n"
        f"ExecStartPre=-{remove}\n"
        f"ExecStart={exec_start}\n"
        "Restart=on-failure\n"
        "RestartSec=5\n"
        f"TimeoutStartSec={max(service.health.timeout_s, 90)}\n"
        "TimeoutStopSec=60\n"
        "\n"
        "[Install]\n"
        "WantedBy=multi-user.target\n"
    )


def lay_out(spec: ServicesSpec, settings: ClusterSettings, plan: ClusterPlan) -> list[Instance]:
    """Every unit of every declared service, in declaration order (ranks in rank order)."""
    addresses = _Addresses(settings, plan)
    listens = {s.name: _listen(s, addresses, spec) for s in spec.services}
    by_name = {s.name: s for s in spec.services}
    instances: list[Instance] = []
    for service in spec.services:
        listen = listens[service.name]
        multi = len(service.nodes) > 1
        master = None
        if multi:
            master = addresses.on_cable(service.head, service.nodes[1])
            for worker in service.nodes[1:]:
                if addresses.on_cable(worker, service.head) is None:
                    raise _fail(service, "nodes", f"{worker} has no fabric cable to {service.head}, the head "
                                "(rank 0): vLLM's ranks meet over the fabric only",
                                f"cable {worker} to {service.head}, or list Sparks that are cabled to it", spec)
        for rank, node in enumerate(service.nodes):
            unit = unit_name(service.name, rank)
            urls = {variable: _url(by_name[target], listens[target], node, addresses, spec)
                    for variable, target in service.connect}
            host_ip = (addresses.on_cable(node, service.nodes[1] if rank == 0 else service.head)
                       if multi else None)
            env_path = env_path_of(unit)
            env_text = "".join(f"{key}={value}\n" for key, value in _env(service, listen, host_ip, urls))
            argv = _args(service, rank, listen, master)
            serves = rank == 0
            instances.append(Instance(
                service=service.name, kind=service.kind, node=node, unit=unit, rank=rank,
                listen=listen if serves else "", url=_url(service, listen, None, addresses, spec) if serves and
                service.bind != "localhost" else None,
                check_url=_url(service, listen, node, addresses, spec) if serves else None,
                model=service.model, health_path=service.health.path, timeout_s=service.health.timeout_s,
                port=service.port, master=f"{master}:{service.master_port}" if multi else None,
                unit_text=_unit_text(spec, service, node, unit, env_path, argv, multi),
                env_text="# Written by sparkctl for " + f"{service.name}; read by the container runtime.\n" + env_text,
                image=service.image, head=service.head,
                head_address=addresses.on_cable(service.head, node) if rank else None,
            ))
    return instances


def model_tasks(spec: ServicesSpec, instances: list[Instance], node: str) -> list[dict[str, object]]:
    """How `node` gets the models of its vLLM units into its cache: the head fetches with the image's own
    `hf download` (the service's env file passes a token), every other rank copies from the head's fabric
    address on the cable between them. Ollama pulls through its own API instead (the health module)."""
    tasks: list[dict[str, object]] = []
    for i in instances:
        if i.node != node or i.kind != "vllm" or i.model is None:
            continue
        task: dict[str, object] = {"service": i.service, "model": i.model, "cache": MODEL_CACHE_DIR}
        if i.rank == 0:
            task.update(action="fetch", argv=[spec.container_cli, "run", "--rm", "--network", "host", "--env-file",
                                              i.env_path, "-v", MODEL_CACHE, "--entrypoint", FETCH_ENTRYPOINT,
                                              i.image, "download", i.model])
        else:
            task.update(action="copy", from_node=i.head, from_address=i.head_address)
        tasks.append(task)
    return tasks


def node_files(spec: ServicesSpec, instances: list[Instance], node: str) -> dict[str, object]:
    """What the services role writes on `node`: units, env files, models, and the manifest of what runs there."""
    mine = [i for i in instances if i.node == node]
    manifest = {"path": MANIFEST_PATH,
                "content": json.dumps({"instances": [i.manifest() for i in mine]}, indent=2, sort_keys=True) + "\n"}
    return {
        "units": [{"name": i.unit, "service": i.service, "path": i.unit_path, "content": i.unit_text,
                   "env_path": i.env_path, "image": i.image} for i in mine],
        "env_files": {i.env_path: i.env_text for i in mine},
        "images": sorted({i.image for i in mine}),
        "models": model_tasks(spec, instances, node),
        "manifest": manifest,
        "layout": {"declared": [i.unit_path for i in mine], "manifest": manifest, "unit_prefix": UNIT_PREFIX,
                   "env_dir": ENV_DIR},
        "fabric_env": FABRIC_ENV,
        "container_cli": spec.container_cli,
    }
