"""The on-node watch's bookkeeping: a drift is logged once with when it was first seen, clearing and
healing are told apart, a moved GID index is an event, and the metrics are Prometheus text."""

from __future__ import annotations

from pathlib import Path

from sparkctl.node import watch

LINKS = {"enp1s0f0np0": {"present": True, "carrier": 1, "mtu": 1500, "speed_mbps": 200000}}
DRIFT = {"interface": "enp1s0f0np0", "text": "enp1s0f0np0: MTU is 1500, planned 9000"}


def seen(drift: list[dict[str, str]], gid: int | None = 3) -> dict[str, object]:
    return {"drift": drift, "links": LINKS, "gid_index": {"rocep1s0f0": gid}}


def test_a_drift_is_logged_once_and_keeps_its_first_sighting() -> None:
    state, events = watch.step(None, seen([DRIFT]), 100.0)
    assert events == ["drift: enp1s0f0np0: MTU is 1500, planned 9000"]
    state, events = watch.step(state, seen([DRIFT]), 400.0)
    assert events == [] and state["findings"] == [{**DRIFT, "first_seen": 100.0}]
    state, events = watch.step(state, seen([]), 700.0)
    assert events == ["cleared: enp1s0f0np0: MTU is 1500, planned 9000"]
    assert [e["event"] for e in state["history"]] == ["drift", "cleared"]


def test_healed_is_told_from_cleared_and_a_moved_gid_index_is_an_event() -> None:
    state, _ = watch.step(None, seen([DRIFT]), 100.0)
    state, events = watch.step(state, seen([], gid=4), 110.0, healed=[DRIFT["text"]])
    assert events == ["healed: enp1s0f0np0: MTU is 1500, planned 9000",
                      "gid index moved: rocep1s0f0: RoCE v2 IPv4 GID index 3 -> 4"]


def test_metrics_are_prometheus_text() -> None:
    state, _ = watch.step(None, seen([DRIFT], gid=None), 100.0)
    text = watch.metrics(state)
    assert "sparkctl_fabric_drift 1\n" in text
    assert 'sparkctl_link_mtu{interface="enp1s0f0np0"} 1500\n' in text
    assert 'sparkctl_link_speed_mbps{interface="enp1s0f0np0"} 200000\n' in text
    assert 'sparkctl_roce_gid_index{device="rocep1s0f0"} -1\n' in text
    assert all(line.startswith(("# HELP", "# TYPE", "sparkctl_")) for line in text.splitlines())


def test_the_units_run_the_watch_from_the_copy_with_the_chosen_options() -> None:
    files = watch.unit_files("/usr/bin/python3", 5, True, None)
    assert "OnUnitActiveSec=5min" in files["sparkctl-watch.timer"]
    service = files["sparkctl-watch.service"]
    assert "Environment=PYTHONPATH=/var/lib/sparkctl/lib" in service
    assert "ExecStart=/usr/bin/python3 -m sparkctl_node.watch --state-dir /var/lib/sparkctl/fabric" in service
    assert service.rstrip().endswith("--heal") and "--textfile" not in service


def test_gid_index_is_the_first_roce_v2_ipv4_entry_of_each_device(tmp_path: Path) -> None:
    port = tmp_path / "rocep1s0f0" / "ports" / "1"
    table = {0: ("fe80:0000:0000:0000:0000:0000:0000:0001", "IB/RoCE v1"),
             1: ("fe80:0000:0000:0000:0000:0000:0000:0001", "RoCE v2"),
             3: ("0000:0000:0000:0000:0000:ffff:0a14:0001", "IB/RoCE v1"),
             4: ("0000:0000:0000:0000:0000:ffff:0a14:0001", "RoCE v2")}
    for sub in ("gids", "gid_attrs/types", "gid_attrs/ndevs"):
        (port / sub).mkdir(parents=True)
    for index, (gid, kind) in table.items():
        (port / "gids" / str(index)).write_text(gid + "\n")
        (port / "gid_attrs" / "types" / str(index)).write_text(kind + "\n")
        (port / "gid_attrs" / "ndevs" / str(index)).write_text("enp1s0f0np0\n")
    (tmp_path / "roceP2p1s0f0" / "ports" / "1" / "gids").mkdir(parents=True)
    assert watch.gid_indexes(tmp_path) == {"roceP2p1s0f0": None, "rocep1s0f0": 4}
