"""Property: for any inventory, however hostile, `sparkctl render` exits 0 or 2, never with a traceback,
writes only under --out, and every line of every file it writes is a line of that file's own syntax
(so no value started a line or a command of its own).

Inventories are generated from names, addresses, interface names, cabling, bond, storage and ssh
settings that mix valid values with the hostile ones seen in practice (newlines, quotes, `$(...)`,
path segments, rich markup, integer addresses, huge values, wrong types). The number of examples is
small and the run derandomized so it fits `make test` in a few seconds, and the attacks found before
always run; set SPARKCTL_FUZZ_EXAMPLES to explore more (with fresh random examples).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from sparkctl import hardware
from sparkctl.cli import main
from sparkctl.model import TOPOLOGIES

EXAMPLES = int(os.environ.get("SPARKCTL_FUZZ_EXAMPLES", "0")) or 80

HOSTILE = [
    "", " ", "\n", "a\nb", 'x"\nDefaultEnvironment="LD_PRELOAD=/tmp/x.so', "$(touch /tmp/pwned)", "`id`",
    "../x", "/", "/etc/netplan", "a/../../b", "[red]x[/red]", "[/]", "x" * 300, "é", "\x00", "a b", "-o", "%s",
    "{{ 7 * 7 }}", "*", "~", ".", "..", "\\", "'", '"',
]
TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12)
WEIRD = st.one_of(
    st.sampled_from(HOSTILE), TEXT, st.integers(-(2**40), 2**40), st.booleans(), st.none(),
    st.floats(allow_nan=True, allow_infinity=True), st.just([]), st.just({}), st.just(["a", 1]),
)


def mostly(good: st.SearchStrategy[Any], bad: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """`good` 19 times in 20, else `bad` (shrinking toward good)."""
    return st.integers(0, 19).flatmap(lambda roll: bad if roll == 19 else good)


def good_bad(good: st.SearchStrategy[Any], bad: st.SearchStrategy[Any]) -> tuple[Any, Any]:
    return good, st.one_of(bad, WEIRD)


NETDEV = st.sampled_from(hardware.ALL_NETDEVS)
NETWORK = st.builds(lambda a, p: f"10.{a}.0.0/{p}", st.integers(0, 255), st.integers(16, 20))
BAD_NETWORKS = st.sampled_from(["10.20.0.0/16", "198.19.0.0/16", "127.0.0.0/8", "192.168.1.128/25", "0.0.0.0/0",
                                "224.0.0.0/4", "10.20.0.0/33", "10.20.0.1/24", "fe80::/64", "10.0.0.0/8\n"])
PORT = st.sampled_from(hardware.PORTS)
BAD_PORTS = st.sampled_from(["p2", "", "P0", "p0\n", "p0 p1"])
# ansible_host: literals, `localhost` and strings that are no host name only; a generated name would be looked
# up in DNS.
BAD_ADDRESSES = st.one_of(
    st.sampled_from(["127.0.0.1", "localhost", "3232235877", "10.1", "192.168.1.11 ", "999.1.1.1", "::1",
                     "a\nProxyCommand sh -c id", "0.0.0.0", "255.255.255.255", "10.20.0.1", "192.168.1.11"]),
    st.integers(0, 2**32),
)
STORAGE = {"port": "p1", "networks": ["10.30.0.0/24", "10.31.0.0/24"], "targets": ["10.30.0.100"]}
FIELDS: dict[str, tuple[Any, Any]] = {
    "name": (st.from_regex(r"\A[a-z][a-z0-9-]{0,8}\Z"),  # a key of a YAML mapping: hashable values only
             st.one_of(st.sampled_from(HOSTILE), TEXT, st.integers(), st.booleans(), st.none(), st.floats())),
    "ansible_host": good_bad(st.nothing(), BAD_ADDRESSES),
    "ansible_port": good_bad(st.integers(1, 65535), st.integers(-5, 70000)),
    "ansible_ssh_common_args": good_bad(st.just("-o StrictHostKeyChecking=yes"),
                                        st.sampled_from(["-o 'x", "-o a\nb", "\n"])),
    "sparkctl_fabric_addresses": good_bad(st.just({}), st.dictionaries(
        st.one_of(NETDEV, st.sampled_from([*HOSTILE, "bond0", "enP7s7"])), st.one_of(NETWORK, BAD_NETWORKS, WEIRD),
        min_size=1, max_size=2)),
    "sparkctl_topology": good_bad(st.sampled_from(TOPOLOGIES), st.sampled_from(["Direct", "ring\n", "mesh"])),
    "sparkctl_mtu": good_bad(st.sampled_from([1500, 9000]), st.sampled_from([68, 9217, 65536, "9000\n", 9e3])),
    "sparkctl_fabric_pool": good_bad(NETWORK, BAD_NETWORKS),
    "sparkctl_subnet_prefix": good_bad(st.integers(20, 30), st.integers(-1, 40)),
    "sparkctl_cabling": good_bad(st.nothing(), st.nothing()),  # built from the node names below
    "sparkctl_bond": good_bad(st.fixed_dictionaries({}, optional={"mode": st.sampled_from(["802.3ad", "balance-xor"]),
                                                                "mii_monitor_interval": st.integers(0, 1000)}),
                              st.fixed_dictionaries({}, optional={
                                  "name": st.sampled_from([*HOSTILE, "bond/../../x", "bond0\n"]),
                                  "mode": WEIRD, "members": st.lists(st.one_of(NETDEV, WEIRD), max_size=3),
                                  "mii_monitor_interval": st.one_of(st.integers(-1, 10**6), WEIRD),
                                  "lacp_rate": WEIRD, "extra": WEIRD})),
    "sparkctl_storage": good_bad(st.just(STORAGE),
                                 st.fixed_dictionaries({}, optional={
                                     "port": st.one_of(BAD_PORTS, WEIRD),
                                     "networks": st.lists(st.one_of(NETWORK, BAD_NETWORKS, WEIRD), max_size=3),
                                     "targets": st.lists(st.one_of(BAD_ADDRESSES, WEIRD), max_size=2)})),
    "sparkctl_switch_ports": good_bad(st.lists(PORT, min_size=1, max_size=2, unique=True),
                                      st.lists(st.one_of(BAD_PORTS, WEIRD), max_size=2)),
    "sparkctl_bootstrap_interface": good_bad(st.sampled_from(["enP7s7", "wlP9s9"]), st.sampled_from(HOSTILE)),
    "sparkctl_management_network": good_bad(st.just("192.168.1.0/24"), BAD_NETWORKS),
    "sparkctl_link_speed_mbps": good_bad(st.integers(1, 400000), st.one_of(st.integers(-1, 10**7), st.floats())),
}
HOST_KEYS = ("ansible_port", "ansible_ssh_common_args", "sparkctl_fabric_addresses")
GROUP_KEYS = tuple(key for key in FIELDS
                   if key.startswith("sparkctl_") and key not in (*HOST_KEYS, "sparkctl_cabling"))


NODE_COUNTS = {"direct": (2, 2), "bond": (2, 2), "ring": (3, 5), "storage-split": (2, 4), "switch": (2, 5)}


@st.composite
def inventories(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any]]:
    """(hosts.yml, group_vars/sparks.yml) as data: a valid inventory of a drawn topology, with (most of the
    time) one field given a hostile value; other fields are hostile now and then too."""
    target = draw(st.sampled_from([None, *FIELDS]))

    def value(field: str) -> Any:
        good, bad = FIELDS[field]
        return draw(bad if field == target else mostly(good, bad))

    topology = draw(st.sampled_from(TOPOLOGIES))
    low, high = NODE_COUNTS[topology]
    count = draw(st.integers(low, high))
    if topology == "storage-split":
        count -= count % 2  # Sparks are paired peer to peer
    names: list[Any] = [f"spark{number}" for number in range(1, count + 1)]
    for index in range(len(names)):
        if (target == "name" and index == 0) or draw(st.integers(0, 3)) == 0:
            renamed = value("name")
            if renamed not in names:
                names[index] = renamed
    hosts: dict[Any, Any] = {}
    for number, name in enumerate(names, start=1):
        values: dict[str, Any] = {"ansible_host": f"192.168.1.{10 + number}"}
        if target == "ansible_host" and number == len(names):
            values["ansible_host"] = value("ansible_host")
        for key in HOST_KEYS:
            if key == target or draw(st.integers(0, 3)) == 0:
                values[key] = value(key)
        hosts[name] = values
    group: dict[str, Any] = {"sparkctl_topology": topology}
    if topology == "storage-split":
        group["sparkctl_storage"] = dict(STORAGE)
    for key in GROUP_KEYS:
        if key in ("sparkctl_topology", "sparkctl_storage") and key != target:
            continue
        if key == target or draw(st.integers(0, 2)) == 0:
            group[key] = value(key)
    if target == "sparkctl_cabling" or (topology == "ring" and draw(st.booleans())):
        group["sparkctl_cabling"] = draw(cabling(names, hostile=target == "sparkctl_cabling"))
    return {"all": {"children": {"sparks": {"hosts": hosts}}}}, group


def cabling(names: list[Any], *, hostile: bool) -> st.SearchStrategy[Any]:
    """The ring's cables, pinned, or (hostile) cables with bad ends, separators or types."""
    if not hostile:
        return st.just([f"{a}:p0 {names[(i + 1) % len(names)]}:p1" for i, a in enumerate(names)])
    end = st.builds(lambda n, p: f"{n}:{p}", st.one_of(st.sampled_from(names), st.sampled_from(HOSTILE)),
                    st.one_of(PORT, BAD_PORTS))
    separator = st.sampled_from([" ", " - ", "", "\n", " <-> "])
    item = st.one_of(st.builds(lambda a, sep, b: f"{a}{sep}{b}", end, separator, end), WEIRD)
    return st.one_of(st.lists(item, min_size=1, max_size=5), WEIRD)


