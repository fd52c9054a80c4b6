"""A streaming client for OpenAI-compatible `/v1/completions`, on asyncio streams and nothing else.

A load generator must not be what it measures: at concurrency 128 a general HTTP client parses
thousands of server-sent events a second on the same two cores the server may use. This one keeps a
connection per worker (HTTP/1.1 keep-alive), reads chunked or length-delimited bodies, splits
server-sent events and timestamps each piece of text when its bytes arrive, like vLLM's own
benchmark client does. Plain http only: the services sparkctl deploys listen without TLS.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.parse
from dataclasses import dataclass
from typing import Any

from sparkctl.serving.metrics import RequestResult

CONNECT_TIMEOUT_S = 10.0
READ_TIMEOUT_S = 600.0
"""A long prompt on a loaded server can take minutes to its first token."""


class ProtocolError(Exception):
    """The server answered something that is not HTTP/1.1 as expected."""


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int
    base_path: str

    @classmethod
    def parse(cls, url: str) -> Endpoint:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"{url!r} is not an http:// URL")
        return cls(parts.hostname, parts.port or 80, parts.path.rstrip("/"))


class Connection:
    """One keep-alive connection, reopened when the server closes it."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self.reader is not None and self.writer is not None and not self.writer.is_closing():
            return self.reader, self.writer
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(self.endpoint.host, self.endpoint.port, limit=1 << 22), CONNECT_TIMEOUT_S)
        self.reader, self.writer = reader, writer
        return reader, writer

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            try:
                await self.writer.wait_closed()
            except OSError:
                pass
        self.reader = self.writer = None

    async def post_stream(self, path: str, body: dict[str, Any], result: RequestResult) -> None:
        """POST `body` and read the streamed completion into `result` (success, times, tokens, error)."""
        payload = json.dumps(body).encode()
        head = (f"POST {self.endpoint.base_path}{path} HTTP/1.1\r\nHost: {self.endpoint.host}:{self.endpoint.port}\r\n"
                f"Content-Type: application/json\r\nAccept: text/event-stream\r\n"
                f"Content-Length: {len(payload)}\r\n\r\n").encode()
        reader, writer = await self._open()
        result.start_time = time.perf_counter()
        writer.write(head + payload)
        await writer.drain()
        status, headers = await _read_head(reader)
        keep = headers.get("connection", "").lower() != "close"
        events = _Events(result)
        if status != 200:
            text = b"".join([piece async for piece in _body(reader, headers)])
            result.error = f"HTTP {status}: {_error_message(text)}"
        else:
            async for piece in _body(reader, headers):
                events.feed(piece, time.perf_counter())
            events.finish()
        if not keep:
            await self.close()


async def _read_head(reader: asyncio.StreamReader) -> tuple[int, dict[str, str]]:
    line = await asyncio.wait_for(reader.readline(), READ_TIMEOUT_S)
    if not line:
        raise ProtocolError("the server closed the connection without answering")
    parts = line.decode("latin-1").split(None, 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
        raise ProtocolError(f"not an HTTP/1.1 status line: {line[:80]!r}")
    headers: dict[str, str] = {}
    while True:
        raw = await asyncio.wait_for(reader.readline(), READ_TIMEOUT_S)
        if raw in (b"\r\n", b"\n", b""):
            return int(parts[1]), headers
        name, _, value = raw.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()


async def _body(reader: asyncio.StreamReader, headers: dict[str, str]) -> Any:
    """The body's bytes as they arrive: chunked, by Content-Length, or until the server closes."""
    if "chunked" in headers.get("transfer-encoding", "").lower():
        while True:
            size_line = await asyncio.wait_for(reader.readline(), READ_TIMEOUT_S)
            try:
                size = int(size_line.split(b";", 1)[0].strip() or b"x", 16)
            except ValueError:
                raise ProtocolError(f"bad chunk size {size_line[:40]!r}") from None
            if size == 0:
                while (await asyncio.wait_for(reader.readline(), READ_TIMEOUT_S)) not in (b"\r\n", b"\n", b""):
                    pass
                return
            data = await asyncio.wait_for(reader.readexactly(size + 2), READ_TIMEOUT_S)
            yield data[:-2]
    elif "content-length" in headers:
        left = int(headers["content-length"])
        while left > 0:
            data = await asyncio.wait_for(reader.read(min(left, 1 << 16)), READ_TIMEOUT_S)
            if not data:
                raise ProtocolError("the body ended before its Content-Length")
            left -= len(data)
            yield data
    else:
        while data := await asyncio.wait_for(reader.read(1 << 16), READ_TIMEOUT_S):
            yield data


def _error_message(text: bytes) -> str:
    try:
        body = json.loads(text)
        message = body.get("error", {}).get("message") if isinstance(body.get("error"), dict) else None
        return str(message or body.get("detail") or body.get("error") or text[:200].decode(errors="replace"))
    except (ValueError, AttributeError):
        return text[:200].decode(errors="replace")


def _end_marker(choice: Any) -> bool:
    """A choice that only says why the text ended, with no text: Ollama sends one after the last token."""
    return isinstance(choice, dict) and bool(choice.get("finish_reason")) and not (
        choice.get("text") or (choice.get("delta") or {}).get("content"))


class _Events:
    """Server-sent events of a completion stream, timed as vLLM's benchmark times them: the first
    event with choices is the first token, every later one adds an inter-token gap (an end marker
    with no text is not a token); the usage chunk gives the token counts, prompt and output."""

    def __init__(self, result: RequestResult) -> None:
        self.result = result
        self.buffer = b""
        self.first = True
        self.last = 0.0
        self.pieces = 0

    def feed(self, data: bytes, now: float) -> None:
        self.buffer += data
        while b"\n\n" in self.buffer:
            event, self.buffer = self.buffer.split(b"\n\n", 1)
            for line in event.splitlines():
                if line.startswith(b"data:"):
                    self._data(line[5:].strip(), now)

    def _data(self, data: bytes, now: float) -> None:
        if data == b"[DONE]":
            return
        chunk = json.loads(data)
        choices = chunk.get("choices")
        if choices and _end_marker(choices[0]):
            pass
        elif choices:
            if self.first:
                self.result.ttft = now - self.result.start_time
                self.first = False
            else:
                self.result.itl.append(now - self.last)
            self.last = now
            self.pieces += 1
        elif isinstance(chunk.get("usage"), dict):  # the server's own counts: its tokenizer is the truth
            self.result.output_tokens = int(chunk["usage"].get("completion_tokens") or 0)
            self.result.prompt_len = int(chunk["usage"].get("prompt_tokens") or self.result.prompt_len)
        if "error" in chunk:
            self.result.error = str(chunk["error"].get("message") if isinstance(chunk["error"], dict) else chunk["error"])

    def finish(self) -> None:
        result = self.result
        if result.error:
            return
        if self.first:
            result.error = "the stream ended without a token"
            return
        result.latency = self.last - result.start_time
        result.output_tokens = result.output_tokens or self.pieces
        result.success = True
