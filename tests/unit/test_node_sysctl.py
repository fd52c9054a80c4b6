"""Setting the planned sysctls on a node: only differing keys, whitespace aside; absent keys reported."""

from __future__ import annotations

from pathlib import Path

from sparkctl.node import sysctl


def proc(tmp_path: Path, values: dict[str, str]) -> Path:
    for key, value in values.items():
        path = tmp_path / key.replace(".", "/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(value + "\n")
    return tmp_path


def test_only_differing_keys_are_set_and_read_back(tmp_path: Path) -> None:
    root = proc(tmp_path, {"net.core.rmem_max": "212992", "net.ipv4.tcp_rmem": "4096\t131072\t268435456"})
    ran: list[list[str]] = []

    def run(argv: list[str]) -> tuple[int, str, str]:
        ran.append(argv)
        for assignment in argv[2:]:
            key, value = assignment.split("=", 1)
            (root / key.replace(".", "/")).write_text(value + "\n")
        return 0, "", ""

    wanted = {"net.core.rmem_max": "268435456", "net.ipv4.tcp_rmem": "4096 131072 268435456",
              "net.core.netdev_max_backlog": "250000"}
    settable, stuck, failed = sysctl.apply(wanted, run, check_mode=False, proc_sys=root)
    assert [d.key for d in settable] == ["net.core.rmem_max"]  # tcp_rmem differs only in whitespace
    assert ran == [["sysctl", "-w", "net.core.rmem_max=268435456"]]
    assert failed == ""
    assert [d.why_stuck() for d in stuck] == [
        ("net.core.netdev_max_backlog (planned 250000) does not exist in this network namespace: the kernel keeps "
        "it machine-wide")]
    assert sysctl.apply(wanted, run, check_mode=False, proc_sys=root)[0] == []  # a second run sets nothing


def test_a_key_that_does_not_take_its_value_is_named(tmp_path: Path) -> None:
    root = proc(tmp_path, {"net.ipv4.tcp_mtu_probing": "0"})
    settable, _, failed = sysctl.apply({"net.ipv4.tcp_mtu_probing": "1"}, lambda argv: (255, "", "permission denied"),
                                       check_mode=False, proc_sys=root)
    assert [d.key for d in settable] == ["net.ipv4.tcp_mtu_probing"]
    assert failed == "sysctl did not set net.ipv4.tcp_mtu_probing (now 0, planned 1); sysctl said: permission denied"


def test_check_mode_reports_without_running_sysctl(tmp_path: Path) -> None:
    root = proc(tmp_path, {"net.core.rmem_max": "212992"})

    def run(argv: list[str]) -> tuple[int, str, str]:
        raise AssertionError("check mode ran a command")

    settable, _, _ = sysctl.apply({"net.core.rmem_max": "268435456"}, run, check_mode=True, proc_sys=root)
    assert [d.key for d in settable] == ["net.core.rmem_max"]
