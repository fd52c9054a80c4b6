"""The lab's stand-ins (sparkctl/lab/standins) against the real clients and the contract the units use.

Services deployed in the lab run through these stand-ins, so their faithfulness is what the lab's
service tests rest on: the openai and ollama packages must work against them unchanged, TTS must
return audio a WAV reader accepts, `docker run` must refuse what a Spark's engine would, and a
two-rank vLLM must become healthy only when its worker joins and unhealthy when the worker dies.
Everything listens on 127.0.0.1 only; every server and process started here is stopped.
"""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import wave
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import ollama
import openai
import pytest

from sparkctl.lab.standins import docker, http_common, ollama_server, tts_server, vllm_server

STANDINS = Path(docker.__file__).resolve().parent
DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))
VLLM_IMAGE = "vllm/vllm-openai:gemma4-cu130"


@contextmanager
def serving(server: ThreadingHTTPServer) -> Iterator[str]:
    """Serve in a thread; yield the base URL; always shut down and join."""
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def free_ports(count: int) -> list[int]:
    """Distinct free loopback ports (held open together while chosen, so never the same twice)."""
    socks = [socket.socket() for _ in range(count)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()


def free_port() -> int:
    return free_ports(1)[0]


def get(url: str, body: dict[str, Any] | None = None) -> tuple[int, bytes]:
    """Status and body of a GET (or a JSON POST); (0, b"") while nothing listens."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with DIRECT.open(request, timeout=5) as reply:
            return reply.status, reply.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except OSError:
        return 0, b""


def wait_for(check: Callable[[], bool], seconds: float = 10, what: str = "condition") -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def processes() -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """Start stand-in scripts by path (relative to the package, or absolute), as a node runs them; kill
    whatever is left at the end."""
    started: list[subprocess.Popen[bytes]] = []

    def start(script: str, *args: str, env: dict[str, str] | None = None,
              stderr: Path | None = None) -> subprocess.Popen[bytes]:
        log = open(stderr, "wb") if stderr else None  # noqa: SIM115 - closed once the child has it
        proc = subprocess.Popen([sys.executable, str(STANDINS / script), *args], stdout=subprocess.DEVNULL,
                                stderr=log or subprocess.DEVNULL, env={**os.environ, **(env or {})})
        if log:
            log.close()
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait(5)


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A docker stand-in state directory of our own, with the vLLM image already pulled."""
    root = tmp_path / "state"
    monkeypatch.setenv("STANDIN_STATE_DIR", str(root))
    monkeypatch.setenv("STANDIN_PULL_SECONDS", "0")

    def no_exec(*args: object) -> None:
        raise AssertionError(f"docker.main would have replaced the test process: {args}")

    monkeypatch.setattr(os, "execve", no_exec)  # in-process runs must be refusals
    assert docker.main(["pull", "-q", VLLM_IMAGE]) == 0
    return root


# --- vLLM -------------------------------------------------------------------------------------------


@pytest.fixture
def vllm_url() -> Iterator[str]:
    engine = vllm_server.Engine(["gemma"], max_model_len=256, pace=0)
    with serving(vllm_server.make_server("127.0.0.1", 0, engine)) as url:
        yield url


def test_openai_client_gets_chat_streamed_completion_with_usage_and_models(vllm_url: str) -> None:
    client = openai.OpenAI(base_url=vllm_url + "/v1", api_key="unused", max_retries=0)
    models = client.models.list()
    assert [m.id for m in models.data] == ["gemma"]
    assert models.data[0].owned_by == "vllm"

    chat = client.chat.completions.create(model="gemma", messages=[{"role": "user", "content": "hi"}],
                                          max_tokens=5)
    assert chat.choices[0].message.role == "assistant"
    assert len(chat.choices[0].message.content.split()) == 5  # type: ignore[union-attr]
    assert chat.choices[0].finish_reason == "length"
    assert chat.usage is not None and chat.usage.completion_tokens == 5
    assert chat.usage.total_tokens == chat.usage.prompt_tokens + 5

    # A prompt of token ids, as `vllm bench serve` sends for exact input lengths.
    stream = client.completions.create(model="gemma", prompt=list(range(100)), max_tokens=7, stream=True,
                                       stream_options={"include_usage": True})
    chunks = list(stream)
    text = "".join(c.choices[0].text for c in chunks if c.choices)
    assert len(text.split()) == 7
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (100, 7)

    streamed_chat = client.chat.completions.create(
        model="gemma", messages=[{"role": "user", "content": "hello"}], stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in streamed_chat if c.choices)


def test_vllm_refuses_unknown_model_and_oversized_requests_like_vllm(vllm_url: str) -> None:
    client = openai.OpenAI(base_url=vllm_url + "/v1", api_key="unused", max_retries=0)
    with pytest.raises(openai.NotFoundError, match="does not exist"):
        client.completions.create(model="other", prompt="x")
    with pytest.raises(openai.BadRequestError, match="maximum context length"):
        client.completions.create(model="gemma", prompt="x", max_tokens=1000)
    assert get(vllm_url + "/health") == (200, b"")
    assert get(vllm_url + "/nope")[0] == 404
    with pytest.raises(openai.BadRequestError, match="greater than or equal to 0"):
        client.completions.create(model="gemma", prompt=[1, -2, 3])
    with pytest.raises(openai.BadRequestError, match="stream=True"):
        client.completions.create(model="gemma", prompt=[1, 2], stream_options={"include_usage": True})


def test_vllm_ignore_eos_generates_exactly_max_tokens_as_vllm_bench_asks() -> None:
    """Without ignore_eos the stand-in stops at its natural length, as a model meets its end of sequence."""
    engine = vllm_server.Engine(["gemma"], max_model_len=4096, pace=0)
    with serving(vllm_server.make_server("127.0.0.1", 0, engine)) as url:
        client = openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0)
        natural = client.completions.create(model="gemma", prompt=list(range(10)), max_tokens=100)
        assert natural.choices[0].finish_reason == "stop" and natural.usage is not None
        assert natural.usage.completion_tokens < 100
        stream = client.completions.create(model="gemma", prompt=list(range(10)), max_tokens=100, stream=True,
                                           extra_body={"ignore_eos": True}, stream_options={"include_usage": True})
        chunks = list(stream)
        assert sum(1 for c in chunks if c.choices) == 100
        assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "length"
        assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 100


