"""Files modules keep on nodes: written only when they differ, diffs that never show a secret, and the
environment, package and mesh-key decisions made on the node."""

from __future__ import annotations

import grp
import os
import pwd
import re
from pathlib import Path

import pytest

from sparkctl.node import environment, mesh_files, packages
from sparkctl.node.files import SECRET, ensure


def test_ensure_writes_only_what_differs_and_check_mode_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "etc" / "a.conf"
    diff = ensure(path, "x=1\n", 0o644, check_mode=True)
    assert diff == {"before": "", "after": "x=1\n", "before_header": str(path), "after_header": str(path)}
    assert not path.exists()
    assert ensure(path, "x=1\n", 0o644, check_mode=False) is not None
    assert path.read_text() == "x=1\n" and path.stat().st_mode & 0o777 == 0o644
    assert ensure(path, "x=1\n", 0o644, check_mode=False) is None
    path.chmod(0o600)
    assert ensure(path, "x=1\n", 0o644, check_mode=False) is not None  # the mode alone differed
    assert path.stat().st_mode & 0o777 == 0o644


def test_a_secret_never_reaches_the_diff(tmp_path: Path) -> None:
    diff = ensure(tmp_path / "key", "PRIVATE", 0o600, check_mode=False, secret=True)
    assert diff is not None and "PRIVATE" not in str(diff) and diff["after"] == SECRET


ENV = {"NCCL_SOCKET_IFNAME": "enP7s7", "NCCL_IB_HCA": "rocep1s0f0,roceP2p1s0f0"}


def test_missing_names_what_a_listing_lacks_or_holds_otherwise() -> None:
    listing = ["HOME=/root", "NCCL_SOCKET_IFNAME=eth0", "NOT A VARIABLE"]
    assert environment.missing(ENV, listing) == [
        "NCCL_SOCKET_IFNAME (has eth0, planned enP7s7)", "NCCL_IB_HCA (has nothing, planned rocep1s0f0,roceP2p1s0f0)"]
    assert environment.missing(ENV, [f"{k}={v}" for k, v in ENV.items()]) == []


def _files(root: Path) -> dict[str, dict[str, str]]:
    return {kind: {"path": str(root / name), "content": f"{kind}\n", "mode": "0644"}
            for kind, name in (("env", "fabric.env"), ("profile", "p.sh"), ("systemd", "s.conf"))}


def test_environment_reloads_systemd_only_after_a_change_and_checks_shell_and_manager(tmp_path: Path) -> None:
    ran: list[list[str]] = []
    listing = "\n".join(f"{k}={v}" for k, v in ENV.items())

    def run(argv: list[str]) -> tuple[int, str, str]:
        ran.append(list(argv))
        return 0, "" if argv[:2] == ["systemctl", "daemon-reload"] else listing, ""

    files = _files(tmp_path)
    first = environment.converge(files, ENV, node="spark1", systemd_reload=True, verify_login_shell=True,
                                 check_mode=False, run=run, systemd_running=tmp_path)
    assert first["changed"] and len(first["written"]) == 3
    assert ran == [["systemctl", "daemon-reload"], environment.LOGIN_SHELL, environment.MANAGER]
    ran.clear()
    again = environment.converge(files, ENV, node="spark1", systemd_reload=True, verify_login_shell=True,
                                 check_mode=False, run=run, systemd_running=tmp_path)
    assert not again["changed"] and ran == [environment.LOGIN_SHELL, environment.MANAGER]


def test_environment_names_what_the_service_manager_lacks(tmp_path: Path) -> None:
    def run(argv: list[str]) -> tuple[int, str, str]:
        full = "\n".join(f"{k}={v}" for k, v in ENV.items())
        return 0, "NCCL_SOCKET_IFNAME=enP7s7" if argv == environment.MANAGER else full, ""

    with pytest.raises(environment.FabricEnvironmentError, match=r"systemd on spark1 does not pass on: NCCL_IB_HCA"):
        environment.converge(_files(tmp_path), ENV, node="spark1", systemd_reload=True, verify_login_shell=True,
                             check_mode=False, run=run, systemd_running=tmp_path)


