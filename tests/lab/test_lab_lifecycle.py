"""`lab up` refuses what it cannot build and undoes a failed build; `lab down` leaves nothing it made
behind (also after a crash) and nothing it did not make is touched."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from sparkctl.commands.lab import lab as lab_cli
from sparkctl.errors import EnvironmentProblem, InputError
from sparkctl.lab import system
from sparkctl.lab.paths import LabPaths, bridge_name, namespace
from sparkctl.lab.state import LabState, load
from tests.labkit import cli, unique_name

pytestmark = pytest.mark.lab


def _pid_alive(pid: int | None, start: int | None) -> bool:
    """True if the recorded process (zombie or not) still exists with the recorded start time."""
    if pid is None:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return int(stat.rsplit(")", 1)[1].split()[19]) == start


def leftovers(paths: LabPaths, state: LabState) -> list[str]:
    """Everything recorded in `state` that still exists on the machine."""
    found = [f"namespace {ns}" for ns in state.namespaces if Path("/run/netns", ns).exists()]
    found += [f"interface {i}" for i in state.host_interfaces if system.link(None, i) is not None]
    for node in state.nodes.values():
        if _pid_alive(node.pid, node.pid_start):
            found.append(f"process {node.pid} ({node.name})")
        found += [f"cgroup {c}" for c in node.cgroups if Path(c).exists()]
    mounts = Path("/proc/self/mountinfo").read_text()
    found += [f"mount of {ns}" for ns in state.namespaces if f"/run/netns/{ns} " in mounts]
    if str(paths.dir) in mounts:
        found.append(f"mount under {paths.dir}")
    if paths.dir.exists():
        found.append(f"state dir {paths.dir}")
    return found


def _up(root: Path, name: str, *args: str) -> LabState:
    cli(root, "up", "--name", name, *args)
    state = load(LabPaths(root, name))
    assert state is not None
    return state


def test_down_leaves_nothing_behind(lab_root: Path) -> None:
    name = unique_name()
    try:
        state = _up(lab_root, name)
        assert all(_pid_alive(n.pid, n.pid_start) for n in state.nodes.values())
        assert leftovers(LabPaths(lab_root, name), state)
    finally:
        cli(lab_root, "down", "--name", name)
    assert leftovers(LabPaths(lab_root, name), state) == []


def test_down_after_a_crash_kills_what_the_nodes_left(lab_root: Path) -> None:
    name = unique_name()
    try:
        state = _up(lab_root, name)
        node = state.nodes["spark1"]
        assert node.pid is not None
        os.kill(node.pid, signal.SIGKILL)  # the container supervisor dies; systemd inside lives on
        try:
            os.waitpid(node.pid, 0)  # `up` ran in this process, so the supervisor was our child
        except ChildProcessError:
            pass
        assert not _pid_alive(node.pid, node.pid_start)
        assert any(system.cgroup_pids(Path(c)) for c in node.cgroups)
    finally:
        cli(lab_root, "down", "--name", name)
    assert leftovers(LabPaths(lab_root, name), state) == []


def test_down_touches_only_what_it_recorded(lab_root: Path) -> None:
    name = unique_name()
    foreign_ns = namespace(name, "extra")
    foreign_if = f"{name}-m9"
    try:
        _up(lab_root, name)
        subprocess.run(["ip", "netns", "add", foreign_ns], check=True)
        subprocess.run(["ip", "link", "add", foreign_if, "type", "bridge"], check=True)
        cli(lab_root, "down", "--name", name)
        assert Path("/run/netns", foreign_ns).exists()
        assert system.link(None, foreign_if) is not None
    finally:
        subprocess.run(["ip", "netns", "del", foreign_ns], check=False)
        subprocess.run(["ip", "link", "del", foreign_if], check=False, capture_output=True)
        cli(lab_root, "down", "--name", name)


def test_a_failed_up_undoes_itself_and_spares_what_it_did_not_make(lab_root: Path) -> None:
    name = unique_name()
    foreign = namespace(name, "spark2")
    subprocess.run(["ip", "netns", "add", foreign], check=True)
    try:
        result = CliRunner().invoke(lab_cli, ["up", "--name", name], env={"SPARKCTL_LAB_ROOT": str(lab_root)})
        assert isinstance(result.exception, EnvironmentProblem), result.output
        assert result.exception.exit_code == 2
        assert foreign in str(result.exception)
        assert Path("/run/netns", foreign).exists()
        assert not Path("/run/netns", namespace(name, "spark1")).exists()
        assert system.link(None, bridge_name(name)) is None
        assert not (lab_root / name).exists()
    finally:
        subprocess.run(["ip", "netns", "del", foreign], check=False)


@pytest.mark.parametrize(
    ("args", "key"),
    [
        (["--nodes", "3", "--topology", "direct"], "--nodes"),
        (["--nodes", "2", "--topology", "ring"], "--nodes"),
        (["--name", "Bad_Name"], "--name"),
        (["--speed-mbps", "0"], "--speed-mbps"),
    ],
)
def test_up_refuses_bad_input(lab_root: Path, args: list[str], key: str) -> None:
    before = set(lab_root.iterdir())
    result = CliRunner().invoke(lab_cli, ["up", *args], env={"SPARKCTL_LAB_ROOT": str(lab_root)})
    assert isinstance(result.exception, InputError), result.output
    assert result.exception.exit_code == 2 and result.exception.key == key
    assert set(lab_root.iterdir()) == before


def test_down_of_an_unknown_lab_is_a_no_op(lab_root: Path) -> None:
    env = {"SPARKCTL_LAB_ROOT": str(lab_root)}
    result = CliRunner().invoke(lab_cli, ["down", "--name", "nosuchlab"], env=env)
    assert result.exit_code == 0
    assert "nothing to do" in result.stderr