def test_pace_slows_every_request_as_more_run_at_once() -> None:
    pace = http_common.Pace(token_seconds=0.01, sequence_seconds=0.005, first_token_seconds=0.02,
                            prefill_token_seconds=0.001)
    assert pace.first_token(10) == pytest.approx(0.03) and pace.step() == pytest.approx(0.01)
    first, second = pace.tokens(0, 3), pace.tokens(0, 3)
    next(first)
    first_token_at = time.monotonic()
    next(second)
    assert pace.running == 2 and pace.step() == pytest.approx(0.015)
    list(first)  # its two other tokens are due one step apart from its first: deadlines, not sleeps
    assert time.monotonic() - first_token_at == pytest.approx(2 * 0.015, abs=0.008)
    list(second)
    assert pace.running == 0


def test_two_rank_vllm_is_healthy_only_with_its_worker_and_503_when_it_dies(
        processes: Callable[..., subprocess.Popen[bytes]], tmp_path: Path) -> None:
    master, http = free_ports(2)
    common = ["org/model", "--tensor-parallel-size", "2", "--nnodes", "2", "--master-addr", "127.0.0.1",
              "--master-port", str(master)]
    env = {"STANDIN_LOAD_SECONDS": "0", "STANDIN_HEARTBEAT_SECONDS": "0.2"}
    head_log = tmp_path / "head.log"
    head = processes("vllm_server.py", *common, "--node-rank", "0", "--host", "127.0.0.1", "--port",
                     str(http), env=env, stderr=head_log)
    wait_for(lambda: f"waiting for 1 of 1 ranks on 127.0.0.1:{master}" in head_log.read_text(),
             what="the head to say what it waits for")
    time.sleep(0.3)
    assert get(f"http://127.0.0.1:{http}/health")[0] == 0, "rank 0 must not serve before its worker joins"

    worker = processes("vllm_server.py", *common, "--node-rank", "1", "--headless",
                       env={**env, "VLLM_HOST_IP": "127.0.0.1"})
    wait_for(lambda: get(f"http://127.0.0.1:{http}/health")[0] == 200, what="health after the worker joined")
    assert "rank 1 connected from 127.0.0.1" in head_log.read_text()

    worker.kill()
    worker.wait(5)
    wait_for(lambda: get(f"http://127.0.0.1:{http}/health")[0] == 503, what="503 after the worker died")
    message = json.loads(get(f"http://127.0.0.1:{http}/health")[1])["error"]["message"]
    assert "rank 1" in message and f"127.0.0.1:{master}" in message
    assert head.poll() is None


