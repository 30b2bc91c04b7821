#!/usr/bin/env bash
# Regenerate tests/inventory/fixtures/expected/ with the real ansible-inventory.
#
# The expected files are ansible-core's own output for each case in fixtures/cases.json:
#   <case>.list.json           ansible-inventory -i SRC... [-e JSON] [--limit L] --list
#   <case>.graph.txt           ansible-inventory -i SRC... --graph
#   <case>.graph-<group>.txt   ansible-inventory -i SRC... --graph <group>
#   <case>.graph-vars.txt      ansible-inventory -i SRC... [-e JSON] --graph --vars
#   <case>.host-<host>.json    ansible-inventory -i SRC... [-e JSON] --host <host>
# The files were made with ansible-core 2.19.14 (the version in the project venv). Run from
# anywhere; an empty ANSIBLE_CONFIG keeps any ansible.cfg out of it.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
export INVENTORY_TOOL="$repo/.venv/bin/ansible-inventory"
ANSIBLE_HOME="$(mktemp -d)"
export ANSIBLE_HOME
trap 'rm -rf "$ANSIBLE_HOME"' EXIT
touch "$ANSIBLE_HOME/empty.cfg"
export ANSIBLE_CONFIG="$ANSIBLE_HOME/empty.cfg"
export ANSIBLE_NOCOLOR=1
export ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED=1

cd "$here/fixtures"
"$INVENTORY_TOOL" --version | head -1
"$repo/.venv/bin/python" - <<'PY'
import json, os, subprocess

tool = os.environ["INVENTORY_TOOL"]

def run(case, *args):
    cmd = [tool]
    for source in case["sources"]:
        cmd += ["-i", source]
    if case.get("extra_vars"):
        cmd += ["-e", json.dumps(case["extra_vars"])]
    if case.get("limit"):
        cmd += ["--limit", case["limit"]]
    done = subprocess.run(cmd + list(args), check=True, capture_output=True, text=True)
    return done.stdout

def write(name, text):
    with open(os.path.join("expected", name), "w", encoding="utf-8") as handle:
        handle.write(text)

for case in json.load(open("cases.json")):
    name = case["name"]
    write(f"{name}.list.json", run(case, "--list"))
    write(f"{name}.graph.txt", run(case, "--graph"))
    for group in case.get("graph_groups", []):
        write(f"{name}.graph-{group}.txt", run(case, "--graph", group))
    if case.get("graph_vars"):
        write(f"{name}.graph-vars.txt", run(case, "--graph", "--vars"))
    for host in case.get("hosts", []):
        write(f"{name}.host-{host}.json", run(case, "--host", host))
    print("generated", name)
PY
