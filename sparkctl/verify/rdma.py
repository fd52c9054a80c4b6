"""RDMA bandwidth per link half (ib_write_bw) and NCCL all_gather over the cluster, where nodes have them.

iperf3 proves a half carries TCP; jobs on a Spark cluster use RoCE through NCCL, which can fail
where TCP works (a wrong GID index, an RDMA device missing from NCCL_IB_HCA). So verify-link also
measures the RDMA path itself, the way NVIDIA's benchmarking guide does: one `ib_write_bw` process
per half, every half at once, then one `all_gather_perf` over every node.

Rules learnt the hard way on Sparks:
- The RoCE v2 IPv4 GID index drifts (3 -> 4 at run time), so it is looked up on each end
  (gid_index.py) right before the test that passes it to `-x`, never pinned.
- The 16G all_gather NVIDIA documents allocates ~32 GB of unified memory and can freeze a node,
  so the NCCL test defaults to 1G and the size is a parameter.
- A server that outlives verify-link blocks the next run's port, so every `ib_write_bw` server
  runs on a pseudo-terminal (ssh.start) and is stopped in a `finally`, Ctrl-C included.

Every remote command is an argv list (sparkctl.ssh quotes it); inventory values never pass
through a shell. The SSH calls come from a `Remote`, the sparkctl.ssh module by default, so the
tests can replay captured tool output without nodes.
"""

from __future__ import annotations

import json
import math
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import IO, Any, Protocol

from sparkctl import hardware, ssh
from sparkctl.errors import EnvironmentProblem
from sparkctl.model import Link, LinkEnd, NodePlan
from sparkctl.parallel import parallel
from sparkctl.verify.parse_nccl import NcclResult, parse_nccl_tests
from sparkctl.verify.parse_perftest import PerftestResult, parse_perftest
from sparkctl.verify.parsing import ParseError
from sparkctl.verify.verdicts import RDMA_MIN_GBPS, Check, judge_nccl, judge_rdma, nccl_minimum

NODE_CODE = Path(__file__).resolve().parent.parent / "node"
"""The stdlib scripts shipped to a node on stdin: the on-node code of sparkctl lives in sparkctl/node."""
CLUSTER = "cluster"
"""The `link` of the NCCL check: it measures every node at once, not one link."""

PERFTEST_BASE_PORT = 18515
"""perftest's default exchange port; each server gets its own, since one node serves several halves."""
QUEUE_PAIRS = 4
SERVER_READY = "Waiting for client to connect"
"""perftest prints this just before it listens, so the client retries a refused connection."""
SERVER_READY_TIMEOUT_S = 15.0
SERVER_STOP_GRACE_S = 3.0
"""A server that served its test has exited within this; one whose client never came is terminated."""
CONNECT_ATTEMPTS = 3
CONNECT_RETRY_S = 0.5
CONNECT_REFUSED = "Couldn't connect to"
GID_LOOKUP_TIMEOUT_S = 30.0

NCCL_SIZE = "1G"
"""all_gather_perf message size: ~2x this is allocated per node, so 1G is safe where 16G can freeze one."""
NCCL_TIMEOUT_S = 300
NCCL_ENV_PREFIXES = ("NCCL_", "UCX_", "OMPI_")
"""The plan variables nccl-tests and Open MPI read; the PyTorch/Gloo ones do not matter here."""
MPI_LAUNCHER_PREFIX = "OMPI_MCA_"
"""Open MPI reads these from mpirun's own environment too; oob_tcp_if_include steers its daemons."""
TIMEOUT_STATUS = 124
"""coreutils `timeout` exits 124 when it had to stop the command."""


class Process(Protocol):
    """A started remote command, as far as a server needs it: subprocess.Popen[str] from ssh.start fits."""

    @property
    def stdout(self) -> IO[str] | None: ...

    def poll(self) -> int | None: ...

    def wait(self, timeout: float | None = None) -> int: ...

    def terminate(self) -> None: ...

    def kill(self) -> None: ...


class Remote(Protocol):
    """The two SSH calls this module makes: the sparkctl.ssh module is one, a test's fake runner another."""

    def run(self, target: ssh.SSHTarget, argv: Sequence[str], *, timeout: float,
            input: str | None = None) -> subprocess.CompletedProcess[str]: ...

    def start(self, target: ssh.SSHTarget, argv: Sequence[str]) -> Process: ...


