"""RDMA and NCCL runs of verify-link, with MOCKS: no RDMA device, GPU or second node exists here.

Every test named `test_mock_*` replaces something real:
- gid_index.py reads a fake sysfs tree built in tmp_path (`--sysfs-root`), laid out like
  /sys/class/infiniband/DEV/ports/1 on a Spark, including the drift of the IPv4 RoCE v2 GID to
  index 4 with index 3 holding the same address as RoCE v1.
- rdma_checks / nccl_check get a fake `Remote` instead of SSH: the GID lookup still runs the
  real gid_index.py (through `python3 -` on stdin, as on a node) against the fake tree, and the
  ib_write_bw client and mpirun "return" real captured output from tests/verify/captured/.
  The ib_write_bw server is a fake process printing perftest's waiting banner (typed from
  perftest's source, not captured).
So they prove the commands sparkctl would run and how it judges real output; they cannot prove
that the commands work on real ConnectX-7 devices, GPUs and Open MPI.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import pytest
import yaml

from sparkctl import hardware, ssh
from sparkctl.cluster import load_cluster
from sparkctl.model import ClusterPlan
from sparkctl.node import gid_index
from sparkctl.verify import rdma
from sparkctl.verify.verdicts import SKIPPED, Check

Read = Callable[[str], str]

GID_SCRIPT = Path(gid_index.__file__)
LINK_LOCAL = "fe80:0000:0000:0000:5e00:00ff:fe00:0001"
ZERO = "0000:0000:0000:0000:0000:0000:0000:0000"
STARS = "************************************\r\n"
SERVER_BANNER = ["\r\n", STARS, "* Waiting for client to connect... *\r\n", STARS]
"""What ib_write_bw's server prints before it accepts (perftest write_bw.c), CRLF as read through -tt."""


def mapped(address: str) -> str:
    """The sysfs spelling of an IPv4-mapped GID: eight groups of four hex digits."""
    a, b, c, d = (int(part) for part in address.split("."))
    return f"0000:0000:0000:0000:0000:ffff:{a:02x}{b:02x}:{c:02x}{d:02x}"


def write_gid_table(sysfs: Path, device: str, entries: dict[int, tuple[str, str | None, str | None]],
                    size: int = 8) -> None:
    """A fake ports/1 table: entries map index -> (gid, type, netdev); a None type or netdev leaves the
    file out, which reads as an error like the kernel's EINVAL on unused entries."""
    port = sysfs / "class" / "infiniband" / device / "ports" / "1"
    for sub in ("gids", "gid_attrs/types", "gid_attrs/ndevs"):
        (port / sub).mkdir(parents=True, exist_ok=True)
    for index in range(size):
        gid, kind, netdev = entries.get(index, (ZERO, None, None))
        (port / "gids" / str(index)).write_text(gid + "\n")
        if kind is not None:
            (port / "gid_attrs" / "types" / str(index)).write_text(kind + "\n")
        if netdev is not None:
            (port / "gid_attrs" / "ndevs" / str(index)).write_text(netdev + "\n")


def spark_table(netdev: str, address: str, *, drifted: bool) -> dict[int, tuple[str, str | None, str | None]]:
    """A ConnectX-7 half's table: link-local v1/v2 at 0/1, then the IPv4 pair at 2/3, or at 3/4 drifted."""
    first = 3 if drifted else 2
    entries: dict[int, tuple[str, str | None, str | None]] = {
        0: (LINK_LOCAL, "IB/RoCE v1", netdev),
        1: (LINK_LOCAL, "RoCE v2", netdev),
        first: (mapped(address), "IB/RoCE v1", netdev),
        first + 1: (mapped(address), "RoCE v2", netdev),
    }
    return entries


# gid_index.py against a fake sysfs


def test_mock_sysfs_gid_index_follows_drift_to_4(tmp_path: Path) -> None:
    write_gid_table(tmp_path, "rocep1s0f0", spark_table("enp1s0f0np0", "10.20.0.1", drifted=True))
    report = gid_index.find_index(tmp_path, "rocep1s0f0", IPv4Address("10.20.0.1"), "enp1s0f0np0")
    assert report == {"device": "rocep1s0f0", "index": 4, "gid": mapped("10.20.0.1"),
                      "reason": "RoCE v2 GID of 10.20.0.1 on enp1s0f0np0"}


