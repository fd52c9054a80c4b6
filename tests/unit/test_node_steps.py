"""The node steps as the action plugins run them: the bootstrap on a real Python, the result line, failures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sparkctl import ansible_node_step
from sparkctl.node import steps

SYSTEM_PYTHON = "/usr/bin/python3"


def _on_node(request: dict[str, object]) -> dict[str, object]:
    """Run one step the way the action plugin does: its script on a Python's stdin, in a clean environment
    without sparkctl on the path."""
    if not Path(SYSTEM_PYTHON).exists():
        pytest.skip("needs /usr/bin/python3")
    done = subprocess.run([SYSTEM_PYTHON, "-I", "-"], input=ansible_node_step.script(request), capture_output=True,
                          check=False, cwd="/", env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})
    found = ansible_node_step.answer(done.stdout.decode())
    assert found is not None, done.stderr.decode()
    return found


def test_a_step_runs_from_the_sources_the_script_carries() -> None:
    found = _on_node({"step": "sparkctl_node_read", "check_mode": False,
                      "params": {"netdevs": ["lo", "enp1s0f0np0"], "require_root": False, "links_fact": "links"}})
    assert found["changed"] is False and found["uid"] == os.geteuid()
    assert [link["ifname"] for link in found["links"]] == ["lo"]  # netdevs the host lacks are left out
    assert found["ansible_facts"] == {"links": found["links"]}


def test_preflight_read_refuses_a_connection_without_root_before_reading(monkeypatch: pytest.MonkeyPatch) -> None:
    def unused(argv: object) -> tuple[int, str, str]:
        raise AssertionError("read although not root")

    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    found = steps.serve({"step": "sparkctl_node_read", "check_mode": False,
                         "params": {"netdevs": [], "require_root": True, "links_fact": None}}, unused)
    assert found["failed"] is True and found["uid"] == 1000
    assert "runs as uid 1000" in str(found["msg"]) and "ansible_become: true" in str(found["msg"])


def test_a_failing_step_returns_its_message_and_data() -> None:
    found = _on_node({"step": "sparkctl_packages", "check_mode": False,
                      "params": {"mode": "verify", "base": ["no-such-tool-here"], "optional": [],
                                 "commands": {}, "node": "spark1"}})
    assert found["failed"] is True and found["missing"] == ["no-such-tool-here"]
    assert "spark1 lacks no-such-tool-here" in str(found["msg"])


def test_an_unexpected_error_is_a_failure_with_its_traceback() -> None:
    def broken(argv: object) -> tuple[int, str, str]:
        raise OSError("no such command")

    found = steps.serve({"step": "sparkctl_node_read", "check_mode": False,
                         "params": {"netdevs": [], "require_root": False, "links_fact": None}}, broken)
    assert found["failed"] is True and found["msg"] == "OSError: no such command"
    assert "Traceback" in str(found["exception"])


def test_output_without_a_result_line_is_no_answer() -> None:
    assert ansible_node_step.answer("Traceback (most recent call last):\n  ...\nSyntaxError: x\n") is None


def _ansible(tmp_path: Path, module: str, args: dict[str, object], python: str) -> tuple[int, dict[str, object]]:
    """One ad hoc task on this machine through the action plugin, as a role's task runs: ansible's exit
    status and the task's result."""
    repo = Path(__file__).resolve().parents[2]
    bin_dir = Path(sys.executable).parent
    env = {"ANSIBLE_CONFIG": str(repo / "ansible.cfg"), "PATH": f"{bin_dir}:/usr/sbin:/usr/bin:/sbin:/bin"}
    done = subprocess.run([str(bin_dir / "ansible"), "-i", "localhost,", "localhost", "-c", "local", "-m", module,
                    "-a", json.dumps(args), "-e", f"ansible_python_interpreter={python}", "--tree", str(tmp_path)],
                          capture_output=True, text=True, timeout=120, env=env, cwd=repo, check=False)
    return done.returncode, dict(json.loads((tmp_path / "localhost").read_text()))


def test_the_action_plugin_validates_the_arguments_before_anything_runs(tmp_path: Path) -> None:
    rc, found = _ansible(tmp_path, "sparkctl_watch", {"enabled": "maybe"}, "/bin/false")  # never reached
    assert rc == 2 and str(found["msg"]).startswith("sparkctl_watch: ") and "enabled" in str(found["msg"])


def test_a_node_python_that_gives_no_result_fails_the_task_saying_so(tmp_path: Path) -> None:
    rc, found = _ansible(tmp_path, "sparkctl_node_read", {"netdevs": ["lo"]}, "/bin/false")
    assert rc == 2
    assert str(found["msg"]).startswith("sparkctl_node_read: the node's Python (/bin/false) gave no result (exit status 1)")
