"""The on-node package must import on a Spark that has Python but not sparkctl or its dependencies."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import sparkctl.node

NODE_PACKAGE = Path(sparkctl.node.__file__).parent
REPO = NODE_PACKAGE.parent.parent


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for statement in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(statement, ast.Import):
            names.update(alias.name.split(".")[0] for alias in statement.names)
        elif isinstance(statement, ast.ImportFrom) and statement.level == 0 and statement.module:
            names.add(statement.module.split(".")[0])
    return names


def test_node_code_imports_only_the_standard_library() -> None:
    for path in sorted(NODE_PACKAGE.glob("*.py")):
        foreign = _imports(path) - set(sys.stdlib_module_names) - {"__future__"}
        assert not foreign, f"{path.name} imports {sorted(foreign)}, which a node does not have"


def test_ansible_finds_the_node_package_as_module_utils() -> None:
    link = REPO / "plugins" / "module_utils" / "sparkctl_node"
    assert link.is_symlink() and link.resolve() == NODE_PACKAGE.resolve()
    config = (REPO / "ansible.cfg").read_text(encoding="utf-8")
    assert "module_utils = plugins/module_utils" in config and "library = plugins/modules" in config


def test_scripts_sent_to_nodes_on_stdin_stand_alone() -> None:
    """doctor and status send these files to `python3 -` on the node: a relative import there has no package."""
    for name in ("doctor_facts.py", "health.py"):
        tree = ast.parse((NODE_PACKAGE / name).read_text(encoding="utf-8"))
        relative = [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level > 0]
        assert not relative, f"{name} imports {relative} relatively, which python3 - on a node cannot resolve"
