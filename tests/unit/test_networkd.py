"""The networkd apply's decisions, fed with `networkctl list --json=short` recorded on lab nodes (systemd 252).

Recordings in tests/unit/networkd/ (spark1 of a 3-node ring unless said otherwise):
- list-configured.json: spark3 after provisioning, every fabric link configured.
- list-reload-started / -busy / -settled.json: polled right after `networkctl reload`, with enp1s0f1np1's
  file changed from 198.19.2.1/24 to 198.19.222.1/24. In -started, enp1s0f1np1 still shows "configured"
  with its OLD address while two other links are already configuring: reload returned before it acted.
- list-no-carrier.json: p0 uncabled; its two links stay "configuring" without carrier.
- list-failed.json: spark3 after a cable move, enp1s0f1np1 "failed" (networkd 252 overlapped its own
  configuration of the re-created link).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from sparkctl.node import networkd
from sparkctl.node.networkd import Applier, NetworkdError

DATA = Path(__file__).parent / "networkd"
FABRIC = ["enp1s0f0np0", "enP2p1s0f0np0", "enp1s0f1np1", "enP2p1s0f1np1"]
SPARK1 = {"enp1s0f0np0": "198.19.0.1/24", "enP2p1s0f0np0": "198.19.1.1/24",
          "enp1s0f1np1": "198.19.2.1/24", "enP2p1s0f1np1": "198.19.3.1/24"}


def recorded(name: str) -> str:
    return (DATA / f"list-{name}.json").read_text(encoding="utf-8")


def unchanged() -> str:
    """list-reload-settled.json as it read before the change: enp1s0f1np1 on 198.19.2.1/24."""
    return recorded("reload-settled").replace("198,19,222,", "198,19,2,")


def links(name: str) -> dict[str, networkd.Link]:
    return networkd.parse_links(recorded(name))


def network_text(link: str, address: str, mtu: int = 9000) -> str:
    """A .network file as netplan 0.106 writes it for a sparkctl fabric link."""
    return (f"[Match]\nName={link}\n\n[Link]\nRequiredForOnline=no\nMTUBytes={mtu}\n\n"
            f"[Network]\nLinkLocalAddressing=no\nAddress={address}\nIPv6AcceptRA=no\n")


def link_text(link: str) -> str:
    return f"[Match]\nOriginalName={link}\n\n[Link]\nWakeOnLan=off\nMTUBytes=9000\n"


def generated(addresses: dict[str, str]) -> dict[str, bytes]:
    files = {}
    for link, address in addresses.items():
        files[f"10-netplan-{link}.network"] = network_text(link, address).encode()
        files[f"10-netplan-{link}.link"] = link_text(link).encode()
    return files


def files_of(addresses: dict[str, str]) -> list[networkd.NetworkFile]:
    return networkd.network_files(generated(addresses))


# --- reading networkd -------------------------------------------------------------------------------------


def test_recorded_states_are_read_as_systemd_252_prints_them() -> None:
    done = links("configured")
    assert {name: link.admin for name, link in done.items()} == {
        "lo": "unmanaged", "enP7s7": "unmanaged", **dict.fromkeys(FABRIC, "configured")}
    assert done["enp1s0f0np0"].static_addresses == {"198.19.2.3/24"}
    assert done["enp1s0f0np0"].mtu == 9000 and done["enp1s0f0np0"].has_carrier
    assert done["enp1s0f0np0"].network_file == "/run/systemd/network/10-netplan-enp1s0f0np0.network"
    assert not any(link.busy for link in done.values())
    assert done["enP7s7"].addresses == {"198.18.1.13/24"} and not done["enP7s7"].static_addresses


def test_links_networkd_is_configuring_are_busy_and_a_link_without_carrier_is_not() -> None:
    started = links("reload-started")
    assert networkd.busy(started, FABRIC) == {
        "enP2p1s0f1np1": "enP2p1s0f1np1 (configuring)", "enp1s0f0np0": "enp1s0f0np0 (configuring)"}
    parked = links("no-carrier")
    assert parked["enp1s0f0np0"].admin == "configuring" and not parked["enp1s0f0np0"].has_carrier
    assert networkd.busy(parked, FABRIC) == {}  # its requests wait for carrier: nothing is in flight


def test_a_link_reload_has_not_reached_yet_does_not_pass_for_settled() -> None:
    """The race itself: right after reload, the changed link reports "configured" with its old address."""
    new = files_of({**SPARK1, "enp1s0f1np1": "198.19.222.1/24"})
    started, busy, settled = links("reload-started"), links("reload-busy"), links("reload-settled")
    assert started["enp1s0f1np1"].admin == "configured" and not started["enp1s0f1np1"].busy
    assert networkd.unsettled(started, FABRIC, new) == {
        "enP2p1s0f1np1": "enP2p1s0f1np1 (configuring)", "enp1s0f0np0": "enp1s0f0np0 (configuring)",
        "enp1s0f1np1": "enp1s0f1np1 (configured)"}
    assert set(networkd.unsettled(busy, FABRIC, new)) == set(FABRIC)
    assert networkd.unsettled(settled, FABRIC, new) == {}


def test_network_files_are_read_for_what_an_apply_can_check() -> None:
    parsed = networkd.parse_network("10-netplan-x.network", network_text("enp1s0f0np0", "198.19.0.1/24"))
    assert parsed.names == ("enp1s0f0np0",) and parsed.mtu == 9000 and parsed.addresses == {"198.19.0.1/24"}
    assert parsed.matches("enp1s0f0np0") and not parsed.matches("enp1s0f1np1")
    glob = networkd.parse_network("a.network", "[Match]\nName=enp* eth0\n[Address]\nAddress=10.0.0.1/24\n")
    assert glob.matches("enp1s0f1np1") and glob.mtu is None and glob.addresses == {"10.0.0.1/24"}
    # .link files are not .network files; the first file by name wins, as in networkd
    files = networkd.network_files({"20-b.network": b"[Match]\nName=x\n", "10-a.network": b"[Match]\nName=x\n",
                                    "10-a.link": b"[Match]\nOriginalName=x\n"})
    assert [f.path for f in files] == ["10-a.network", "20-b.network"]
    assert networkd.file_for("x", files) == files[0] and networkd.file_for("y", files) is None


# --- decisions --------------------------------------------------------------------------------------------


def test_reload_reconfigures_only_links_whose_file_changed_and_never_a_failed_one() -> None:
    before = generated(SPARK1)
    after = generated({**SPARK1, "enp1s0f1np1": "198.19.222.1/24"})
    assert networkd.changed_files(before, after) == {"10-netplan-enp1s0f1np1.network"}
    assert networkd.reloaded_links(links("configured"), before, after) == {"enp1s0f1np1"}
    assert networkd.reloaded_links(links("failed"), before, after) == set()  # reload skips failed links
    # a file removed (a port no longer planned) and a file added (a port newly planned) both count
    moved = generated({k: v for k, v in SPARK1.items() if k != "enp1s0f0np0"})
    assert networkd.reloaded_links(links("configured"), before, moved) == {"enp1s0f0np0"}
    assert networkd.reloaded_links(links("configured"), moved, before) == {"enp1s0f0np0"}
    assert networkd.reloaded_links(links("configured"), before, before) == set()


def test_only_links_whose_live_state_differs_from_their_file_need_a_reconfigure() -> None:
    done = links("reload-settled")
    new = files_of({**SPARK1, "enp1s0f1np1": "198.19.222.1/24"})
    for name in FABRIC:
        assert networkd.needs_reconfigure(done[name], networkd.file_for(name, new)) is None
    old = files_of(SPARK1)
    assert networkd.needs_reconfigure(done["enp1s0f1np1"], networkd.file_for("enp1s0f1np1", old)) == (
        "lacks 198.19.2.1/24, has unplanned 198.19.222.1/24")
    failed = links("failed")["enp1s0f1np1"]
    assert networkd.needs_reconfigure(failed, networkd.file_for("enp1s0f1np1", old)) == "networkd failed it"
    parked = links("no-carrier")["enp1s0f0np0"]
    assert networkd.needs_reconfigure(parked, networkd.file_for("enp1s0f0np0", old)) is None
    assert networkd.needs_reconfigure(done["enP7s7"], None) is None  # no file of ours: not ours to touch
    mtu = files_of(SPARK1)
    small = networkd.Link("enp1s0f0np0", "configured", "carrier", 1500, frozenset({"198.19.0.1/24"}),
                          frozenset({"198.19.0.1/24"}), False, None)
    assert networkd.needs_reconfigure(small, networkd.file_for("enp1s0f0np0", mtu)) == "MTU 1500, file says 9000"


# --- the apply, against a fake node ------------------------------------------------------------------------


class FakeNode:
    """netplan generate writes `generates` (new files, new inodes, as netplan does); networkctl list answers
    the recordings in turn (the last one forever); every command is recorded."""

    def __init__(self, directory: Path, generates: dict[str, bytes], answers: list[str],
                 on: dict[str, Callable[[], None]] | None = None) -> None:
        self.directory = directory
        self.generates = generates
        self.answers = list(answers)
        self.commands: list[list[str]] = []
        self.on = on or {}

    def __call__(self, argv: list[str]) -> tuple[int, str, str]:
        self.commands.append(argv)
        if argv[:2] == ["netplan", "generate"]:
            target = self.directory
            if "--root-dir" in argv:
                target = Path(argv[argv.index("--root-dir") + 1]) / self.directory.relative_to("/")
            target.mkdir(parents=True, exist_ok=True)
            for old in target.iterdir():
                old.unlink()
            for name, content in self.generates.items():
                (target / name).write_bytes(content)
            return 0, "", ""
        if argv[:2] == ["networkctl", "list"]:
            answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
            return 0, answer, ""
        if argv[0] == "networkctl" and argv[1] in self.on:
            self.on[argv[1]]()
        return 0, "", ""

    def ran(self, *prefix: str) -> list[list[str]]:
        return [argv for argv in self.commands if argv[: len(prefix)] == list(prefix)]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def install(directory: Path, files: dict[str, bytes]) -> dict[str, int]:
    directory.mkdir(parents=True)
    for name, content in files.items():
        (directory / name).write_bytes(content)
    return {name: os.stat(directory / name).st_ino for name in files}


def applier(node: FakeNode, directory: Path, clock: Clock, timeout: float = 15) -> Applier:
    return Applier(node, FABRIC, timeout, directory=directory, netplan_root=directory / "no-netplan",
                   clock=clock, sleep=clock.sleep)


def test_nothing_changed_means_no_reload_no_reconfigure_and_the_files_stay_the_very_same(tmp_path: Path) -> None:
    directory = tmp_path / "run" / "systemd" / "network"
    inodes = install(directory, generated(SPARK1))
    node = FakeNode(directory, generated(SPARK1), [unchanged()])
    outcome = applier(node, directory, Clock()).apply()
    assert not outcome.changed and not outcome.changed_files and not outcome.reconfigured
    assert not node.ran("networkctl", "reload") and not node.ran("networkctl", "reconfigure")
    assert {name: os.stat(directory / name).st_ino for name in inodes} == inodes  # reload would skip them
    assert not [p for p in directory.parent.iterdir() if p.name.startswith(".sparkctl-keep-")]


def test_a_changed_file_is_reloaded_waited_for_and_never_reconfigured_on_top(tmp_path: Path) -> None:
    directory = tmp_path / "run" / "systemd" / "network"
    inodes = install(directory, generated(SPARK1))
    new = generated({**SPARK1, "enp1s0f1np1": "198.19.222.1/24"})
    answers = [unchanged()] * 2 + [
        recorded("reload-started"), recorded("reload-started"), recorded("reload-busy"), recorded("reload-settled")]
    node = FakeNode(directory, new, answers)
    clock = Clock()
    outcome = applier(node, directory, clock).apply()
    assert outcome.changed and outcome.reloaded
    assert outcome.changed_files == ["10-netplan-enp1s0f1np1.network"]
    assert outcome.reloaded_links == ["enp1s0f1np1"]
    assert outcome.reconfigured == {} and not node.ran("networkctl", "reconfigure")
    assert outcome.states == dict.fromkeys(FABRIC, "configured")
    assert len(node.ran("networkctl", "list")) == 6  # it polled through started and busy to settled
    kept = {n: i for n, i in inodes.items() if n != "10-netplan-enp1s0f1np1.network"}
    assert {name: os.stat(directory / name).st_ino for name in kept} == kept
    assert (directory / "10-netplan-enp1s0f1np1.network").read_bytes() == new["10-netplan-enp1s0f1np1.network"]


def test_it_waits_for_links_networkd_is_configuring_before_it_touches_anything(tmp_path: Path) -> None:
    directory = tmp_path / "run" / "systemd" / "network"
    install(directory, generated(SPARK1))
    settled = unchanged()
    node = FakeNode(directory, generated(SPARK1), [settled, recorded("reload-busy"), settled])
    applier(node, directory, Clock()).apply()
    generate = node.commands.index(["netplan", "generate"])
    assert [argv[1] for argv in node.commands[:generate]] == ["list", "list", "list"]


def test_a_failed_link_reload_skips_is_reconfigured_alone_once_networkd_settled(tmp_path: Path) -> None:
    directory = tmp_path / "run" / "systemd" / "network"
    spark3 = {"enp1s0f0np0": "198.19.6.3/24", "enP2p1s0f0np0": "198.19.7.3/24",
              "enp1s0f1np1": "198.19.0.3/24", "enP2p1s0f1np1": "198.19.1.3/24"}
    install(directory, generated(spark3))
    failed = recorded("failed")
    fixed = failed.replace('"AdministrativeState":"failed"', '"AdministrativeState":"configured"')
    node = FakeNode(directory, generated(spark3), [failed])
    node.on["reconfigure"] = lambda: node.answers.__setitem__(0, fixed)
    outcome = applier(node, directory, Clock()).apply()
    assert node.ran("networkctl", "reconfigure") == [["networkctl", "reconfigure", "enp1s0f1np1"]]
    assert outcome.reconfigured == {"enp1s0f1np1": "networkd failed it"} and outcome.changed
    assert not node.ran("networkctl", "reload")


def test_networkd_that_does_not_settle_fails_naming_the_links_and_states(tmp_path: Path) -> None:
    directory = tmp_path / "run" / "systemd" / "network"
    install(directory, generated(SPARK1))
    node = FakeNode(directory, generated(SPARK1), [recorded("reload-busy")])
    clock = Clock()
    with pytest.raises(NetworkdError) as raised:
        applier(node, directory, clock, timeout=5).apply()
    assert str(raised.value) == (
        "systemd-networkd did not settle within 5 s before the apply: enP2p1s0f0np0 (configuring), "
        "enP2p1s0f1np1 (configuring), enp1s0f0np0 (configuring), enp1s0f1np1 (configuring)")
    assert 5 <= clock.now < 5.2 and not node.ran("netplan")


def test_a_link_networkd_leaves_failed_fails_the_apply(tmp_path: Path) -> None:
    directory = tmp_path / "run" / "systemd" / "network"
    spark3 = {"enp1s0f0np0": "198.19.6.3/24", "enP2p1s0f0np0": "198.19.7.3/24",
              "enp1s0f1np1": "198.19.0.3/24", "enP2p1s0f1np1": "198.19.1.3/24"}
    install(directory, generated(spark3))
    node = FakeNode(directory, generated(spark3), [recorded("failed")])
    with pytest.raises(NetworkdError, match=r"after networkctl reconfigure: enp1s0f1np1 \(failed\)"):
        applier(node, directory, Clock(), timeout=2).apply()


def test_check_mode_reports_and_changes_nothing(tmp_path: Path) -> None:
    directory = tmp_path / "run" / "systemd" / "network"
    inodes = install(directory, generated(SPARK1))
    node = FakeNode(directory, generated({**SPARK1, "enp1s0f1np1": "198.19.222.1/24"}),
                    [unchanged()])
    outcome = applier(node, directory, Clock()).apply(check_mode=True)
    assert outcome.changed and outcome.reloaded and outcome.reloaded_links == ["enp1s0f1np1"]
    assert [argv[:3] for argv in node.ran("netplan")] == [["netplan", "generate", "--root-dir"]]
    assert not node.ran("networkctl", "reload") and not node.ran("networkctl", "reconfigure")
    assert {name: os.stat(directory / name).st_ino for name in inodes} == inodes
    assert (directory / "10-netplan-enp1s0f1np1.network").read_bytes() == generated(SPARK1)[
        "10-netplan-enp1s0f1np1.network"]


def test_a_wanted_link_networkd_does_not_know_is_an_error(tmp_path: Path) -> None:
    directory = tmp_path / "run" / "systemd" / "network"
    install(directory, {})
    node = FakeNode(directory, {}, [recorded("configured")])
    with pytest.raises(NetworkdError, match="does not know bond0"):
        Applier(node, ["bond0"], 5, directory=directory, clock=Clock()).apply()


def test_a_link_something_set_down_is_reconfigured_to_bring_it_up() -> None:
    wanted = networkd.parse_network("/run/systemd/network/10-netplan-enp1s0f1np1.network",
                                    "[Match]\nName=enp1s0f1np1\n\n[Link]\nMTUBytes=9000\n\n"
                                    "[Network]\nAddress=198.19.2.1/24\n")
    down = networkd.Link("enp1s0f1np1", "configured", "off", 9000, frozenset(), frozenset(), False, None, up=False)
    assert networkd.needs_reconfigure(down, wanted) == "it is down"
    parked = networkd.Link("enp1s0f1np1", "configuring", "no-carrier", 9000, frozenset(), frozenset(), False, None)
    assert networkd.needs_reconfigure(parked, wanted) is None  # up, waiting for its cable
