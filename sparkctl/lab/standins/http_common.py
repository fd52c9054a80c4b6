#!/usr/bin/python3
"""What the lab's stand-in servers share: an HTTP server that stops on SIGTERM, JSON and streaming
replies, deterministic "generated" text, token counting, and the container-to-host path mapping.

The stand-ins stand for GPU servers the lab cannot run; they must behave like those servers at the
HTTP level (status codes, bodies, streaming framing) because real clients and sparkctl's own health
checks talk to them. Standard library only: this runs on lab nodes without sparkctl installed.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# What the stand-ins "generate": fixed words, so tests and benchmarks are reproducible.
WORDS = [
    "the", "quick", "stand-in", "model", "answers", "every", "prompt", "with", "these", "same", "words",
    "so", "that", "tests", "can", "count", "tokens", "and", "clients", "can", "read", "a", "stream",
    "without", "a", "GPU", "in", "the", "lab",
]

JsonObject = dict[str, Any]


def log(prog: str, message: str) -> None:
    """Write one line to stderr, flushed: under systemd it lands in the unit's journal at once."""
    sys.stderr.write(f"{prog}: {message}\n")
    sys.stderr.flush()


def env_float(name: str, default: float, env: Mapping[str, str] | None = None) -> float:
    """A float knob from the environment; a bad value falls back to the default rather than crash."""
    value = (os.environ if env is None else env).get(name, "")
    try:
        return float(value) if value else default
    except ValueError:
        return default


def count_tokens(text: str) -> int:
    """Tokens of a text as the stand-ins count them: whitespace-separated words (at least one)."""
    return max(1, len(text.split()))


def words(count: int, offset: int = 0) -> list[str]:
    """`count` deterministic words, each one token, starting `offset` words into the sentence."""
    return [WORDS[(offset + i) % len(WORDS)] for i in range(count)]


def new_id(prefix: str) -> str:
    """An id shaped like vLLM's and OpenAI's (`cmpl-…`, `chatcmpl-…`)."""
    return f"{prefix}-{uuid.uuid4().hex}"