VALUE = r"[A-Za-z0-9_.,:/@+-]*"
LINE_RULES = {
    "fabric.env": re.compile(rf"(#[^\n]*|[A-Za-z_][A-Za-z0-9_]*={VALUE})"),
    "sparkctl-fabric.sh": re.compile(rf"(#[^\n]*|export [A-Za-z_][A-Za-z0-9_]*={VALUE})"),
    "60-sparkctl-fabric.conf@system.conf.d": re.compile(rf'(#[^\n]*|\[Manager\]|DefaultEnvironment="[A-Za-z_][A-Za-z0-9_]*={VALUE}")'),
    "60-sparkctl-fabric.conf@sysctl.d": re.compile(r"(|#[^\n]*|[a-z0-9_./]+ = [A-Za-z0-9_ .-]+)"),
}


def assert_parses(path: Path) -> None:
    """Each rendered file is one of its own kind: YAML or JSON that loads, or lines of its own syntax only."""
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".yaml":
        assert isinstance(yaml.safe_load(text)["network"], dict), path
        return
    if path.suffix == ".json":
        json.loads(text)
        return
    rule = LINE_RULES.get(path.name) or LINE_RULES[f"{path.name}@{path.parent.name}"]
    for line in text.splitlines():
        assert rule.fullmatch(line), f"{path}: {line!r}"


