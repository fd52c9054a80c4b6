"""What every recabling lab test does: move cables as a person does, re-run ONE plain ansible-playbook, and
check the nodes against the plan, networkd's journal and verify-link.

A node whose drop-in did not change must not have had a link reconfigured at all, and no link may be
configured twice in one run (a reload followed by a reconfigure of the same link is the overlap that can
make networkd 252 fail links).
"""

from __future__ import annotations

import json
import os
import subprocess
from collections import Counter

from tests.labkit import REPO, SPARKCTL, Lab
from tests.provision.provkit import assert_fabric_as_planned, flat

NETPLAN = "/etc/netplan/60-sparkctl-fabric.yaml"


def recable(lab: Lab, pull: list[str], plug: list[tuple[str, str]]) -> None:
    for port in pull:
        lab.cli("uncable", port)
    for a, b in plug:
        lab.cli("cable", a, b)


def verify_link(lab: Lab) -> None:
    result = subprocess.run([SPARKCTL, "verify-link", "--inventory", str(lab.inventory), "--json",
                             "--duration", "2"], capture_output=True, text=True, timeout=300, cwd=REPO,
                            env={**os.environ, "COLUMNS": "160"}, check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert json.loads(result.stdout)["ok"] is True


def failures(output: str) -> str:
    """The error lines of a failed run, then its tail."""
    errors = [line for line in output.splitlines() if "[ERROR]" in line or "fatal:" in line]
    return "\n".join(errors) + "\n" + flat(output[-2000:])


def configurations(lab: Lab, node: str, since: str) -> Counter[str]:
    """How often networkd started configuring each link since `since` (epoch seconds): systemd 252 logs
    "Reconfiguring with" when a reload gives a link a new file and "Configuring with" when a reconfigure
    (or a new netdev) starts one, so a reload and a reconfigure of one link show up as two."""
    out = lab.sh(node, "journalctl", "-u", "systemd-networkd", "--since", f"@{since}", "-o", "cat",
                 "--no-pager").stdout
    return Counter(line.split(":")[0] for line in out.splitlines()
                   if ": Reconfiguring with " in line or ": Configuring with " in line)


def reconcile(lab: Lab) -> None:
    """One plain re-run after a recabling: it must succeed, leave the nodes as planned and pass verify-link;
    nodes whose drop-in did not change are untouched and no link is reconfigured twice."""
    nodes = sorted(lab.state.nodes)
    before = {node: lab.sh(node, "cat", NETPLAN, check=False).stdout for node in nodes}
    since = {node: lab.sh(node, "date", "+%s.%N").stdout.strip() for node in nodes}
    result = lab.playbook()
    assert result.returncode == 0, failures(result.stdout)
    assert_fabric_as_planned(lab)
    for node in nodes:
        counts = configurations(lab, node, since[node])
        if lab.sh(node, "cat", NETPLAN).stdout == before[node]:
            assert not counts, f"{node} needed no change, yet networkd reconfigured {dict(counts)}"
        twice = {link: n for link, n in counts.items() if n > 1}
        assert not twice, f"{node}: networkd configured links more than once in one run: {twice}"
    verify_link(lab)
