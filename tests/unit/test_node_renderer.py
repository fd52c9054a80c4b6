"""What a node needs before systemd-networkd can render the fabric, decided from what it runs."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from sparkctl.node import renderer
from sparkctl.node.renderer import Observed

FABRIC = ["enp1s0f0np0", "enP2p1s0f0np0"]
SERVER = Observed(networkmanager_active=False, networkd_active=True, networkd_enabled="enabled",
                  wait_online_enabled="enabled", nm_conf=None)
DGX_OS = Observed(networkmanager_active=True, networkd_active=False, networkd_enabled="disabled",
                  wait_online_enabled="disabled", nm_conf=None)


def _commands(steps: Sequence[renderer.Step]) -> list[tuple[str, ...]]:
    return [step.argv for step in steps if step.argv]


def test_a_server_running_networkd_needs_nothing() -> None:
    assert renderer.decide(SERVER, FABRIC) == []
    assert renderer.management_renderer(SERVER) == "systemd-networkd"


def test_dgx_os_gets_networkd_started_and_networkmanager_told_off_the_fabric() -> None:
    steps = renderer.decide(DGX_OS, FABRIC)
    assert steps[0].nm_conf == renderer.nm_conf_text(FABRIC)
    assert _commands(steps) == [
        ("nmcli", "general", "reload", "conf"),
        ("systemctl", "enable", "systemd-networkd.socket", "systemd-networkd.service"),
        ("systemctl", "disable", "systemd-networkd-wait-online.service"),
        ("systemctl", "mask", "systemd-networkd-wait-online.service"),
        ("systemctl", "start", "systemd-networkd.socket", "systemd-networkd.service"),
    ]
    assert renderer.management_renderer(DGX_OS) == "NetworkManager"


def test_once_ready_a_dgx_os_node_needs_nothing() -> None:
    ready = Observed(networkmanager_active=True, networkd_active=True, networkd_enabled="enabled",
                     wait_online_enabled="masked", nm_conf=renderer.nm_conf_text(FABRIC))
    assert renderer.decide(ready, list(reversed(FABRIC))) == []


def test_wait_online_linked_in_by_netplan_at_run_time_is_masked() -> None:
    linked = Observed(True, True, "enabled", wait_online_enabled="enabled-runtime",
                      nm_conf=renderer.nm_conf_text(FABRIC))
    assert _commands(renderer.decide(linked, FABRIC)) == [
        ("systemctl", "disable", "systemd-networkd-wait-online.service"),
        ("systemctl", "mask", "systemd-networkd-wait-online.service"),
    ]


def test_a_wait_online_unit_the_user_enabled_stays_enabled() -> None:
    steps = renderer.decide(
        Observed(True, False, "disabled", wait_online_enabled="enabled", nm_conf=None), FABRIC
    )
    assert not any("wait-online" in " ".join(argv) for argv in _commands(steps))


def test_a_changed_fabric_rewrites_the_networkmanager_drop_in() -> None:
    ready = Observed(True, True, "enabled", "masked", nm_conf=renderer.nm_conf_text(FABRIC))
    steps = renderer.decide(ready, ["enp1s0f1np1"])
    assert steps[0].nm_conf == renderer.nm_conf_text(["enp1s0f1np1"])
    assert _commands(steps) == [("nmcli", "general", "reload", "conf")]


def test_no_fabric_left_removes_the_drop_in() -> None:
    ready = Observed(True, True, "enabled", "masked", nm_conf=renderer.nm_conf_text(FABRIC))
    steps = renderer.decide(ready, [])
    assert steps[0].remove_nm_conf and _commands(steps) == [("nmcli", "general", "reload", "conf")]


def test_without_networkmanager_no_drop_in_is_written() -> None:
    stopped = Observed(False, False, "disabled", "disabled", nm_conf=None)
    steps = renderer.decide(stopped, FABRIC)
    assert all(step.nm_conf is None for step in steps)
    assert ("systemctl", "start", "systemd-networkd.socket", "systemd-networkd.service") in _commands(steps)


@pytest.mark.parametrize(("enabled", "says"), [("masked", "systemctl unmask"), ("not-found", "install it")])
def test_a_masked_or_missing_networkd_is_refused_with_what_to_do(enabled: str, says: str) -> None:
    with pytest.raises(renderer.NotReady, match=says):
        renderer.decide(Observed(True, False, enabled, "disabled", None), FABRIC)


def test_an_interface_name_that_could_break_the_keyfile_is_refused() -> None:
    with pytest.raises(renderer.NotReady, match="not an interface name"):
        renderer.nm_conf_text(["enp1s0f0np0\n[main]"])


def test_observe_and_carry_out_with_a_recorded_node(tmp_path: Path) -> None:
    conf = tmp_path / "conf.d" / "60-sparkctl-fabric.conf"
    answers = {
        ("systemctl", "is-active", "NetworkManager.service"): "active\n",
        ("systemctl", "is-active", "systemd-networkd.service"): "inactive\n",
        ("systemctl", "is-enabled", "systemd-networkd.service"): "disabled\n",
        ("systemctl", "is-enabled", "systemd-networkd-wait-online.service"): "disabled\n",
    }
    ran: list[tuple[str, ...]] = []

    def run(argv: Sequence[str]) -> tuple[int, str, str]:
        ran.append(tuple(argv))
        return 0, answers.get(tuple(argv), ""), ""

    observed = renderer.observe(run, str(conf))
    assert observed == DGX_OS
    steps = renderer.decide(observed, FABRIC)
    renderer.carry_out(steps, run, str(conf))
    assert conf.read_text(encoding="utf-8") == renderer.nm_conf_text(FABRIC)
    assert conf.stat().st_mode & 0o777 == 0o644
    assert ran[-1] == ("systemctl", "start", "systemd-networkd.socket", "systemd-networkd.service")


def test_a_failing_command_is_reported_with_its_output() -> None:
    def run(argv: Sequence[str]) -> tuple[int, str, str]:
        return 1, "", "Failed to start systemd-networkd.service: Unit is masked."

    with pytest.raises(renderer.StepFailed, match="Unit is masked"):
        renderer.carry_out([renderer.Step("start", argv=("systemctl", "start", "x"))], run)


def test_after_the_reload_it_waits_until_networkmanager_has_let_go_of_the_fabric() -> None:
    listings = iter([
        "enP7s7:connected\nenp1s0f0np0:deactivating\nenP2p1s0f0np0:unmanaged\n",
        "enP7s7:connected\nenp1s0f0np0:unmanaged\nenP2p1s0f0np0:unmanaged\n",
    ])
    ran: list[tuple[str, ...]] = []

    def run(argv: Sequence[str]) -> tuple[int, str, str]:
        ran.append(tuple(argv))
        return (0, next(listings), "") if argv[0] == "nmcli" and "device" in argv else (0, "", "")

    step = renderer.decide(DGX_OS, FABRIC)[1]
    assert step.argv == ("nmcli", "general", "reload", "conf") and set(step.settle) == set(FABRIC)
    renderer.carry_out([step], run, sleep=lambda s: None)
    assert ran.count(("nmcli", "-t", "-f", "DEVICE,STATE", "device")) == 2


def test_networkmanager_that_never_lets_go_is_reported() -> None:
    def run(argv: Sequence[str]) -> tuple[int, str, str]:
        return 0, "enp1s0f0np0:connected\n", ""

    ticks = iter(range(100))
    with pytest.raises(renderer.StepFailed, match=r"still manages enp1s0f0np0 \(connected\)"):
        renderer.carry_out([renderer.Step("reload", argv=("true",), settle=("enp1s0f0np0",))], run,
                           sleep=lambda s: None, clock=lambda: float(next(ticks)))
