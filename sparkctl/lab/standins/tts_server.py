#!/usr/bin/python3
"""Stand-in for the lab's TTS services: Orpheus-FastAPI (`orpheus-tts`) and faster-qwen3-tts (`qwen-tts`).

Both speak OpenAI's speech API: `POST /v1/audio/speech {input, model, voice, response_format, speed}`
returns real audio (a WAV: RIFF, 16-bit PCM, mono, 24 kHz; a short tone that grows with the input)
and `GET /v1/audio/voices` lists voices. What differs is what a health check can see, so it is kept:

- orpheus (`--host H --port P --backend-port B`): the API needs a token server (llama.cpp's
  llama-server with the Orpheus GGUF) at ORPHEUS_API_URL; the stand-in runs one on H:B that answers
  `/health` once its "model" is loaded (STANDIN_LOAD_SECONDS), and the API answers speech only while
  that token server answers. Orpheus-FastAPI has no `/health` (404, as the real one).
- qwen (`--host H --port P`): `GET /health` is `{"status": "ok", "model_loaded": bool}`, false while the
  model loads (STANDIN_LOAD_SECONDS); speech is refused (503) until then. `pcm` streams raw samples.
"""

from __future__ import annotations

import argparse
import array
import io
import math
import os
import sys
import threading
import time
import urllib.error
import urllib.request
import wave
from collections.abc import Sequence
from typing import cast

if __package__:
    from . import http_common as hc
else:  # run by path on a node: the sibling module sits next to this file
    sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))
    import http_common as hc  # type: ignore[import-not-found, no-redef]

RATE = 24_000
DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # the token server is local: no proxy
VOICES = {
    "orpheus": ["tara", "leah", "jess", "leo", "dan", "mia", "zac", "zoe"],
    "qwen": ["Vivian", "Serena", "Uncle_Fu", "Dylan", "Eric", "Ryan", "Aiden", "Ono_Anna", "Sohee"],
}
FORMATS = {"orpheus": ("wav",), "qwen": ("wav", "pcm")}


