"""A lab node: this machine's own OS booted with systemd in a container inside the node's namespace.

Each node is `systemd-nspawn -D / --volatile=yes`: a fresh tmpfs root with the host's /usr, so every
tool of the host (python3, ip, ethtool, iperf3, netplan) is there without an image to build. /etc is
an overlay of the host's /etc with a per-node upper directory (`nodes/<node>/etc` in the state dir):
whatever Ansible writes under /etc lands there and only there, and the directories provisioning
owns (netplan, sysctl.d, systemd/system, ...) start empty as on a fresh machine. /root is a per-node
directory too. systemd and sshd run as real units. A node comes in one of two flavors:

- `networkd`: systemd-networkd runs, as on a server install; the lab sets the management address.
- `dgx-os`: as DGX OS ships (Ubuntu with a desktop): NetworkManager runs and owns the management
  port through netplan (an installer file plus `renderer: NetworkManager`), puts its own DHCP
  "Wired connection" on every other Ethernet port, and systemd-networkd is installed but neither
  enabled nor running.

nspawn is started through `nsenter --net` (not `--network-namespace-path`) so that the container's
sysfs is mounted inside the node's namespace and /sys/class/net shows the node's own netdevs.
Each node runs in cgroups of its own (nspawn otherwise puts every container in the same `payload`
group of its caller): they also let `down` find every process of a node, even after a crash.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable
from ipaddress import IPv4Address, IPv4Interface
from pathlib import Path

from sparkctl import hardware, ssh
from sparkctl.errors import EnvironmentProblem
from sparkctl.lab import system
from sparkctl.lab.paths import LabPaths
from sparkctl.lab.state import Flavor, NodeState

FRESH_ETC_DIRS = (
    "netplan", "sysctl.d", "profile.d", "systemd/system", "ssh", "sparkctl", "environment.d", "NetworkManager",
)
"""/etc directories a node starts with empty (opaque over the host's), as on a fresh machine."""

_SSH_UNITS = {
    "multi-user.target.wants/ssh.service": "/lib/systemd/system/ssh.service",
    "sshd.service": "/lib/systemd/system/ssh.service",
}
ENABLED_UNITS: dict[Flavor, dict[str, str]] = {
    "networkd": {
        **_SSH_UNITS,
        "multi-user.target.wants/systemd-networkd.service": "/lib/systemd/system/systemd-networkd.service",
        "sockets.target.wants/systemd-networkd.socket": "/lib/systemd/system/systemd-networkd.socket",
        "dbus-org.freedesktop.network1.service": "/lib/systemd/system/systemd-networkd.service",
    },
    "dgx-os": {
        **_SSH_UNITS,
        "multi-user.target.wants/NetworkManager.service": "/lib/systemd/system/NetworkManager.service",
        "dbus-org.freedesktop.nm-dispatcher.service": "/lib/systemd/system/NetworkManager-dispatcher.service",
    },
}
"""The enablement symlinks of the node's /etc/systemd/system, per flavor; nothing of the host's."""

DGX_OS_NETWORKMANAGER_CONF = """\
[main]
plugins=ifupdown,keyfile

[ifupdown]
managed=false

[device]
wifi.scan-rand-mac-address=no
"""
"""Ubuntu's /etc/NetworkManager/NetworkManager.conf."""

DGX_OS_RENDERER = """\
# Let NetworkManager manage all devices on this system
network:
  version: 2
  renderer: NetworkManager
"""
"""Ubuntu desktop's /etc/netplan/01-network-manager-all.yaml."""

DGX_OS_INSTALLER = """\
# sparkctl lab stand-in for the DGX OS installer's file: the management port, with the lab's address.
network:
  version: 2
  ethernets:
    {interface}:
      addresses: [{address}]
      routes:
        - to: default
          via: {gateway}
"""

SSHD_CONFIG = """\
# sparkctl lab node {node}: root logs in with a key only; the host key is this node's own.
HostKey /etc/ssh/ssh_host_ed25519_key
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
MaxStartups 64:30:128
AcceptEnv LANG LC_*
Subsystem sftp /usr/lib/openssh/sftp-server
"""

RESOLV_CONF = """\
# sparkctl lab: no DNS inside the lab; lookups fail at once instead of leaving the machine.
nameserver 127.0.0.1
options timeout:1 attempts:1
"""

STANDINS_SOURCE = Path(__file__).resolve().parent / "standins"
STANDINS_MOUNT = "/opt/sparkctl-lab/standins"
STANDIN_DOCKER = f"{STANDINS_MOUNT}/docker.py"
"""Stand-ins for what a lab node cannot have (a container engine, GPU model servers), mounted read-only."""

OPAQUE_XATTR = "trusted.overlay.opaque"
STOP_TIMEOUT_S = 10
BOOT_TIMEOUT_S = 120


def generate_key(path: Path, comment: str) -> str:
    """A new ed25519 key pair at `path` (private key mode 600); returns the public key line."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    system.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)])
    path.chmod(0o600)
    return path.with_name(path.name + ".pub").read_text(encoding="ascii").strip()


def _opaque_dir(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    try:
        os.setxattr(directory, OPAQUE_XATTR, b"y")
    except OSError as exc:
        raise EnvironmentProblem(
            f"cannot mark {directory} opaque for overlayfs ({exc.strerror}): the lab state directory must be "
            "on a filesystem with trusted xattrs (ext4, xfs, btrfs, tmpfs); set SPARKCTL_LAB_ROOT elsewhere"
        ) from None


def _write_dgx_os_network(etc: Path, address: IPv4Interface, gateway: IPv4Address) -> None:
    """NetworkManager's own config and the netplan files that give it the management port."""
    (etc / "NetworkManager" / "NetworkManager.conf").write_text(DGX_OS_NETWORKMANAGER_CONF, encoding="ascii")
    (etc / "NetworkManager" / "conf.d").mkdir()
    files = {
        "00-installer-config.yaml": DGX_OS_INSTALLER.format(
            interface=hardware.MANAGEMENT_INTERFACE, address=address, gateway=gateway
        ),
        "01-network-manager-all.yaml": DGX_OS_RENDERER,
    }
    for name, content in files.items():
        path = etc / "netplan" / name
        path.write_text(content, encoding="ascii")
        path.chmod(0o600)


def write_node_files(
    paths: LabPaths, node: NodeState, client_public_key: str, flavor: Flavor,
    mgmt: IPv4Interface, gateway: IPv4Address,
) -> str:
    """Lay out a node's private /etc layer and /root; returns the node's SSH host public key."""
    etc = paths.node_etc(node.name)
    for name in FRESH_ETC_DIRS:
        _opaque_dir(etc / name)
    if flavor == "dgx-os":
        _write_dgx_os_network(etc, mgmt, gateway)
    (etc / "hostname").write_text(f"{node.name}\n", encoding="ascii")
    (etc / "hosts").write_text(
        f"127.0.0.1\tlocalhost\n127.0.1.1\t{node.name}\n::1\tlocalhost ip6-localhost ip6-loopback\n",
        encoding="ascii",
    )
    (etc / "machine-id").write_text(f"{uuid.uuid4().hex}\n", encoding="ascii")
    (etc / "resolv.conf").write_text(RESOLV_CONF, encoding="ascii")
    for link, unit in ENABLED_UNITS[flavor].items():
        target = etc / "systemd" / "system" / link
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to(unit)
    ssh_dir = etc / "ssh"
    for name in ("moduli", "ssh_config"):
        if Path("/etc/ssh", name).exists():
            shutil.copy2(Path("/etc/ssh", name), ssh_dir / name)
    (ssh_dir / "sshd_config").write_text(SSHD_CONFIG.format(node=node.name), encoding="ascii")
    host_key = generate_key(ssh_dir / "ssh_host_ed25519_key", f"root@{node.name}")

    home = paths.node_root_home(node.name)
    (home / ".ssh").mkdir(parents=True, exist_ok=True)
    home.chmod(0o700)
    (home / ".ssh").chmod(0o700)
    (home / ".ssh" / "authorized_keys").write_text(client_public_key + "\n", encoding="ascii")
    for dotfile in ("bashrc", "profile"):
        skeleton = Path("/usr/share/base-files") / f"dot.{dotfile}"
        if skeleton.exists():
            shutil.copy2(skeleton, home / f".{dotfile}")
    return host_key


def known_hosts_line(node: NodeState) -> str:
    return f"{node.name},{node.mgmt_address} {node.host_key}"


def _escape(path: Path) -> str:
    """A path as nspawn's --overlay/--bind want it (colons and backslashes escaped)."""
    return str(path).replace("\\", "\\\\").replace(":", "\\:")


def container_argv(paths: LabPaths, node: NodeState) -> list[str]:
    """The command that boots a node: nspawn, run inside the node's network namespace."""
    return [
        "nsenter", f"--net={system.NETNS_DIR / node.namespace}", "--",
        "systemd-nspawn",
        "--quiet",
        "--directory=/",
        "--volatile=yes",
        f"--machine={node.namespace}",
        f"--hostname={node.name}",
        "--register=no",
        "--keep-unit",
        "--capability=CAP_NET_ADMIN,CAP_NET_RAW",
        "--kill-signal=SIGRTMIN+14",
        "--resolv-conf=off",
        "--link-journal=no",
        "--console=read-only",
        f"--overlay=/etc:{_escape(paths.node_etc(node.name))}:/etc",
        f"--bind={_escape(paths.node_root_home(node.name))}:/root",
        "--bind-ro=/var/lib/dpkg",
        f"--bind-ro={_escape(STANDINS_SOURCE)}:{STANDINS_MOUNT}",
        "--boot",
        "systemd.firstboot=off",
        "systemd.unit=multi-user.target",
    ]


NSPAWN_ENV = {"SYSTEMD_NSPAWN_API_VFS_WRITABLE": "network"}
"""/proc/sys/net writable in the node: its network namespace is its own, so provisioning sets the
per-namespace sysctls (TCP buffers, ip_forward for routed rings) for real."""


def cgroup_dirs(node: NodeState) -> list[Path]:
    """One cgroup per hierarchy nspawn uses, named after the node's namespace (unique per lab and node)."""
    return [hierarchy / node.namespace for hierarchy in system.cgroup_hierarchies()]


def _join_cgroups(directories: list[Path]) -> Callable[[], None]:
    """Run in the child before exec: move it into the node's cgroups (writing 0 moves the writer)."""

    def join() -> None:
        for directory in directories:
            (directory / "cgroup.procs").write_text("0\n", encoding="ascii")

    return join


def start(paths: LabPaths, node: NodeState) -> None:
    """Boot the node's container in the background, in the cgroups already recorded in `node.cgroups`.

    Records the container's PID and start time in `node`.
    """
    directories = [Path(d) for d in node.cgroups]
    for directory in directories:
        directory.mkdir()
    with paths.console_log(node.name).open("ab") as log:
        process = subprocess.Popen(
            container_argv(paths, node),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, **NSPAWN_ENV},
            # Safe here: no other thread of ours runs while nodes are started (see lifecycle._boot).
            preexec_fn=_join_cgroups(directories),  # noqa: PLW1509
        )
    node.pid = process.pid
    node.pid_start = system.process_start_time(process.pid)


