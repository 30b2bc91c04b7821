#!/usr/bin/env bash
# The demo, on a fresh Debian 12 machine as root: install everything, simulate the demo plant
# (inventories/demo-plant.yml), run the downtime-scan playbook on it, show the recap, tear down.
set -uo pipefail
cd "$(dirname "$0")/.."
# PLANTSWEEP_SKIP_SETUP=1: already installed (the test of this script sets it).
[ "${PLANTSWEEP_SKIP_SETUP:-}" = 1 ] || scripts/setup.sh || exit 4
STATE=/var/lib/plantsweep-demo
.venv/bin/python -m tests.harness up --state "$STATE" --id demo --network 10.204.0.0/24 \
    --hosts 4 --names gw-line1,hmi-line1,ews-01,hist-01 \
    --python gw-line1=3.6 --python ews-01=3.8 --inventory "$STATE/harness-inventory.yml" \
    >/dev/null || exit 4
trap '.venv/bin/python -m tests.harness down --state "$STATE" >/dev/null' EXIT
.venv/bin/plantsweep run playbooks/downtime-scan.yml -i inventories/demo-plant.yml "$@"