def test_mock_sysfs_gid_index_usual_3(tmp_path: Path) -> None:
    write_gid_table(tmp_path, "rocep1s0f0", spark_table("enp1s0f0np0", "10.20.0.1", drifted=False))
    report = gid_index.find_index(tmp_path, "rocep1s0f0", IPv4Address("10.20.0.1"), None)
    assert report["index"] == 3


def test_mock_sysfs_gid_index_never_takes_roce_v1(tmp_path: Path) -> None:
    write_gid_table(tmp_path, "rocep1s0f0", {3: (mapped("10.20.0.1"), "IB/RoCE v1", "enp1s0f0np0")})
    report = gid_index.find_index(tmp_path, "rocep1s0f0", IPv4Address("10.20.0.1"), "enp1s0f0np0")
    assert report["index"] is None and report["gid"] is None
    assert "index 3 has it as IB/RoCE v1" in report["reason"]


def test_mock_sysfs_gid_index_ignores_entries_of_another_netdev(tmp_path: Path) -> None:
    write_gid_table(tmp_path, "rocep1s0f0", {3: (mapped("10.20.0.1"), "RoCE v2", "bond0")})
    report = gid_index.find_index(tmp_path, "rocep1s0f0", IPv4Address("10.20.0.1"), "enp1s0f0np0")
    assert report["index"] is None
    assert "index 3 belongs to bond0, not enp1s0f0np0" in report["reason"]


def test_mock_sysfs_gid_index_address_absent_says_so(tmp_path: Path) -> None:
    write_gid_table(tmp_path, "rocep1s0f0", spark_table("enp1s0f0np0", "10.20.0.1", drifted=False))
    report = gid_index.find_index(tmp_path, "rocep1s0f0", IPv4Address("10.20.9.9"), "enp1s0f0np0")
    assert report["index"] is None
    assert report["reason"] == ("no RoCE v2 GID of 10.20.9.9 on rocep1s0f0: is 10.20.9.9 configured on "
                                "enp1s0f0np0 and the link up?")


def test_mock_sysfs_gid_index_missing_device(tmp_path: Path) -> None:
    report = gid_index.find_index(tmp_path, "roceP2p1s0f1", IPv4Address("10.20.0.1"), None)
    assert report["index"] is None and report["reason"].startswith("no RDMA device roceP2p1s0f1")


def test_mock_sysfs_gid_index_script_runs_from_stdin(tmp_path: Path) -> None:
    """As shipped: `python3 - DEV ADDR ...` with the script on stdin, exit 0 found / 1 not found."""
    write_gid_table(tmp_path, "rocep1s0f0", spark_table("enp1s0f0np0", "10.20.0.1", drifted=True))
    script = GID_SCRIPT.read_text(encoding="utf-8")
    found = subprocess.run([sys.executable, "-", "rocep1s0f0", "10.20.0.1", "--netdev", "enp1s0f0np0",
                            "--sysfs-root", str(tmp_path)], input=script, capture_output=True, text=True,
                           check=False)
    assert found.returncode == 0 and json.loads(found.stdout)["index"] == 4
    absent = subprocess.run([sys.executable, "-", "rocep1s0f0", "10.9.9.9", "--sysfs-root", str(tmp_path)],
                            input=script, capture_output=True, text=True, check=False)
    assert absent.returncode == 1 and json.loads(absent.stdout)["index"] is None


# a fake SSH layer


@dataclass
class FakeProcess:
    """Stands in for ssh.start's Popen: prints `lines`, then exits by itself or waits to be terminated."""

    lines: list[str]
    exits_by_itself: bool = True
    returncode: int | None = None
    terminated: bool = False

    def __post_init__(self) -> None:
        self.stdout = io.StringIO("".join(self.lines))

    def poll(self) -> int | None:
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None:
            if not self.exits_by_itself:
                raise subprocess.TimeoutExpired("ssh", timeout or 0)
            self.returncode = 0
        return self.returncode

    def terminate(self) -> None:
        self.terminated = True
        self.returncode = -15

    def kill(self) -> None:
        self.returncode = -9


