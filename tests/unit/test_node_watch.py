"""The on-node watch's bookkeeping: a drift is logged once with when it was first seen, clearing and
healing are told apart, a moved GID index is an event, and the metrics are Prometheus text."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from sparkctl.node import watch

LINKS = {"enp1s0f0np0": {"present": True, "carrier": 1, "mtu": 1500, "speed_mbps": 200000}}
DRIFT = {"interface": "enp1s0f0np0", "text": "enp1s0f0np0: MTU is 1500, planned 9000"}
PCIE = {"enp1s0f0np0": {"address": "0000:01:00.0", "current_link_speed": "32.0 GT/s PCIe", "current_link_width": "2",
                        "max_link_speed": "32.0 GT/s PCIe", "max_link_width": "4"}, "enP2p1s0f0np0": None}


def seen(drift: list[dict[str, str]], gid: int | None = 3, crc: int = 0) -> dict[str, Any]:
    return {"drift": drift, "links": LINKS, "gid_index": {"rocep1s0f0": gid}, "pcie": PCIE,
            "counters": {"enp1s0f0np0": {"rx_crc_errors_phy": crc, "tx_dropped": 0}}}


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


def test_error_counters_that_grew_are_an_event_once_per_growth() -> None:
    state, events = watch.step(None, seen([], crc=5), 100.0)
    assert events == []  # the first look is the baseline
    state, events = watch.step(state, seen([], crc=45), 400.0)
    assert events == ["errors grew: enp1s0f0np0: rx_crc_errors_phy +40"]
    state, events = watch.step(state, seen([], crc=45), 700.0)
    assert events == [] and state["counters"]["enp1s0f0np0"]["rx_crc_errors_phy"] == 45


def test_metrics_parse_with_the_prometheus_client_parser() -> None:
    state, _ = watch.step(None, seen([DRIFT], gid=None, crc=7), 100.0)
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(watch.metrics(state)) for s in family.samples}
    link = (("interface", "enp1s0f0np0"),)
    assert samples[("sparkctl_fabric_drift", ())] == 1
    assert samples[("sparkctl_link_mtu", link)] == 1500
    assert samples[("sparkctl_link_speed_mbps", link)] == 200000
    assert samples[("sparkctl_link_errors_total", (("counter", "rx_crc_errors_phy"), *link))] == 7
    assert samples[("sparkctl_link_pcie_width", link)] == 2 and samples[("sparkctl_link_pcie_max_width", link)] == 4
    assert samples[("sparkctl_link_pcie_speed_gts", link)] == 32.0
    assert samples[("sparkctl_roce_gid_index", (("device", "rocep1s0f0"),))] == -1
    assert not any(labels == (("interface", "enP2p1s0f0np0"),) for _, labels in samples)  # no PCI device: no figure
    families = {f.name: f.type for f in text_string_to_metric_families(watch.metrics(state))}
    assert families["sparkctl_link_errors"] == "counter" and families["sparkctl_link_mtu"] == "gauge"


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
