"""Action plugin of every `sparkctl_*` node step (each plugins/action/sparkctl_*.py links here): runs the
step of the task's name from `sparkctl.node.steps` on the node (see sparkctl.ansible_node_step)."""

from __future__ import annotations

try:
    from sparkctl.ansible_node_step import NodeStep
except ImportError as exc:
    from ansible.errors import AnsibleError

    raise AnsibleError(
        f"the sparkctl package is not importable ({exc}): run ansible-playbook from the "
        "virtual environment where sparkctl is installed (.venv/bin/ansible-playbook)"
    ) from exc


ActionModule = NodeStep
