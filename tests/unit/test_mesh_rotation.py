"""Rotating the cluster key: which lines go, when the rotation may go on, and what the user is told."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from sparkctl.errors import InputError
from sparkctl.mesh_key import PublicKey, every_line, mesh_authorization, retired_lines, rotation_verdict

OLD = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIO5b+vN1Zm8y/k2u0P3m9yq sparkctl cluster key"
NEW = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINewNewNewNewNewNewNewNewNew sparkctl cluster key"
LEFT = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILeftFromAnEarlierRotationThatStopped sparkctl cluster key"
ADMIN = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAdminAdminAdminAdminAdmin admin@laptop"
SOURCES = ["10.0.0.1", "10.0.0.2"]


def blob(key: str) -> str:
    return key.split()[1]


def test_the_fingerprint_is_what_ssh_keygen_prints(tmp_path: Path) -> None:
    key = tmp_path / "k"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "c", "-f", str(key)], check=True)
    printed = subprocess.run(["ssh-keygen", "-l", "-f", f"{key}.pub"], capture_output=True, text=True,
                             check=True).stdout.split()[1]
    assert PublicKey.parse(key.with_suffix(".pub").read_text()).fingerprint == printed


def test_every_line_of_a_key_is_matched_and_no_other_key() -> None:
    every = re.compile(every_line(NEW))
    line = mesh_authorization(NEW, SOURCES)["line"]
    for text in (line, NEW, f'from="10.9.9.9" {NEW}', f"ssh-ed25519 {blob(NEW)} other comment"):
        assert every.search(text), text
    for text in (OLD, ADMIN, f"ssh-ed25519 {blob(NEW)}x other", mesh_authorization(OLD, SOURCES)["line"]):
        assert not every.search(text), text


def test_a_finished_rotation_removes_the_old_key_and_leftovers_of_stopped_ones_only() -> None:
    line = mesh_authorization(NEW, SOURCES)["line"]
    retired = re.compile(retired_lines(line, [OLD]))
    assert not retired.search(line)
    gone = [mesh_authorization(OLD, SOURCES)["line"], OLD, f"ssh-ed25519 {blob(OLD)} copied by hand",
            mesh_authorization(LEFT, SOURCES)["line"], f'from="10.9.9.9" {NEW}']
    for text in gone:
        assert retired.search(text), text
    kept = [ADMIN, "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAsW7XOuKUx sparkctl-lab-x", "# sparkctl cluster key"]
    for text in kept:
        assert not retired.search(text), text


def test_a_retired_key_that_is_not_a_key_line_is_refused() -> None:
    with pytest.raises(InputError, match="retired cluster public key: is not one OpenSSH public key line"):
        retired_lines(mesh_authorization(NEW, SOURCES)["line"], ["not a key"])


EVERYONE = ["spark1", "spark2", "spark3"]


def ok_checks(*hosts: str) -> dict[str, list[dict[str, object]]]:
    return {h: [{"name": p, "ok": True, "rc": 0, "error": ""} for p in EVERYONE if p != h] for h in hosts}


@pytest.mark.parametrize("stage", ["start", "staged", "in use"])
def test_the_rotation_goes_on_when_every_spark_got_through(stage: str) -> None:
    verdict = rotation_verdict(stage, EVERYONE, EVERYONE, ok_checks(*EVERYONE), "SHA256:old")
    assert verdict.ok and verdict.failed == [] and verdict.message == ""


def test_a_spark_that_fell_out_is_named_and_the_old_key_stays() -> None:
    verdict = rotation_verdict("staged", EVERYONE, ["spark1", "spark3"], ok_checks("spark1", "spark3"),
                               "SHA256:old")
    assert not verdict.ok and verdict.failed == ["spark2"]
    assert "spark2 failed or became unreachable while the new key was being authorized and proven" in verdict.message
    assert "the old cluster key SHA256:old stays authorized and in use on every Spark" in verdict.message
    assert "The new key was not put in use, and was withdrawn" in verdict.message


def test_a_pair_that_cannot_connect_names_both_ends_target_first() -> None:
    checks = ok_checks(*EVERYONE)
    checks["spark3"][0] = {"name": "spark1", "ok": False, "rc": 255,
                           "error": "root@10.0.0.1: Permission denied (publickey)."}
    verdict = rotation_verdict("staged", EVERYONE, EVERYONE, checks)
    assert verdict.failed == ["spark1", "spark3"]
    assert ("spark3 cannot SSH to spark1 with the new cluster key (root@10.0.0.1: Permission denied (publickey))"
            in verdict.message)
    assert "the old cluster key stays authorized and in use on every Spark" in verdict.message


def test_a_spark_without_its_report_is_not_taken_for_a_success() -> None:
    verdict = rotation_verdict("in use", EVERYONE, EVERYONE, ok_checks("spark1", "spark2"))
    assert not verdict.ok and verdict.failed == ["spark3"] and "spark3 did not report" in verdict.message


def test_after_the_new_key_is_in_use_both_keys_stay_authorized() -> None:
    checks = ok_checks(*EVERYONE)
    checks["spark1"][1] = {"name": "spark3", "ok": False, "rc": 255, "error": ""}
    verdict = rotation_verdict("in use", EVERYONE, EVERYONE, checks)
    assert "(exit status 255)" in verdict.message
    assert "The old key was put back in use wherever the Spark answered, and both keys stay authorized" \
        in verdict.message


def test_a_failure_before_the_start_rotates_nothing() -> None:
    verdict = rotation_verdict("start", EVERYONE, ["spark1"], {})
    assert verdict.failed == ["spark2", "spark3"] and "Nothing was rotated" in verdict.message
    with pytest.raises(ValueError, match="unknown rotation stage"):
        rotation_verdict("later", EVERYONE, EVERYONE, {})


def test_the_verdict_lookup_runs_in_ansible(tmp_path: Path) -> None:
    repo = Path(__file__).resolve().parents[2]
    bin_dir = Path(sys.executable).parent
    playbook = tmp_path / "verdict.yml"
    playbook.write_text(
        "- hosts: localhost\n  gather_facts: false\n  connection: local\n  tasks:\n"
        "    - ansible.builtin.copy:\n"
        "        content: \"{{ lookup('sparkctl_mesh_rotation', stage='staged', everyone=['a', 'b'], active=['a'],"
        " checks={'a': [{'name': 'b', 'ok': false, 'rc': 255, 'error': 'refused'}]}) | to_json }}\"\n"
        f"        dest: \"{tmp_path}/out.json\"\n        mode: '0600'\n"
    )
    env = {"ANSIBLE_CONFIG": str(repo / "ansible.cfg"), "PATH": f"{bin_dir}:/usr/bin:/bin"}
    result = subprocess.run([str(bin_dir / "ansible-playbook"), "-i", "localhost,", str(playbook)],
                            capture_output=True, text=True, timeout=300, env=env, cwd=repo, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    expected = rotation_verdict("staged", ["a", "b"], ["a"],
                                {"a": [{"name": "b", "ok": False, "rc": 255, "error": "refused"}]})
    assert json.loads((tmp_path / "out.json").read_text()) == expected.to_dict()