@dataclass
class FakeRemote:
    """A `rdma.Remote` that replays outputs and records every argv, per node."""

    sysfs: dict[str, Path]
    client_outputs: list[str] = field(default_factory=list)
    """Consumed in order by ib_write_bw clients; the last one repeats."""
    nccl_output: str = ""
    nccl_status: int = 0
    server_lines: list[str] = field(default_factory=lambda: list(SERVER_BANNER))
    server_exits: bool = True
    client_raises: BaseException | None = None
    runs: list[tuple[str, list[str]]] = field(default_factory=list)
    started: list[tuple[str, list[str], FakeProcess]] = field(default_factory=list)

    def run(self, target: ssh.SSHTarget, argv: Sequence[str], *, timeout: float,
            input: str | None = None) -> subprocess.CompletedProcess[str]:
        argv = list(argv)
        self.runs.append((target.name, argv))
        if argv[:2] == ["python3", "-"]:  # the real gid_index.py, on this node's fake sysfs
            script = [sys.executable, "-", *argv[2:], "--sysfs-root", str(self.sysfs[target.name])]
            return subprocess.run(script, input=input, capture_output=True, text=True, check=False)
        if argv[0] == "ib_write_bw":
            if self.client_raises is not None:
                raise self.client_raises
            text = self.client_outputs[0] if len(self.client_outputs) == 1 else self.client_outputs.pop(0)
            return subprocess.CompletedProcess(argv, 0, text, "")
        assert argv[0] == "timeout" and "mpirun" in argv
        return subprocess.CompletedProcess(argv, self.nccl_status, self.nccl_output, "")

    def start(self, target: ssh.SSHTarget, argv: Sequence[str]) -> FakeProcess:
        process = FakeProcess(list(self.server_lines), exits_by_itself=self.server_exits)
        self.started.append((target.name, list(argv), process))
        return process

    def client_runs(self) -> list[tuple[str, list[str]]]:
        return [(node, argv) for node, argv in self.runs if argv[0] == "ib_write_bw"]


def make_plan(tmp_path: Path, nodes: int = 2, **group_vars: Any) -> ClusterPlan:
    """The real planner's plan for an inventory of `nodes` Sparks (management 192.168.1.10N)."""
    root = tmp_path / "inventory"
    (root / "group_vars").mkdir(parents=True)
    hosts = {f"spark{i}": {"ansible_host": f"192.168.1.{100 + i}"} for i in range(1, nodes + 1)}
    (root / "hosts.yml").write_text(yaml.safe_dump({"all": {"children": {"sparks": {"hosts": hosts}}}}))
    (root / "group_vars" / "sparks.yml").write_text(yaml.safe_dump(group_vars))
    return load_cluster(root).plan


def facts_for(plan: ClusterPlan, *, missing_tool: tuple[str, str] | None = None,
              missing_device: tuple[str, str] | None = None) -> dict[str, dict[str, Any]]:
    """node_facts.py's report of Sparks with perftest, nccl-tests and mpirun, minus what the test removes."""
    facts: dict[str, dict[str, Any]] = {}
    for name in plan.nodes:
        tools = {tool: (name, tool) != missing_tool for tool in ("ib_write_bw", "all_gather_perf", "mpirun")}
        devices = [d for d in sorted(hardware.RDMA_DEVICES.values()) if (name, d) != missing_device]
        facts[name] = {"tools": tools, "rdma_devices": devices}
    return facts


def targets_for(plan: ClusterPlan, user: str = "root") -> dict[str, ssh.SSHTarget]:
    return {name: ssh.SSHTarget(name, node.management_address, user=user)
            for name, node in plan.nodes.items()}


def ib_write_bw(device: str, index: int, port: int, *server: str) -> list[str]:
    """The argv expected for one side, 5 s: `server` is the address a client adds."""
    return ["ib_write_bw", "-d", device, "-x", str(index), "-F", "--report_gbits", "-D", "5", "-q", "4",
            "-p", str(port), *server]


def nccl(plan: ClusterPlan, remote: FakeRemote, *, ring: bool = False, user: str = "root",
         size: str = rdma.NCCL_SIZE, **facts: Any) -> Check:
    """nccl_check over every planned node, in plan order, through the fake runner."""
    return rdma.nccl_check(list(plan.nodes.values()), facts_for(plan, **facts), targets_for(plan, user),
                           ring=ring, size=size, remote=remote)


