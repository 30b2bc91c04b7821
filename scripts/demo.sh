#!/usr/bin/env bash
# The demo, on a fresh Debian 12 machine as root: install everything, simulate the demo plant
# (inventories/demo-plant.yml), sign the demo pattern bundle with a demo key, run the
# downtime-scan playbook on the plant with that bundle, show the recap, tear down.
set -uo pipefail
cd "$(dirname "$0")/.."
# PLANTSWEEP_SKIP_SETUP=1: already installed (the test of this script sets it).
[ "${PLANTSWEEP_SKIP_SETUP:-}" = 1 ] || scripts/setup.sh || exit 4
STATE=/var/lib/plantsweep-demo
# The yara-python wheel cache setup.sh filled (looked up before PLANTSWEEP_HOME changes below).
WHEELS=$(.venv/bin/python -c 'from orchestrator.payload import default_wheel_dir as d; print(d())')
.venv/bin/python -m tests.harness up --state "$STATE" --id demo --network 10.204.0.0/24 \
    --hosts 4 --names gw-line1,hmi-line1,ews-01,hist-01 \
    --python gw-line1=3.6 --python ews-01=3.8 --inventory "$STATE/harness-inventory.yml" \
    >/dev/null || exit 4
trap '.venv/bin/python -m tests.harness down --state "$STATE" >/dev/null' EXIT

# The demo's own signing key, trusted keys and bundle store: never the user's.
export PLANTSWEEP_HOME="$STATE/home"
rm -rf "$PLANTSWEEP_HOME" && mkdir -p "$PLANTSWEEP_HOME/trusted-keys" || exit 4
bundle() { .venv/bin/plantsweep patterns "$@" >/dev/null || exit 4; }
bundle keygen --secret "$PLANTSWEEP_HOME/demo.key" --public "$PLANTSWEEP_HOME/trusted-keys/demo.pub"
# EICAR plus harmless test signatures (orchestrator/data/patterns/README.md), YARA rules
# compiled here once; hosts with the pinned yara-python load them as they are.
bundle build orchestrator/data/patterns --key "$PLANTSWEEP_HOME/demo.key" --name demo --version 1 \
    --expires "$(date -u -d '+1 year' +%F)" --out "$PLANTSWEEP_HOME/demo-1.tar"
bundle import "$PLANTSWEEP_HOME/demo-1.tar"
.venv/bin/plantsweep run playbooks/downtime-scan.yml -i inventories/demo-plant.yml \
    -e patterns=bundle:demo --wheel-dir "$WHEELS" "$@"
