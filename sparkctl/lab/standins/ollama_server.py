#!/usr/bin/python3
"""Stand-in for `ollama serve` (the entrypoint of ollama/ollama images), for lab nodes without a GPU.

Ollama's own HTTP API as its clients use it: `GET /` ("Ollama is running"), `/api/version`,
`/api/tags`, `/api/ps`, `/api/pull` (NDJSON progress, or one JSON with "stream": false),
`/api/generate`, `/api/chat` (NDJSON streams by default), `/api/show`, `/api/delete`, and the
OpenAI-compatible `/v1/models`, `/v1/chat/completions`, `/v1/completions`. A pull writes a manifest
where Ollama keeps them (MODELS/manifests/REGISTRY/NAMESPACE/MODEL/TAG), so pulled models survive a
restart exactly when the models directory is a volume, as with the real image. Nothing is downloaded;
a model whose name contains `does-not-exist` fails to pull, so tests can see a failed pull.

`/v1/completions` answers as Ollama's OpenAI layer does (openai/openai.go, middleware/openai.go): the
prompt must be a string (a list of token ids is a 400, Go's JSON error), `max_tokens` becomes
`num_predict`, there is no `ignore_eos` (a model stops at its end of text: STANDIN_NATURAL_TOKENS, 24,
unless max_tokens is lower), every streamed chunk carries a zero usage when usage is asked for, the
end of the text comes as an empty chunk with its finish_reason, then the usage (prompt_tokens is what
the model evaluated: the prompt's words plus TEMPLATE_TOKENS of the model's template) and `[DONE]`.
At most OLLAMA_NUM_PARALLEL requests (1, Ollama's default) generate at once; the others wait.

Settings as Ollama reads them: OLLAMA_HOST (`host:port`, default 127.0.0.1:11434; the image sets
0.0.0.0:11434), OLLAMA_MODELS (default /root/.ollama/models, mapped through the container's volumes),
OLLAMA_NUM_PARALLEL. Knobs: STANDIN_TOKEN_SECONDS (0.002 per generated token), STANDIN_FIRST_TOKEN_SECONDS
(0) and STANDIN_PREFILL_TOKEN_SECONDS (0) before the first, STANDIN_PULL_SECONDS (0.2 per pull).
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any, cast
from urllib.parse import urlsplit

if __package__:
    from . import http_common as hc
else:  # run by path on a node: the sibling module sits next to this file
    sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))
    import http_common as hc  # type: ignore[import-not-found, no-redef]

PROG = "ollama (sparkctl lab stand-in)"
VERSION = "0.12.6"
REGISTRY = "registry.ollama.ai"
NATURAL_LENGTH = 24
TEMPLATE_TOKENS = 3
"""Tokens a model's prompt template adds around a /v1/completions prompt (its start and turn markers)."""
GO_JSON_KINDS = {list: "array", dict: "object", bool: "bool", int: "number", float: "number"}


def listen_address(value: str | None) -> tuple[str, int]:
    """OLLAMA_HOST as Ollama parses it: `host`, `host:port`, `:port` or a URL; 127.0.0.1:11434 default."""
    value = (value or "").strip()
    if not value:
        return "127.0.0.1", 11434
    if "://" not in value:
        value = "http://" + value
    parts = urlsplit(value)
    return parts.hostname or "0.0.0.0", parts.port or 11434


def now_iso(t: float | None = None) -> str:
    stamp = datetime.datetime.fromtimestamp(time.time() if t is None else t, datetime.UTC)
    return stamp.isoformat().replace("+00:00", "Z")


def split_name(name: str) -> tuple[str, str, str, str]:
    """`model`, `ns/model:tag`, `host/ns/model:tag` -> (registry, namespace, model, tag), as Ollama names."""
    name = name.strip()
    tag = "latest"
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        name, tag = name.rsplit(":", 1)
    parts = name.split("/")
    if len(parts) == 1:
        return REGISTRY, "library", parts[0], tag
    if len(parts) == 2:
        return REGISTRY, parts[0], parts[1], tag
    return parts[0], "/".join(parts[1:-1]), parts[-1], tag