def samples(text: str, speed: float) -> bytes:
    """16-bit mono PCM: a 200 Hz tone of 0.25 s plus 50 ms a character (at most 30 s), over `speed`."""
    seconds = min(30.0, 0.25 + 0.05 * len(text)) / speed
    period = array.array("h", (int(9000 * math.sin(2 * math.pi * i / 120)) for i in range(120)))
    count = int(seconds * RATE)
    tone = period * (count // 120 + 1)
    del tone[count:]
    if sys.byteorder == "big":
        tone.byteswap()
    return tone.tobytes()


def wav(pcm: bytes) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(pcm)
    return out.getvalue()


class TTSHTTPServer(hc.StandinHTTPServer):
    flavor: str
    loaded_at: float
    token_url: str  # orpheus: where its token server's completions endpoint is


class TTSHandler(hc.Handler):
    @property
    def tts(self) -> TTSHTTPServer:
        return cast(TTSHTTPServer, self.server)

    @property
    def prog(self) -> str:  # type: ignore[override]
        return f"{self.tts.flavor}-tts (sparkctl lab stand-in)"

    def route(self, method: str, path: str) -> None:
        flavor = self.tts.flavor
        if path == "/health" and flavor == "qwen" and method == "GET":
            self.send_json(200, {"status": "ok", "model_loaded": time.time() >= self.tts.loaded_at})
        elif path == "/v1/audio/voices" and method == "GET":
            self.send_json(200, {"status": "ok", "voices": VOICES[flavor]})
        elif path == "/v1/audio/speech" and method == "POST":
            self.speech()
        elif path == "/" and method == "GET" and flavor == "orpheus":
            self.send_text(200, "<html><body><h1>Orpheus-FastAPI (sparkctl lab stand-in)</h1></body></html>",
                           "text/html; charset=utf-8")
        else:
            self.send_json(404, {"detail": "Not Found"})

    def token_server_problem(self) -> str | None:
        """Why the Orpheus token server does not answer, or None when it does."""
        url = self.tts.token_url
        health = url.split("/v1/", 1)[0] + "/health"
        try:
            with DIRECT.open(health, timeout=2) as reply:
                return None if reply.status == 200 else f"{health} answered {reply.status}"
        except urllib.error.HTTPError as exc:
            return f"{health} answered {exc.code}"
        except OSError as exc:
            return f"{health}: {exc}"

    def speech(self) -> None:
        body = self.read_json()
        if body is None:
            return
        flavor = self.tts.flavor
        text = body.get("input")
        if not isinstance(text, str) or not text.strip():
            self.send_json(422, {"detail": [{"loc": ["body", "input"], "msg": "input is required",
                                             "type": "missing"}]})
            return
        voice = body.get("voice") or VOICES[flavor][0]
        known = {v.lower(): v for v in VOICES[flavor]}
        if not isinstance(voice, str) or voice.lower() not in known:
            self.send_json(400, {"detail": f"unknown voice {voice!r}; voices: {', '.join(VOICES[flavor])}"})
            return
        fmt = body.get("response_format") or "wav"
        if fmt not in FORMATS[flavor]:
            self.send_json(400, {"detail": f"response_format {fmt!r} is not supported here; use "
                                           f"{' or '.join(FORMATS[flavor])}"})
            return
        speed = body.get("speed", 1.0)
        if not isinstance(speed, (int, float)) or isinstance(speed, bool) or not 0.25 <= speed <= 4.0:
            self.send_json(422, {"detail": [{"loc": ["body", "speed"], "msg": "speed must be 0.25 to 4.0",
                                             "type": "value_error"}]})
            return
        if flavor == "orpheus":
            problem = self.token_server_problem()
            if problem:
                self.send_json(503, {"detail": f"the token server ({self.tts.token_url}) is not answering: "
                                               f"{problem}"})
                return
        elif time.time() < self.tts.loaded_at:
            self.send_json(503, {"detail": "model is still loading"})
            return
        pcm = samples(text, float(speed))
        if fmt == "pcm":
            self.send_stream("audio/pcm", (pcm[i:i + 48_000] for i in range(0, len(pcm), 48_000)))
        else:
            self.send_bytes(200, wav(pcm), "audio/wav")


class TokenHandler(hc.Handler):
    """The Orpheus token server, as llama-server answers: 503 "Loading model" until loaded."""

    prog = "llama-server for orpheus (sparkctl lab stand-in)"

    def route(self, method: str, path: str) -> None:
        loaded = time.time() >= cast(TTSHTTPServer, self.server).loaded_at
        if not loaded and path in ("/health", "/v1/completions", "/completion"):
            self.send_json(503, {"error": {"code": 503, "message": "Loading model", "type": "unavailable_error"}})
        elif path == "/health" and method == "GET":
            self.send_json(200, {"status": "ok"})
        elif path in ("/v1/completions", "/completion") and method == "POST":
            body = self.read_json()
            if body is None:
                return
            count = int(body.get("max_tokens") or body.get("n_predict") or 64)
            text = "".join(f"<custom_token_{10 + i % 4096}>" for i in range(min(count, 512)))
            self.send_json(200, {"object": "text_completion", "model": "orpheus",
                                 "choices": [{"index": 0, "text": text, "finish_reason": "length"}]})
        else:
            self.send_json(404, {"error": {"code": 404, "message": "File Not Found", "type": "not_found_error"}})


def make_servers(flavor: str, host: str, port: int, backend_port: int | None = None,
                 load_seconds: float = 0.0, token_url: str | None = None) -> list[TTSHTTPServer]:
    """The API server (first) and, for orpheus with a backend port, its token server; not yet serving."""
    loaded_at = time.time() + load_seconds
    servers: list[TTSHTTPServer] = []
    api = TTSHTTPServer((host, port), TTSHandler)
    api.flavor, api.loaded_at = flavor, loaded_at
    servers.append(api)
    if flavor == "orpheus" and backend_port is not None:
        backend = TTSHTTPServer((host, backend_port), TokenHandler)
        backend.flavor, backend.loaded_at, backend.token_url = flavor, loaded_at, ""
        servers.append(backend)
        local = "127.0.0.1" if host in ("", "0.0.0.0") else host
        token_url = token_url or f"http://{local}:{backend.server_address[1]}/v1/completions"
    api.token_url = token_url or "http://127.0.0.1:1234/v1/completions"  # Orpheus-FastAPI's default
    return servers


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="tts-server (sparkctl lab stand-in)")
    p.add_argument("--flavor", choices=sorted(VOICES), required=True)
    p.add_argument("--host", default="0.0.0.0")
    p.add_argument("--port", type=int, default=5005)
    p.add_argument("--backend-port", type=int, default=None)
    args, ignored = p.parse_known_args(sys.argv[1:] if argv is None else argv)
    prog = f"{args.flavor}-tts (sparkctl lab stand-in)"
    if ignored:
        hc.log(prog, f"ignoring arguments {' '.join(ignored)}")
    hc.exit_on_sigterm(prog)
    if args.flavor == "orpheus" and args.backend_port is None and not os.environ.get("ORPHEUS_API_URL"):
        hc.log(prog, "no --backend-port and no ORPHEUS_API_URL: the API will have no token server")
    try:
        servers = make_servers(args.flavor, args.host, args.port, args.backend_port,
                               hc.env_float("STANDIN_LOAD_SECONDS", 1.0), os.environ.get("ORPHEUS_API_URL"))
    except OSError as exc:
        hc.log(prog, f"cannot listen on {args.host}: {exc}")
        return 1
    for extra in servers[1:]:
        threading.Thread(target=extra.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True).start()
        hc.log(prog, f"token server on http://{args.host}:{extra.server_address[1]}")
    if args.flavor == "orpheus":
        hc.log(prog, f"token server URL {servers[0].token_url}")
    return hc.serve(servers[0], prog)


if __name__ == "__main__":
    sys.exit(main())
