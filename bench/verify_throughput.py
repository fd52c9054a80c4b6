"""verify-link's measured bandwidth on a lab cable against the best raw iperf3 run on the same cable.

Run as root: `.venv/bin/python bench/verify_throughput.py`. Builds a 2-node lab (private state root),
provisions it, then in one run measures the cable (both PCIe halves at once) with plain iperf3 at
-P 1, 4 and 8 and with `sparkctl verify-link`. Target: verify-link / best raw >= 0.9, i.e. the
verdict is based on what the link can really carry, not on a handicapped measurement.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from sparkctl import ssh
from sparkctl.cluster import load_cluster
from sparkctl.model import Link
from sparkctl.verify import probes

SPARKCTL = str(Path(sys.executable).with_name("sparkctl"))
DURATION_S = 4.0
LAB = "benchvl"


def sparkctl(*args: str, env: dict[str, str]) -> str:
    done = subprocess.run([SPARKCTL, *args], env=env, capture_output=True, text=True, check=False)
    if done.returncode not in (0, 1):
        raise SystemExit(f"sparkctl {' '.join(args)} failed: {done.stderr[-2000:]}")
    return done.stdout


def raw_cable(inventory: Path, streams: int) -> float:
    """Both halves of the cable at once with plain iperf3 -P streams; the sum in Gb/s."""
    cluster = load_cluster(inventory)
    targets = {h.name: ssh.SSHTarget.from_hostvars(h.name, h.values) for h in cluster.inventory}
    links = [link for link in cluster.plan.links if link.kind == "peer"]
    servers = []
    try:
        for number, link in enumerate(links):
            assert link.b.address is not None
            server = probes.IperfServer(targets[link.b.node], str(link.b.address.ip), 5501 + number)
            server.start()
            servers.append(server)

        def client(item: tuple[int, Link]) -> float:
            number, link = item
            assert link.a.address is not None and link.b.address is not None
            result = probes.iperf_client(targets[link.a.node], str(link.a.address.ip), str(link.b.address.ip),
                                         5501 + number, streams=streams, duration_s=DURATION_S)
            return result.received_gbps or 0.0

        with ThreadPoolExecutor(len(links)) as pool:
            return sum(pool.map(client, enumerate(links)))
    finally:
        for server in servers:
            server.stop()


def verify_cable(inventory: Path, env: dict[str, str]) -> float:
    report = json.loads(sparkctl("verify-link", "-i", str(inventory), "--json", "--duration", f"{DURATION_S:g}",
                                 env=env))
    for link in report["links"]:
        if "np" in link["name"]:  # a half (named by netdevs), not the cable
            continue
        for check in link["checks"]:
            if check["check"] == "bandwidth":
                return float(check["value"].split("=")[-1].split()[0])
    raise SystemExit(f"verify-link reported no cable bandwidth: {report['problems']}")


def main() -> None:
    with tempfile.TemporaryDirectory() as root:
        env = {**os.environ, "SPARKCTL_LAB_ROOT": root}
        try:
            inventory = Path(sparkctl("lab", "up", "--name", LAB, "--nodes", "2", env=env).strip().splitlines()[-1])
            sparkctl("provision", "-i", str(inventory), env=env)
            os.environ["SPARKCTL_LAB_ROOT"] = root
            raw = {streams: raw_cable(inventory, streams) for streams in (1, 4, 8)}
            measured = verify_cable(inventory, env)
        finally:
            sparkctl("lab", "down", "--name", LAB, env=env)
    best = max(raw.values())
    for streams, gbps in raw.items():
        print(f"raw iperf3 -P {streams}, both halves   {gbps:6.1f} Gb/s")
    print(f"verify-link, both halves          {measured:6.1f} Gb/s")
    ratio = measured / best
    print(f"verify-link / best raw            {ratio:6.2f}  (target >= 0.9)  {'OK' if ratio >= 0.9 else 'LOW'}")


if __name__ == "__main__":
    main()
