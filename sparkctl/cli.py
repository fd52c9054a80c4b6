"""The `sparkctl` command line. Subcommands load lazily: `sparkctl --help` imports no Ansible, no rich."""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click

from sparkctl import __version__
from sparkctl.errors import SparkctlError

COMMANDS = {
    "init": ("sparkctl.commands.init", "init", "Write a new inventory for your Sparks."),
    "plan": ("sparkctl.commands.plan", "plan", "Show the fabric plan: cables, interfaces, addresses, env."),
    "render": ("sparkctl.commands.plan", "render", "Write each node's fabric files under OUT/<node>/."),
    "provision": ("sparkctl.commands.provision", "provision", "Configure the fabric on the nodes with Ansible."),
    "verify-link": ("sparkctl.commands.verify", "verify_link", "Prove cabling, MTU and bandwidth of every link."),
    "deploy": ("sparkctl.commands.deploy", "deploy", "Run the inventory's services (vLLM, Ollama, TTS) on the Sparks."),
    "status": ("sparkctl.commands.deploy", "status", "Every service on every Spark: state, health, URL."),
    "keys": ("sparkctl.commands.keys", "keys", "Rotate the cluster SSH key the Sparks reach each other with."),
    "doctor": ("sparkctl.commands.doctor", "doctor", "What drifted since provisioning, on every Spark, with fixes."),
    "advise": ("sparkctl.commands.advise", "advise", "Which layout (single, TP, PP, replicas) serves a model fastest."),
    "bench": ("sparkctl.commands.bench", "bench", "Measure a deployed service: sparkctl bench serve."),
    "lab": ("sparkctl.commands.lab", "lab", "A virtual Spark cluster on this machine (namespaces + systemd-nspawn)."),
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module, attr, _ = COMMANDS[cmd_name]
        command: click.Command = getattr(importlib.import_module(module), attr)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section("Commands"):
            formatter.write_dl([(name, help_text) for name, (_, _, help_text) in COMMANDS.items()])


@click.group(cls=LazyGroup)
@click.version_option(__version__, prog_name="sparkctl")
def cli() -> None:
    """Provision, verify and run clusters of NVIDIA DGX Spark machines.

    The Ansible inventory (hosts + group_vars) is the one description of the cluster:
    every command reads it with --inventory DIR.
    """


def main(argv: list[str] | None = None) -> Any:
    """Entry point: SparkctlError becomes one line on stderr and its exit code, never a traceback."""
    try:
        return cli.main(args=argv, prog_name="sparkctl", standalone_mode=False)
    except SparkctlError as exc:
        click.echo(f"sparkctl: error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("sparkctl: aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