def target(paths: LabPaths, node: NodeState) -> ssh.SSHTarget:
    """How the lab itself reaches a node: the lab key and known_hosts, host keys checked."""
    return ssh.SSHTarget(
        name=node.name,
        address=node.mgmt_address,
        identity_file=str(paths.client_key),
        options=("-o", f"UserKnownHostsFile={paths.known_hosts}"),
    )


def sshd_listening(address: str, timeout: float = 1.0) -> bool:
    """Whether something accepts TCP connections on port 22 of `address` (cheap, no login)."""
    try:
        with socket.create_connection((address, 22), timeout=timeout):
            return True
    except OSError:
        return False


def wait_ready(paths: LabPaths, node: NodeState) -> str:
    """Wait until the node's sshd answers and systemd has finished booting; returns systemd's verdict."""
    deadline = time.monotonic() + BOOT_TIMEOUT_S
    while not sshd_listening(node.mgmt_address, timeout=0.5):
        if not system.same_process(node.pid, node.pid_start):
            raise EnvironmentProblem(
                f"{node.name}: its container exited while booting — see {paths.console_log(node.name)}"
            )
        if time.monotonic() > deadline:
            raise EnvironmentProblem(
                f"{node.name}: sshd did not come up within {BOOT_TIMEOUT_S} s — "
                f"see {paths.console_log(node.name)}"
            )
        time.sleep(0.1)
    booted = ["systemctl", "is-system-running", "--wait"]
    result = ssh.run(target(paths, node), booted, timeout=BOOT_TIMEOUT_S)
    return result.stdout.strip()


