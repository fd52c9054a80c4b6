"""ansible-runner events (captured from a real lab run) read into the typed records the display uses."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sparkctl.provisioning.events import HostResult, HostStats, Recap, TaskStart, parse_event

CAPTURED = Path(__file__).parent / "captured" / "runner-events.jsonl"


def _events() -> dict[str, dict[str, Any]]:
    lines = CAPTURED.read_text(encoding="utf-8").splitlines()
    return {item["kind"]: item["event"] for item in map(json.loads, lines)}


@pytest.fixture(scope="module")
def events() -> dict[str, dict[str, Any]]:
    return _events()


def test_task_start(events: dict[str, dict[str, Any]]) -> None:
    event = parse_event(events["playbook_on_task_start"])
    assert isinstance(event, TaskStart)
    assert event.role == "sparkctl_preflight" and event.task.startswith("Validating arguments")


def test_ok_changed_and_skipped(events: dict[str, dict[str, Any]]) -> None:
    assert parse_event(events["runner_on_ok"]) == HostResult(
        "spark1", "Validating arguments against arg spec 'main' - Preflight checks shared by every sparkctl play.",
        "sparkctl_preflight", "ok")
    changed = parse_event(events["runner_on_ok_changed"])
    assert isinstance(changed, HostResult) and changed.outcome == "changed" and changed.task == "Write the environment files"
    skipped = parse_event(events["runner_on_skipped"])
    assert isinstance(skipped, HostResult) and skipped.outcome == "skipped"


def test_failed_assert_carries_its_message(events: dict[str, dict[str, Any]]) -> None:
    event = parse_event(events["runner_on_failed_assert"])
    assert isinstance(event, HostResult) and event.outcome == "failed"
    assert event.message.startswith("The cabling contradicts sparkctl_cabling: found a cable spark1:p0 <-> spark2:p0")


def test_unreachable_says_which_address(events: dict[str, dict[str, Any]]) -> None:
    event = parse_event(events["runner_on_unreachable"])
    assert isinstance(event, HostResult) and event.outcome == "unreachable" and event.host == "spark2"
    assert "198.18.1.99" in event.message


def test_debug_message_is_a_note_and_no_log_results_stay_censored(events: dict[str, dict[str, Any]]) -> None:
    note = parse_event(events["runner_on_ok_debug"])
    assert isinstance(note, HostResult) and note.note and note.message.startswith("NOT APPLIED on spark1")
    hidden = parse_event(events["runner_on_ok_no_log"])
    assert isinstance(hidden, HostResult) and not hidden.note and hidden.message == ""
    assert list(events["runner_on_ok_no_log"]["event_data"]["res"]) == ["censored"]  # the netplan files never left


def test_recap_counts_per_host(events: dict[str, dict[str, Any]]) -> None:
    recap = parse_event(events["playbook_on_stats"])
    assert isinstance(recap, Recap)
    assert set(recap.hosts) == {"spark1", "spark2"}
    assert all(isinstance(s, HostStats) and s.succeeded and s.changed == 0 and s.ok > 0 for s in recap.hosts.values())


def test_other_events_are_ignored() -> None:
    assert parse_event({"event": "verbose", "event_data": {}}) is None
    assert parse_event({}) is None