def test_environment_refuses_to_start_without_systemd_and_writes_nothing(tmp_path: Path) -> None:
    files = _files(tmp_path / "etc")
    with pytest.raises(environment.FabricEnvironmentError, match="sparkctl_environment_systemd_reload: false"):
        environment.converge(files, ENV, node="spark1", systemd_reload=True, verify_login_shell=False,
                             check_mode=False, run=lambda argv: (0, "", ""), systemd_running=tmp_path / "absent")
    assert not (tmp_path / "etc").exists()


APT_POLICY = """rdma-core:
  Installed: (none)
  Candidate: 44.0-2
  Version table:
     44.0-2 500
        500 http://deb.debian.org/debian bookworm/main amd64 Packages
perftest:
  Installed: (none)
  Candidate: (none)
  Version table:
"""


def test_apt_candidates_from_apt_cache_policy() -> None:
    assert packages.candidates(APT_POLICY) == {"rdma-core": True, "perftest": False}


def test_install_takes_the_base_and_only_the_optional_packages_apt_offers(tmp_path: Path) -> None:
    apt_get = tmp_path / "apt-get"
    apt_get.touch()
    install, lacking = packages.to_install(["iperf3"], ["rdma-core", "perftest", "ibverbs-utils"],
                                           lambda argv: (0, APT_POLICY, ""), apt_get=str(apt_get))
    assert install == ["iperf3", "rdma-core"] and lacking == ["perftest", "ibverbs-utils"]
    with pytest.raises(packages.PackagesError, match="sparkctl_packages_mode: verify"):
        packages.to_install(["iperf3"], [], lambda argv: (0, "", ""), apt_get=str(tmp_path / "none"))


def test_verify_looks_for_each_package_by_its_command() -> None:
    present = {"ping", "iperf3"}
    assert packages.missing(["iperf3", "iputils-ping", "ethtool"], {"iputils-ping": "ping"},
                            which=lambda c: c if c in present else None) == ["ethtool"]


def test_authorized_keys_keeps_foreign_lines_and_replaces_the_keys_stale_ones() -> None:
    text = "ssh-ed25519 AAAAother user@laptop\nssh-ed25519 AAAAmesh sparkctl cluster key\n"
    line = 'from="10.0.0.1" ssh-ed25519 AAAAmesh sparkctl cluster key'
    stale = r"^(?!" + re.escape(line) + r"$).*(^|\s)AAAAmesh(\s|$)"
    assert mesh_files.authorized(text, line, stale) == f"ssh-ed25519 AAAAother user@laptop\n{line}\n"
    assert mesh_files.authorized(mesh_files.authorized(text, line, stale), line, stale).count(line) == 1


def test_the_config_block_goes_first_and_is_replaced_in_place() -> None:
    first = mesh_files.with_block("Host *\n    ForwardAgent no\n", "Host spark1\n    HostName 10.0.0.1")
    assert first.splitlines()[0] == mesh_files.BLOCK_MARKER.format(mark="BEGIN")
    assert first.endswith("Host *\n    ForwardAgent no\n")
    second = mesh_files.with_block(first, "Host spark2")
    assert "spark1" not in second and second.count("BEGIN") == 1 and "Host spark2" in second


def test_install_writes_the_mesh_files_once_and_never_shows_the_private_key(tmp_path: Path) -> None:
    me = pwd.getpwuid(os.getuid())
    account = mesh_files.Account(me.pw_name, tmp_path, os.getuid(), os.getgid(), grp.getgrgid(os.getgid()).gr_name)
    leftover = tmp_path / ".ssh" / "id.new"

    def install() -> dict[str, object]:
        return mesh_files.install(account, "id", "known_hosts_x", private_key="PRIVATE KEY",
                                  public_key="ssh-ed25519 AAAA", line="ssh-ed25519 AAAA sparkctl cluster key", stale="^$", known_hosts="spark1 k\n",
                                  config_block="Host spark1", leftovers=[str(leftover)], check_mode=False)

    first = install()
    assert first["changed"] and "PRIVATE" not in str(first["diff"])
    ssh = tmp_path / ".ssh"
    assert ssh.stat().st_mode & 0o777 == 0o700 and (ssh / "id").stat().st_mode & 0o777 == 0o600
    assert (ssh / "id").read_text() == "PRIVATE KEY\n" and (ssh / "known_hosts_x").read_text() == "spark1 k\n"
    leftover.write_text("staged")
    second = install()
    assert second["changed"] and second["diff"] == [] and second["removed"] == [str(leftover)]
    assert not leftover.exists() and install() == {"changed": False, "diff": [], "removed": []}
