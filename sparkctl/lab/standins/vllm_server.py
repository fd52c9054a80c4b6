#!/usr/bin/python3
"""Stand-in for `vllm serve` (the entrypoint of vllm/vllm-openai images), for lab nodes without a GPU.

It takes vLLM's command line and answers vLLM's OpenAI-compatible HTTP API: `/health`, `/v1/models`,
`/v1/completions`, `/v1/chat/completions` (streamed or not, with usage), closed until the "weights are
loaded" (STANDIN_LOAD_SECONDS). It also plays vLLM's multi-node start without Ray: rank 0 listens on
--master-addr:--master-port and opens its HTTP port only once every `--headless` rank has connected
and said hello; a rank whose connection drops kills the engine, so `/health` turns 503 naming the rank
and the master address. That is what lets lab tests see a cluster come up, and see why it doesn't
(a pulled cable leaves rank 0 logging what it is waiting for).

Tokens come at the pace of a batching engine (http_common.Pace): a first token after
STANDIN_FIRST_TOKEN_SECONDS (0.02) plus STANDIN_PREFILL_TOKEN_SECONDS (0.00001) per prompt token,
then one per step of STANDIN_TOKEN_SECONDS (0.002) plus STANDIN_SEQUENCE_SECONDS (0.0005) for every
other running request: 500 tokens/s for one request, about 1900 tokens/s shared by 64, so a
concurrency sweep shows a curve that levels off. It does not imitate TP or PP, nor a real GPU's
figures: it is there to prove the measuring tool and the plumbing.

Other knobs (environment): STANDIN_LOAD_SECONDS (1), STANDIN_GPUS_PER_NODE (1, like a Spark),
STANDIN_HEARTBEAT_SECONDS (1), VLLM_HOST_IP (a headless rank connects from that address, as vLLM's
processes bind to it).
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import threading
import time
from collections.abc import Sequence
from typing import cast

if __package__:
    from . import http_common as hc
else:  # run by path on a node: the sibling module sits next to this file
    sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))
    import http_common as hc  # type: ignore[import-not-found, no-redef]

PROG = "vllm (sparkctl lab stand-in)"
HELLO = "SPARKCTL-STANDIN-VLLM"
PACE = hc.Pace(token_seconds=0.002, sequence_seconds=0.0005, first_token_seconds=0.02,
               prefill_token_seconds=0.00001)
"""The stand-in's pace unless the environment says otherwise (see the module docstring)."""


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """vLLM's serve flags that matter here; every other flag is accepted and ignored, as a real one
    (quantization, kv-cache sizing, ...) would change nothing a stand-in can show."""
    p = argparse.ArgumentParser(prog="vllm serve", add_help=True)
    p.add_argument("model", nargs="?")
    p.add_argument("--model", dest="model_flag")
    p.add_argument("--host", default=None)
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--served-model-name", nargs="+", default=None)
    p.add_argument("--tensor-parallel-size", "-tp", type=int, default=1)
    p.add_argument("--pipeline-parallel-size", "-pp", type=int, default=1)
    p.add_argument("--nnodes", type=int, default=1)
    p.add_argument("--node-rank", type=int, default=0)
    p.add_argument("--master-addr", default="127.0.0.1")
    p.add_argument("--master-port", type=int, default=29501)
    p.add_argument("--headless", action="store_true")
    p.add_argument("--gpu-memory-utilization", type=float, default=0.9)
    p.add_argument("--max-model-len", type=int, default=8192)
    args, _ignored = p.parse_known_args(list(argv))
    args.model = args.model or args.model_flag
    if not args.model:
        p.error("a model is required: vllm serve MODEL")
    if not 0 < args.gpu_memory_utilization <= 1:
        p.error(f"--gpu-memory-utilization must be in (0, 1], got {args.gpu_memory_utilization}")
    args.served = args.served_model_name or [args.model]
    return args


class Engine:
    """What the API server knows of the engine: the model it serves, and whether it died (why)."""

    def __init__(self, served: list[str], max_model_len: int, pace: hc.Pace | float) -> None:
        self.served = served
        self.max_model_len = max_model_len
        self.pace = pace if isinstance(pace, hc.Pace) else hc.Pace(pace)
        self.created = int(time.time())
        self.dead: str | None = None
        self.lock = threading.Lock()
        self.running = 0
        self.prompt_tokens = 0
        self.generation_tokens = 0

    def fail(self, reason: str) -> None:
        with self.lock:
            if self.dead is None:
                self.dead = reason
                hc.log(PROG, f"EngineDeadError: {reason}")


