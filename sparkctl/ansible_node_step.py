"""The action plugin behind every `sparkctl_*` task: one node step (`sparkctl.node.steps`) in one round trip.

Why not plain Ansible modules: for each module a run uses, Ansible builds a payload on the controller
(about 0.2 s: it parses every module_utils file the module imports, its own framework included), and
each call starts that framework on the node (another 0.2 s of CPU there), for steps that themselves
take a few milliseconds. A no-change re-run of provisioning makes a dozen such calls per node, so that
overhead was most of its time. Here the task's arguments are validated on the controller with
Ansible's own validator against the step's spec; the node package's sources (standard library only)
go to the node's Python on stdin together with the request, over the task's own connection (SSH with
its host key checks, become when the inventory says so, the task's environment), and the result comes
back as one JSON line. Parameters marked no_log are masked in the result, as Ansible masks a module's.
"""

from __future__ import annotations

import base64
import json
import zlib
from pathlib import Path
from typing import Any

from ansible.errors import AnsibleError  # type: ignore[import-untyped]
from ansible.executor.interpreter_discovery import discover_interpreter  # type: ignore[import-untyped]
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator  # type: ignore[import-untyped]
from ansible.module_utils.common.parameters import remove_values  # type: ignore[import-untyped]
from ansible.plugins.action import ActionBase  # type: ignore[import-untyped]

from sparkctl.node import steps

NODE_PACKAGE = Path(steps.__file__).parent
RESULT_MARK = "sparkctl-step-result: "

BOOTSTRAP = r'''
import base64, importlib.abc, importlib.util, json, sys, zlib

SOURCES = json.loads(zlib.decompress(base64.b64decode("@SOURCES@")))
PACKAGE = "sparkctl_node"


class Sources(importlib.abc.MetaPathFinder, importlib.abc.InspectLoader):
    """Imports sparkctl_node.* from SOURCES, and gives their source to inspect (the rollback copies it)."""

    def find_spec(self, name, path=None, target=None):
        leaf = self._leaf(name)
        if leaf in SOURCES:
            return importlib.util.spec_from_loader(name, self, origin=f"/sparkctl_node/{leaf}.py",
                                                   is_package=name == PACKAGE)
        return None

    def _leaf(self, name):
        return "__init__" if name == PACKAGE else name[len(PACKAGE) + 1:] if name.startswith(PACKAGE + ".") else None

    def get_source(self, name):
        return SOURCES[self._leaf(name)]

    def is_package(self, name):
        return name == PACKAGE

    def exec_module(self, module):
        module.__file__ = module.__spec__.origin
        exec(compile(self.get_source(module.__name__), module.__file__, "exec"), module.__dict__)


sys.meta_path.insert(0, Sources())
from sparkctl_node import steps

print("@MARK@" + json.dumps(steps.serve(json.loads(base64.b64decode("@REQUEST@")))))
'''


def _pack(package: Path) -> str:
    """A package's sources, compressed, as the bootstrap embeds them."""
    sources = {path.stem: path.read_text(encoding="utf-8") for path in sorted(package.glob("*.py"))}
    return base64.b64encode(zlib.compress(json.dumps(sources).encode(), 6)).decode()


SOURCES = _pack(NODE_PACKAGE)
"""Packed once, when Ansible's main process loads the plugin class to plan a task: the worker processes
it forks for every host and task inherit it instead of packing it again (16 ms each)."""


def script(request: dict[str, Any]) -> bytes:
    """The program the node's Python runs for one step."""
    encoded = base64.b64encode(json.dumps(request).encode()).decode()
    return (BOOTSTRAP.replace("@SOURCES@", SOURCES).replace("@MARK@", RESULT_MARK)
            .replace("@REQUEST@", encoded).encode())


def answer(stdout: str) -> dict[str, Any] | None:
    """The step's result from the node's output, or None when the node printed no result line."""
    for line in reversed(stdout.splitlines()):
        if line.startswith(RESULT_MARK):
            return dict(json.loads(line[len(RESULT_MARK):]))
    return None


class NodeStep(ActionBase):  # type: ignore[misc]  # ansible-core ships no type hints
    """The ActionModule of plugins/action/_node_step.py, which every plugins/action/sparkctl_*.py links to:
    Ansible finds it under each step's name, and the task's name says which step to run."""

    TRANSFERS_FILES = False
    _supports_check_mode = True
    _supports_async = False

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        result: dict[str, Any] = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        name = str(self._task.action).rsplit(".", 1)[-1]
        step = steps.STEPS.get(name)
        if step is None:
            raise AnsibleError(f"{name} is not a sparkctl node step (known: {', '.join(sorted(steps.STEPS))})")
        validated = ArgumentSpecValidator(step.argument_spec, **step.rules).validate(self._task.args)
        if validated.error_messages:
            return {**result, "failed": True, "msg": f"{name}: " + "; ".join(validated.error_messages)}
        become = self._connection.become
        if become is not None and not become.pipelining:
            return {**result, "failed": True,
                    "msg": f"{name}: sparkctl sends its steps to the node's Python on stdin, which the become method "
                           f"{become.name} does not pass on; use become_method sudo (as sparkctl init writes)"}
        request = {"step": name, "params": validated.validated_parameters, "check_mode": bool(self._task.check_mode)}
        python, facts = self._python(task_vars)
        command = self._connection._shell.build_module_command(self._compute_environment_string(), f"#!{python}", "-")
        done = self._low_level_execute_command(command, in_data=script(request), sudoable=True)
        found = answer(done.get("stdout", ""))
        if found is None:
            found = {"failed": True, "rc": done.get("rc"),
                     "msg": f"{name}: the node's Python ({python}) gave no result (exit status {done.get('rc')}): "
                            + (done.get("stderr") or done.get("stdout") or "no output").strip()[-2000:]}
        if facts:
            found["ansible_facts"] = {**found.get("ansible_facts", {}), **facts}
        return {**result, **remove_values(found, validated._no_log_values)}

    def _python(self, task_vars: dict[str, Any]) -> tuple[str, dict[str, str]]:
        """The node's Python, and the fact to remember when it had to be discovered (as modules do it)."""
        delegated = self._task.delegate_to
        host_vars = task_vars.get("ansible_delegated_vars", {}).get(delegated, task_vars) if delegated else task_vars
        configured = self._templar.template(host_vars.get("ansible_python_interpreter", "auto_silent"))
        if configured and not str(configured).startswith("auto"):
            return str(configured), {}
        known = host_vars.get("ansible_facts", {}).get("discovered_interpreter_python")
        if known:
            return str(known), {}
        found = discover_interpreter(action=self, interpreter_name="python",
                                     discovery_mode=str(configured or "auto_silent"), task_vars=host_vars)
        return str(found), ({} if delegated else {"discovered_interpreter_python": str(found)})
