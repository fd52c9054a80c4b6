"""Render a node's plan into the files that configure it, from the one set of templates in templates/.

`sparkctl plan`, `sparkctl render` and the Ansible roles (through the sparkctl_plan lookup) all call
`node_files`, so a preview is byte for byte what provisioning writes.
"""

from __future__ import annotations

import os
import shlex
import tempfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import jinja2

from sparkctl import tuning
from sparkctl.errors import InputError
from sparkctl.model import ClusterPlan
from sparkctl.node.node_facts import CABLING_RECORD

NETPLAN_PATH = "/etc/netplan/60-sparkctl-fabric.yaml"
ENV_PATH = "/etc/sparkctl/fabric.env"
PROFILE_PATH = "/etc/profile.d/sparkctl-fabric.sh"
SYSTEMD_PATH = "/etc/systemd/system.conf.d/60-sparkctl-fabric.conf"
SYSCTL_PATH = "/etc/sysctl.d/60-sparkctl-fabric.conf"
CABLING_PATH = str(CABLING_RECORD)
"""The cabling the fabric was configured for: verify-link checks the wires against it."""


@dataclass(frozen=True)
class RenderedFile:
    """One file for one node: where it goes, what it holds, its mode (netplan wants 0600)."""

    path: str
    content: str
    mode: str
    template: str

    def to_dict(self) -> dict[str, str]:
        return {"path": self.path, "content": self.content, "mode": self.mode, "template": self.template}


FILES = (
    ("netplan", NETPLAN_PATH, "0600", "netplan-fabric.yaml.j2"),
    ("env", ENV_PATH, "0644", "fabric.env.j2"),
    ("profile", PROFILE_PATH, "0644", "profile-fabric.sh.j2"),
    ("systemd", SYSTEMD_PATH, "0644", "systemd-fabric.conf.j2"),
    ("sysctl", SYSCTL_PATH, "0644", "sysctl-fabric.conf.j2"),
    ("cabling", CABLING_PATH, "0644", "cabling.json.j2"),
)


def templates_dir() -> Path:
    """templates/ of this checkout (SPARKCTL_TEMPLATES overrides, for a packaged install)."""
    return Path(os.environ.get("SPARKCTL_TEMPLATES", Path(__file__).resolve().parent.parent / "templates"))


@cache
def _environment(directory: Path) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(directory)),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.filters["shell_quote"] = shlex.quote
    env.filters["sysctl_why"] = tuning.why
    return env


def node_files(plan: ClusterPlan, node: str, plan_dict: dict[str, Any] | None = None) -> dict[str, RenderedFile]:
    """Every file sparkctl writes on `node`, keyed by kind (netplan, env, profile, systemd, sysctl)."""
    data = plan_dict if plan_dict is not None else plan.to_dict()
    context = {"topology": plan.topology, "node": data["nodes"][node], "cables": [f"{c.a} {c.b}" for c in plan.cables],
               "cabling_source": plan.cabling_source}
    env = _environment(templates_dir())
    return {
        kind: RenderedFile(path, env.get_template(template).render(context), mode, template)
        for kind, path, mode, template in FILES
    }


def write_node_files(out: Path, node: str, files: dict[str, RenderedFile]) -> list[Path]:
    """Write one node's files under OUT/<node>/, never outside OUT and never through a symlink.

    Each file is written to a temporary file in its own directory (mode set there) and renamed over
    the target, so a symlink left at the target is replaced, not followed, and a reader never sees
    half a file.
    """
    root = out.resolve()
    written: list[Path] = []
    for rendered in files.values():
        target = root / node / rendered.path.lstrip("/")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            if os.path.commonpath([root, target.parent.resolve()]) != str(root):
                raise InputError(f"{target.parent} leads outside {root}", key="--out", file=out,
                                 fix="remove the symlink there, or pass a fresh directory")
            fd, temp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
            try:
                os.fchmod(fd, int(rendered.mode, 8))
                with os.fdopen(fd, "w", encoding="utf-8") as handle:
                    handle.write(rendered.content)
                os.replace(temp, target)
            except BaseException:
                os.unlink(temp)
                raise
        except OSError as exc:
            raise InputError(f"cannot write {target}: {exc.strerror}", key="--out", file=out,
                             fix="pass a directory you can write, outside /proc and /sys") from None
        written.append(target)
    return written
