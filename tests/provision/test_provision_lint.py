"""ansible-lint's production profile over every playbook and role (what `make lint` runs)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.labkit import REPO


def test_ansible_lint_production_profile_passes() -> None:
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}", "NO_COLOR": "1"}
    result = subprocess.run(
        [str(bin_dir / "ansible-lint"), "--profile", "production", "playbooks", "roles"],
        capture_output=True, text=True, cwd=REPO, env=env, timeout=600, check=False,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