@dataclass(frozen=True)
class GidLookup:
    """What gid_index.py found for one end: the index to pass to `-x`, or why there is none."""

    node: str
    device: str
    index: int | None
    reason: str


@dataclass(frozen=True)
class _Half:
    """One link half ready to measure: each end's device and GID index, and its own exchange port."""

    link: Link
    server_device: str
    server_gid: int
    client_device: str
    client_gid: int
    port: int


@cache
def _script(name: str) -> str:
    return (NODE_CODE / name).read_text(encoding="utf-8")



def _tail(text: str, lines: int = 2) -> str:
    """The last lines a tool printed (where its error is), CR-free for output read through a pty."""
    kept = [line.strip() for line in text.replace("\r", "").splitlines() if line.strip()]
    return "; ".join(kept[-lines:])[:300] or "no output"


def _device(end: LinkEnd) -> str | None:
    """The RDMA device behind a half's netdev; None for a bond, which has no device of its own."""
    return hardware.RDMA_DEVICES.get(end.interface)


def _has(facts: Mapping[str, Mapping[str, Any]], node: str, tool: str, device: str | None = None) -> bool:
    """node_facts.py found `tool` on the node's PATH (and `device` under /sys/class/infiniband)."""
    found = facts[node]
    return bool(found["tools"].get(tool)) and (device is None or device in found.get("rdma_devices", []))


def lookup_gid(target: ssh.SSHTarget, end: LinkEnd, *, remote: Remote = ssh) -> GidLookup:
    """The GID index of `end`'s RoCE v2 IPv4 GID, read on the node now (it drifts, so never cached)."""
    device = _device(end)
    assert end.address is not None and device is not None
    argv = ["python3", "-", device, str(end.address.ip), "--netdev", end.interface]
    result = remote.run(target, argv, timeout=GID_LOOKUP_TIMEOUT_S, input=_script("gid_index.py"))
    try:
        data = json.loads(result.stdout)
    except json.JSONDecodeError:
        raise EnvironmentProblem(f"{target.name}: gid_index gave no report (exit {result.returncode}): "
                                 f"{_tail(result.stderr)}") from None
    index = data.get("index") if isinstance(data, dict) else None
    reason = str(data.get("reason") or "") if isinstance(data, dict) else "unexpected report"
    return GidLookup(end.node, device, index if isinstance(index, int) else None, reason)


def perftest_argv(device: str, gid_index: int, duration_s: int, port: int) -> list[str]:
    """One ib_write_bw side: 4 queue pairs for `duration_s`, Gb/s, CPU-frequency warnings not fatal."""
    return ["ib_write_bw", "-d", device, "-x", str(gid_index), "-F", "--report_gbits", "-D", str(duration_s),
            "-q", str(QUEUE_PAIRS), "-p", str(port)]


class PerftestServer:
    """An ib_write_bw server on a node, alive as long as its SSH session (ssh.start forces a pty).

    A thread collects its output, so readiness can be waited for with a timeout and the output is
    still there to explain a server that never became ready.
    """

    def __init__(self, remote: Remote, target: ssh.SSHTarget, argv: list[str]) -> None:
        self.remote = remote
        self.target = target
        self.argv = argv
        self._process: Process | None = None
        self._reader: threading.Thread | None = None
        self._lines: list[str] = []
        self._woken = threading.Event()
        self._ready = False

    def launch(self) -> None:
        self._process = self.remote.start(self.target, self.argv)
        self._reader = threading.Thread(target=self._read, args=(self._process,), daemon=True)
        self._reader.start()

    def _read(self, process: Process) -> None:
        if process.stdout is not None:
            for line in process.stdout:
                self._lines.append(line)
                if SERVER_READY in line:
                    self._ready = True
                    self._woken.set()
        self._woken.set()  # end of output: the server exited, ready or not

    def wait_ready(self, timeout_s: float = SERVER_READY_TIMEOUT_S) -> bool:
        self._woken.wait(timeout_s)
        return self._ready

    @property
    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def output(self) -> str:
        return "".join(self._lines)

    def stop(self, grace_s: float = SERVER_STOP_GRACE_S) -> None:
        """Let a server that served its test exit; end any other (the pty hang-up ends the remote side)."""
        process, self._process = self._process, None
        if process is None:
            return
        try:
            process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._reader is not None:
            self._reader.join(timeout=2)


