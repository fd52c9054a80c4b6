"""Every step sparkctl's roles run on a node: its parameters and what it does with them.

Each `sparkctl_*` task of a role names one step here. The controller's action plugin of that name
validates the task's arguments against the step's spec (Ansible's own validator), then sends this
package and the request to the node's Python on stdin, over the task's connection (`serve` runs it
there) and returns what the step returned as the task's result. One round trip per task, no module
payload to build and no module framework to start on the node: a re-run of provisioning makes a dozen
of these calls per node. `plugins/modules` documents each step for ansible-doc.

A step takes the validated parameters, whether the run is in check mode and a command runner, and
returns the task's result; it raises StepFailed with the message (and any data) the task fails with.
Each step imports the node modules it needs itself, so a call compiles only those.
"""

from __future__ import annotations

import json
import os
import subprocess
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .networkd import Runner

Params = dict[str, Any]


class StepFailed(Exception):
    """The step failed: `msg` is the task's message, `data` goes into its result beside it."""

    def __init__(self, msg: str, **data: Any) -> None:
        super().__init__(msg)
        self.msg = msg
        self.data = data


@dataclass(frozen=True)
class Step:
    run: Callable[[Params, bool, Runner], dict[str, Any]]
    argument_spec: dict[str, dict[str, Any]]
    rules: dict[str, Any] = field(default_factory=dict)
    """required_if, required_together, required_by: as Ansible's ArgumentSpecValidator takes them."""


def _discover_probe(params: Params, check_mode: bool, run: Runner) -> dict[str, Any]:
    from . import peer_probe
    cages = {str(iface): str(cage) for iface, cage in params["cages"].items()} or None
    return {"reports": peer_probe.probe_all(params["node"], params["interfaces"], params["listen_seconds"],
                                            tuple(params["arp_targets"]), cages)}


def _environment(params: Params, check_mode: bool, run: Runner) -> dict[str, Any]:
    from . import environment
    try:
        return environment.converge(
            params["files"], {str(k): str(v) for k, v in params["wanted"].items()}, node=params["node"],
            systemd_reload=params["systemd_reload"], verify_login_shell=params["verify_login_shell"],
            check_mode=check_mode, run=run)
    except environment.FabricEnvironmentError as error:
        raise StepFailed(str(error)) from None


def _fabric(params: Params, check_mode: bool, run: Runner) -> dict[str, Any]:
    from .fabric import Fabric, FabricError, Settings
    settings = Settings(
        settle_timeout=params["settle_timeout"], confirm_window=params["confirm_window"],
        method=params["apply_method"], guard_management=params["guard_management"],
        management_port=params["management_port"], verify_peers=params["verify_peers"],
        verify_storage=params["verify_storage"], state_dir=Path(params["state_dir"]),
    )
    fabric = Fabric(run, params["plan"], settings)
    try:
        if params["state"] == "applied":
            return fabric.applied(check_mode)
        if params["state"] == "confirmed":
            return fabric.confirmed(params["armed_at"], check_mode)
        return fabric.restored(params["armed_at"], check_mode)
    except FabricError as error:
        raise StepFailed(str(error)) from None


def _node_read(params: Params, check_mode: bool, run: Runner) -> dict[str, Any]:
    uid = os.geteuid()
    if params["require_root"] and uid != 0:
        raise StepFailed(f"sparkctl writes netplan, sysctl and root's SSH files, and the connection runs as uid {uid}. "
                         "Set ansible_user: root, or ansible_become: true for a sudo user, in the inventory.", uid=uid)
    rc, out, err = run(["ip", "-json", "link", "show"])
    if rc != 0:
        raise StepFailed(f"ip -json link show failed: {err.strip() or out.strip()}")
    wanted = set(params["netdevs"])
    links = [link for link in json.loads(out) if link.get("ifname") in wanted]
    result: dict[str, Any] = {"uid": uid, "links": links}
    if params["links_fact"]:
        result["ansible_facts"] = {params["links_fact"]: links}
    return result


