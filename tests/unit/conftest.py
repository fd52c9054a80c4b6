"""Fixtures for the planner tests: inventories written to a temp dir, the way users write them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

InventoryWriter = Callable[..., Path]


@pytest.fixture
def write_inventory(tmp_path: Path) -> InventoryWriter:
    """Write hosts.yml + group_vars/sparks.yml (+ host_vars) and return the inventory directory."""

    def write(
        nodes: int | dict[str, dict[str, Any]] = 2,
        host_vars: dict[str, dict[str, Any]] | None = None,
        name: str = "inv",
        **group_vars: Any,
    ) -> Path:
        root = tmp_path / name
        (root / "group_vars").mkdir(parents=True, exist_ok=True)
        if isinstance(nodes, int):
            nodes = {f"spark{i}": {"ansible_host": f"192.168.1.{100 + i}"} for i in range(1, nodes + 1)}
        (root / "hosts.yml").write_text(yaml.safe_dump({"all": {"children": {"sparks": {"hosts": nodes}}}}))
        (root / "group_vars" / "sparks.yml").write_text(yaml.safe_dump(group_vars))
        for host, values in (host_vars or {}).items():
            (root / "host_vars").mkdir(exist_ok=True)
            (root / "host_vars" / f"{host}.yml").write_text(yaml.safe_dump(values))
        return root

    return write