def volumes(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """Container path → host path for the `-v` mounts docker.py passed (STANDIN_VOLUMES, JSON)."""
    raw = (os.environ if env is None else env).get("STANDIN_VOLUMES", "")
    try:
        mapping = json.loads(raw) if raw else {}
    except ValueError:
        return {}
    if not isinstance(mapping, dict):
        return {}
    return {str(k): str(v) for k, v in mapping.items()}


def host_path(container_path: str, env: Mapping[str, str] | None = None) -> str:
    """Where a path inside the "container" really is on this node.

    A stand-in server runs on the node itself, not in a container, so a path the image would use
    (`/root/.cache/huggingface`) must be rewritten: under the longest `-v` mount that covers it, or
    else under the container's scratch root (STANDIN_ROOT, made fresh by `docker run`, like a new
    container's writable layer). Outside docker.py (tests) neither is set and the path is kept.
    """
    env = os.environ if env is None else env
    path = os.path.normpath(container_path)
    mounts = {os.path.normpath(inside): host for inside, host in volumes(env).items()}
    covering = [m for m in mounts if path == m or path.startswith(m.rstrip("/") + "/")]
    if covering:
        best = max(covering, key=len)
        rest = os.path.relpath(path, best)
        return mounts[best] if rest == "." else os.path.join(mounts[best], rest)
    root = env.get("STANDIN_ROOT", "")
    return os.path.join(root, path.lstrip("/")) if root else path


class StandinHTTPServer(ThreadingHTTPServer):
    """A threading HTTP server whose request threads never hold up a stop.

    Its listen backlog is uvicorn's (2048), not socketserver's 5: a benchmark opening 128 connections
    at once must not see SYNs dropped that the real server would have queued.
    """

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 2048

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hung up mid-reply (a benchmark stopping, a test ending) is routine, as it is for
        uvicorn: no traceback for it; anything else is printed as socketserver does."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class Handler(BaseHTTPRequestHandler):
    """Request handler with the reply helpers the stand-ins need; subclasses implement `route`.

    HTTP/1.1 with Content-Length (or chunked for streams) so clients that keep connections alive,
    such as httpx under the openai and ollama packages, behave as they do against the real servers.
    """

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    """TCP_NODELAY, as asyncio (under uvicorn) sets it: each streamed token leaves at once instead of
    waiting for the client's delayed ACK of the previous write."""
    server_version = "sparkctl-lab-standin"
    prog = "standin"

    def route(self, method: str, path: str) -> None:
        """Answer one request; the default is FastAPI's 404, which vLLM and the TTS servers share."""
        self.send_json(404, {"detail": "Not Found"})

    def do_GET(self) -> None:
        self.route("GET", self.path.split("?", 1)[0])

    def do_HEAD(self) -> None:
        self.route("HEAD", self.path.split("?", 1)[0])

    def do_POST(self) -> None:
        self.route("POST", self.path.split("?", 1)[0])

    def do_DELETE(self) -> None:
        self.route("DELETE", self.path.split("?", 1)[0])

    def log_message(self, format: str, *args: Any) -> None:
        log(self.prog, f"{self.address_string()} {format % args}")

    def read_body(self) -> bytes:
        """The request body (Content-Length; the clients used here never send chunked bodies)."""
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def read_json(self) -> JsonObject | None:
        """The body as a JSON object, or None after answering 400 as the real servers would."""
        body = self.read_body()
        try:
            data = json.loads(body) if body else {}
        except ValueError as exc:
            self.send_json(400, {"error": f"invalid JSON body: {exc}"})
            return None
        if not isinstance(data, dict):
            self.send_json(400, {"error": "the body must be a JSON object"})
            return None
        return data

    def send_bytes(self, status: int, body: bytes, content_type: str) -> None:
        """A whole reply with its length, so the connection can be reused."""
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def send_json(self, status: int, obj: object) -> None:
        self.send_bytes(status, json.dumps(obj).encode(), "application/json")

    def send_text(self, status: int, text: str, content_type: str = "text/plain; charset=utf-8") -> None:
        self.send_bytes(status, text.encode(), content_type)

    def send_stream(self, content_type: str, pieces: Iterable[bytes]) -> None:
        """A streamed reply in chunked transfer encoding, flushed piece by piece like the real servers."""
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        try:
            for piece in pieces:
                if piece:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                    self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client went away mid-stream, as clients do


def serve(server: ThreadingHTTPServer, prog: str) -> int:
    """Serve until SIGTERM or SIGINT, then stop at once and return 0 (what `systemctl stop` wants).

    The handler only asks another thread to shut the server down: shutdown() waits for
    serve_forever() to return, so calling it from the signal handler in the serving thread would
    deadlock.
    """

    def stop(signum: int, _frame: object) -> None:
        log(prog, f"got {signal.Signals(signum).name}, stopping")
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    host, port = server.server_address[:2]
    log(prog, f"listening on http://{host!s}:{port}")
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
    return 0


def exit_on_sigterm(prog: str) -> None:
    """Before a server has its port (loading, waiting for ranks), SIGTERM must still end it at once."""

    def stop(signum: int, _frame: object) -> None:
        log(prog, f"got {signal.Signals(signum).name} before serving, exiting")
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)


def sleep_interruptibly(seconds: float) -> None:
    """time.sleep in small steps, so a signal handler that raises is honoured promptly."""
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        time.sleep(min(left, 0.1))


def sse(obj: object) -> bytes:
    """One server-sent event as vLLM and OpenAI frame them."""
    return b"data: " + json.dumps(obj).encode() + b"\n\n"


# --- the OpenAI-compatible completion APIs (vLLM's own, Ollama's /v1) ---------------------------------