def fake_fabric(tmp_path: Path, plan: ClusterPlan, drifted: set[str]) -> dict[str, Path]:
    """A fake sysfs per node holding the GID of every planned link end; nodes in `drifted` at index 4."""
    roots = {name: tmp_path / "sysfs" / name for name in plan.nodes}
    for link in plan.links:
        for end in (link.a, link.b):
            assert end.address is not None
            write_gid_table(roots[end.node], hardware.RDMA_DEVICES[end.interface],
                            spark_table(end.interface, str(end.address.ip), drifted=end.node in drifted))
    return roots


# rdma_checks with the fake SSH layer


def test_mock_rdma_pair_passes_at_111_gbps_with_the_looked_up_index(tmp_path: Path, captured: Read) -> None:
    plan = make_plan(tmp_path)
    remote = FakeRemote(fake_fabric(tmp_path, plan, drifted={"spark2"}),
                        client_outputs=[captured("ib-write-bw-spark-report-gbits-q4.txt")])
    checks = rdma.rdma_checks(plan.links, facts_for(plan), targets_for(plan), 5.0, remote=remote)

    assert [(c.link, c.check, c.value, c.ok) for c in checks] == [
        (link.name, "rdma", "111.7 Gb/s", True) for link in plan.links]
    # servers on the b node, with spark2's drifted index 4 and their own exchange ports
    assert [(node, argv) for node, argv, _ in remote.started] == [
        ("spark2", ib_write_bw("rocep1s0f0", 4, 18515)),
        ("spark2", ib_write_bw("roceP2p1s0f0", 4, 18516)),
    ]
    # clients on the a node, spark1's usual index 3, aimed at the b address of the same half
    assert sorted(remote.client_runs()) == [
        ("spark1", ib_write_bw("roceP2p1s0f0", 3, 18516, "10.20.1.2")),
        ("spark1", ib_write_bw("rocep1s0f0", 3, 18515, "10.20.0.2")),
    ]
    lookups = [argv for _, argv in remote.runs if argv[:2] == ["python3", "-"]]
    assert ["python3", "-", "rocep1s0f0", "10.20.0.2", "--netdev", "enp1s0f0np0"] in lookups
    assert all(process.returncode is not None for _, _, process in remote.started)  # every server stopped


def test_mock_rdma_13_gbps_fails_with_the_hotplug_hint(tmp_path: Path, captured: Read) -> None:
    plan = make_plan(tmp_path)
    remote = FakeRemote(fake_fabric(tmp_path, plan, drifted=set()),
                        client_outputs=[captured("ib-write-bw-spark-hotplug-13gbps.txt")])
    check = rdma.rdma_checks(plan.links[:1], facts_for(plan), targets_for(plan), 5.0, remote=remote)[0]
    assert (check.value, check.expected, check.ok) == ("13.2 Gb/s", ">= 90 Gb/s", False)
    assert "~13 Gb/s is what a cable plugged into running Sparks gives" in check.message


@pytest.mark.parametrize("missing", [{"missing_tool": ("spark2", "ib_write_bw")},
                                     {"missing_device": ("spark1", "rocep1s0f0")}])
def test_mock_rdma_skipped_without_tool_or_device(tmp_path: Path, missing: dict[str, Any]) -> None:
    plan = make_plan(tmp_path)
    remote = FakeRemote(fake_fabric(tmp_path, plan, drifted=set()))
    first = plan.links[0]
    checks = rdma.rdma_checks([first], facts_for(plan, **missing), targets_for(plan), 5.0, remote=remote)
    assert [(c.link, c.check, c.ok, c.message) for c in checks] == [(first.name, "rdma", None, SKIPPED)]
    assert remote.runs == [] and remote.started == []


def test_mock_rdma_bond_is_skipped_not_available(tmp_path: Path) -> None:
    """A bond has no RDMA device of its own: skipped, where a lookup by netdev name would crash."""
    plan = make_plan(tmp_path, sparkctl_topology="bond")
    remote = FakeRemote({})
    [check] = rdma.rdma_checks(plan.links, facts_for(plan), targets_for(plan), 5.0, remote=remote)
    assert (check.link, check.ok, check.message) == ("spark1:bond0-spark2:bond0", None, SKIPPED)
    assert remote.runs == []


