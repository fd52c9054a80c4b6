"""Refuse early, and say what to install, when this machine cannot host a lab.

A half-built lab is worse than none: every check here runs before anything is created.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Final

from sparkctl.errors import EnvironmentProblem
from sparkctl.lab.state import Flavor

TOOLS: Final[dict[str, str]] = {
    "ip": "iproute2",
    "tc": "iproute2",
    "iptables": "iptables",
    "nsenter": "util-linux",
    "unshare": "util-linux",
    "systemd-nspawn": "systemd-container",
    "ssh": "openssh-client",
    "ssh-keygen": "openssh-client",
    "sshd": "openssh-server",
    "ethtool": "ethtool",
    "iperf3": "iperf3",
    "ping": "iputils-ping",
    "rsync": "rsync",
    "netplan": "netplan.io",
}
"""Host tools the lab runs, and the tools every node gets from the host's /usr; value = apt package."""

FILES: Final[dict[str, str]] = {
    "/usr/bin/python3": "python3",
    "/lib/systemd/systemd-networkd": "systemd",
    "/usr/lib/openssh/sftp-server": "openssh-sftp-server",
}
"""Files a node needs at fixed paths (Ansible's interpreter, networkd for netplan, sftp for file copies)."""

FLAVOR_FILES: Final[dict[Flavor, dict[str, str]]] = {
    "networkd": {},
    "dgx-os": {"/usr/sbin/NetworkManager": "network-manager", "/usr/bin/nmcli": "network-manager"},
}
"""What a node of each flavor needs beyond FILES."""

SEARCH_PATH: Final = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def missing_packages(flavor: Flavor = "networkd") -> dict[str, str]:
    """Missing tool or file -> the apt package that provides it."""
    missing = {tool: pkg for tool, pkg in TOOLS.items() if shutil.which(tool, path=SEARCH_PATH) is None}
    files = {**FILES, **FLAVOR_FILES[flavor]}
    missing.update({path: pkg for path, pkg in files.items() if not Path(path).exists()})
    return missing


def require_root() -> None:
    """Every lab command enters or changes network namespaces, which only root may do."""
    if os.geteuid() != 0:
        raise EnvironmentProblem(
            "`sparkctl lab` needs root: it creates network namespaces, veth cables and containers — "
            "run it with sudo"
        )


def check(flavor: Flavor = "networkd") -> None:
    """EnvironmentProblem (exit 2) unless we are root, namespaces work and every tool is installed."""
    require_root()
    missing = missing_packages(flavor)
    if missing:
        packages = " ".join(sorted(set(missing.values())))
        hint = (
            " (NetworkManager must not start on this machine: `make deps` installs it that way)"
            if "network-manager" in missing.values() else ""
        )
        raise EnvironmentProblem(
            f"`sparkctl lab` needs {', '.join(sorted(missing))} — install them: apt-get install {packages}{hint}"
        )
    if not Path("/proc/self/ns/net").exists():
        raise EnvironmentProblem(
            "this kernel has no network namespaces (CONFIG_NET_NS); a lab cannot run here"
        )
    probe = subprocess.run(
        ["unshare", "--net", "--mount", "--pid", "--fork", "true"],
        capture_output=True, text=True, check=False,
    )
    if probe.returncode != 0:
        raise EnvironmentProblem(
            "network, mount and PID namespaces cannot be created here "
            f"({probe.stderr.strip() or 'unshare failed'}); a lab needs a VM or host that allows them"
        )