def _perftest_result(text: str, device: str) -> PerftestResult:
    """The parsed run; output without any perftest report becomes an error, never a figure."""
    try:
        return parse_perftest(text)
    except ParseError:
        return PerftestResult(test=None, device=device, unit=None, rows=(), error=f"no report: {_tail(text)}")


def _run_client(remote: Remote, target: ssh.SSHTarget, half: _Half, duration_s: int,
                server: PerftestServer) -> PerftestResult:
    """The client on the a end, retried while the server is up but not yet listening."""
    address = half.link.b.address
    assert address is not None
    argv = [*perftest_argv(half.client_device, half.client_gid, duration_s, half.port), str(address.ip)]
    attempt = 1
    while True:
        result = remote.run(target, argv, timeout=duration_s + 60)
        text = result.stdout + result.stderr
        if CONNECT_REFUSED not in text or attempt >= CONNECT_ATTEMPTS or not server.alive:
            return _perftest_result(text, half.client_device)
        attempt += 1
        time.sleep(CONNECT_RETRY_S)


def _measure(halves: list[_Half], targets: Mapping[str, ssh.SSHTarget], duration_s: float,
             remote: Remote) -> dict[str, Check]:
    """Every half at once: all servers up, all clients run, every server stopped whatever happens."""
    seconds = max(1, math.ceil(duration_s))  # perftest's -D takes whole seconds
    servers = [PerftestServer(remote, targets[half.link.b.node],
                              perftest_argv(half.server_device, half.server_gid, seconds, half.port))
               for half in halves]
    finished = False
    try:
        for server in servers:
            server.launch()
        ready = [server.wait_ready() for server in servers]

        def client(job: tuple[_Half, PerftestServer, bool]) -> PerftestResult:
            half, server, up = job
            if not up:
                return PerftestResult(test=None, device=half.server_device, unit=None, rows=(),
                                      error=f"the server on {half.link.b.node} did not start: "
                                            f"{_tail(server.output)}")
            return _run_client(remote, targets[half.link.a.node], half, seconds, server)

        results = parallel(client, list(zip(halves, servers, ready, strict=True)))
        finished = True
    finally:
        for server in servers:  # after an error or Ctrl-C nobody waits for a grace period
            server.stop(SERVER_STOP_GRACE_S if finished else 0.0)
    return {half.link.name: judge_rdma(half.link.name, half.client_device, result)
            for half, result in zip(halves, results, strict=True)}


def _no_gid(link: Link, lookup: GidLookup) -> Check:
    return Check(link.name, "rdma", "no RoCE v2 GID", f">= {RDMA_MIN_GBPS:g} Gb/s", False,
                 f"{lookup.node} {lookup.device} has no RoCE v2 GID to test with ({lookup.reason}): give the "
                 "half its planned address (run sparkctl provision) and check `ip link` shows it up")


def rdma_checks(links: Sequence[Link], facts: Mapping[str, Mapping[str, Any]],
                targets: Mapping[str, ssh.SSHTarget], duration_s: float, *,
                remote: Remote = ssh) -> list[Check]:
    """One "rdma" Check per link, in order: ib_write_bw from the a end to the b end of every half at once.

    A half whose nodes lack its RDMA device or ib_write_bw, or an address, is skipped as not
    available (so is a bond, which is no single half). A half whose GID lookup finds no RoCE v2
    IPv4 entry fails without running the test: ib_write_bw with a wrong `-x` has been seen to
    print nothing useful and exit 0.
    """
    checks: dict[str, Check] = {}
    runnable: list[Link] = []
    for link in links:
        devices = [_device(end) for end in (link.a, link.b)]
        if all(end.address is not None and device is not None and _has(facts, end.node, "ib_write_bw", device)
               for end, device in zip((link.a, link.b), devices, strict=True)):
            runnable.append(link)
        else:
            checks[link.name] = judge_rdma(link.name, devices[0] or link.a.interface, None)
    ends = [end for link in runnable for end in (link.a, link.b)]
    lookups = parallel(lambda end: lookup_gid(targets[end.node], end, remote=remote), ends)
    halves: list[_Half] = []
    for link, client, server in zip(runnable, lookups[0::2], lookups[1::2], strict=True):
        if client.index is None:
            checks[link.name] = _no_gid(link, client)
        elif server.index is None:
            checks[link.name] = _no_gid(link, server)
        else:
            halves.append(_Half(link, server.device, server.index, client.device, client.index,
                                PERFTEST_BASE_PORT + len(halves)))
    checks.update(_measure(halves, targets, duration_s, remote))
    return [checks[link.name] for link in links]