class OpenAIError(Exception):
    """An error reply in the OpenAI shape: {"error": {"message", "type", "param", "code"}}."""

    def __init__(self, status: int, message: str, kind: str, param: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.kind = kind
        self.param = param

    def body(self) -> JsonObject:
        return {"error": {"message": str(self), "type": self.kind, "param": self.param, "code": self.status}}


def _token_ids(items: list[Any]) -> bool:
    """A list of token ids as vLLM's CompletionRequest takes them: integers >= 0 (a negative one is a 400)."""
    if not all(isinstance(t, int) and not isinstance(t, bool) for t in items):
        return False
    if any(t < 0 for t in items):
        raise OpenAIError(400, "prompt: token ids must be greater than or equal to 0", "BadRequestError", "prompt")
    return True


def prompts_of(prompt: object) -> list[int]:
    """Token counts of a completions `prompt`: a string, a list of token ids, or a batch of either."""
    if isinstance(prompt, str):
        return [count_tokens(prompt)]
    if isinstance(prompt, list) and prompt:
        if _token_ids(prompt):
            return [len(prompt)]
        counts: list[int] = []
        for item in prompt:
            if isinstance(item, str):
                counts.append(count_tokens(item))
            elif isinstance(item, list) and item and _token_ids(item):
                counts.append(len(item))
            else:
                raise OpenAIError(400, "prompt must be a string, a list of token ids, or a list of those",
                                  "BadRequestError", "prompt")
        return counts
    raise OpenAIError(400, "prompt must be a string, a list of token ids, or a list of those",
                      "BadRequestError", "prompt")


def chat_prompt_tokens(messages: object) -> int:
    """Prompt tokens of a chat: the words of every message plus a few per message for the template."""
    if not isinstance(messages, list) or not messages:
        raise OpenAIError(400, "messages must be a non-empty list", "BadRequestError", "messages")
    total = 0
    for message in messages:
        if not isinstance(message, dict) or "role" not in message:
            raise OpenAIError(400, "each message needs a role", "BadRequestError", "messages")
        content = message.get("content") or ""
        if isinstance(content, list):  # content parts: count the text ones
            content = " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
        total += len(str(content).split()) + 4
    return total


class Completion:
    """How one request is answered: how many tokens, why it stops, and its words."""

    NATURAL_LENGTH = 24  # tokens a stand-in "wants" to say before its end-of-sequence

    def __init__(self, body: JsonObject, prompt_tokens: int, max_model_len: int, default_max: int) -> None:
        limit = body.get("max_completion_tokens", body.get("max_tokens"))
        if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 1):
            raise OpenAIError(400, "max_tokens must be at least 1", "BadRequestError", "max_tokens")
        if prompt_tokens >= max_model_len:
            raise OpenAIError(400, f"This model's maximum context length is {max_model_len} tokens. However, "
                              f"your request has {prompt_tokens} input tokens.", "BadRequestError", "prompt")
        room = max_model_len - prompt_tokens
        if limit is not None and limit > room:
            raise OpenAIError(400, f"'max_tokens' is too large: {limit}. This model's maximum context length "
                              f"is {max_model_len} tokens and your request has {prompt_tokens} input tokens "
                              f"({limit} > {max_model_len} - {prompt_tokens}).", "BadRequestError", "max_tokens")
        wanted = min(room, limit if limit is not None else default_max)
        if body.get("ignore_eos"):  # vLLM's extension `vllm bench serve --ignore-eos` relies on
            self.tokens, self.finish_reason = wanted, "length"
        else:
            self.tokens = min(wanted, self.NATURAL_LENGTH)
            self.finish_reason = "stop" if self.tokens == self.NATURAL_LENGTH else "length"
        self.prompt_tokens = prompt_tokens

    def pieces(self) -> list[str]:
        """The generated text token by token (each word carries its following space but the last)."""
        out = words(self.tokens)
        return [w + (" " if i < len(out) - 1 else "") for i, w in enumerate(out)]

    def usage(self) -> JsonObject:
        return {"prompt_tokens": self.prompt_tokens, "completion_tokens": self.tokens,
                "total_tokens": self.prompt_tokens + self.tokens}


class Pace:
    """How fast a stand-in engine answers, as a batching engine does: every running request advances
    one token per engine step, and a step takes longer the more requests share it.

    A request first waits `first_token_seconds` plus `prefill_token_seconds` per prompt token (its
    prefill), then gets one token per step of `token_seconds + sequence_seconds * (running - 1)`. So
    one request streams at 1 / token_seconds tokens/s, and N at once share
    N / (token_seconds + sequence_seconds * (N - 1)): the aggregate rises with concurrency and levels
    off at 1 / sequence_seconds, the shape of a memory-bound GPU engine whose every step reads the
    weights once and each sequence's KV cache. Sleeps aim at deadlines, so the time spent writing a
    token does not slow the next one.
    """

    def __init__(self, token_seconds: float, sequence_seconds: float = 0.0, first_token_seconds: float = 0.0,
                 prefill_token_seconds: float = 0.0) -> None:
        self.token_seconds = token_seconds
        self.sequence_seconds = sequence_seconds
        self.first_token_seconds = first_token_seconds
        self.prefill_token_seconds = prefill_token_seconds
        self.running = 0
        self.lock = threading.Lock()

    @classmethod
    def from_env(cls, default: Pace, env: Mapping[str, str] | None = None) -> Pace:
        """`default`, each figure overridden by STANDIN_TOKEN_SECONDS, STANDIN_SEQUENCE_SECONDS,
        STANDIN_FIRST_TOKEN_SECONDS and STANDIN_PREFILL_TOKEN_SECONDS where set."""
        return cls(env_float("STANDIN_TOKEN_SECONDS", default.token_seconds, env),
                   env_float("STANDIN_SEQUENCE_SECONDS", default.sequence_seconds, env),
                   env_float("STANDIN_FIRST_TOKEN_SECONDS", default.first_token_seconds, env),
                   env_float("STANDIN_PREFILL_TOKEN_SECONDS", default.prefill_token_seconds, env))

    def step(self) -> float:
        with self.lock:
            return self.token_seconds + self.sequence_seconds * max(self.running - 1, 0)

    def first_token(self, prompt_tokens: int) -> float:
        return self.first_token_seconds + self.prefill_token_seconds * prompt_tokens

    def tokens(self, prompt_tokens: int, count: int) -> Iterator[None]:
        """Yield once per generated token, at the time the engine would have made it; counts as running
        from the first wait to the last token (or until the client goes away)."""
        with self.lock:
            self.running += 1
        try:
            due = time.monotonic() + self.first_token(prompt_tokens)
            for index in range(count):
                if index:
                    due += self.step()
                left = due - time.monotonic()
                if left > 0:
                    time.sleep(left)
                yield None
        finally:
            with self.lock:
                self.running -= 1


