"""The on-node package must import on a Spark that has Python but not sparkctl or its dependencies."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import yaml

import sparkctl.node
from sparkctl.node import steps

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


def test_every_step_has_its_action_plugin_and_its_documentation() -> None:
    """Ansible finds a task's action plugin, and ansible-doc its documentation, by the step's name."""
    actions = REPO / "plugins" / "action"
    documented = {p.stem for p in (REPO / "plugins" / "modules").glob("sparkctl_*.py")}
    assert documented == set(steps.STEPS)
    for name in steps.STEPS:
        plugin = actions / f"{name}.py"
        assert plugin.is_symlink() and plugin.resolve() == (actions / "_node_step.py").resolve(), name
    config = (REPO / "ansible.cfg").read_text(encoding="utf-8")
    assert "action_plugins = plugins/action" in config and "library = plugins/modules" in config


def test_each_steps_documented_options_are_its_argument_spec() -> None:
    """The options ansible-doc shows and the ones the action plugin validates are the same, type and default."""
    for name, step in steps.STEPS.items():
        source = (REPO / "plugins" / "modules" / f"{name}.py").read_text(encoding="utf-8")
        tree = ast.parse(source)
        documentation = next(node.value.value for node in tree.body if isinstance(node, ast.Assign)
                             and getattr(node.targets[0], "id", "") == "DOCUMENTATION")
        options = yaml.safe_load(documentation).get("options", {})
        assert set(options) == set(step.argument_spec), name
        for option, spec in step.argument_spec.items():
            shown = options[option]
            assert shown.get("type", "str") == spec.get("type", "str"), f"{name}.{option}"
            assert shown.get("default") == spec.get("default"), f"{name}.{option}"
            assert bool(shown.get("required")) == bool(spec.get("required")), f"{name}.{option}"
            assert shown.get("choices") == spec.get("choices"), f"{name}.{option}"


def test_scripts_sent_to_nodes_on_stdin_stand_alone() -> None:
    """doctor and status send these files to `python3 -` on the node: a relative import there has no package."""
    for name in ("doctor_facts.py", "health.py"):
        tree = ast.parse((NODE_PACKAGE / name).read_text(encoding="utf-8"))
        relative = [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level > 0]
        assert not relative, f"{name} imports {relative} relatively, which python3 - on a node cannot resolve"