def _packages(params: Params, check_mode: bool, run: Runner) -> dict[str, Any]:
    from . import packages
    if params["mode"] == "verify":
        lacking = packages.missing([*params["base"], *params["optional"]],
                                   {str(k): str(v) for k, v in params["commands"].items()})
        if lacking:
            raise StepFailed(f"sparkctl_packages_mode is verify (packages are not installed here) and "
                             f"{params['node']} lacks {', '.join(lacking)}. Install them, or set "
                             "sparkctl_packages_mode: install.", missing=lacking)
        return {"missing": []}
    try:
        install, not_offered = packages.to_install(params["base"], params["optional"], run, node=params["node"])
    except packages.PackagesError as error:
        raise StepFailed(str(error)) from None
    return {"install": install, "not_offered": not_offered}


def _services_images(params: Params, check_mode: bool, run: Runner) -> dict[str, Any]:
    from . import image_pulls
    cli, images = params["container_cli"], params["images"]
    if not params["wait"]:
        absent = [path for path in params["requires"] if not os.path.exists(path)]
        if absent:
            raise StepFailed(f"there is no {', '.join(absent)} here: provision the fabric first (sparkctl provision, "
                             "or playbooks/site.yml). Nothing was changed.")
        try:
            pulls = image_pulls.start_missing(run, cli, images, check_mode)
        except RuntimeError as exc:
            raise StepFailed(str(exc)) from None
        return {"changed": any(p.state != "present" for p in pulls), "done": False,
                "images": [asdict(p) for p in pulls], "progress": image_pulls.progress(pulls)}
    pulls = [image_pulls.look(run, cli, image) for image in images]
    result = {"images": [asdict(p) for p in pulls], "progress": image_pulls.progress(pulls),
              "done": all(p.state != "pulling" for p in pulls)}
    failed = [p for p in pulls if p.state in ("failed", "missing")]
    if result["done"] and failed:
        raise StepFailed("image pulls failed: " + "; ".join(p.line() for p in failed), **result)
    return result


def _services_models(params: Params, check_mode: bool, run: Runner) -> dict[str, Any]:
    from . import model_cache
    tasks = params["models"]
    try:
        if params["action"] == "fetch" and params["wait"]:
            done, progress, states = model_cache.fetch_progress(tasks, run)
            failed = [f"{s['model']}: {s['detail']}" for s in states if s["state"] == "failed"]
            if done and failed:
                raise StepFailed("model downloads failed: " + "; ".join(failed), done=done, progress=progress,
                                 models=states)
            return {"done": done, "progress": progress, "models": states}
        if params["action"] == "fetch":
            records = model_cache.start_fetches(tasks, run, check_mode)
        else:
            records = model_cache.copy_missing(tasks, run, check_mode)
    except model_cache.ModelError as exc:
        raise StepFailed(str(exc)) from None
    return {"changed": any(r["changed"] for r in records), "models": records}


def _services_ready(params: Params, check_mode: bool, run: Runner) -> dict[str, Any]:
    from . import health
    chosen = set(params["services"])
    instances = [i for i in health.manifest_instances(params["manifest"]) if not chosen or i["service"] in chosen]
    if check_mode:
        return {"services": [health.verdict(i, run) for i in instances]}
    verdicts = health.wait_ready(instances, run)
    failed = [v for v in verdicts if not v["healthy"]]
    if failed:
        lines = [f"{v['service']} ({v['unit']}): {v['detail']}; last journal lines: "
                 + " | ".join(v.get("journal", [])[-8:]) for v in failed]
        raise StepFailed("services that did not come up: " + " ;; ".join(lines), services=verdicts)
    return {"services": verdicts}


def _services_units(params: Params, check_mode: bool, run: Runner) -> dict[str, Any]:
    from . import health, service_units
    try:
        if params["step"] == "write":
            written = service_units.write(params["units"], params["env_files"], params["layout"], params["prune"],
                                          run, check_mode)
            return {"changed": bool(written.changed or written.removed), "changed_files": written.changed,
                    "removed": written.removed, "diff": written.diff}
        done = service_units.start(params["units"], run, check_mode, params["written"],
                                   health.manifest_instances(params["manifest"]))
    except (RuntimeError, OSError) as exc:
        raise StepFailed(str(exc)) from None
    return {"changed": bool(done["restarted"] or done["started"] or done["enabled"]), **done}


def _ssh_mesh(params: Params, check_mode: bool, run: Runner) -> dict[str, Any]:
    from . import mesh_files
    try:
        if params["state"] == "read":
            return mesh_files.read(params["user"], params["key_name"], key_pair=params["key_pair"])
        return mesh_files.install(
            mesh_files.Account.of(params["user"]), params["key_name"], params["known_hosts_name"],
            private_key=params["private_key"], public_key=params["public_key"], line=params["line"],
            stale=params["stale"], known_hosts=params["known_hosts"], config_block=params["config_block"],
            leftovers=params["leftovers"], check_mode=check_mode)
    except (mesh_files.MeshFilesError, OSError) as error:
        raise StepFailed(str(error)) from None