def nccl_argv(nodes: Sequence[NodePlan], size: str, *, as_root: bool) -> list[str]:
    """`mpirun` on the first node, one rank per node, each rank with its own node's plan environment.

    Variables equal on every node go to all ranks with `-x NAME=VALUE`; one that differs (e.g.
    NCCL_IB_HCA when the nodes use different cages) is set per rank with `env` in that node's app
    context, since `-x` would give every rank the first node's value. The OMPI_MCA_* variables are
    also put in mpirun's own environment, where its daemons read them. Hosts are management
    addresses: that is where mpirun's SSH and NCCL's bootstrap go. `timeout` bounds the run on the
    node itself, so a hung job does not keep ~2x SIZE of memory after verify-link gave up.
    """
    own_envs = [{k: v for k, v in node.env.items() if k.startswith(NCCL_ENV_PREFIXES)} for node in nodes]
    shared = {k: v for k, v in own_envs[0].items() if all(env.get(k) == v for env in own_envs)}
    launcher = [f"{k}={v}" for k, v in own_envs[0].items() if k.startswith(MPI_LAUNCHER_PREFIX)]
    argv = ["timeout", "--kill-after=10", str(NCCL_TIMEOUT_S)]
    if launcher:
        argv += ["env", *launcher]
    argv += ["mpirun", "--bind-to", "none"]
    if as_root:
        argv.append("--allow-run-as-root")  # Open MPI refuses root without it
    for name, value in shared.items():
        argv += ["-x", f"{name}={value}"]
    test = ["all_gather_perf", "-b", size, "-e", size, "-f", "2", "-g", "1"]
    for number, (node, env) in enumerate(zip(nodes, own_envs, strict=True)):
        differing = [f"{k}={v}" for k, v in env.items() if k not in shared]
        if number:
            argv.append(":")
        argv += ["-np", "1", "-H", f"{node.management_address}:1"]
        argv += [*(["env", *differing] if differing else []), *test]
    return argv


def _nccl_result(result: subprocess.CompletedProcess[str]) -> NcclResult:
    """The parsed run; a run with no table and no failure line becomes an error naming why."""
    text = result.stdout + "\n" + result.stderr
    try:
        return parse_nccl_tests(text)
    except ParseError:
        if result.returncode == TIMEOUT_STATUS:
            why = f"mpirun did not finish within {NCCL_TIMEOUT_S} s"
        else:
            why = f"all_gather_perf gave no result (exit {result.returncode}): {_tail(text)}"
        return NcclResult(collective=None, ranks=None, rows=(), avg_busbw=None, out_of_bounds=None,
                          errors=(why,))


def nccl_check(nodes: Sequence[NodePlan], facts: Mapping[str, Mapping[str, Any]],
               targets: Mapping[str, ssh.SSHTarget], *, ring: bool, size: str = NCCL_SIZE,
               remote: Remote = ssh) -> Check:
    """all_gather_perf across `nodes`, judged against NVIDIA's busbw threshold for that many nodes.

    Skipped, without running, when a node lacks all_gather_perf or mpirun, and when NVIDIA
    publishes no threshold for the cluster (a figure nobody can judge is not worth the memory).
    `size` is nccl-tests' size syntax (e.g. 512M, 1G, 16G); see NCCL_SIZE before raising it.
    """
    minimum = nccl_minimum(len(nodes), ring)
    tools = all(_has(facts, node.name, tool) for node in nodes for tool in ("all_gather_perf", "mpirun"))
    if minimum is None or not tools:
        return judge_nccl(CLUSTER, None, minimum)
    target = targets[nodes[0].name]
    argv = nccl_argv(nodes, size, as_root=target.user == "root")
    result = remote.run(target, argv, timeout=NCCL_TIMEOUT_S + 30)
    return judge_nccl(CLUSTER, _nccl_result(result), minimum)
