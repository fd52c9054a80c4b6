"""What runs on the cluster now: every declared service's unit and health, asked on its own node.

One SSH call per node, all nodes at once: the node runs sparkctl/node/health.py (sent on stdin to
`python3 -`) over the manifest deploy left there, so the checks are the very ones deploy waits on.
A declared service the node does not run (never deployed, or its unit removed) is reported too.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sparkctl import ssh
from sparkctl.errors import EnvironmentProblem
from sparkctl.node import health
from sparkctl.parallel import parallel
from sparkctl.services.layout import MANIFEST_PATH, unit_name
from sparkctl.services.spec import ServicesSpec

HEALTH_SOURCE = Path(health.__file__).read_text(encoding="utf-8")
STATUS_TIMEOUT_S = 60


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    node: str
    kind: str
    unit: str
    url: str | None
    model: str | None
    state: str
    healthy: bool
    detail: str
    restarts: int = 0
    uptime_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "node": self.node, "kind": self.kind, "unit": self.unit, "url": self.url,
                "model": self.model, "state": self.state, "healthy": self.healthy, "detail": self.detail,
                "restarts": self.restarts, "uptime_s": self.uptime_s}


def _ask(target: ssh.SSHTarget) -> list[dict[str, Any]]:
    result = ssh.run(target, ["python3", "-", MANIFEST_PATH], input=HEALTH_SOURCE, timeout=STATUS_TIMEOUT_S)
    if result.returncode != 0:
        raise EnvironmentProblem(f"{target.name}: the health check could not run: {result.stderr.strip()[-300:]}")
    try:
        verdicts = json.loads(result.stdout)
    except ValueError:
        raise EnvironmentProblem(f"{target.name}: the health check printed no JSON: {result.stdout[-300:]}") from None
    assert isinstance(verdicts, list)
    return verdicts


def collect(spec: ServicesSpec, targets: Mapping[str, ssh.SSHTarget],
            only: Sequence[str] = ()) -> list[ServiceStatus]:
    """The status of every declared service (or those in `only`) on each of its nodes."""
    wanted = [s for s in spec.services if not only or s.name in only]
    nodes = sorted({node for service in wanted for node in service.nodes}, key=list(targets).index)
    answers = dict(zip(nodes, parallel(lambda n: _ask(targets[n]), nodes), strict=True))
    statuses: list[ServiceStatus] = []
    for service in wanted:
        for rank, node in enumerate(service.nodes):
            unit = unit_name(service.name, rank)
            seen = next((v for v in answers[node] if v.get("unit") == unit), None)
            if seen is None:
                statuses.append(ServiceStatus(service.name, node, service.kind, unit, None, service.model,
                                              "not deployed", False, "declared, but not deployed on this Spark: "
                                              "run sparkctl deploy"))
                continue
            statuses.append(ServiceStatus(
                service.name, node, service.kind, unit, seen.get("url"), seen.get("model"), str(seen["state"]),
                bool(seen["healthy"]), str(seen["detail"]), int(seen.get("restarts", 0)),
                float(seen.get("uptime_s", 0.0)),
            ))
    return statuses