def _ssh_mesh_check(params: Params, check_mode: bool, run: Runner) -> dict[str, Any]:
    from . import ssh_mesh
    peers = ssh_mesh.check_peers(params["peers"], params["user"], params["identity"], params["known_hosts"],
                                 params["timeout"])
    unreachable = [f"{p['name']} ({p['error'] or 'exit status ' + str(p['rc'])})" for p in peers if not p["ok"]]
    if unreachable and params["required"]:
        how = "with that key alone" if params["identity"] else "batch mode, host key checked"
        raise StepFailed(f"cannot SSH (as {params['user']}, {how}) to {', '.join(unreachable)}", peers=peers)
    return {"peers": peers}


def _sysctl(params: Params, check_mode: bool, run: Runner) -> dict[str, Any]:
    from . import sysctl
    from .files import ensure, planned
    written = ensure(*planned(params["file"]), check_mode) if params["file"] else None
    wanted = {str(k): str(v) for k, v in params["settings"].items()}
    settable, stuck, failed = sysctl.apply(wanted, run, check_mode)
    unapplied = [d.why_stuck() for d in stuck]
    result = {"set": [d.key for d in settable], "unapplied": unapplied, "diff": written or {}}
    if stuck and params["unavailable"] == "fail":
        raise StepFailed("cannot set " + "; ".join(unapplied) + "; set them on the machine that owns the kernel, "
                         "or set sparkctl_tuning_unavailable: report to go on without them.", **result)
    if failed:
        raise StepFailed(failed, **result)
    return {"changed": bool(settable) or written is not None, **result}


def _watch(params: Params, check_mode: bool, run: Runner) -> dict[str, Any]:
    from . import watch
    from .rollback import RollbackError, unit_python
    textfile = Path(params["textfile"]) if params["textfile"] else None
    files = watch.unit_files(unit_python(), params["interval_minutes"], params["heal"], textfile)
    try:
        steps = watch.install(run, files, params["enabled"], check_mode)
    except RollbackError as error:
        raise StepFailed(str(error)) from None
    return {"changed": bool(steps), "steps": steps}


