#!/usr/bin/python3
"""Stand-in for a user's own container image (`kind: container`), for lab nodes without an engine.

What sparkctl promises such a service is the environment: SPARKCTL_HOST and SPARKCTL_PORT to listen
on, and one `*_URL` variable per service it `connect`s to. So the stand-in listens there, answers 200
on SPARKCTL_HEALTH_PATH (default `/`), and answers `GET /` with the JSON object of its environment
variables whose names end in `_URL`: a test reads it to see the connect URLs arrived.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from typing import cast

if __package__:
    from . import http_common as hc
else:  # run by path on a node: the sibling module sits next to this file
    sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))
    import http_common as hc  # type: ignore[import-not-found, no-redef]

PROG = "container (sparkctl lab stand-in)"


class ContainerHTTPServer(hc.StandinHTTPServer):
    health_path: str
    urls: dict[str, str]


class ContainerHandler(hc.Handler):
    prog = PROG

    def route(self, method: str, path: str) -> None:
        server = cast(ContainerHTTPServer, self.server)
        if method not in ("GET", "HEAD"):
            self.send_json(405, {"error": "method not allowed"})
        elif path == "/":
            self.send_json(200, server.urls)
        elif path == server.health_path:
            self.send_json(200, {"status": "ok"})
        else:
            self.send_json(404, {"error": "not found"})


def make_server(env: Mapping[str, str]) -> ContainerHTTPServer:
    """The server for a container environment (SPARKCTL_PORT 0 picks a port); not yet serving."""
    server = ContainerHTTPServer((env.get("SPARKCTL_HOST") or "0.0.0.0", int(env["SPARKCTL_PORT"])),
                                 ContainerHandler)
    path = env.get("SPARKCTL_HEALTH_PATH") or "/"
    server.health_path = path if path.startswith("/") else "/" + path
    server.urls = {k: v for k, v in sorted(env.items()) if k.endswith("_URL")}
    return server


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args:
        hc.log(PROG, f"arguments (ignored by the stand-in): {' '.join(args)}")
    port = os.environ.get("SPARKCTL_PORT", "")
    if not port.isdigit():
        hc.log(PROG, f"SPARKCTL_PORT must be a port number (got {port!r})")
        return 1
    try:
        server = make_server(os.environ)
    except OSError as exc:
        hc.log(PROG, f"cannot listen: {exc}")
        return 1
    return hc.serve(server, PROG)


if __name__ == "__main__":
    sys.exit(main())
