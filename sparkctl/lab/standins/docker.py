#!/usr/bin/python3
"""Stand-in for the `docker` CLI on lab nodes, which have no container engine (and no GPU).

`sparkctl deploy` runs each service as a systemd unit whose command is `docker run ... IMAGE ARGS` in
the foreground, after `docker pull IMAGE` and `docker rm -f NAME`. In the lab this script answers those
commands. `run` checks what a real engine and the NVIDIA runtime would make fail or matter on a Spark
(image pulled, --gpus all, --network host, env-file syntax, bind mounts, flags it knows) and refuses
with exit 125 like docker; then it execs the stand-in server chosen by `--label sparkctl.kind=KIND`,
in the environment the container would have, with `-v` mounts passed so container paths map to host
paths. Exec keeps the unit's main process the server itself, so `systemctl stop` (SIGTERM) reaches it.

Commands: `pull IMAGE`, `image inspect IMAGE...`, `rm [-f] NAME...`, `stop [-t S] NAME...`,
`run [flags] IMAGE [ARGS...]`, `version`/`--version`. `run --entrypoint hf IMAGE download MODEL` runs
the stand-in of the image's Hugging Face CLI (hf_cli.py) instead of a server. State lives in STANDIN_STATE_DIR
(default /var/lib/sparkctl-lab): `images` (pulled images, one a line) and `containers/NAME/` (the pid of
the running stand-in and `root/`, the container's fresh writable layer). Standard library only.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

HERE = os.path.dirname(os.path.realpath(__file__))
VERSION = "Docker version 27.5.1-sparkctl-lab-standin, build standin"

# KIND -> (server script, arguments before the image's ARGS, environment the image itself sets).
KINDS: dict[str, tuple[str, list[str], dict[str, str]]] = {
    "vllm": ("vllm_server.py", [], {}),
    "ollama": ("ollama_server.py", [], {"OLLAMA_HOST": "0.0.0.0:11434"}),  # the ollama image's ENV
    "orpheus-tts": ("tts_server.py", ["--flavor", "orpheus"], {}),
    "qwen-tts": ("tts_server.py", ["--flavor", "qwen"], {}),
    "container": ("container_server.py", [], {}),
}
LAYERS = 4
"""Layers a stand-in pull shows."""
BASE_ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root"}
ULIMITS = {"core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice", "nofile", "nproc",
           "rss", "rtprio", "rttime", "sigpending", "stack"}
_COMPONENT = r"[a-z0-9]+(?:[._-]+[a-z0-9]+)*"
REFERENCE = re.compile(rf"^(?:[a-zA-Z0-9.-]+(?::[0-9]+)?/)?{_COMPONENT}(?:/{_COMPONENT})*"
                       r"(?::\w[\w.-]{0,127})?(?:@sha256:[0-9a-f]{64})?$")


class Refused(Exception):
    """docker would refuse this; the message is what it prints and `code` its exit status."""

    def __init__(self, message: str, code: int = 125) -> None:
        super().__init__(message)
        self.code = code


def state_dir() -> str:
    return os.environ.get("STANDIN_STATE_DIR") or "/var/lib/sparkctl-lab"


def err(message: str) -> None:
    sys.stderr.write(message.rstrip("\n") + "\n")
    sys.stderr.flush()


# --- images ----------------------------------------------------------------------------------------


def normalize(image: str) -> str:
    """An image reference as the engine stores it: the tag `latest` when none is given."""
    if not image or not REFERENCE.match(image):
        raise Refused(f"invalid reference format: repository name ({image}) must be lowercase "
                      "and well formed", 1)
    if "@" in image:
        return image
    last = image.rsplit("/", 1)[-1]
    return image if ":" in last else image + ":latest"


def repository(image: str) -> str:
    ref = image.split("@", 1)[0]
    head, _, last = ref.rpartition("/")
    return (head + "/" if head else "") + last.split(":", 1)[0]


def full_name(image: str) -> str:
    """The fully qualified name `docker pull` prints last (docker.io/library/... for official images)."""
    first, slash, _ = image.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        return image
    return f"docker.io/{image}" if slash else f"docker.io/library/{image}"


@contextmanager
def locked() -> Iterator[str]:
    """The state directory, held under an exclusive lock so concurrent pulls don't lose lines."""
    root = state_dir()
    os.makedirs(root, exist_ok=True)
    with open(os.path.join(root, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield root


def pulled() -> list[str]:
    try:
        with open(os.path.join(state_dir(), "images")) as f:
            return [line.strip() for line in f if line.strip()]
    except FileNotFoundError:
        return []


def digest(image: str) -> str:
    return "sha256:" + hashlib.sha256(image.encode()).hexdigest()


def cmd_pull(args: list[str]) -> int:
    names = [a for a in args if not a.startswith("-")]
    quiet = any(a in ("-q", "--quiet") for a in args)
    if len(names) != 1:
        raise Refused('"docker pull" requires exactly 1 argument.\nSee \'docker pull --help\'.', 1)
    image = normalize(names[0])
    repo = repository(image)
    tag = image.rsplit(":", 1)[-1] if "@" not in image else image.split("@", 1)[1]
    if "does-not-exist" in repo:
        raise Refused(f"Error response from daemon: manifest for {image} not found: manifest unknown: "
                      "manifest unknown", 1)
    fresh = image not in pulled()
    if not quiet:
        print(f"{tag}: Pulling from {repo}", flush=True)
    if fresh:
        pretend_layers(image, quiet)
    with locked() as root:
        have = pulled()
        if image not in have:
            path = os.path.join(root, "images")
            tmp = f"{path}.{os.getpid()}.tmp"
            with open(tmp, "w") as f:
                f.write("".join(i + "\n" for i in [*have, image]))
            os.replace(tmp, path)
    if not quiet:
        print(f"Digest: {digest(image)}")
        status = "Downloaded newer image" if fresh else "Image is up to date"
        print(f"Status: {status} for {image} (sparkctl lab stand-in: recorded, nothing downloaded)")
    print(full_name(image))
    return 0


def pretend_layers(image: str, quiet: bool) -> None:
    """The layer lines docker prints without a terminal, spread over STANDIN_PULL_SECONDS (default 6):
    nothing is downloaded, but a pull takes a moment and shows its layers as a real one does."""
    seconds = float(os.environ.get("STANDIN_PULL_SECONDS", "6"))
    ids = [hashlib.sha256(f"{image}/{n}".encode()).hexdigest()[:12] for n in range(LAYERS)]
    if not quiet:
        print("".join(f"{layer}: Pulling fs layer\n" for layer in ids), end="", flush=True)
    for layer in ids:
        time.sleep(seconds / LAYERS)
        if not quiet:
            print(f"{layer}: Download complete\n{layer}: Pull complete", flush=True)


def cmd_image(args: list[str]) -> int:
    if not args or args[0] != "inspect":
        raise Refused(f"docker image: the stand-in knows only 'inspect' (got {' '.join(args)!r})", 1)
    names: list[str] = []
    template = ""
    rest = iter(args[1:])
    for a in rest:
        if a in ("-f", "--format"):
            template = next(rest, "")
        elif a.startswith("--format="):
            template = a.split("=", 1)[1]
        elif not a.startswith("-"):
            names.append(a)
    if not names:
        raise Refused('"docker image inspect" requires at least 1 argument.', 1)
    have = set(pulled())
    found, code = [], 0
    for name in names:
        try:
            image = normalize(name)
        except Refused:
            image = name
        if image in have:
            repo_digest = f"{repository(image)}@{digest(image)}"
            found.append({"Id": digest(image), "RepoTags": [image], "RepoDigests": [repo_digest],
                          "Architecture": "arm64", "Os": "linux", "Comment": "sparkctl lab stand-in"})
        else:
            err(f"Error: No such image: {name}")
            code = 1
    if template:  # the few Go templates scripts use: {{.Id}}, {{json .}}, {{.RepoTags}}
        for item in found:
            print(template.replace("{{json .}}", json.dumps(item)).replace("{{.Id}}", str(item["Id"]))
                  .replace("{{.RepoTags}}", "[" + " ".join(item["RepoTags"]) + "]"))
    else:
        print(json.dumps(found, indent=4))
    return code


# --- containers -------------------------------------------------------------------------------------


def container_dir(name: str) -> str:
    return os.path.join(state_dir(), "containers", name)


def start_time(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def running_pid(name: str) -> int | None:
    """The pid of the running stand-in named `name`, if that very process is still alive."""
    try:
        with open(os.path.join(container_dir(name), "pid")) as f:
            pid_s, started = f.read().split()
        pid = int(pid_s)
    except (OSError, ValueError):
        return None
    return pid if start_time(pid) == started else None


def wait_gone(pid: int, seconds: float) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if start_time(pid) is None:
            return True
        try:
            os.waitpid(pid, os.WNOHANG)  # reaps it when it is our own child (tests)
        except ChildProcessError:
            pass
        time.sleep(0.05)
    return start_time(pid) is None


def cmd_rm(args: list[str]) -> int:
    force = any(a in ("-f", "--force") for a in args)
    names = [a for a in args if not a.startswith("-")]
    if not names:
        raise Refused('"docker rm" requires at least 1 argument.', 1)
    code = 0
    for name in names:
        pid = running_pid(name)
        if pid is not None and not force:
            err(f"Error response from daemon: cannot remove container \"/{name}\": container is running: "
                "stop the container before removing or force remove")
            code = 1
            continue
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
            wait_gone(pid, 5)
        if os.path.isdir(container_dir(name)):
            shutil.rmtree(container_dir(name), ignore_errors=True)
            print(name)
        else:
            err(f"Error response from daemon: No such container: {name}")
            code = 0 if force else 1
    return code


def cmd_stop(args: list[str]) -> int:
    timeout = 10.0
    names: list[str] = []
    it = iter(args)
    for a in it:
        if a in ("-t", "--time", "--timeout"):
            timeout = float(next(it, "10"))
        elif not a.startswith("-"):
            names.append(a)
    code = 0
    for name in names:
        pid = running_pid(name)
        if pid is None:
            if os.path.isdir(container_dir(name)):
                print(name)
            else:
                err(f"Error response from daemon: No such container: {name}")
                code = 1
            continue
        os.kill(pid, signal.SIGTERM)
        if not wait_gone(pid, timeout):
            os.kill(pid, signal.SIGKILL)
            wait_gone(pid, 5)
        print(name)
    return code


# --- run --------------------------------------------------------------------------------------------

VALUE_FLAGS = {"--name": "name", "--network": "network", "--net": "network", "--ipc": "ipc",
               "--gpus": "gpus", "--ulimit": "ulimit", "--shm-size": "shm_size", "--device": "device",
               "--env-file": "env_file", "-e": "env", "--env": "env", "-v": "volume", "--volume": "volume",
               "--label": "label", "-l": "label", "--entrypoint": "entrypoint"}
BOOL_FLAGS = {"--rm"}


@dataclass
class RunSpec:
    """A parsed `docker run`: the flags, then the image and its arguments."""

    name: str = ""
    network: str = ""
    ipc: str = ""
    gpus: str = ""
    shm_size: str = ""
    entrypoint: str = ""
    rm: bool = False
    ulimit: list[str] = field(default_factory=list)
    device: list[str] = field(default_factory=list)
    env_file: list[str] = field(default_factory=list)
    env: list[str] = field(default_factory=list)
    volume: list[str] = field(default_factory=list)
    label: list[str] = field(default_factory=list)
    image: str = ""
    args: list[str] = field(default_factory=list)


def parse_run(argv: list[str]) -> RunSpec:
    """docker's parsing: flags (`--f v` or `--f=v`) up to the first other word, which is the image."""
    spec = RunSpec()
    i = 0
    while i < len(argv):
        word = argv[i]
        if not word.startswith("-") or word == "-":
            spec.image, spec.args = word, argv[i + 1:]
            return spec
        flag, eq, inline = word.partition("=")
        if flag in BOOL_FLAGS and not eq:
            spec.rm = True
        elif flag in ("-d", "--detach"):
            raise Refused("docker: the sparkctl lab stand-in runs containers in the foreground only "
                          "(units run `docker run` without -d)")
        elif flag in VALUE_FLAGS:
            if eq:
                value = inline
            else:
                i += 1
                if i >= len(argv):
                    raise Refused(f"flag needs an argument: {flag}\nSee 'docker run --help'.")
                value = argv[i]
            attr = VALUE_FLAGS[flag]
            current = getattr(spec, attr)
            if isinstance(current, list):
                current.append(value)
            else:
                setattr(spec, attr, value)
        else:
            raise Refused(f"unknown flag: {flag}\nSee 'docker run --help'.")
        i += 1
    raise Refused('"docker run" requires at least 1 argument.\nSee \'docker run --help\'.')


def read_env_file(path: str) -> list[tuple[str, str | None]]:
    """docker's env-file syntax: KEY=VALUE taken verbatim (quotes included), `#` comment lines and
    blank lines skipped, a bare KEY passed through from the caller's environment."""
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        raise Refused(f"docker: open {path}: no such file or directory.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise Refused(f"docker: {path}: {exc}.") from None
    out: list[tuple[str, str | None]] = []
    for line in lines:
        text = line.lstrip()
        if not text or text.startswith("#"):
            continue
        key, eq, value = text.partition("=")
        if not key:
            raise Refused(f"docker: poorly formatted environment: no variable name on line '{line}'.")
        if re.search(r"\s", key):
            raise Refused(f"docker: poorly formatted environment: variable '{key}' contains whitespaces.")
        out.append((key, value if eq else None))
    return out


def check_ulimit(value: str) -> None:
    name, eq, limits = value.partition("=")
    parts = limits.split(":")
    if not eq or name not in ULIMITS or not 1 <= len(parts) <= 2 or not all(
            re.fullmatch(r"-?\d+", p) for p in parts):
        raise Refused(f"invalid argument \"{value}\" for \"--ulimit\" flag: invalid ulimit argument: {value}")


def container_env(spec: RunSpec, image_env: dict[str, str]) -> dict[str, str]:
    """The environment inside the container: the image's, then env files, then -e, later ones winning."""
    env = {**BASE_ENV, "HOSTNAME": socket.gethostname(), **image_env}
    pairs: list[tuple[str, str | None]] = []
    for path in spec.env_file:
        pairs += read_env_file(path)
    for item in spec.env:
        key, eq, value = item.partition("=")
        if not key or re.search(r"\s", key):
            raise Refused(f"docker: invalid environment variable: {item}")
        pairs.append((key, value if eq else None))
    for key, maybe in pairs:
        if maybe is not None:
            env[key] = maybe
        elif key in os.environ:  # pass-through; unset in the caller means absent in the container
            env[key] = os.environ[key]
    return env


def mounts(spec: RunSpec) -> dict[str, str]:
    """Container path -> host path for each `-v HOST:CONTAINER[:OPTS]` (bind mounts only here)."""
    out: dict[str, str] = {}
    for item in spec.volume:
        parts = item.split(":")
        if len(parts) not in (2, 3) or not parts[0] or not parts[1]:
            raise Refused(f"docker: Error response from daemon: invalid volume specification: '{item}'.")
        host, inside = parts[0], parts[1]
        if not host.startswith("/"):
            raise Refused(f"docker: Error response from daemon: invalid volume specification '{item}': "
                          f"the host path '{host}' is not absolute (docker would make it a named volume; "
                          "the sparkctl lab stand-in mounts only absolute host paths).")
        if not inside.startswith("/"):
            raise Refused(f"docker: Error response from daemon: invalid mount config: mount path must be "
                          f"absolute: '{inside}'.")
        if len(parts) == 3 and not set(parts[2].split(",")) <= {"ro", "rw", "z", "Z", "rshared", "rslave",
                                                                 "rprivate", "shared", "slave", "private"}:
            raise Refused(f"docker: Error response from daemon: invalid mode: {parts[2]}.")
        os.makedirs(host, exist_ok=True)  # docker creates a missing bind source as a directory
        out[inside] = host
    return out


ENTRYPOINTS = {"hf": "hf_cli.py"}
"""Tools of the images a container may run instead of the server (`--entrypoint`): the model download."""


def local_image(spec: RunSpec) -> str:
    """The image `docker run` names, as the engine knows it, refused unless it was pulled (as a real engine
    refuses with --pull never: the lab pulls nothing on run)."""
    try:
        image = normalize(spec.image)
    except Refused as exc:
        raise Refused(f"docker: {exc}.") from None
    if image not in pulled():
        raise Refused(f"Unable to find image '{image}' locally\ndocker: Error response from daemon: the "
                      f"sparkctl lab stand-in does not pull on run: 'docker pull {image}' first.")
    return image


def run_tool(spec: RunSpec) -> int:
    """`docker run --entrypoint TOOL IMAGE ARGS`: a one-off tool of the image (no GPU needed), not a server."""
    if spec.entrypoint not in ENTRYPOINTS:
        raise Refused(f"docker: the sparkctl lab stand-in knows only these entrypoints: {', '.join(ENTRYPOINTS)} "
                      f"(got {spec.entrypoint!r})")
    if spec.network not in ("", "host"):
        raise Refused(f"docker: the sparkctl lab stand-in runs with --network host only (got {spec.network!r})")
    local_image(spec)  # refused unless pulled
    final = {k: v for k, v in os.environ.items() if k.startswith("STANDIN_")}
    final.update(container_env(spec, {}))
    final["STANDIN_VOLUMES"] = json.dumps(mounts(spec))
    tool = os.path.join(HERE, ENTRYPOINTS[spec.entrypoint])
    os.execve(sys.executable, [sys.executable, tool, *spec.args], final)
    return 0  # not reached


def cmd_run(argv: list[str]) -> int:
    spec = parse_run(argv)
    if spec.entrypoint:
        return run_tool(spec)
    labels = dict(lbl.partition("=")[::2] for lbl in spec.label)
    kind = labels.get("sparkctl.kind", "")
    if kind not in KINDS:
        raise Refused(f"docker: the sparkctl lab stand-in needs --label sparkctl.kind=KIND with KIND one of "
                      f"{', '.join(KINDS)} (got {kind or 'none'!r}) to know which stand-in server to run.")
    if spec.network != "host":
        raise Refused(f"docker: the sparkctl lab stand-in runs services with --network host only "
                      f"(got {spec.network or 'the default bridge'!r}): a service must be reachable on the "
                      "node's own addresses and its fabric.")
    if spec.gpus != "all":
        raise Refused(f"docker: Error response from daemon: no GPU requested (--gpus {spec.gpus or 'unset'}): "
                      "services on a Spark need --gpus all to see its GPU.")
    if spec.ipc and not re.fullmatch(r"host|private|shareable|none|container:\S+", spec.ipc):
        raise Refused(f"docker: Error response from daemon: invalid IPC mode: {spec.ipc}.")
    if spec.shm_size and not re.fullmatch(r"\d+(\.\d+)?[bkmgBKMG]?", spec.shm_size):
        raise Refused(f"invalid argument \"{spec.shm_size}\" for \"--shm-size\" flag: invalid size: "
                      f"'{spec.shm_size}'")
    for value in spec.ulimit:
        check_ulimit(value)
    if spec.name and not re.fullmatch(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*", spec.name):
        raise Refused(f"docker: Error response from daemon: Invalid container name ({spec.name}), only "
                      "[a-zA-Z0-9][a-zA-Z0-9_.-] are allowed.")
    image = local_image(spec)
    env = container_env(spec, KINDS[kind][2])
    volumes = mounts(spec)
    for device in spec.device:
        if not os.path.exists(device.split(":", 1)[0]):
            err(f"sparkctl lab stand-in: device {device} does not exist on this lab node; "
                "running without it (no RDMA in the lab)")
    name = spec.name or "standin-" + hashlib.sha256(os.urandom(8)).hexdigest()[:12]
    script, pre_args, _ = KINDS[kind]
    args = spec.args
    if kind == "vllm" and args[:2] == ["vllm", "serve"]:  # images whose entrypoint is not `vllm serve`
        args = args[2:]
    with locked():
        if running_pid(name) is not None:
            raise Refused(f"docker: Error response from daemon: Conflict. The container name \"/{name}\" is "
                          "already in use by a running container. You have to remove (or rename) that "
                          "container to be able to reuse that name.")
        cdir = container_dir(name)
        shutil.rmtree(cdir, ignore_errors=True)
        root = os.path.join(cdir, "root")
        os.makedirs(root)
        pid = os.getpid()  # exec keeps it: this is the server's pid
        with open(os.path.join(cdir, "pid"), "w") as f:
            f.write(f"{pid} {start_time(pid)}\n")
        with open(os.path.join(cdir, "config.json"), "w") as f:
            json.dump({"image": image, "kind": kind, "labels": labels, "args": args, "volumes": volumes,
                       "rm": spec.rm}, f, indent=2)
    final = {k: v for k, v in os.environ.items() if k.startswith("STANDIN_")}  # the lab's own knobs
    final.update(env)
    final.update({"STANDIN_KIND": kind, "STANDIN_IMAGE": image, "STANDIN_NAME": name,
                  "STANDIN_VOLUMES": json.dumps(volumes), "STANDIN_ROOT": root})
    err(f"sparkctl lab stand-in: running {image} as {name} ({kind} stand-in, no container engine)")
    server = os.path.join(HERE, script)
    os.execve(sys.executable, [sys.executable, server, *pre_args, *args], final)
    return 0  # not reached


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        err("Usage:  docker [OPTIONS] COMMAND  (sparkctl lab stand-in: pull, image inspect, rm, stop, run)")
        return 1
    command, rest = args[0], args[1:]
    try:
        if command in ("--help", "-h", "help"):
            print("Usage:  docker COMMAND  (sparkctl lab stand-in: no engine; runs stand-in servers)\n\n"
                  "Commands: pull IMAGE | image inspect [--format T] IMAGE... | rm [-f] NAME... | "
                  "stop [-t S] NAME... | run FLAGS IMAGE [ARGS...] | version")
            return 0
        if command in ("--version", "-v"):
            print(VERSION)
            return 0
        if command == "version":
            print(f"Client: {VERSION}\nServer: sparkctl lab stand-in (no engine; runs stand-in servers)")
            return 0
        if command == "pull":
            return cmd_pull(rest)
        if command == "image":
            return cmd_image(rest)
        if command == "rm":
            return cmd_rm(rest)
        if command == "stop":
            return cmd_stop(rest)
        if command == "run":
            return cmd_run(rest)
        err(f"docker: '{command}' is not a docker command (the sparkctl lab stand-in has pull, image "
            "inspect, rm, stop and run).\nSee 'docker --help'")
        return 1
    except Refused as exc:
        err(str(exc))
        return exc.code


if __name__ == "__main__":
    sys.exit(main())
