"""A node's fabric brought to its plan, in three steps the play runs in order: applied, confirmed, restored.

- applied: read the node's netplan files and live links; refuse (nothing changed) a planned device the
  node lacks, a foreign netplan file that configures a fabric device, a config netplan rejects, a bond
  without a bonding driver, or a fabric subnet that would cut management. When the drop-in or the live
  state differs from the plan: arm the node's own rollback (see `rollback`), install the drop-in, apply
  it, and wait until the live fabric matches the plan. If that fails the node restores the last
  known-good config at once and says so. When nothing differs, it confirms at once as below, in the
  same call (a re-run's common case), unless a peer does not answer yet.
- confirmed: the controller has reached the node's management address again; now every fabric target
  must answer full-MTU frames. Then the new config becomes the known-good one, the cabling it is
  configured for is recorded (verify-link checks the wires against it) and the timer is stopped.
  If a target does not answer, the known-good config is restored at once.
- restored: what the play runs when something in between failed: restores now if the apply is still
  pending, or reports that the node already restored itself (the window ran out).

One answer to "does the fabric match the plan" (`fabric_state.drift`) decides both whether to apply and
when an apply has settled.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import fabric_state, management, netplan_files, networkd, ping, renderer, rollback
from .files import ensure, planned
from .networkd import Runner
from .rollback import ApplyMethod, Pending, Snapshot

UNCHANGED_PING_S = 1.0
"""How long a node with nothing to apply waits for its peers' answers before it leaves them to `confirmed`."""


class FabricError(Exception):
    """The step failed; the message says what, and whether anything was changed or restored."""


@dataclass(frozen=True)
class Settings:
    settle_timeout: float = 15.0
    confirm_window: float = 60.0
    method: ApplyMethod = "networkctl"
    guard_management: bool = True
    management_port: int = 22
    verify_peers: bool = True
    verify_storage: bool = True
    state_dir: Path = rollback.STATE_DIR
    netplan_dir: Path = netplan_files.NETPLAN_DIR
    sys_net: Path = rollback.SYS_NET
    proc_net: Path = Path("/proc/net")
    python: str = field(default_factory=rollback.unit_python)
    """The interpreter the rollback units name."""
    boot_unit: Path = rollback.BOOT_UNIT


@dataclass
class Inspection:
    ours: dict[str, bytes]
    foreign: dict[str, bytes]
    previous: netplan_files.Configured
    """What sparkctl's live drop-ins configure."""
    links: list[dict[str, Any]]
    reasons: list[str]


def _mode(path: Path) -> str:
    return f"{path.stat().st_mode & 0o777:04o}"