def display_name(registry: str, namespace: str, model: str, tag: str) -> str:
    if registry == REGISTRY and namespace == "library":
        return f"{model}:{tag}"
    if registry == REGISTRY:
        return f"{namespace}/{model}:{tag}"
    return f"{registry}/{namespace}/{model}:{tag}"


def canonical(name: str) -> str:
    return display_name(*split_name(name))


class Models:
    """The models directory: manifests written by pulls, read back by tags/show/generate."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.loaded: dict[str, float] = {}  # name -> expiry (what /api/ps shows)
        self.lock = threading.Lock()

    def manifest_path(self, name: str) -> str:
        registry, namespace, model, tag = split_name(name)
        return os.path.join(self.root, "manifests", registry, *namespace.split("/"), model, tag)

    def find(self, name: str) -> dict[str, Any] | None:
        try:
            with open(self.manifest_path(name)) as f:
                manifest = json.load(f)
        except (OSError, ValueError):
            return None
        manifest["name"] = canonical(name)
        manifest["modified"] = os.path.getmtime(self.manifest_path(name))
        return cast(dict[str, Any], manifest)

    def all(self) -> list[dict[str, Any]]:
        base = os.path.join(self.root, "manifests")
        found = []
        for dirpath, _dirs, files in os.walk(base):
            rel = os.path.relpath(dirpath, base).split(os.sep)
            if len(rel) < 3:
                continue
            for tag in files:
                name = display_name(rel[0], "/".join(rel[1:-1]), rel[-1], tag)
                manifest = self.find(name)
                if manifest is not None:
                    found.append(manifest)
        return sorted(found, key=lambda m: -float(m["modified"]))

    def write(self, name: str) -> dict[str, Any]:
        digest = hashlib.sha256(canonical(name).encode()).hexdigest()
        size = 1_000_000_000 + int(digest[:8], 16) % 4_000_000_000
        manifest = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                       "digest": f"sha256:{hashlib.sha256(digest.encode()).hexdigest()}", "size": 485},
            "layers": [{"mediaType": "application/vnd.ollama.image.model", "digest": f"sha256:{digest}",
                        "size": size}],
            "comment": "sparkctl lab stand-in: no weights were downloaded",
        }
        path = self.manifest_path(name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.{os.getpid()}.{threading.get_ident()}.tmp"
        with open(tmp, "w") as f:
            json.dump(manifest, f)
        os.replace(tmp, path)
        return manifest

    def delete(self, name: str) -> bool:
        try:
            os.unlink(self.manifest_path(name))
        except FileNotFoundError:
            return False
        with self.lock:
            self.loaded.pop(canonical(name), None)
        return True


def details(name: str) -> dict[str, Any]:
    family = split_name(name)[2].split(".")[0].rstrip("0123456789") or "llama"
    return {"parent_model": "", "format": "gguf", "family": family, "families": [family],
            "parameter_size": "8.0B", "quantization_level": "Q4_K_M"}


def entry(manifest: dict[str, Any]) -> dict[str, Any]:
    """A model as /api/tags lists it."""
    layer = manifest["layers"][0]
    return {"name": manifest["name"], "model": manifest["name"], "modified_at": now_iso(manifest["modified"]),
            "size": layer["size"], "digest": layer["digest"].removeprefix("sha256:"),
            "details": details(manifest["name"])}


class OllamaHTTPServer(hc.StandinHTTPServer):
    models: Models
    token_seconds: float
    pull_seconds: float
    pace: hc.Pace
    slots: threading.Semaphore
    """OLLAMA_NUM_PARALLEL: requests generating at once."""
    natural_tokens: int


class OllamaHandler(hc.Handler):
    prog = PROG

    @property
    def ollama(self) -> OllamaHTTPServer:
        return cast(OllamaHTTPServer, self.server)

    def route(self, method: str, path: str) -> None:
        if path == "/" and method in ("GET", "HEAD"):
            self.send_text(200, "Ollama is running")
        elif path == "/api/version" and method in ("GET", "HEAD"):
            self.send_json(200, {"version": VERSION})
        elif path == "/api/tags" and method in ("GET", "HEAD"):
            self.send_json(200, {"models": [entry(m) for m in self.ollama.models.all()]})
        elif path == "/api/ps" and method == "GET":
            self.ps()
        elif path == "/api/pull" and method == "POST":
            self.pull()
        elif path in ("/api/generate", "/api/chat") and method == "POST":
            self.generate(chat=path == "/api/chat")
        elif path == "/api/show" and method == "POST":
            self.show()
        elif path == "/api/delete" and method == "DELETE":
            self.delete()
        elif path == "/v1/models" and method == "GET":
            self.send_json(200, {"object": "list", "data": [
                {"id": m["name"], "object": "model", "created": int(m["modified"]),
                 "owned_by": split_name(m["name"])[1]} for m in self.ollama.models.all()]})
        elif path == "/v1/chat/completions" and method == "POST":
            self.openai(chat=True)
        elif path == "/v1/completions" and method == "POST":
            self.completions()
        else:
            self.send_text(404, "404 page not found")

    def model_of(self, body: dict[str, Any]) -> str | None:
        name = body.get("model") or body.get("name")
        if not isinstance(name, str) or not name.strip():
            self.send_json(400, {"error": "model is required"})
            return None
        return name

    def not_found(self, name: str) -> None:
        self.send_json(404, {"error": f"model '{name}' not found"})

    def ps(self) -> None:
        models = self.ollama.models
        now = time.time()
        with models.lock:
            live = {n: t for n, t in models.loaded.items() if t > now}
            models.loaded = live
        out = []
        for name, expires in live.items():
            manifest = models.find(name)
            if manifest is None:
                continue
            item = entry(manifest)
            out.append({"name": name, "model": name, "size": item["size"], "digest": item["digest"],
                        "details": item["details"], "expires_at": now_iso(expires), "size_vram": item["size"],
                        "context_length": 4096})
        self.send_json(200, {"models": out})

    def pull(self) -> None:
        body = self.read_json()
        if body is None or (name := self.model_of(body)) is None:
            return
        fails = "does-not-exist" in name
        digest = hashlib.sha256(canonical(name).encode()).hexdigest()
        total = 1_000_000_000 + int(digest[:8], 16) % 4_000_000_000
        step = self.ollama.pull_seconds / 5

        def progress() -> Iterator[dict[str, Any]]:
            yield {"status": "pulling manifest"}
            if fails:
                yield {"error": "pull model manifest: file does not exist"}
                return
            for k in range(1, 5):
                time.sleep(step)
                yield {"status": f"pulling {digest[:12]}", "digest": f"sha256:{digest}", "total": total,
                       "completed": total * k // 4}
            yield {"status": "verifying sha256 digest"}
            yield {"status": "writing manifest"}
            self.ollama.models.write(name)
            hc.log(PROG, f"pulled {canonical(name)} (stand-in: manifest only)")
            yield {"status": "success"}

        if body.get("stream", True):
            self.send_stream("application/x-ndjson", (json.dumps(p).encode() + b"\n" for p in progress()))
            return
        last: dict[str, Any] = {}
        for last in progress():
            if "error" in last:
                break
        self.send_json(500 if "error" in last else 200, last)

    def show(self) -> None:
        body = self.read_json()
        if body is None or (name := self.model_of(body)) is None:
            return
        if self.ollama.models.find(name) is None:
            self.not_found(name)
            return
        self.send_json(200, {"modelfile": f"FROM {canonical(name)}\n", "parameters": "", "template": "{{ .Prompt }}",
                             "details": details(name), "model_info": {"general.architecture": "llama"},
                             "capabilities": ["completion"], "modified_at": now_iso()})

    def delete(self) -> None:
        body = self.read_json()
        if body is None or (name := self.model_of(body)) is None:
            return
        if self.ollama.models.delete(name):
            self.send_bytes(200, b"", "application/json")
        else:
            self.not_found(name)

    def load(self, name: str, keep_alive: object) -> None:
        seconds = 300.0
        if isinstance(keep_alive, (int, float)):
            seconds = float(keep_alive)
        elif isinstance(keep_alive, str) and keep_alive[:-1].replace(".", "", 1).isdigit():
            seconds = float(keep_alive[:-1]) * {"s": 1, "m": 60, "h": 3600}.get(keep_alive[-1], 1)
        with self.ollama.models.lock:
            if seconds == 0:
                self.ollama.models.loaded.pop(canonical(name), None)
            else:
                self.ollama.models.loaded[canonical(name)] = time.time() + (seconds if seconds > 0 else 1e9)

    def generate(self, chat: bool) -> None:
        body = self.read_json()
        if body is None or (name := self.model_of(body)) is None:
            return
        if self.ollama.models.find(name) is None:
            self.not_found(name)
            return
        start = time.monotonic_ns()
        self.load(name, body.get("keep_alive"))
        if chat:
            messages = body.get("messages") or []
            if not isinstance(messages, list):
                self.send_json(400, {"error": "messages must be a list"})
                return
            text = " ".join(str(m.get("content", "")) for m in messages if isinstance(m, dict))
            empty = not messages
        else:
            text = str(body.get("prompt") or "")
            empty = not text
        base = {"model": body.get("model") or name, "created_at": now_iso()}
        if empty:  # Ollama's "load the model" request
            reply = {**base, "done": True, "done_reason": "load"}
            reply.update({"message": {"role": "assistant", "content": ""}} if chat else {"response": ""})
            self.send_json(200, reply)
            return
        options = body.get("options") or {}
        limit = options.get("num_predict") if isinstance(options, dict) else None
        count = NATURAL_LENGTH if not isinstance(limit, int) or limit < 0 else min(limit, NATURAL_LENGTH)
        reason = "stop" if count == NATURAL_LENGTH else "length"
        prompt_tokens = hc.count_tokens(text) + (4 * len(body.get("messages") or []) if chat else 0)
        out = hc.words(count)
        pieces = [w + (" " if i < count - 1 else "") for i, w in enumerate(out)]
        delay = self.ollama.token_seconds

        def part(piece: str, done: bool) -> dict[str, Any]:
            item: dict[str, Any] = {**base, "created_at": now_iso()}
            if chat:
                item["message"] = {"role": "assistant", "content": piece}
            else:
                item["response"] = piece
            item["done"] = done
            if done:
                total = time.monotonic_ns() - start
                item.update({"done_reason": reason, "total_duration": total, "load_duration": 1_000_000,
                             "prompt_eval_count": prompt_tokens, "prompt_eval_duration": 2_000_000,
                             "eval_count": count, "eval_duration": max(1, total - 3_000_000)})
                if not chat:
                    item["context"] = list(range(1, prompt_tokens + count + 1))
            return item

        if body.get("stream", True):
            def stream() -> Iterator[bytes]:
                for piece in pieces:
                    time.sleep(delay)
                    yield json.dumps(part(piece, False)).encode() + b"\n"
                yield json.dumps(part("", True)).encode() + b"\n"
            self.send_stream("application/x-ndjson", stream())
        else:
            time.sleep(delay * count)
            self.send_json(200, part("".join(pieces), True))

    def openai(self, chat: bool) -> None:
        body = self.read_json()
        if body is None:
            return
        name = body.get("model")
        if not isinstance(name, str) or self.ollama.models.find(name) is None:
            self.send_json(404, hc.OpenAIError(404, f"model \"{name}\" not found, try pulling it first",
                                               "api_error").body())
            return
        self.load(name, None)
        try:
            whole, stream = hc.openai_generate(body, chat, name, 1 << 20, self.ollama.token_seconds)
        except hc.OpenAIError as exc:
            self.send_json(exc.status, exc.body())
            return
        if whole is not None:
            self.send_json(200, whole)
        else:
            assert stream is not None
            self.send_stream("text/event-stream", stream)


    def completions(self) -> None:
        """/v1/completions as Ollama's OpenAI middleware answers it (see the module docstring)."""
        body = self.read_json()
        if body is None:
            return
        prompt = body.get("prompt")
        if prompt is not None and not isinstance(prompt, str):
            message = (f"json: cannot unmarshal {GO_JSON_KINDS.get(type(prompt), 'value')} into Go struct field "
                       "CompletionRequest.prompt of type string")
            self.send_json(400, {"error": {"message": message, "type": "invalid_request_error", "param": None,
                                           "code": None}})
            return
        name = body.get("model")
        if not isinstance(name, str) or self.ollama.models.find(name) is None:
            self.send_json(404, {"error": {"message": f"model '{name}' not found", "type": "not_found_error",
                                           "param": None, "code": None}})
            return
        self.load(name, None)
        limit = body.get("max_tokens")
        natural = self.ollama.natural_tokens
        count = natural if not isinstance(limit, int) or limit < 0 else min(limit, natural)
        reason = "length" if count < natural else "stop"
        prompt_tokens = hc.count_tokens(prompt or "") + TEMPLATE_TOKENS
        pieces = [w + " " for w in hc.words(count)]
        cid, created = f"cmpl-{int(time.time() * 1000) % 999}", int(time.time())
        options = body.get("stream_options")
        usage_asked = isinstance(options, dict) and bool(options.get("include_usage"))
        usage = {"prompt_tokens": prompt_tokens, "completion_tokens": count, "total_tokens": prompt_tokens + count}

        def chunk(text: str, finish: str | None) -> dict[str, Any]:
            return {"id": cid, "object": "text_completion", "created": created, "model": name,
                    "system_fingerprint": "fp_ollama",
                    "choices": [{"text": text, "index": 0, "finish_reason": finish}]}

        def generated() -> Iterator[str]:
            with self.ollama.slots:  # beyond OLLAMA_NUM_PARALLEL, a request waits its turn
                for piece, _ in zip(pieces, self.ollama.pace.tokens(prompt_tokens, count), strict=True):
                    yield piece

        if not body.get("stream"):
            text = "".join(generated())
            self.send_json(200, {**chunk(text, reason), "usage": usage})
            return

        def stream() -> Iterator[bytes]:
            zero = {"usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}} if usage_asked else {}
            for piece in generated():
                yield hc.sse({**chunk(piece, None), **zero})
            yield hc.sse({**chunk("", reason), **zero})
            if usage_asked:
                yield hc.sse({**chunk("", reason), "choices": [], "usage": usage})
            yield b"data: [DONE]\n\n"

        self.send_stream("text/event-stream", stream())


def models_dir() -> str:
    return os.environ.get("OLLAMA_MODELS") or hc.host_path("/root/.ollama/models")


def make_server(host: str, port: int, models: str, token_seconds: float = 0.002,
                pull_seconds: float = 0.2, env: dict[str, str] | None = None) -> OllamaHTTPServer:
    """The API server on host:port (0 picks a port) over the models directory, not yet serving; `env`
    (default: the process's) gives OLLAMA_NUM_PARALLEL and the stand-in's pace knobs."""
    env = dict(os.environ) if env is None else env
    server = OllamaHTTPServer((host, port), OllamaHandler)
    server.models = Models(models)
    server.token_seconds = token_seconds
    server.pull_seconds = pull_seconds
    server.pace = hc.Pace.from_env(hc.Pace(token_seconds), env)
    server.slots = threading.Semaphore(max(1, int(hc.env_float("OLLAMA_NUM_PARALLEL", 1, env))))
    server.natural_tokens = max(1, int(hc.env_float("STANDIN_NATURAL_TOKENS", NATURAL_LENGTH, env)))
    return server


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] != ["serve"]:
        hc.log(PROG, f"the stand-in runs only `ollama serve` (got `ollama {' '.join(args)}`)")
        return 1
    host, port = listen_address(os.environ.get("OLLAMA_HOST"))
    models = models_dir()
    os.makedirs(models, exist_ok=True)
    hc.log(PROG, f"models in {models}")
    try:
        server = make_server(host, port, models, hc.env_float("STANDIN_TOKEN_SECONDS", 0.002),
                             hc.env_float("STANDIN_PULL_SECONDS", 0.2))
    except OSError as exc:
        hc.log(PROG, f"Error: listen tcp {host}:{port}: {exc}")
        return 1
    return hc.serve(server, PROG)


if __name__ == "__main__":
    sys.exit(main())
