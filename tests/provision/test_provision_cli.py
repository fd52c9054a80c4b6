"""`sparkctl provision` without nodes: input checked first, exit codes, the equivalent command it prints."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest
import yaml

from sparkctl.cli import main
from sparkctl.provisioning import runner
from sparkctl.provisioning.events import Event, HostStats, Recap
from tests.labkit import REPO


def _inventory(tmp_path: Path, **group_vars: object) -> Path:
    hosts = {"all": {"children": {"sparks": {"hosts": {
        "spark1": {"ansible_host": "198.18.250.11"}, "spark2": {"ansible_host": "198.18.250.12"}}}}}}
    (tmp_path / "group_vars").mkdir()
    (tmp_path / "hosts.yml").write_text(yaml.safe_dump(hosts))
    (tmp_path / "group_vars" / "sparks.yml").write_text(yaml.safe_dump({"sparkctl_topology": "direct", **group_vars}))
    return tmp_path


def _fake_run(recap: Recap, status: str = "successful", rc: int = 0) -> object:
    def fake(playbook_run: runner.PlaybookRun, on_event: object) -> runner.RunOutcome:
        return runner.RunOutcome(status, rc, recap, {"spark1": "it broke"}, {})
    return fake


def _exit_code(argv: list[str]) -> int:
    with pytest.raises(SystemExit) as raised:
        main(argv)
        raise SystemExit(0)
    return int(raised.value.code or 0)


def test_bad_inventory_exits_2_before_anything_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    def refuse(*args: object) -> None:
        raise AssertionError("ansible ran although the inventory is invalid")

    monkeypatch.setattr(runner, "run", refuse)
    inventory = _inventory(tmp_path, sparkctl_mtu=99999)
    assert _exit_code(["provision", "-i", str(inventory)]) == 2
    assert "sparkctl_mtu: 99999 is out of range" in capsys.readouterr().err


@pytest.mark.parametrize(("stats", "code"), [
    (HostStats(ok=10, changed=2), 0),
    (HostStats(ok=10, failed=1), 1),
    (HostStats(ok=1, unreachable=1), 2),
])
def test_exit_code_follows_the_recap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stats: HostStats,
                                     code: int) -> None:
    recap = Recap({"spark1": stats, "spark2": HostStats(ok=10)})
    monkeypatch.setattr(runner, "run", _fake_run(recap, "successful" if code == 0 else "failed", 0 if code == 0 else 2))
    assert _exit_code(["provision", "-i", str(_inventory(tmp_path))]) == code


def test_equivalent_command_is_plain_ansible_playbook_with_typed_extra_vars(tmp_path: Path) -> None:
    run = runner.PlaybookRun(inventory=tmp_path, extravars=runner.ProvisionVars(sparkctl_topology="ring"),
                             limit="spark1", check=True)
    words = shlex.split(run.equivalent_command())
    assert words[0] == f"ANSIBLE_CONFIG={REPO / 'ansible.cfg'}"
    assert words[1].endswith("ansible-playbook") and words[2:4] == ["-i", str(tmp_path.resolve())]
    assert words[4] == str(REPO / "playbooks" / "site.yml")
    assert json.loads(words[words.index("-e") + 1]) == {"sparkctl_topology": "ring"}
    assert words[-4:] == ["--limit", "spark1", "--check", "--diff"]


def test_topology_override_reaches_the_playbook_as_an_extra_var(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[runner.PlaybookRun] = []

    def record(playbook_run: runner.PlaybookRun, on_event: object) -> runner.RunOutcome:
        seen.append(playbook_run)
        return runner.RunOutcome("successful", 0, Recap({"spark1": HostStats(ok=1), "spark2": HostStats(ok=1)}), {}, {})

    monkeypatch.setattr(runner, "run", record)
    assert _exit_code(["provision", "-i", str(_inventory(tmp_path)), "--topology", "bond", "--limit", "spark2"]) == 0
    assert seen[0].extravars == {"sparkctl_topology": "bond"} and seen[0].limit == "spark2"


def test_progress_accepts_every_event_kind() -> None:
    from rich.console import Console

    from sparkctl.provisioning.events import HostResult, TaskStart
    from sparkctl.provisioning.progress import Progress, summary

    console = Console(file=open("/dev/null", "w"), force_terminal=False)  # noqa: SIM115 - closed with the console
    events: list[Event] = [TaskStart("play", "task", "role"), HostResult("spark1", "task", "role", "changed"),
                           HostResult("spark2", "task", "role", "failed", "boom"), Recap()]
    with Progress(["spark1", "spark2"], console) as live:
        for event in events:
            live.update(event)
    outcome = runner.RunOutcome("failed", 2, Recap({"spark2": HostStats(failed=1)}), {"spark2": "boom"}, {})
    console.print(summary(outcome, ["spark1", "spark2"]))
    console.file.close()
