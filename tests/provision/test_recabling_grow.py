"""A ring grown from three to four Sparks: a node added to the inventory and cabled in, ONE re-run."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from sparkctl.cluster import load_cluster
from tests.labkit import ANSIBLE_PLAYBOOK, REPO, running_lab
from tests.provision.provkit import assert_fabric_as_planned
from tests.provision.recabling import failures, recable, reconcile

pytestmark = pytest.mark.lab


def test_ring_grown_from_three_to_four_nodes(lab_root: Path, tmp_path: Path) -> None:
    """A 3-ring of spark1..3 (spark4 booted but in no inventory and uncabled) is provisioned; then spark4
    is added to the inventory and cabled into the ring (spark3 -> spark4 -> spark1) and ONE re-run
    provisions it and renumbers the others."""
    with running_lab(lab_root, prefix="rc", nodes=4, topology="ring") as lab:
        recable(lab, ["spark3:p0", "spark4:p0"], [("spark3:p0", "spark1:p1")])
        three = tmp_path / "inventory"
        shutil.copytree(lab.inventory, three)
        hosts = yaml.safe_load((three / "hosts.yml").read_text(encoding="utf-8"))
        del hosts["all"]["children"]["sparks"]["hosts"]["spark4"]
        (three / "hosts.yml").write_text(yaml.safe_dump(hosts), encoding="utf-8")
        result = subprocess.run(
            [ANSIBLE_PLAYBOOK, "-i", str(three), str(REPO / "playbooks" / "site.yml")], capture_output=True,
            text=True, cwd=REPO, timeout=600, check=False,
            env={**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1"})
        assert result.returncode == 0, failures(result.stdout)
        small = assert_fabric_as_planned(lab, load_cluster(three, discovered=lab.cables()))
        assert len(small.plan.cables) == 3 and "spark4" not in small.plan.nodes
        recable(lab, ["spark3:p0"], [("spark3:p0", "spark4:p1"), ("spark4:p0", "spark1:p1")])
        reconcile(lab)
        assert len(lab.expected().plan.cables) == 4
