#!/usr/bin/env bash
# `make demo`: a virtual two-Spark lab, planned, provisioned with Ansible, its links verified, its services
# deployed and shown, torn down.
set -euo pipefail
cd "$(dirname "$0")/.."
sparkctl=.venv/bin/sparkctl
lab=${SPARKCTL_DEMO_LAB:-demo}

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
teardown() { step "sparkctl lab down --name $lab"; "$sparkctl" lab down --name "$lab"; }
trap teardown EXIT

step "sparkctl lab up --name $lab --nodes 2 --topology direct"
inventory=$("$sparkctl" lab up --name "$lab" --nodes 2 --topology direct | tail -n 1)
"$sparkctl" lab status --name "$lab"

step "sparkctl plan --inventory $inventory"
"$sparkctl" plan --inventory "$inventory"

step "sparkctl provision --inventory $inventory"
"$sparkctl" provision --inventory "$inventory"

step "sparkctl verify-link --inventory $inventory"
"$sparkctl" verify-link --inventory "$inventory"

step "declare the services of examples/services/two-sparks.yml, then sparkctl deploy --inventory $inventory"
cat examples/services/two-sparks.yml >> "$inventory/group_vars/sparks.yml"
"$sparkctl" deploy --inventory "$inventory"

step "sparkctl status --inventory $inventory"
"$sparkctl" status --inventory "$inventory"
