"""The sudo password typed at `--ask-become-pass` (-K), for the playbook runs and for sparkctl's own SSH commands.

As with ansible-playbook -K, the password is asked once, on stderr without echo, and a host whose
inventory sets `ansible_become_password` keeps its own. The playbook run gets it by answering
ansible-playbook's own prompt through ansible-runner, never on a command line or in a file.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import click

BECOME_PROMPT = r"^BECOME password.*:\s*?$"
"""The prompt ansible-playbook shows for --ask-become-pass."""


@dataclass
class BecomePassword:
    """Whether the command was asked to prompt for the sudo password, and what was typed (asked on first use)."""

    ask: bool = False
    _typed: str | None = field(default=None, repr=False)

    def typed(self) -> str | None:
        """The password, or None without --ask-become-pass."""
        if not self.ask:
            return None
        if self._typed is None:
            self._typed = str(click.prompt("BECOME password", hide_input=True, err=True))
        return self._typed

    def playbook_options(self) -> list[str]:
        return ["--ask-become-pass"] if self.ask else []

    def prompt_answers(self) -> dict[str, str]:
        """ansible-runner's answer to the playbook's become prompt."""
        typed = self.typed()
        return {BECOME_PROMPT: typed} if typed is not None else {}