class VllmHTTPServer(hc.StandinHTTPServer):
    engine: Engine


class VllmHandler(hc.Handler):
    """vLLM's OpenAI-compatible routes."""

    prog = PROG

    @property
    def engine(self) -> Engine:
        return cast(VllmHTTPServer, self.server).engine

    def error(self, exc: hc.OpenAIError) -> None:
        self.send_json(exc.status, exc.body())

    def route(self, method: str, path: str) -> None:
        engine = self.engine
        if path == "/health" and method in ("GET", "HEAD"):
            if engine.dead:
                self.error(hc.OpenAIError(503, engine.dead, "EngineDeadError"))
            else:
                self.send_bytes(200, b"", "application/json")
        elif path == "/ping" and method in ("GET", "POST"):
            self.send_bytes(503 if engine.dead else 200, b"", "application/json")
        elif path == "/version" and method == "GET":
            self.send_json(200, {"version": "0.0.0+sparkctl.lab.standin"})
        elif path == "/v1/models" and method == "GET":
            self.send_json(200, {"object": "list", "data": [
                {"id": name, "object": "model", "created": engine.created, "owned_by": "vllm",
                 "root": engine.served[0], "parent": None, "max_model_len": engine.max_model_len,
                 "permission": []} for name in engine.served]})
        elif path == "/metrics" and method == "GET":
            name = engine.served[0]
            self.send_text(200, "".join(
                f'{metric}{{model_name="{name}"}} {value}\n' for metric, value in (
                    ("vllm:num_requests_running", engine.running),
                    ("vllm:prompt_tokens_total", engine.prompt_tokens),
                    ("vllm:generation_tokens_total", engine.generation_tokens))),
                "text/plain; version=0.0.4")
        elif path in ("/v1/completions", "/v1/chat/completions") and method == "POST":
            self.generate(chat=path.endswith("chat/completions"))
        elif path in ("/v1/completions", "/v1/chat/completions", "/v1/models", "/health"):
            self.send_json(405, {"detail": "Method Not Allowed"})
        else:
            self.send_json(404, {"detail": "Not Found"})

    def generate(self, chat: bool) -> None:
        engine = self.engine
        body = self.read_json()
        if body is None:
            return
        if engine.dead:
            self.error(hc.OpenAIError(503, engine.dead, "EngineDeadError"))
            return
        model = body.get("model") or engine.served[0]
        if model not in engine.served:
            self.error(hc.OpenAIError(404, f"The model `{model}` does not exist.", "NotFoundError", "model"))
            return
        try:
            whole, stream = hc.openai_generate(body, chat, str(model), engine.max_model_len, engine.pace)
        except hc.OpenAIError as exc:
            self.error(exc)
            return
        with engine.lock:
            engine.running += 1
        try:
            if whole is not None:
                usage = whole["usage"]
                self.send_json(200, whole)
            else:
                assert stream is not None
                self.send_stream("text/event-stream; charset=utf-8", stream)
                usage = {"prompt_tokens": 0, "completion_tokens": 0}
        finally:
            with engine.lock:
                engine.running -= 1
                engine.prompt_tokens += int(usage.get("prompt_tokens", 0))
                engine.generation_tokens += int(usage.get("completion_tokens", 0))


def make_server(host: str, port: int, engine: Engine) -> VllmHTTPServer:
    """The API server bound to host:port (port 0 picks one), not yet serving."""
    server = VllmHTTPServer((host, port), VllmHandler)
    server.engine = engine
    return server


