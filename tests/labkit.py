"""The one kit every lab test uses: make a lab through `sparkctl lab`, look at it from outside, take it down.

A lab is reached the way a user or verify-link reaches it (SSH with host keys checked, sysfs on the
node, ansible with the lab's inventory) or from the host (namespaces). Each lab gets a name unique to
this run, under a state root private to this run, so a test run never meets a lab of the machine's
user, of another run, or one left behind by a run that was killed.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from sparkctl import hardware, ssh
from sparkctl.cluster import Cluster, load_cluster
from sparkctl.commands.lab import lab as lab_cli
from sparkctl.lab.paths import LabPaths
from sparkctl.lab.state import LabState, load
from sparkctl.model import Cable, Endpoint
from sparkctl.provisioning import runner

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SPARKCTL = str(BIN / "sparkctl")
ANSIBLE = str(BIN / "ansible")
ANSIBLE_PLAYBOOK = str(BIN / "ansible-playbook")


def unique_name(prefix: str = "t") -> str:
    """A lab name no other run picks: namespaces and host interfaces are machine-wide."""
    return prefix + secrets.token_hex(3)


def cli(root: Path, *args: str) -> str:
    """Run `sparkctl lab ARGS`; fail loudly with its output unless it exits 0. Returns stdout."""
    result = CliRunner().invoke(lab_cli, list(args), env={"SPARKCTL_LAB_ROOT": str(root)})
    if result.exit_code != 0:
        raise AssertionError(
            f"sparkctl lab {' '.join(args)} exited {result.exit_code}: {result.output}\n{result.exception!r}"
        )
    return result.stdout


@dataclass
class Lab:
    """A running lab as the tests see it."""

    root: Path
    name: str

    @property
    def paths(self) -> LabPaths:
        return LabPaths(self.root, self.name)

    @property
    def state(self) -> LabState:
        state = load(self.paths)
        assert state is not None, f"lab {self.name} has no state"
        return state

    @property
    def inventory(self) -> Path:
        return self.paths.inventory

    def cli(self, *args: str) -> str:
        """`sparkctl lab ARGS --name <this lab>`."""
        return cli(self.root, *args, "--name", self.name)

    def status(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.cli("status", "--json"))
        return data

    def namespace(self, node: str) -> str:
        return self.state.nodes[node].namespace

    def target(self, node: str, known_hosts: Path | None = None) -> ssh.SSHTarget:
        """The node as the inventory describes it (host keys checked against the lab's known_hosts)."""
        hostvars: dict[str, Any] = {
            "ansible_host": self.state.nodes[node].mgmt_address,
            "ansible_ssh_private_key_file": str(self.paths.client_key),
            "ansible_ssh_common_args": f"-o UserKnownHostsFile={known_hosts or self.paths.known_hosts}",
        }
        return ssh.SSHTarget.from_hostvars(node, hostvars)

    def sh(
        self, node: str, *argv: str, check: bool = True, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        """Run a command on a node over SSH."""
        return ssh.run(self.target(node), list(argv), check=check, timeout=timeout)

    def carriers(self, node: str) -> dict[str, str]:
        """/sys/class/net/IF/carrier of the four fabric netdevs, read on the node ('0', '1' or 'down')."""
        script = "; ".join(
            f"printf '%s ' {dev}; cat /sys/class/net/{dev}/carrier 2>/dev/null || echo down"
            for dev in hardware.ALL_NETDEVS
        )
        out = self.sh(node, "sh", "-c", script).stdout
        return dict(line.split() for line in out.splitlines())

    def wait_carriers(self, node: str, expected: dict[str, str], timeout: float = 5) -> dict[str, str]:
        """Poll until the node's carriers include `expected` (links settle a moment after a change)."""
        deadline = time.monotonic() + timeout
        while True:
            seen = self.carriers(node)
            if all(seen.get(dev) == value for dev, value in expected.items()) or time.monotonic() > deadline:
                return seen
            time.sleep(0.1)

    def ip(self, node: str, *args: str) -> None:
        """`ip` inside a node's namespace, from the host (test scaffolding, not what is under test)."""
        subprocess.run(["ip", "-n", self.namespace(node), *args], check=True, capture_output=True, text=True)

    @contextmanager
    def addresses(self, assignments: dict[tuple[str, str], str]) -> Iterator[None]:
        """Give (node, netdev) pairs an address for the duration of a test."""
        for (node, dev), address in assignments.items():
            self.ip(node, "address", "add", address, "dev", dev)
        try:
            yield
        finally:
            for (node, dev), address in assignments.items():
                subprocess.run(
                    ["ip", "-n", self.namespace(node), "address", "del", address, "dev", dev],
                    check=False, capture_output=True,
                )

    @contextmanager
    def mtu(self, devices: list[tuple[str, str]], value: int) -> Iterator[None]:
        for node, dev in devices:
            self.ip(node, "link", "set", dev, "mtu", str(value))
        try:
            yield
        finally:
            for node, dev in devices:
                self.ip(node, "link", "set", dev, "mtu", "1500")

    def ping(
        self, node: str, address: str, *extra: str, count: int = 3, interval: float = 0.2
    ) -> subprocess.CompletedProcess[str]:
        argv = ["ping", "-n", "-q", "-c", str(count), "-i", str(interval), "-W", "1", *extra, address]
        return self.sh(node, *argv, check=False)

    def ansible(self, pattern: str, module: str, args: str = "") -> subprocess.CompletedProcess[str]:
        argv = [ANSIBLE, "-i", str(self.inventory), pattern, "-m", module]
        if args:
            argv += ["-a", args]
        # No ControlPersist master: it would outlive the test (and the lab) by a minute.
        env = {**os.environ, "ANSIBLE_NOCOLOR": "1", "ANSIBLE_SSH_ARGS": "-o ControlMaster=no"}
        return subprocess.run(argv, capture_output=True, text=True, timeout=120, env=env, check=False)

    def playbook(self, *args: str, extravars: dict[str, Any] | None = None,
                 playbook: str = "playbooks/site.yml", inventory: Path | None = None) -> subprocess.CompletedProcess[str]:
        """Plain ansible-playbook, as a user runs it from the repository (ansible.cfg of the checkout), on the
        lab's inventory or on `inventory` (a changed copy of it)."""
        argv = [ANSIBLE_PLAYBOOK, "-i", str(inventory or self.inventory), str(REPO / playbook), *args]
        if extravars:
            argv += ["-e", json.dumps(extravars)]
        env = {**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1"}
        return subprocess.run(argv, capture_output=True, text=True, env=env, cwd=REPO, timeout=600, check=False)

    def provision_api(self, **kwargs: Any) -> runner.RunOutcome:
        """The run `sparkctl provision` makes, through the same Python API, for its recap."""
        run = runner.PlaybookRun(inventory=self.inventory, **kwargs)
        return runner.run(run, lambda event: None)

    def cables(self) -> list[Cable]:
        """The Spark-to-Spark cables the lab has plugged in (what discovery must find)."""
        found = []
        for item in self.status()["cables"]:
            ends = [str(item["a"]), str(item["b"])]
            if all(":" in end for end in ends):
                (a_node, a_port), (b_node, b_port) = (end.split(":") for end in ends)
                found.append(Cable.between(Endpoint(a_node, a_port), Endpoint(b_node, b_port)))
        return found

    def expected(self) -> Cluster:
        """The plan for the cabling the lab really has."""
        return load_cluster(self.inventory, discovered=self.cables() or None)


@contextmanager
def running_lab(
    root: Path, *, nodes: int = 2, topology: str = "direct", prefix: str = "t", flavor: str = "networkd",
) -> Iterator[Lab]:
    """A lab for the duration of a `with` block; always taken down by the name it was created with."""
    name = unique_name(prefix)
    try:
        cli(root, "up", "--name", name, "--nodes", str(nodes), "--topology", topology, "--flavor", flavor)
        yield Lab(root, name)
    finally:
        cli(root, "down", "--name", name)


def loss_percent(ping_output: str) -> float:
    """The packet loss ping -q reports, e.g. 12.5 for `... 12.5% packet loss ...`."""
    return float(ping_output.split("% packet loss")[0].rsplit(" ", 1)[1])


def iperf3_gbps(lab: Lab, server: str, client: str, address: str, *extra: str) -> float:
    """Bits per second received in a short iperf3 run between two nodes, both ends started over SSH."""
    listener = ssh.start(lab.target(server), ["iperf3", "-s", "-1", "-B", address])
    try:
        result = None
        for _ in range(20):
            argv = ["iperf3", "-c", address, "-t", "2", "-J", "--connect-timeout", "2000", *extra]
            result = lab.sh(client, *argv, check=False)
            data = json.loads(result.stdout or "{}")
            if "error" not in data:
                return float(data["end"]["sum_received"]["bits_per_second"]) / 1e9
            time.sleep(0.2)
        raise AssertionError(f"iperf3 kept failing: {result.stdout if result else ''}")
    finally:
        listener.terminate()
        listener.wait(timeout=10)