def test_mock_rdma_no_roce_v2_gid_fails_before_any_test(tmp_path: Path) -> None:
    plan = make_plan(tmp_path)
    roots = fake_fabric(tmp_path, plan, drifted=set())
    write_gid_table(roots["spark2"], "rocep1s0f0", {2: (mapped("10.20.0.2"), "IB/RoCE v1", "enp1s0f0np0")})
    remote = FakeRemote(roots)
    check = rdma.rdma_checks(plan.links[:1], facts_for(plan), targets_for(plan), 5.0, remote=remote)[0]
    assert (check.value, check.ok) == ("no RoCE v2 GID", False)
    assert check.message.startswith("spark2 rocep1s0f0 has no RoCE v2 GID to test with")
    assert "index 2 has it as IB/RoCE v1" in check.message
    assert remote.started == []


def test_mock_rdma_server_that_never_listens_fails_the_half(tmp_path: Path) -> None:
    plan = make_plan(tmp_path)
    remote = FakeRemote(fake_fabric(tmp_path, plan, drifted=set()),
                        server_lines=[" Unable to find the Infiniband/RoCE device\r\n"])
    check = rdma.rdma_checks(plan.links[:1], facts_for(plan), targets_for(plan), 5.0, remote=remote)[0]
    assert (check.value, check.ok) == ("error", False)
    assert "the server on spark2 did not start: Unable to find the Infiniband/RoCE device" in check.message
    assert remote.client_runs() == []


def test_mock_rdma_client_retries_until_the_server_listens(tmp_path: Path, captured: Read) -> None:
    plan = make_plan(tmp_path)
    remote = FakeRemote(fake_fabric(tmp_path, plan, drifted=set()), server_exits=False,
                        client_outputs=["Couldn't connect to 10.20.0.2:18515\n",
                                        captured("ib-write-bw-spark-report-gbits-q4.txt")])
    check = rdma.rdma_checks(plan.links[:1], facts_for(plan), targets_for(plan), 5.0, remote=remote)[0]
    assert check.ok is True and len(remote.client_runs()) == 2
    assert remote.started[0][2].terminated  # still waiting after the test: ended, not left on the node