class Rendezvous:
    """Rank 0's side of the multi-node start: a TCP listener on the master address that every
    headless rank connects to, says hello on, and then keeps alive with heartbeats."""

    def __init__(self, args: argparse.Namespace, engine: Engine) -> None:
        self.addr, self.port, self.nnodes = args.master_addr, args.master_port, args.nnodes
        self.model = args.model
        self.engine = engine
        self.ranks: dict[int, str] = {}
        self.all_joined = False
        self.cond = threading.Condition()
        self.timeout = 3 * hc.env_float("STANDIN_HEARTBEAT_SECONDS", 1.0) + 2
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((self.addr, self.port))  # rank 0's own address: an error here is a config error
        self.sock.listen(16)
        threading.Thread(target=self.accept_loop, daemon=True).start()

    @property
    def where(self) -> str:
        return f"{self.addr}:{self.port}"

    def accept_loop(self) -> None:
        while True:
            try:
                conn, peer = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.handle, args=(conn, peer[0]), daemon=True).start()

    def handle(self, conn: socket.socket, peer: str) -> None:
        conn.settimeout(self.timeout)
        reader = conn.makefile("r", encoding="utf-8", newline="\n")
        try:
            line = reader.readline()
        except OSError:
            conn.close()
            return
        fields = dict(f.split("=", 1) for f in line.split()[1:] if "=" in f)
        problem = None
        rank = -1
        if not line.startswith(HELLO):
            problem = "not a vLLM rank (bad handshake)"
        else:
            rank = int(fields.get("rank", "-1")) if fields.get("rank", "").isdigit() else -1
            if fields.get("nnodes") != str(self.nnodes):
                problem = f"rank says --nnodes {fields.get('nnodes')}, rank 0 has --nnodes {self.nnodes}"
            elif not 1 <= rank < self.nnodes:
                problem = f"rank {fields.get('rank')} is outside 1..{self.nnodes - 1}"
            elif fields.get("model") != self.model:
                problem = f"rank {rank} serves {fields.get('model')}, rank 0 serves {self.model}"
            elif self.engine.dead:
                problem = "the engine on rank 0 is dead; restart rank 0"
            else:
                with self.cond:
                    if rank in self.ranks:
                        problem = f"rank {rank} is already connected from {self.ranks[rank]}"
                    else:  # said before rank 0 can go on, so its log has it before the port opens
                        hc.log(PROG, f"rank {rank} connected from {peer} to {self.where}")
                        self.ranks[rank] = peer
                        self.cond.notify_all()
        if problem:
            hc.log(PROG, f"refused a rank from {peer}: {problem}")
            try:
                conn.sendall(f"ERR {problem}\n".encode())
            except OSError:
                pass
            conn.close()
            return
        reason = "connection closed"
        try:
            conn.sendall(b"OK\n")
            while True:
                beat = reader.readline()
                if not beat:
                    break
                conn.sendall(b"PONG\n")
        except TimeoutError:
            reason = f"no heartbeat for {self.timeout:.0f} s"
        except OSError as exc:
            reason = str(exc) or type(exc).__name__
        conn.close()
        with self.cond:
            self.ranks.pop(rank, None)
            joined = self.all_joined
        if joined:
            self.engine.fail(f"rank {rank} ({peer}) lost its connection to the master at {self.where} "
                             f"({reason}); restart the service on every node")
        else:
            hc.log(PROG, f"rank {rank} ({peer}) left before all ranks joined ({reason})")

    def wait_for_ranks(self) -> None:
        """Block until ranks 1..N-1 are all connected, saying every few seconds what is missing."""
        want = self.nnodes - 1
        with self.cond:
            last_said = -1.0
            while len(self.ranks) < want:
                now = time.monotonic()
                if now - last_said >= 5:
                    missing = sorted(set(range(1, self.nnodes)) - set(self.ranks))
                    hc.log(PROG, f"waiting for {want - len(self.ranks)} of {want} ranks on {self.where} "
                                 f"(missing rank {', '.join(map(str, missing))})")
                    last_said = now
                self.cond.wait(0.2)
            self.all_joined = True
        hc.log(PROG, f"all {self.nnodes} ranks connected on {self.where}")


