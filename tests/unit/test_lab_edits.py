"""The inventory edits the recabling tests and bench make, on an inventory laid out as a lab writes it."""

from __future__ import annotations

from pathlib import Path

import yaml

from sparkctl.lab.edits import copy_without, set_storage_port


def lab_inventory(directory: Path) -> Path:
    (directory / "group_vars").mkdir(parents=True)
    hosts = {"all": {"children": {"sparks": {"hosts": {f"spark{n}": {"ansible_host": f"198.18.0.{n + 1}"}
                                                       for n in (1, 2, 3)}}}}}
    (directory / "hosts.yml").write_text(yaml.safe_dump(hosts, sort_keys=False), encoding="utf-8")
    sparks = {"sparkctl_topology": "ring", "sparkctl_storage": {"port": "p1", "targets": ["198.18.9.10"]}}
    (directory / "group_vars" / "sparks.yml").write_text(yaml.safe_dump(sparks), encoding="utf-8")
    return directory


def test_set_storage_port_changes_only_the_port(tmp_path: Path) -> None:
    inventory = lab_inventory(tmp_path / "inventory")
    set_storage_port(inventory, "p0")
    values = yaml.safe_load((inventory / "group_vars" / "sparks.yml").read_text(encoding="utf-8"))
    assert values == {"sparkctl_topology": "ring", "sparkctl_storage": {"port": "p0", "targets": ["198.18.9.10"]}}


def test_copy_without_leaves_the_lab_inventory_whole(tmp_path: Path) -> None:
    inventory = lab_inventory(tmp_path / "inventory")
    copy = copy_without(inventory, tmp_path / "three", ["spark3"])
    assert copy == tmp_path / "three"
    listed = yaml.safe_load((copy / "hosts.yml").read_text(encoding="utf-8"))["all"]["children"]["sparks"]["hosts"]
    assert listed == {"spark1": {"ansible_host": "198.18.0.2"}, "spark2": {"ansible_host": "198.18.0.3"}}
    assert (copy / "group_vars" / "sparks.yml").read_text() == (inventory / "group_vars" / "sparks.yml").read_text()
    original = yaml.safe_load((inventory / "hosts.yml").read_text(encoding="utf-8"))
    assert set(original["all"]["children"]["sparks"]["hosts"]) == {"spark1", "spark2", "spark3"}