STEPS: dict[str, Step] = {
    "sparkctl_discover_probe": Step(_discover_probe, {
        "node": {"type": "str", "required": True},
        "interfaces": {"type": "list", "elements": "str", "required": True},
        "listen_seconds": {"type": "float", "default": 3.0},
        "arp_targets": {"type": "list", "elements": "str", "default": []},
        "cages": {"type": "dict", "default": {}},
    }),
    "sparkctl_environment": Step(_environment, {
        "files": {"type": "dict", "required": True},
        "wanted": {"type": "dict", "required": True},
        "node": {"type": "str", "required": True},
        "systemd_reload": {"type": "bool", "default": True},
        "verify_login_shell": {"type": "bool", "default": True},
    }),
    "sparkctl_fabric": Step(_fabric, {
        "state": {"type": "str", "choices": ["applied", "confirmed", "restored"], "required": True},
        "plan": {"type": "dict", "required": True},
        "armed_at": {"type": "float"},
        "settle_timeout": {"type": "float", "default": 15.0},
        "confirm_window": {"type": "float", "default": 60.0},
        "apply_method": {"type": "str", "choices": ["networkctl", "netplan_apply"], "default": "networkctl"},
        "guard_management": {"type": "bool", "default": True},
        "management_port": {"type": "int", "default": 22},
        "verify_peers": {"type": "bool", "default": True},
        "verify_storage": {"type": "bool", "default": True},
        "state_dir": {"type": "path", "default": "/var/lib/sparkctl/fabric"},
    }),
    "sparkctl_node_read": Step(_node_read, {
        "netdevs": {"type": "list", "elements": "str", "required": True},
        "require_root": {"type": "bool", "default": False},
        "links_fact": {"type": "str"},
    }),
    "sparkctl_packages": Step(_packages, {
        "mode": {"type": "str", "choices": ["install", "verify"], "required": True},
        "base": {"type": "list", "elements": "str", "required": True},
        "optional": {"type": "list", "elements": "str", "default": []},
        "commands": {"type": "dict", "default": {}},
        "node": {"type": "str", "required": True},
    }),
    "sparkctl_services_images": Step(_services_images, {
        "images": {"type": "list", "elements": "str", "required": True},
        "container_cli": {"type": "path", "default": "/usr/bin/docker"},
        "wait": {"type": "bool", "default": False},
        "requires": {"type": "list", "elements": "path", "default": []},
    }),
    "sparkctl_services_models": Step(_services_models, {
        "models": {"type": "list", "elements": "dict", "required": True},
        "action": {"type": "str", "choices": ["fetch", "copy"], "required": True},
        "wait": {"type": "bool", "default": False},
    }),
    "sparkctl_services_ready": Step(_services_ready, {
        "manifest": {"type": "path", "default": "/etc/sparkctl/services.json"},
        "services": {"type": "list", "elements": "str", "default": []},
    }),
    "sparkctl_services_units": Step(_services_units, {
        "layout": {"type": "dict", "required": True},
        "units": {"type": "list", "elements": "dict", "required": True},
        "env_files": {"type": "dict", "default": {}, "no_log": True},
        "written": {"type": "list", "elements": "str", "default": []},
        "prune": {"type": "bool", "default": False},
        "step": {"type": "str", "choices": ["write", "start"], "required": True},
        "manifest": {"type": "path", "default": "/etc/sparkctl/services.json"},
    }),
    "sparkctl_ssh_mesh": Step(_ssh_mesh, {
        "state": {"type": "str", "choices": ["read", "installed"], "required": True},
        "user": {"type": "str", "required": True},
        "key_name": {"type": "str", "required": True},
        "known_hosts_name": {"type": "str"},
        "private_key": {"type": "str", "no_log": True},
        "public_key": {"type": "str"},
        "line": {"type": "str"},
        "stale": {"type": "str", "no_log": False},
        "known_hosts": {"type": "str"},
        "config_block": {"type": "str"},
        "key_pair": {"type": "bool", "default": False},
        "leftovers": {"type": "list", "elements": "path", "default": []},
    }, {"required_if": [("state", "installed", ("known_hosts_name", "known_hosts", "config_block"))],
        "required_together": [("private_key", "public_key"), ("line", "stale")]}),
    "sparkctl_ssh_mesh_check": Step(_ssh_mesh_check, {
        "peers": {"type": "list", "elements": "dict", "required": True},
        "user": {"type": "str", "required": True},
        "identity": {"type": "path"},
        "known_hosts": {"type": "path"},
        "timeout": {"type": "int", "default": 5},
        "required": {"type": "bool", "default": False},
    }, {"required_by": {"identity": ["known_hosts"]}}),
    "sparkctl_sysctl": Step(_sysctl, {
        "file": {"type": "dict"},
        "settings": {"type": "dict", "required": True},
        "unavailable": {"type": "str", "choices": ["fail", "report"], "default": "fail"},
    }),
    "sparkctl_watch": Step(_watch, {
        "enabled": {"type": "bool", "default": True},
        "interval_minutes": {"type": "int", "default": 5},
        "heal": {"type": "bool", "default": False},
        "textfile": {"type": "path"},
    }),
}


def subprocess_runner(argv: Sequence[str]) -> tuple[int, str, str]:
    """Run a command on the node, in the C locale so its messages are the ones the steps parse."""
    done = subprocess.run(list(argv), capture_output=True, check=False,
                          env={**os.environ, "LC_ALL": "C", "LANG": "C"})
    return done.returncode, done.stdout.decode("utf-8", "replace"), done.stderr.decode("utf-8", "replace")


def serve(request: Mapping[str, Any], runner: Runner = subprocess_runner) -> dict[str, Any]:
    """Run the requested step with its (already validated) parameters: the task's result, `failed` set when
    the step failed, with a traceback when it failed unexpectedly."""
    step = STEPS[request["step"]]
    try:
        result = step.run(dict(request["params"]), bool(request["check_mode"]), runner)
    except StepFailed as failure:
        return {**failure.data, "failed": True, "msg": failure.msg}
    except Exception as error:  # noqa: BLE001 - reported to the controller, which shows it as the task's failure
        return {"failed": True, "msg": f"{type(error).__name__}: {error}", "exception": traceback.format_exc()}
    return {"changed": False, **result}