def files_under(root: Path) -> set[Path]:
    return {p for p in root.rglob("*")}


def known(group: dict[str, Any] | None = None, **host: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """A two-Spark inventory with the given group variables and spark1 variables: attacks seen before."""
    hosts = {"spark1": {"ansible_host": "192.168.1.11", **host}, "spark2": {"ansible_host": "192.168.1.12"}}
    return {"all": {"children": {"sparks": {"hosts": hosts}}}}, group or {}


KNOWN_ATTACKS = [
    known({"sparkctl_bootstrap_interface": 'x"\nDefaultEnvironment="LD_PRELOAD=/tmp/x.so'}),
    known({"sparkctl_bootstrap_interface": "$(touch /tmp/pwned)"}),
    known(ansible_host="192.168.1.11\nProxyCommand sh -c id"),
    known(ansible_host="3232235787"),
    known({"sparkctl_topology": "bond", "sparkctl_bond": {"name": "bond/../../x"}}),
    known({"sparkctl_topology": "bond", "sparkctl_bond": {"mii_monitor_interval": True}}),
    known({"sparkctl_fabric_pool": "127.16.0.0/16"}),
    known({"sparkctl_cabling": ["spark1:p0 spark9:p0"]}),
    known({"sparkctl_link_speed_mbps": float("inf")}),
    known(sparkctl_fabric_addresses={"enp1s0f0np0": "10.20.0.255/24\nx"}),
    ({"all": {"children": {"sparks": {"hosts": {"spark1\nkernel.core_pattern = |/tmp/x": {"ansible_host": "192.168.1.11"},
                                                 "spark2": {"ansible_host": "192.168.1.12"}}}}}}, {}),
    ({"all": {"children": {"sparks": {"hosts": {"../../x": {"ansible_host": "192.168.1.11"},
                                                 "spark2": {"ansible_host": "192.168.1.12"}}}}}}, {}),
    known(),
]


def with_known_attacks(test: Any) -> Any:
    for inventory in KNOWN_ATTACKS:
        test = example(inventory)(test)
    return test


@settings(max_examples=EXAMPLES, deadline=timedelta(seconds=10), derandomize="SPARKCTL_FUZZ_EXAMPLES" not in os.environ,
          database=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(inventories())
@with_known_attacks
def test_render_never_crashes_and_writes_only_under_out(inventory: tuple[dict[str, Any], dict[str, Any]]) -> None:
    hosts, group = inventory
    with tempfile.TemporaryDirectory() as box_name:
        box = Path(box_name)
        (box / "inv" / "group_vars").mkdir(parents=True)
        (box / "inv" / "hosts.yml").write_text(yaml.safe_dump(hosts), encoding="utf-8")
        (box / "inv" / "group_vars" / "sparks.yml").write_text(yaml.safe_dump(group), encoding="utf-8")
        out = box / "out" / "render"
        before = files_under(box)
        stdout, stderr = io.StringIO(), io.StringIO()
        code: object = 0
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            try:
                main(["render", "--inventory", str(box / "inv"), "--out", str(out)])
            except SystemExit as exit_:
                code = exit_.code
        event(f"exit {code}")
        assert code in (0, 2), (code, stderr.getvalue())
        written = files_under(box) - before
        assert all(path == out.parent or out in (path, *path.parents) for path in written), sorted(written)
        if code == 2:
            said = stderr.getvalue().partition("sparkctl: error: ")[2]  # after the line naming the inventory
            assert said and "Traceback" not in said and len(said) < 2000, stderr.getvalue()
            assert not any(path.is_file() for path in written)
            return
        listed = [Path(line) for line in stdout.getvalue().splitlines()]
        assert listed and all(out in path.parents for path in listed)
        for path in listed:
            assert_parses(path)
