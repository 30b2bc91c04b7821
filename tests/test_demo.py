"""The README's quick start: the demo plant inventory matches what scripts/demo.sh simulates,
and the demo scan runs end to end."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from orchestrator.inventory import load_inventory

ROOT = Path(__file__).resolve().parents[1]
DEMO_INVENTORY = ROOT / "inventories" / "demo-plant.yml"


def _demo_script_hosts() -> list[str]:
    text = (ROOT / "scripts" / "demo.sh").read_text()
    match = re.search(r"--names (\S+)", text)
    assert match, "scripts/demo.sh names the simulated hosts"
    return match.group(1).split(",")


def test_demo_inventory_matches_the_simulated_hosts():
    inv = load_inventory([str(DEMO_INVENTORY)])
    names = list(inv.hosts)
    assert names == _demo_script_hosts()
    # The harness gives host N the address .(10+N) of the demo network, in --names order.
    for index, name in enumerate(names, start=1):
        assert inv.host_vars(name)["ansible_host"] == f"10.204.0.{10 + index}"
    assert "mission-critical" in {inv.host_vars(n)["criticality"] for n in names}


def test_demo_script_scans_the_demo_plant(tmp_path):
    env = dict(os.environ, PLANTSWEEP_SKIP_SETUP="1")
    proc = subprocess.run(
        ["scripts/demo.sh", "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    # Findings (the EICAR files planted on gw-line1 and ews-01), no failures.
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "PLAY RECAP" in proc.stdout
    recap = proc.stdout.split("PLAY RECAP", 1)[1]
    for name in _demo_script_hosts():
        assert f"{name} " in recap
    assert recap.count("failed=0") == 4 and recap.count("cleanup=verified") == 4
    reports = sorted(p.name for p in tmp_path.glob("*/reports/*.md"))
    assert reports == sorted(f"{n}.md" for n in _demo_script_hosts())
    # The script tears the simulated plant down on exit.
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert "psw-demo" not in netns