def openai_generate(
    body: JsonObject, chat: bool, model: str, max_model_len: int, pace: Pace | float
) -> tuple[JsonObject | None, Iterator[bytes] | None]:
    """Answer /v1/completions or /v1/chat/completions: a JSON body, or an SSE stream when asked.

    Raises OpenAIError for a request vLLM would refuse. Streams end with `data: [DONE]`; with
    `stream_options.include_usage` a last chunk has empty choices and the usage, as vLLM sends it.
    A float `pace` is a fixed time per token, whatever else runs.
    """
    pace = pace if isinstance(pace, Pace) else Pace(pace)
    created = int(time.time())
    if body.get("stream_options") is not None and not body.get("stream"):
        raise OpenAIError(400, "Stream options can only be defined when `stream=True`.", "BadRequestError",
                          "stream_options")
    if chat:
        counts = [chat_prompt_tokens(body.get("messages"))]
    else:
        if "prompt" not in body:
            raise OpenAIError(400, "prompt is required", "BadRequestError", "prompt")
        counts = prompts_of(body["prompt"])
    completions = [Completion(body, n, max_model_len, 512 if chat else 16) for n in counts]
    cid = new_id("chatcmpl" if chat else "cmpl")
    obj = "chat.completion" if chat else "text_completion"
    usage = {
        "prompt_tokens": sum(c.prompt_tokens for c in completions),
        "completion_tokens": sum(c.tokens for c in completions),
    }
    usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
    if not body.get("stream"):
        choices: list[JsonObject] = []
        for i, c in enumerate(completions):
            text = "".join(c.pieces())
            if chat:
                choices.append({"index": i, "message": {"role": "assistant", "content": text,
                                                       "tool_calls": []},
                                "logprobs": None, "finish_reason": c.finish_reason, "stop_reason": None})
            else:
                choices.append({"index": i, "text": text, "logprobs": None,
                                "finish_reason": c.finish_reason, "stop_reason": None})
        longest = max(completions, key=lambda c: c.tokens)
        for _ in pace.tokens(usage["prompt_tokens"], longest.tokens):
            pass
        return {"id": cid, "object": obj, "created": created, "model": model, "choices": choices,
                "usage": usage}, None

    options = body.get("stream_options") or {}
    include_usage = bool(isinstance(options, dict) and options.get("include_usage"))
    chunk_obj = "chat.completion.chunk" if chat else "text_completion"

    def chunk(choices: list[JsonObject]) -> bytes:
        return sse({"id": cid, "object": chunk_obj, "created": created, "model": model, "choices": choices})

    def stream() -> Iterator[bytes]:
        for i, c in enumerate(completions):
            if chat:
                yield chunk([{"index": i, "delta": {"role": "assistant", "content": ""}, "logprobs": None,
                              "finish_reason": None}])
            pieces = c.pieces()
            for n, (piece, _) in enumerate(zip(pieces, pace.tokens(c.prompt_tokens, len(pieces)), strict=True)):
                last = n == len(pieces) - 1
                reason = c.finish_reason if last else None
                if chat:
                    yield chunk([{"index": i, "delta": {"content": piece}, "logprobs": None,
                                  "finish_reason": reason}])
                else:
                    yield chunk([{"index": i, "text": piece, "logprobs": None, "finish_reason": reason,
                                  "stop_reason": None}])
        if include_usage:
            yield sse({"id": cid, "object": chunk_obj, "created": created, "model": model, "choices": [],
                       "usage": usage})
        yield b"data: [DONE]\n\n"

    return None, stream()


if __name__ == "__main__":  # a library for its siblings; run by path it only says so
    print("http_common: shared code of the sparkctl lab stand-in servers; run vllm_server.py, "
          "ollama_server.py, tts_server.py or container_server.py (or docker.py run ...) instead")