def failed_units(paths: LabPaths, node: NodeState) -> list[str]:
    """Units systemd on the node reports as failed (named in the warning of a degraded node)."""
    result = ssh.run(target(paths, node), ["systemctl", "--failed", "--plain", "--no-legend"], timeout=30)
    return [line.split()[0] for line in result.stdout.splitlines() if line.strip()]


def _kill_cgroup(node: str, directory: Path) -> None:
    """SIGKILL what is left in one of the node's cgroups (everything there is the node's), then remove it."""
    for pid in system.cgroup_pids(directory):
        system.signal_process(pid, signal.SIGKILL)
    if not system.wait_for(lambda: not system.cgroup_pids(directory), timeout=STOP_TIMEOUT_S):
        raise EnvironmentProblem(f"{node}: processes in {directory} did not exit after SIGKILL")
    system.remove_cgroup(directory)


def stop(node: NodeState) -> None:
    """Power the node off (nspawn passes SIGRTMIN+14, an immediate poweroff), then kill any straggler.

    Only processes that are provably the node's are signalled: the recorded PID if its start time
    still matches, and whatever lives in the node's own cgroups.
    """
    if node.pid is not None and system.same_process(node.pid, node.pid_start):
        system.signal_process(node.pid, signal.SIGTERM)
        system.wait_for(lambda: not system.same_process(node.pid, node.pid_start), timeout=STOP_TIMEOUT_S)
    for directory in map(Path, node.cgroups):
        if not directory.exists():
            continue
        _kill_cgroup(node.name, directory)
    if node.pid is not None:
        system.reap(node.pid)