def test_mock_rdma_servers_stopped_on_ctrl_c(tmp_path: Path) -> None:
    plan = make_plan(tmp_path)
    remote = FakeRemote(fake_fabric(tmp_path, plan, drifted=set()), server_exits=False,
                        client_raises=KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        rdma.rdma_checks(plan.links, facts_for(plan), targets_for(plan), 5.0, remote=remote)
    assert len(remote.started) == 2 and all(process.terminated for _, _, process in remote.started)


# nccl_check with the fake SSH layer


def test_mock_nccl_spark_pair_16g_capture_fails_below_21_875(tmp_path: Path, captured: Read) -> None:
    """Real Spark output (18.94 GB/s busbw at MTU 1500) judged against NVIDIA's two-node threshold."""
    plan = make_plan(tmp_path)
    remote = FakeRemote({}, nccl_output=captured("nccl-all-gather-perf-spark-16g-mtu1500.txt"))
    check = nccl(plan, remote)
    assert (check.link, check.check, check.value, check.expected, check.ok) == (
        "cluster", "nccl", "18.94 GB/s", ">= 21.875 GB/s", False)
    [(node, argv)] = remote.runs
    assert node == "spark1"
    test = ["all_gather_perf", "-b", "1G", "-e", "1G", "-f", "2", "-g", "1"]
    assert argv == [
        "timeout", "--kill-after=10", "300",
        "env", "OMPI_MCA_btl_tcp_if_include=enP7s7", "OMPI_MCA_oob_tcp_if_include=enP7s7",
        "mpirun", "--bind-to", "none", "--allow-run-as-root",
        "-x", "NCCL_SOCKET_IFNAME=enP7s7", "-x", "UCX_NET_DEVICES=enP7s7",
        "-x", "OMPI_MCA_btl_tcp_if_include=enP7s7", "-x", "OMPI_MCA_oob_tcp_if_include=enP7s7",
        "-x", "NCCL_IB_HCA=rocep1s0f0,roceP2p1s0f0", "-x", "NCCL_IB_SUBNET_AWARE_ROUTING=1",
        "-x", "NCCL_IB_ROCE_VERSION_NUM=2", "-x", "NCCL_IB_ADDR_FAMILY=AF_INET",
        "-np", "1", "-H", "192.168.1.101:1", *test, ":", "-np", "1", "-H", "192.168.1.102:1", *test,
    ]


def test_mock_nccl_passes_on_a_healthy_capture(tmp_path: Path, captured: Read) -> None:
    """A real two-node run (not Sparks: 122 GB/s at 1G) shows the pass path and the size parameter."""
    plan = make_plan(tmp_path)
    remote = FakeRemote({}, nccl_output=captured("nccl-all-gather-perf-2node-a3.txt"))
    check = nccl(plan, remote, user="ubuntu", size="512M")
    assert (check.value, check.ok) == ("122.14 GB/s", True)
    argv = remote.runs[0][1]
    assert "--allow-run-as-root" not in argv and argv[-8:-6] == ["-b", "512M"]


def test_mock_nccl_node_specific_hca_goes_to_that_rank_only(tmp_path: Path, captured: Read) -> None:
    plan = make_plan(tmp_path, sparkctl_cabling=["spark1:p0 spark2:p1"])
    remote = FakeRemote({}, nccl_output=captured("nccl-all-gather-perf-2node-a3.txt"))
    nccl(plan, remote)
    argv = remote.runs[0][1]
    assert not any(arg.startswith("NCCL_IB_HCA=") for i, arg in enumerate(argv) if argv[i - 1] == "-x")
    first, second = " ".join(argv).split(" : ")
    assert first.endswith("-H 192.168.1.101:1 env NCCL_IB_HCA=rocep1s0f0,roceP2p1s0f0 all_gather_perf "
                          "-b 1G -e 1G -f 2 -g 1")
    assert second.startswith("-np 1 -H 192.168.1.102:1 env NCCL_IB_HCA=rocep1s0f1,roceP2p1s0f1 "
                             "all_gather_perf ")


def test_mock_nccl_ring_of_three_uses_the_ring_threshold(tmp_path: Path, captured: Read) -> None:
    plan = make_plan(tmp_path, nodes=3, sparkctl_topology="ring")
    remote = FakeRemote({}, nccl_output=captured("nccl-all-gather-perf-spark-16g-mtu1500.txt"))
    check = nccl(plan, remote, ring=True)
    assert (check.expected, check.ok) == (">= 10 GB/s", True)
    assert "-x" in remote.runs[0][1] and "NCCL_ALGO=Ring" in remote.runs[0][1]


def test_mock_nccl_skipped_not_available_without_mpirun(tmp_path: Path) -> None:
    plan = make_plan(tmp_path)
    remote = FakeRemote({})
    check = nccl(plan, remote, missing_tool=("spark2", "mpirun"))
    assert (check.link, check.check, check.ok, check.message) == ("cluster", "nccl", None, SKIPPED)
    assert remote.runs == []


def test_mock_nccl_not_run_without_a_published_threshold(tmp_path: Path) -> None:
    plan = make_plan(tmp_path, nodes=4, sparkctl_topology="switch")
    remote = FakeRemote({})
    check = nccl(plan, remote)
    assert (check.expected, check.ok) == ("no published threshold", None) and remote.runs == []


def test_mock_nccl_failure_output_fails_with_the_hca_hint(tmp_path: Path, captured: Read) -> None:
    plan = make_plan(tmp_path)
    remote = FakeRemote({}, nccl_output=captured("nccl-tests-failure-rccl.txt"), nccl_status=1)
    check = nccl(plan, remote)
    assert (check.value, check.ok) == ("error", False) and "NCCL_IB_HCA must list only" in check.message


def test_mock_nccl_hung_run_is_reported_as_such(tmp_path: Path) -> None:
    plan = make_plan(tmp_path)
    remote = FakeRemote({}, nccl_output="", nccl_status=124)
    check = nccl(plan, remote)
    assert check.ok is False and "mpirun did not finish within 300 s" in check.message
