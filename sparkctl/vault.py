"""Where the vault passwords of an inventory come from, for sparkctl's own reading and for the playbook run.

A vault password is given as ansible-playbook takes one: `--vault-password-file FILE` (a file, or a
script that prints it), `--ask-vault-pass`, or Ansible's own default, the `vault_password_file`
setting (ANSIBLE_VAULT_PASSWORD_FILE or ansible.cfg). sparkctl reads the inventory with these and
passes the same options to the ansible-playbook it runs, so both decrypt the same values. Asked-for
passwords are asked once and handed to ansible-runner's prompt answering, never put on a command line.

Nothing here imports Ansible until the passwords are needed: `sparkctl --help` stays fast.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from sparkctl.errors import InputError

PASSWORD_FIX = "pass --vault-password-file FILE or --ask-vault-pass (or set ANSIBLE_VAULT_PASSWORD_FILE)"
VAULT_PROMPT = r"^Vault password:\s*?$"
"""The prompt ansible-playbook shows for --ask-vault-pass (the format Ansible keeps for tools that answer it)."""


@dataclass
class VaultPasswords:
    """The vault passwords a command was given; `configured` is filled in with Ansible's default file once read."""

    files: tuple[Path, ...] = ()
    ask: bool = False
    configured: tuple[Path, ...] = ()
    _typed: str | None = field(default=None, repr=False)

    def typed(self) -> str:
        """The password typed at --ask-vault-pass, asked on first use only (on stderr, never echoed)."""
        if self._typed is None:
            self._typed = str(click.prompt("Vault password", hide_input=True, err=True))
        return self._typed

    def secrets(self) -> list[tuple[str, Any]]:
        """Ansible's vault secrets for these passwords, with the `vault_password_file` Ansible itself would use."""
        from ansible import constants as C  # type: ignore[import-untyped]
        from ansible.errors import AnsibleError  # type: ignore[import-untyped]
        from ansible.parsing.dataloader import DataLoader  # type: ignore[import-untyped]
        from ansible.parsing.vault import VaultSecret, get_file_vault_secret  # type: ignore[import-untyped]

        default = C.DEFAULT_VAULT_PASSWORD_FILE
        self.configured = (Path(default),) if default and Path(default) not in self.files else ()
        identity = str(C.DEFAULT_VAULT_IDENTITY)
        secrets: list[tuple[str, Any]] = []
        for path in (*self.files, *self.configured):
            try:
                secret = get_file_vault_secret(filename=str(path), vault_id=identity, loader=DataLoader())
                secret.load()
            except AnsibleError as exc:
                option = "--vault-password-file" if path in self.files else "vault_password_file"
                raise InputError(f"gives no vault password: {exc.message}", file=path, key=option,
                                 fix="name a readable file that holds the password (or a script that prints it)"
                                 ) from None
            secrets.append((identity, secret))
        if self.ask:
            secrets.append((identity, VaultSecret(self.typed().encode())))
        return secrets

    def playbook_options(self) -> list[str]:
        """The ansible-playbook options that give the playbook run the same passwords.

        The default file is named explicitly: the run uses the repository's ansible.cfg, not the user's.
        """
        options: list[str] = []
        for path in (*self.files, *self.configured):
            options += ["--vault-password-file", str(path.expanduser().resolve())]
        if self.ask:
            options.append("--ask-vault-pass")
        return options

    def prompt_answers(self) -> dict[str, str]:
        """ansible-runner's answers to the playbook's own vault prompt (the password typed here)."""
        return {VAULT_PROMPT: self.typed()} if self.ask else {}
