"""The measurements verify-link takes on the nodes, each one SSH command through sparkctl.ssh.

Remote helpers (node_facts.py, peer_probe.py) are stdlib scripts shipped on stdin to the node's own
python3, so nothing is installed on a node to verify it. Every iperf3 server serves one test (-1)
on a pseudo-terminal (sparkctl.ssh.start): when verify-link stops it, or dies, the hang-up ends the
server too, so no server outlives verify-link, Ctrl-C included.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from sparkctl import ssh
from sparkctl.errors import EnvironmentProblem
from sparkctl.verify.parse_iperf import IperfResult, parse_iperf3_json
from sparkctl.verify.parse_peer import PeerProbeReport, parse_peer_probe
from sparkctl.verify.parse_ping import PingResult, parse_ping

NODE_CODE = Path(__file__).resolve().parent.parent / "node"
"""The stdlib scripts shipped to a node on stdin: the on-node code of sparkctl lives in sparkctl/node."""
IPERF_BASE_PORT = 5301
SERVER_READY_TIMEOUT_S = 10.0



@cache
def _script(name: str) -> str:
    return (NODE_CODE / name).read_text(encoding="utf-8")


def _json(target: ssh.SSHTarget, result: subprocess.CompletedProcess[str], what: str) -> dict[str, Any]:
    try:
        data = json.loads(result.stdout)
    except json.JSONDecodeError:
        raise EnvironmentProblem(
            f"{target.name}: {what} gave no report (exit {result.returncode}): {result.stderr.strip()[:300]}"
        ) from None
    if not isinstance(data, dict):
        raise EnvironmentProblem(f"{target.name}: {what} gave an unexpected report")
    return data


def node_facts(target: ssh.SSHTarget, interfaces: list[str]) -> dict[str, Any]:
    """Carrier, MTU, speed, addresses, ethtool output, PCIe width and tools of a node's interfaces."""
    result = ssh.run(target, ["python3", "-", *interfaces], input=_script("node_facts.py"), timeout=30)
    return _json(target, result, "node_facts")


def peer_probe(target: ssh.SSHTarget, interface: str, listen_s: float) -> PeerProbeReport:
    """Who answers on the far end of `interface`, by raw L2 frames (no address needed)."""
    argv = ["python3", "-", "--iface", interface, "--announce", f"{target.name}:{interface}",
            "--listen", f"{listen_s:g}"]
    result = ssh.run(target, argv, input=_script("peer_probe.py"), timeout=listen_s + 20)
    return parse_peer_probe(result.stdout)


def ping(target: ssh.SSHTarget, source: str, destination: str, *, size: int | None = None,
         count: int = 3, interval_s: float = 0.2, dont_fragment: bool = False) -> PingResult:
    """ping from `source` (an address of the node) to `destination`; DF and size for path-MTU probes."""
    argv = ["ping", "-n", "-c", str(count), "-i", f"{interval_s:g}", "-W", "1", "-I", source]
    if dont_fragment:
        argv += ["-M", "do"]
    if size is not None:
        argv += ["-s", str(size)]
    if count > 20:
        argv.append("-q")
    result = ssh.run(target, [*argv, destination], timeout=count * interval_s + 15)
    return parse_ping(result.stdout + result.stderr)


@dataclass
class IperfServer:
    """An iperf3 server on a node, bound to one link address, alive as long as its SSH session."""

    target: ssh.SSHTarget
    address: str
    port: int
    process: subprocess.Popen[str] | None = None

    def start(self) -> None:
        self.process = ssh.start(self.target, ["iperf3", "-s", "-1", "--forceflush", "-B", self.address,
                                               "-p", str(self.port)])
        self._wait_listening()

    def _wait_listening(self) -> None:
        """Wait for iperf3's "Server listening" line; read the raw pipe, as select() ignores Python's buffer."""
        assert self.process is not None and self.process.stdout is not None
        fd = self.process.stdout.fileno()
        deadline = time.monotonic() + SERVER_READY_TIMEOUT_S
        seen = b""
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.2)
            if ready:
                chunk = os.read(fd, 4096)
                seen += chunk
                if b"listening" in seen.lower():
                    return
                if not chunk:
                    break
        self.stop()
        text = seen.decode(errors="replace").replace("-", "").strip()
        raise EnvironmentProblem(f"{self.target.name}: iperf3 server on {self.address}:{self.port} did not start:"
                                 f" {text[:200] or 'no output'}")

    def stop(self) -> None:
        if self.process is None:
            return
        try:
            self.process.wait(timeout=3)  # a server that served its test has exited by now
        except subprocess.TimeoutExpired:
            self.process.terminate()  # the hang-up ends the remote server
            self.process.wait(timeout=5)
        self.process = None


def iperf_client(target: ssh.SSHTarget, source: str, destination: str, port: int, *, streams: int,
                 duration_s: float) -> IperfResult:
    """One iperf3 run with JSON output; the result carries iperf3's own error when it failed."""
    argv = ["iperf3", "-c", destination, "-B", source, "-p", str(port), "-P", str(streams),
            "-t", f"{duration_s:g}", "-J", "--connect-timeout", "3000"]
    result = ssh.run(target, argv, timeout=duration_s + 30)
    return parse_iperf3_json(result.stdout, result.returncode)
