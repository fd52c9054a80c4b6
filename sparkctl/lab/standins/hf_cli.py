#!/usr/bin/python3
"""Stand-in for the Hugging Face CLI (`hf download MODEL`) inside a lab container: the lab has no hub.

The docker stand-in runs it for `docker run --entrypoint hf IMAGE download MODEL`. It writes what a
real download leaves in the hub cache (`$HF_HOME/hub/models--ORG--NAME/` with `refs/main`,
`snapshots/REV/` whose files link to `blobs/`), with made-up content derived from the model id
(STANDIN_MODEL_BYTES bytes of weights, default 1 MiB), prints the snapshot path as `hf download`
does, and appends the model to `fetches` in the lab state directory, so a test can tell which node
fetched. Files already in the cache are kept, as the real CLI keeps what it has. Standard library only.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys

HF_HOME = "/root/.cache/huggingface"


def host_path(inside: str) -> str:
    """The host path behind a container path, through the `-v` mounts the docker stand-in passed."""
    volumes: dict[str, str] = json.loads(os.environ.get("STANDIN_VOLUMES", "{}"))
    for target in sorted(volumes, key=len, reverse=True):
        if inside == target or inside.startswith(target.rstrip("/") + "/"):
            return volumes[target] + inside[len(target):]
    raise SystemExit(f"hf (sparkctl lab stand-in): {inside} is not on a mounted volume: the download would be "
                     "lost with the container (mount the cache with -v HOST:/root/.cache/huggingface)")


def blob(path: str, content: bytes) -> str:
    digest = hashlib.sha256(content).hexdigest()
    target = os.path.join(path, digest)
    if not os.path.exists(target):
        with open(target + ".incomplete", "wb") as f:
            f.write(content)
        os.replace(target + ".incomplete", target)
    return digest


def download(model: str) -> str:
    home = host_path(os.environ.get("HF_HOME", HF_HOME))
    repo = os.path.join(home, "hub", "models--" + model.replace("/", "--"))
    revision = hashlib.sha1(model.encode()).hexdigest()
    size = int(os.environ.get("STANDIN_MODEL_BYTES", str(1 << 20)))
    seed = hashlib.sha256(model.encode()).digest()
    weights = (seed * (size // len(seed) + 1))[:size]
    files = {"config.json": json.dumps({"_name_or_path": model, "model_type": "standin"}).encode(),
             "model.safetensors": weights}
    os.makedirs(os.path.join(repo, "blobs"), exist_ok=True)
    snapshot = os.path.join(repo, "snapshots", revision)
    os.makedirs(snapshot, exist_ok=True)
    for name, content in files.items():
        digest = blob(os.path.join(repo, "blobs"), content)
        link = os.path.join(snapshot, name)
        if not os.path.islink(link):
            os.symlink(os.path.join("..", "..", "blobs", digest), link)
    os.makedirs(os.path.join(repo, "refs"), exist_ok=True)
    with open(os.path.join(repo, "refs", "main"), "w") as f:
        f.write(revision)
    state = os.environ.get("STANDIN_STATE_DIR") or "/var/lib/sparkctl-lab"
    os.makedirs(state, exist_ok=True)
    with open(os.path.join(state, "fetches"), "a") as f:
        f.write(model + "\n")
    return snapshot


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[0] != "download" or argv[1].startswith("-"):
        sys.stderr.write("hf (sparkctl lab stand-in): only `hf download MODEL` is known here\n")
        return 2
    sys.stderr.write(f"hf (sparkctl lab stand-in): no hub in the lab: writing a made-up snapshot of {argv[1]}\n")
    print(download(argv[1].split("@", 1)[0]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