def run_headless(args: argparse.Namespace) -> int:
    """A rank > 0: no HTTP; connect to the master until it answers, then heartbeat until it goes."""
    beat = hc.env_float("STANDIN_HEARTBEAT_SECONDS", 1.0)
    own = os.environ.get("VLLM_HOST_IP", "")
    where = f"{args.master_addr}:{args.master_port}"
    hello = f"{HELLO} rank={args.node_rank} nnodes={args.nnodes} model={args.model}\n".encode()
    attempt = 0
    while True:
        attempt += 1
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.settimeout(3 * beat + 2)
        try:
            if own:
                sock.bind((own, 0))
            sock.connect((args.master_addr, args.master_port))
            sock.sendall(hello)
            reader = sock.makefile("r", encoding="utf-8", newline="\n")
            answer = reader.readline().strip()
            if answer != "OK":
                raise ConnectionError(answer.removeprefix("ERR ") or "master closed the connection")
            hc.log(PROG, f"rank {args.node_rank} joined the master at {where}"
                         f"{f' from {own}' if own else ''}; serving headless")
            attempt = 0
            try:
                while True:
                    sock.sendall(b"PING\n")
                    if not reader.readline():
                        raise ConnectionError("the master closed the connection")
                    hc.sleep_interruptibly(beat)
            except OSError as exc:
                hc.log(PROG, f"rank {args.node_rank} lost the master at {where}: {exc or type(exc).__name__}; "
                             "reconnecting")
        except OSError as exc:
            if attempt <= 1 or attempt % 10 == 0:
                source = f" from VLLM_HOST_IP {own}" if own else ""
                hc.log(PROG, f"rank {args.node_rank}: cannot reach the master at {where}{source}: "
                             f"{exc or type(exc).__name__}; retrying")
        finally:
            sock.close()
        hc.sleep_interruptibly(min(beat, 1.0))


def prepare_cache(model: str) -> bool:
    """Say where the weights come from; a local model path must exist (on the host side of -v)."""
    if model.startswith("/"):
        path = hc.host_path(model)
        if not os.path.exists(path):
            hc.log(PROG, f"OSError: model path {model} does not exist (host path {path})")
            return False
        hc.log(PROG, f"loading weights of {model} from {path}")
        return True
    cache = hc.host_path(os.environ.get("HF_HOME") or "/root/.cache/huggingface")
    hub = os.path.join(cache, "hub", "models--" + model.replace("/", "--"))
    try:  # what a download would leave, so a test can see the cache volume was mapped (docker.py only)
        if os.environ.get("STANDIN_ROOT"):
            os.makedirs(hub, exist_ok=True)
    except OSError as exc:
        hc.log(PROG, f"cannot write the Hugging Face cache {cache}: {exc}")
    hc.log(PROG, f"loading weights of {model} (Hugging Face cache {cache})")
    return True


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    hc.exit_on_sigterm(PROG)
    world = args.tensor_parallel_size * args.pipeline_parallel_size
    gpus = int(hc.env_float("STANDIN_GPUS_PER_NODE", 1)) * max(1, args.nnodes)
    if world > gpus:
        hc.log(PROG, f"ValueError: World size ({world}) is larger than the number of available GPUs "
                     f"({gpus}) across {args.nnodes} node(s): tensor_parallel_size "
                     f"{args.tensor_parallel_size} x pipeline_parallel_size {args.pipeline_parallel_size}")
        return 1
    if args.nnodes > 1 and not 0 <= args.node_rank < args.nnodes:
        hc.log(PROG, f"ValueError: --node-rank {args.node_rank} is outside 0..{args.nnodes - 1}")
        return 1
    if args.headless:
        if args.node_rank == 0 or args.nnodes < 2:
            hc.log(PROG, "ValueError: --headless is for ranks 1.. of a --nnodes > 1 deployment")
            return 1
        return run_headless(args)
    if args.node_rank != 0:
        hc.log(PROG, f"ValueError: rank {args.node_rank} must run --headless; only rank 0 serves the API")
        return 1
    engine = Engine(args.served, args.max_model_len, hc.Pace.from_env(PACE))
    hc.log(PROG, f"vllm serve {args.model} as {', '.join(args.served)}: tp {args.tensor_parallel_size}, "
                 f"pp {args.pipeline_parallel_size}, {args.nnodes} node(s)")
    if args.nnodes > 1:
        try:
            rendezvous = Rendezvous(args, engine)
        except OSError as exc:
            hc.log(PROG, f"cannot listen on the master address {args.master_addr}:{args.master_port}: {exc}")
            return 1
        rendezvous.wait_for_ranks()
    if not prepare_cache(args.model):
        return 1
    hc.sleep_interruptibly(hc.env_float("STANDIN_LOAD_SECONDS", 1.0))
    try:
        server = make_server(args.host or "0.0.0.0", args.port, engine)
    except OSError as exc:
        hc.log(PROG, f"cannot listen on {args.host or '0.0.0.0'}:{args.port}: {exc}")
        return 1
    hc.log(PROG, "weights loaded; application startup complete")
    return hc.serve(server, PROG)


if __name__ == "__main__":
    sys.exit(main())