def test_headless_rank_retries_until_the_master_listens(
        processes: Callable[..., subprocess.Popen[bytes]], tmp_path: Path) -> None:
    master = free_port()
    log = tmp_path / "worker.log"
    processes("vllm_server.py", "m", "--nnodes", "2", "--node-rank", "1", "--headless", "--master-addr",
              "127.0.0.1", "--master-port", str(master), env={"STANDIN_HEARTBEAT_SECONDS": "0.2"}, stderr=log)
    wait_for(lambda: f"cannot reach the master at 127.0.0.1:{master}" in log.read_text(), what="retry log")
    assert vllm_server.main(["m", "--tensor-parallel-size", "2"]) == 1  # TP 2 needs two Sparks


# --- docker ------------------------------------------------------------------------------------------


def test_docker_pull_inspect_and_rm(state: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert docker.main(["pull", "ollama/ollama"]) == 0
    assert "docker.io/ollama/ollama:latest" in capsys.readouterr().out
    assert (state / "images").read_text().splitlines() == [VLLM_IMAGE, "ollama/ollama:latest"]
    assert docker.main(["pull", "ollama/ollama:latest"]) == 0  # again: recorded once
    assert (state / "images").read_text().count("ollama/ollama") == 1
    assert docker.main(["image", "inspect", VLLM_IMAGE]) == 0
    capsys.readouterr()
    assert docker.main(["image", "inspect", "vllm/vllm-openai:other"]) == 1
    assert "Error: No such image: vllm/vllm-openai:other" in capsys.readouterr().err
    assert docker.main(["pull", "example/does-not-exist:1"]) == 1
    assert "manifest unknown" in capsys.readouterr().err
    assert docker.main(["rm", "-f", "never-ran"]) == 0


def without(argv: list[str], flag: str, value: str) -> list[str]:
    """argv less one `flag value` pair."""
    i = next(i for i in range(len(argv) - 1) if argv[i:i + 2] == [flag, value])
    return argv[:i] + argv[i + 2:]


GOOD = ["--rm", "--name", "svc", "--network", "host", "--ipc", "host", "--gpus", "all", "--ulimit",
        "memlock=-1", "--ulimit", "stack=67108864", "--shm-size", "16g", "--label", "sparkctl.kind=vllm"]


@pytest.mark.parametrize(("change", "message"), [
    (lambda a: [*a[:-2], "vllm/vllm-openai:not-pulled", *a[-1:]], "Unable to find image"),
    (lambda a: without(a, "--gpus", "all"), "--gpus all"),
    (lambda a: without(a, "--network", "host"), "--network host"),
    (lambda a: [*a[:-2], "--network", "bridge", *a[-2:]], "--network host"),
    (lambda a: [*a[:-2], "--env-file", "/nonexistent/env", *a[-2:]], "no such file or directory"),
    (lambda a: [*a[:-2], "--env-file", "BADFILE", *a[-2:]], "contains whitespaces"),
    (lambda a: [*a[:-2], "-v", "models:/root/.cache/huggingface", *a[-2:]], "not absolute"),
    (lambda a: [*a[:-2], "--privileged", *a[-2:]], "unknown flag: --privileged"),
    (lambda a: [*a[:-2], "-d", *a[-2:]], "foreground"),
    (lambda a: without(a, "--label", "sparkctl.kind=vllm"), "sparkctl.kind"),
    (lambda a: [*a[:-2], "--ulimit", "memlock", *a[-2:]], "invalid ulimit"),
    (lambda a: [*a[:-2], "--shm-size", "lots", *a[-2:]], "invalid size"),
], ids=["unpulled", "no-gpus", "no-host-network", "bridge", "missing-env-file", "bad-env-file",
        "relative-volume", "unknown-flag", "detached", "no-kind", "bad-ulimit", "bad-shm"])
def test_docker_run_refuses_with_125(state: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                     change: Callable[[list[str]], list[str]], message: str) -> None:
    bad_env = tmp_path / "bad.env"
    bad_env.write_text("GOOD=1\nBAD KEY=2\n")
    argv = [str(bad_env) if a == "BADFILE" else a for a in change([*GOOD, VLLM_IMAGE, "org/model"])]
    assert docker.main(["run", *argv]) == 125
    assert message in capsys.readouterr().err


def test_docker_run_by_path_serves_vllm_and_stops_on_sigterm(
        state: Path, tmp_path: Path, processes: Callable[..., subprocess.Popen[bytes]]) -> None:
    port, models = free_port(), tmp_path / "models"
    env_file = tmp_path / "svc.env"
    env_file.write_text("# fabric settings\n\nNCCL_SOCKET_IFNAME=enp1s0f0np0\n")
    proc = processes("docker.py", "run", *GOOD[:-2], "--device", "/dev/infiniband", "--env-file",
                     str(env_file), "-e", "VLLM_HOST_IP=127.0.0.1", "-v",
                     f"{models}:/root/.cache/huggingface", "--label", "sparkctl.kind=vllm", VLLM_IMAGE,
                     "google/gemma", "--host", "127.0.0.1", "--port", str(port), "--served-model-name",
                     "gemma", "--gpu-memory-utilization", "0.8", "--max-num-seqs", "4",
                     env={"STANDIN_LOAD_SECONDS": "0.3"}, stderr=tmp_path / "svc.log")
    wait_for(lambda: get(f"http://127.0.0.1:{port}/health")[0] == 200, what="vLLM stand-in health")
    assert json.loads(get(f"http://127.0.0.1:{port}/v1/models")[1])["data"][0]["id"] == "gemma"
    assert (models / "hub" / "models--google--gemma").is_dir(), "the HF cache is the host side of -v"
    environ = Path(f"/proc/{proc.pid}/environ").read_bytes().split(b"\0")
    assert b"NCCL_SOCKET_IFNAME=enp1s0f0np0" in environ and b"VLLM_HOST_IP=127.0.0.1" in environ
    assert docker.main(["run", *GOOD, VLLM_IMAGE, "x"]) == 125  # the name is in use
    start = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(5) in (0, 143)
    assert time.monotonic() - start < 2


def test_docker_run_container_gets_env_files_and_connect_urls(
        state: Path, tmp_path: Path, processes: Callable[..., subprocess.Popen[bytes]]) -> None:
    assert docker.main(["pull", "-q", "example/app:1"]) == 0
    port = free_port()
    env_file = tmp_path / "app.env"
    env_file.write_text(f"SPARKCTL_HOST=127.0.0.1\nSPARKCTL_PORT={port}\nLLM_URL=http://10.0.0.1:8000/v1\n"
                        "QUOTED_URL=\"kept\"\nPASSED_URL\nUNSET_URL\n")
    on_path = tmp_path / "bin" / "docker"  # how a node finds it: `docker` on PATH, a link to docker.py
    on_path.parent.mkdir()
    on_path.symlink_to(STANDINS / "docker.py")
    processes(str(on_path), "run", "--rm", "--name", "app", "--network", "host", "--gpus", "all",
              "--env-file", str(env_file), "-e", "SPARKCTL_HEALTH_PATH=/healthz", "-e", "TTS_URL=http://t:1",
              "--label", "sparkctl.kind=container", "--label", "sparkctl.service=app", "example/app:1",
              env={"PASSED_URL": "http://from-caller"})
    wait_for(lambda: get(f"http://127.0.0.1:{port}/healthz")[0] == 200, what="container stand-in health")
    assert json.loads(get(f"http://127.0.0.1:{port}/")[1]) == {
        "LLM_URL": "http://10.0.0.1:8000/v1", "PASSED_URL": "http://from-caller", "QUOTED_URL": '"kept"',
        "TTS_URL": "http://t:1"}
    assert docker.main(["rm", "-f", "app"]) == 0  # kills it, like docker rm -f
    wait_for(lambda: get(f"http://127.0.0.1:{port}/healthz")[0] == 0, what="rm -f to stop it")


# --- Ollama ------------------------------------------------------------------------------------------


def test_ollama_client_pulls_lists_generates_and_chats(tmp_path: Path) -> None:
    models = tmp_path / "models"
    with serving(ollama_server.make_server("127.0.0.1", 0, str(models), 0, 0)) as url:
        client = ollama.Client(host=url)
        statuses = [p.status for p in client.pull("llama3.2:1b", stream=True)]
        assert statuses[0] == "pulling manifest" and statuses[-1] == "success"
        assert client.pull("qwen3", stream=False).status == "success"
        assert sorted(m.model or "" for m in client.list().models) == ["llama3.2:1b", "qwen3:latest"]

        answer = client.generate(model="llama3.2:1b", prompt="why is the sky blue", options={"num_predict": 4})
        assert answer.done and answer.eval_count == 4 and len((answer.response or "").split()) == 4
        assert answer.prompt_eval_count == 5
        parts = list(client.chat(model="qwen3", messages=[{"role": "user", "content": "hi"}], stream=True))
        assert parts[-1].done and parts[-1].eval_count and "".join(p.message.content or "" for p in parts)
        assert {m.model for m in client.ps().models} == {"llama3.2:1b", "qwen3:latest"}

        with pytest.raises(ollama.ResponseError) as missing:
            client.chat(model="mistral", messages=[{"role": "user", "content": "hi"}])
        assert missing.value.status_code == 404 and "model 'mistral' not found" in missing.value.error
        with pytest.raises(ollama.ResponseError, match="file does not exist"):
            client.pull("example/does-not-exist")

        assert get(url + "/") == (200, b"Ollama is running")
        oai = openai.OpenAI(base_url=url + "/v1", api_key="ollama", max_retries=0)
        assert {m.id for m in oai.models.list().data} == {"llama3.2:1b", "qwen3:latest"}
        assert oai.chat.completions.create(model="qwen3", messages=[{"role": "user", "content": "hi"}]).usage

    # A restart over the same models directory (a volume) keeps what was pulled.
    with serving(ollama_server.make_server("127.0.0.1", 0, str(models), 0, 0)) as url:
        assert len(ollama.Client(host=url).list().models) == 2


def test_ollama_host_parsing() -> None:
    assert ollama_server.listen_address(None) == ("127.0.0.1", 11434)
    assert ollama_server.listen_address("0.0.0.0:11500") == ("0.0.0.0", 11500)
    assert ollama_server.listen_address("10.0.0.2") == ("10.0.0.2", 11434)
    assert ollama_server.listen_address("http://[::1]:9000") == ("::1", 9000)


# --- TTS ---------------------------------------------------------------------------------------------


def wav_frames(body: bytes) -> int:
    with wave.open(io.BytesIO(body)) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 24_000)
        return int(w.getnframes())


