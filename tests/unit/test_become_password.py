"""--ask-become-pass (-K): asked once, answered to ansible-playbook's own prompt, used by sparkctl's SSH commands."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest

from sparkctl.become import BECOME_PROMPT, BecomePassword
from sparkctl.provisioning.runner import PlaybookRun
from sparkctl.provisioning.session import explain_sudo
from sparkctl.ssh import SSHTarget


def test_the_password_is_asked_once_and_answers_ansible_playbooks_prompt(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[str] = []

    def prompt(text: str, **kwargs: object) -> str:
        asked.append(text)
        assert kwargs["hide_input"] is True and kwargs["err"] is True
        return "s3cret"

    monkeypatch.setattr(click, "prompt", prompt)
    become = BecomePassword(ask=True)
    run = PlaybookRun(inventory=tmp_path, become=become)
    assert run.options()[-1] == "--ask-become-pass" and "s3cret" not in run.equivalent_command()
    answers = run.become.prompt_answers()
    assert [re.match(pattern, "BECOME password: ") is not None for pattern in answers] == [True]
    assert answers[BECOME_PROMPT] == "s3cret" and become.typed() == "s3cret" and asked == ["BECOME password"]
    assert "s3cret" not in repr(become)


def test_without_the_flag_nothing_is_asked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(click, "prompt", lambda *a, **k: pytest.fail("asked without --ask-become-pass"))
    assert PlaybookRun(inventory=tmp_path).options() == [] and BecomePassword().prompt_answers() == {}


def test_the_inventorys_password_wins_over_the_typed_one() -> None:
    become = {"ansible_become": True}
    typed = SSHTarget.from_hostvars("spark1", become, become_password="typed").become
    own = SSHTarget.from_hostvars("spark2", {**become, "ansible_become_password": "own"}, become_password="typed")
    assert typed is not None and typed.password == "typed"
    assert own.become is not None and own.become.password == "own"
    assert SSHTarget.from_hostvars("spark3", {}, become_password="typed").become is None  # no become, no sudo


def test_ansibles_sudo_failures_say_what_to_do() -> None:
    assert "--ask-become-pass (-K)" in explain_sudo("Task failed: Missing sudo password")
    assert "not the login user's sudo password" in explain_sudo("Task failed: Incorrect sudo password")
    assert explain_sudo("Task failed: something else") == "Task failed: something else"