class Fabric:
    def __init__(self, run: Runner, plan: Mapping[str, Any], settings: Settings, *,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> None:
        self.run = run
        self.plan = plan
        self.settings = settings
        self.file = plan["files"]["netplan"]
        self.devices = [i["name"] for i in plan["interfaces"]]
        self.bonds = [b["name"] for b in plan["bonds"]]
        self.store = rollback.Store(settings.state_dir)
        self.clock = clock
        self.sleep = sleep

    @property
    def name(self) -> str:
        return str(self.plan["name"])

    # --- reading ----------------------------------------------------------------------------------------

    def live(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        return fabric_state.read_live(self.run, FabricError)

    def _configured(self, files: Mapping[str, bytes], whose: str) -> netplan_files.Configured:
        try:
            return netplan_files.configured(self.run, files)
        except netplan_files.NetplanRejected as error:
            raise FabricError(f"netplan generate rejects {whose} netplan files on {self.name} "
                              f"({', '.join(files)}): {error}. Nothing was changed.") from None

    def inspect(self) -> Inspection:
        files = netplan_files.read(self.settings.netplan_dir)
        ours = {p: c for p, c in files.items() if netplan_files.is_ours(p)}
        foreign = {p: c for p, c in files.items() if p not in ours}
        known = self.store.known_good()
        if known is not None and {p: s["content"].encode() for p, s in known.files.items()} == ours:
            previous = netplan_files.Configured(frozenset(known.devices), frozenset(known.bonds))
        else:
            previous = self._configured(ours, "sparkctl's own")
        links, routes = self.live()
        drift = fabric_state.drift(self.plan, links, routes)
        path = self.file["path"]
        reasons = []
        if path not in ours:
            reasons.append(f"{path} is new")
        elif ours[path] != self.file["content"].encode():
            reasons.append(f"{path} differs from the plan")
        elif _mode(Path(path)) != self.file["mode"]:
            reasons.append(f"{path} has mode {_mode(Path(path))}")
        stale = sorted(p for p in ours if p != path)
        if stale:
            reasons.append("earlier sparkctl drop-ins to remove: " + ", ".join(stale))
        if drift:
            reasons.append("live state differs: " + "; ".join(str(d) for d in drift))
        pending = self.store.pending()
        if pending is not None:
            reasons.append(f"an earlier apply (at {time.ctime(pending.armed_at)}) was never confirmed")
        return Inspection(ours, foreign, previous, links, reasons)

    # --- checks before anything changes -----------------------------------------------------------------

    def refuse(self, inspection: Inspection, applying: bool) -> None:
        """Raise FabricError (nothing changed) for anything that makes the plan unsafe or impossible here."""
        present = rollback.present_devices(self.settings.sys_net)
        missing = [d for d in self.devices if d not in present]
        if missing:
            raise FabricError(
                f"{self.name} has no {', '.join(missing)}, which the plan configures (cabling "
                f"{self.plan['cabling_source']}: {', '.join(self.plan['cables'])}). Nothing was changed.")
        self._refuse_clashes(inspection.foreign)
        if not applying:
            return
        try:
            netplan_files.validate(self.run, {**inspection.foreign, self.file["path"]: self.file["content"].encode()})
        except netplan_files.NetplanRejected as error:
            raise FabricError(f"netplan generate rejects the fabric drop-in for {self.name} staged with the node's "
                              f"other netplan files: {error}. Nothing was changed.") from None
        if self.bonds and not Path("/sys/module/bonding").exists() \
                and self.run(["modinfo", "--field", "filename", "bonding"])[0] != 0:
            raise FabricError(
                f"{self.name}'s kernel has no bonding driver (/sys/module/bonding is absent and `modinfo bonding` "
                f"finds no module), so {', '.join(self.bonds)} cannot be built. The rendered bond config is valid "
                "(netplan generate accepted it) and nothing was changed: install the kernel's bonding module "
                "(linux-modules-extra) or choose the direct topology.")
        if self.settings.guard_management:
            self._refuse_management_cut(inspection.links)

    def _refuse_clashes(self, foreign: Mapping[str, bytes]) -> None:
        wanted = set(self.devices) | set(self.bonds)
        if not foreign or not self._configured(foreign, "the other").all & wanted:
            return
        clashes = []
        for path, content in foreign.items():
            shared = sorted(self._configured({path: content}, "the other").all & wanted)
            if shared:
                clashes.append(f"{path} also configures {', '.join(shared)}")
        raise FabricError(
            "; ".join(clashes) + "; netplan merges every file, so those interfaces would get both configs (two "
            "sets of addresses). Remove them from that file (sparkctl never edits netplan files it does not own), "
            "e.g. NVIDIA's 40-cx7.yaml from the two-Spark guide. Nothing was changed.")

    def _refuse_management_cut(self, links: Sequence[Mapping[str, Any]]) -> None:
        sessions = management.ssh_sessions(management.read_tcp_tables(self.settings.proc_net),
                                           self.settings.management_port)
        guard = management.protected(links, self.plan["management"]["address"], self.devices + self.bonds, sessions)
        planned = [(f"the address planned on {i['name']}", ipaddress.IPv4Interface(a).network)
                   for i in [*self.plan["interfaces"], *self.plan["bonds"]] for a in i["addresses"]]
        planned += [(f"the route planned via {r['interface']} to", ipaddress.IPv4Network(r["to"]))
                    for r in self.plan["routes"]]
        found = management.conflicts(planned, guard)
        if found:
            raise FabricError(
                f"{self.name}: " + "; ".join(dict.fromkeys(found)) + ". Applying would cut the node off its "
                "management network. Choose a fabric pool (sparkctl_fabric_pool) or addresses apart from it, or "
                "set sparkctl_management_network to the real management network so the plan avoids it. "
                "Nothing was changed.")

    # --- the three steps --------------------------------------------------------------------------------

    def _renderer_steps(self, devices: Sequence[str]) -> list[renderer.Step]:
        def run(argv: Sequence[str]) -> tuple[int, str, str]:
            return self.run(list(argv))
        try:
            return renderer.decide(renderer.observe(run), devices)
        except renderer.NotReady as error:
            raise FabricError(f"{error}. Nothing was changed.") from None

    def _carry_out(self, steps: Sequence[renderer.Step]) -> None:
        try:
            renderer.carry_out(steps, lambda argv: self.run(list(argv)))
        except renderer.StepFailed as error:
            raise FabricError(str(error)) from None

    def applied(self, check_mode: bool) -> dict[str, Any]:
        inspection = self.inspect()
        applying = bool(inspection.reasons)
        self.refuse(inspection, applying)
        steps = self._renderer_steps(sorted(set(self.devices) | set(self.bonds) | inspection.previous.all))
        path = self.file["path"]
        result: dict[str, Any] = {
            "changed": applying or bool(steps), "reasons": inspection.reasons, "armed_at": None,
            "renderer_steps": [s.what for s in steps],
            "diff": {"before": inspection.ours.get(path, b"").decode("utf-8", "replace"),
                     "after": self.file["content"], "before_header": path, "after_header": path},
        }
        if not check_mode:
            self._carry_out(steps)
        if not applying:
            if self._restore_unit_refreshed(check_mode):
                result.update(changed=True, restore_unit="rewritten")
            return self._confirm_unchanged(result, check_mode)
        if check_mode:
            return result
        result["armed_at"] = self._apply(inspection)
        return result

    def _restore_unit_refreshed(self, check_mode: bool) -> bool:
        """Keep the boot-time restore unit of an earlier apply current (written by another sparkctl, or naming
        a Python the node no longer has); a node that never applied has none, and gets it when it first does."""
        settings = self.settings
        if not settings.boot_unit.exists():
            return False
        try:
            return rollback.install_boot_unit(self.run, settings.state_dir, settings.netplan_dir,
                                              settings.python, boot_unit=settings.boot_unit, check_mode=check_mode)
        except (rollback.RollbackError, OSError) as error:
            raise FabricError(f"{self.name}: could not rewrite its boot-time restore unit: {error}") from None

    def _confirm_unchanged(self, result: dict[str, Any], check_mode: bool) -> dict[str, Any]:
        """Nothing to apply on this node: prove its peers now and keep its config, in the same call (`confirmed`
        in the result), rather than in a second one. Safe although other nodes may be applying at this very
        moment: a node whose config changes proves its own paths, this node's among them, when it confirms
        after every node applied. A ping lost to a peer that is applying leaves this node to the `confirmed`
        step too, which waits for the links as long as after an apply."""
        targets = self.targets()
        if targets and ping.unanswered(targets, ping.ping_all(targets, UNCHANGED_PING_S)):
            return result
        kept = self._keep(targets, None, check_mode, renderer_ready=True)
        result.update(confirmed=True, answered=kept["answered"], changed=result["changed"] or kept["changed"])
        if "diff" in kept:
            result["diff"] = [result["diff"], kept["diff"]]
        return result

    def _apply(self, inspection: Inspection) -> float:
        settings = self.settings
        previous = inspection.previous
        known = self.store.known_good() or Snapshot(
            {p: {"content": c.decode("utf-8", "replace"), "mode": _mode(Path(p))} for p, c in inspection.ours.items()},
            sorted(previous.devices), sorted(previous.bonds))
        pending = Pending(time.time(), settings.confirm_window, settings.method, settings.settle_timeout, known,
                          sorted(set(self.devices) | previous.devices), sorted(set(self.bonds) | previous.bonds))
        try:
            rollback.arm(self.run, self.store, pending, settings.netplan_dir, settings.python,
                         boot_unit=settings.boot_unit)
        except rollback.RollbackError as error:
            raise FabricError(f"{self.name} could not arm its own rollback, so nothing was applied: {error}") from None
        try:
            rollback.install_drop_ins(settings.netplan_dir,
                                      {self.file["path"]: {"content": self.file["content"], "mode": self.file["mode"]}})
            present = rollback.present_devices(settings.sys_net)
            rollback.apply_links(
                self.run,
                [d for d in self.devices + self.bonds if d in present],
                [d for d in previous.devices if d not in self.devices and d in present],
                [b for b in previous.bonds if b not in self.bonds and b in present],
                settings.method, settings.settle_timeout)
            self._wait_settled()
        except (FabricError, rollback.RollbackError, networkd.NetworkdError, OSError) as error:
            raise FabricError(self._roll_back_now(str(error))) from None
        return pending.armed_at

    def _wait_settled(self) -> None:
        deadline = self.clock() + self.settings.settle_timeout
        while True:
            found = fabric_state.drift(self.plan, *self.live())
            if not found:
                return
            if self.clock() > deadline:
                raise FabricError("the fabric interfaces do not match the plan: " + "; ".join(str(d) for d in found))
            self.sleep(0.2)

    def _roll_back_now(self, what_failed: str) -> str:
        record = rollback.roll_back(self.store, self.settings.netplan_dir, "controller", self.run, self.settings.sys_net)
        rollback.disarm(self.run)
        done = rollback.describe(record) if record else "the node had already restored its last known-good config"
        return f"the new fabric config failed and was rolled back. What failed: {what_failed.rstrip('.')}. {done}"

    def targets(self) -> list[dict[str, Any]]:
        kinds = {"peer", "switch"} | ({"storage"} if self.settings.verify_storage else set())
        return [t for t in self.plan["ping_targets"] if t["kind"] in kinds] if self.settings.verify_peers else []

    def confirmed(self, armed_at: float | None, check_mode: bool) -> dict[str, Any]:
        targets = self.targets()
        verdicts = ping.ping_all(targets, self.settings.settle_timeout) if targets else []
        failed = ping.unanswered(targets, verdicts)
        if failed:
            if check_mode:
                raise FabricError("; ".join(failed))
            raise FabricError(self._roll_back_now("; ".join(failed)))
        return self._keep(targets, armed_at, check_mode)

    def _keep(self, targets: Sequence[Mapping[str, Any]], armed_at: float | None, check_mode: bool, *,
              renderer_ready: bool = False) -> dict[str, Any]:
        """The fabric answered: disarm the rollback, keep the config as known-good and record its cabling.
        `renderer_ready`: the renderer was just made ready for these same devices (nothing was applied)."""
        snapshot = Snapshot({self.file["path"]: {"content": self.file["content"], "mode": self.file["mode"]}},
                            list(self.devices), list(self.bonds),
                            {key: self.plan[key] for key in ("interfaces", "bonds", "routes")})
        promote = snapshot != self.store.known_good()
        steps = [] if renderer_ready else self._renderer_steps(self.devices + self.bonds)
        # The cabling this fabric is configured for, which verify-link checks the wires against: recorded only
        # once the fabric answers, so the record never names cabling the node is not configured for.
        record = self.plan["files"].get("cabling")

        def kept(record_diff: dict[str, str] | None) -> dict[str, Any]:
            result = {"changed": promote or bool(steps) or record_diff is not None, "answered": len(targets),
                      "renderer_steps": [s.what for s in steps]}
            return {**result, "diff": record_diff} if record_diff is not None else result

        if check_mode:
            return kept(ensure(*planned(record), True) if record else None)
        if self.store.claim("confirming") is None and armed_at is not None:
            raise FabricError(f"the controller did not confirm the apply within {self.settings.confirm_window:g} s "
                              "(sparkctl_fabric_confirm_seconds), so the node restored its previous config")
        rollback.disarm(self.run)
        if promote:
            self.store.save_known_good(snapshot)
        record_diff = ensure(*planned(record), False) if record else None
        self.store.release("confirming")
        self._carry_out(steps)
        return kept(record_diff)

    def restored(self, armed_at: float | None, check_mode: bool) -> dict[str, Any]:
        if check_mode:
            return {"changed": self.store.pending() is not None, "by": None, "message": "check mode: nothing restored"}
        record = rollback.roll_back(self.store, self.settings.netplan_dir, "controller", self.run, self.settings.sys_net)
        if record is not None:
            rollback.disarm(self.run)
            said = rollback.describe(record)
            return {"changed": True, "by": "controller", "message": said[:1].upper() + said[1:]}
        record = self.store.last_rollback()
        # armed_at is unknown when the session broke off during the apply: then the node's latest rollback
        # counts if it is recent enough to belong to this run.
        ours = record is not None and (record.get("armed_at") == armed_at if armed_at is not None
                                       else time.time() - float(record["at"]) < 2 * self.settings.confirm_window + 300)
        if record is not None and ours:
            if record.get("by") == "controller":  # the failed step restored it and said so
                return {"changed": False, "by": "controller", "message": ""}
            late = float(record["at"]) - float(record["armed_at"])
            return {"changed": False, "by": "node", "seconds": round(late, 1),
                    "message": f"The node {rollback.describe(record)} by itself, {late:.0f} s after the apply "
                               f"(nothing confirmed it within {record['window']:g} s)"}
        return {"changed": False, "by": None, "message": "nothing was pending, so nothing was restored"}