def test_qwen_tts_reports_loading_then_speaks_wav_growing_with_input() -> None:
    (server,) = tts_server.make_servers("qwen", "127.0.0.1", 0, load_seconds=0.3)
    with serving(server) as url:
        assert json.loads(get(url + "/health")[1]) == {"status": "ok", "model_loaded": False}
        assert get(url + "/v1/audio/speech", {"input": "hi"})[0] == 503
        wait_for(lambda: json.loads(get(url + "/health")[1])["model_loaded"], what="model_loaded")
        client = openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0)
        short = client.audio.speech.create(model="qwen3-tts", voice="Vivian", input="Hello.",
                                           response_format="wav")
        long = client.audio.speech.create(model="qwen3-tts", voice="vivian", input="Hello. " * 20,
                                          response_format="wav", speed=1.0)
        assert wav_frames(long.content) > wav_frames(short.content) > 0
        assert get(url + "/v1/audio/speech", {"input": "x", "voice": "nobody"})[0] == 400
        assert "Vivian" in json.loads(get(url + "/v1/audio/voices")[1])["voices"]


def test_orpheus_answers_only_while_its_token_server_does_and_has_no_health() -> None:
    api, backend = tts_server.make_servers("orpheus", "127.0.0.1", 0, backend_port=0)
    with serving(backend), serving(api) as url:
        assert get(url + "/health")[0] == 404
        assert "tara" in json.loads(get(url + "/v1/audio/voices")[1])["voices"]
        status, body = get(url + "/v1/audio/speech", {"input": "Hi there", "model": "orpheus", "voice": "tara",
                                                      "response_format": "wav", "speed": 1.0})
        assert status == 200 and wav_frames(body) > 0
    (orphan,) = tts_server.make_servers("orpheus", "127.0.0.1", 0,
                                        token_url=f"http://127.0.0.1:{free_port()}/v1/completions")
    with serving(orphan) as url:
        status, body = get(url + "/v1/audio/speech", {"input": "Hi", "voice": "tara"})
        assert status == 503 and b"token server" in body
