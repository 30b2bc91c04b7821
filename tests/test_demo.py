"""The README's quick start: the demo plant inventory matches what scripts/demo.sh simulates,
and the demo scan runs end to end, with the demo pattern bundle signed by a demo key."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
from pathlib import Path

from plantscan import run_scan_cli

from orchestrator.cli import main
from orchestrator.inventory import load_inventory
from orchestrator.payload import default_patterns_dir
from tests.harness.files import EICAR

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


# Built by concatenation so this file never matches the demo rules itself.
DEMO_FILES = {
    "alert.bin": b"junk " + b"PLANTSWEEP-DEMO-" + b"SIGNATURE-ALERT" + b" junk\n",
    "medium.txt": b"PLANTSWEEP-DEMO-" + b"SIGNATURE-MEDIUM\n",
    "plantsweep-demo-dropper.cmd": b"@echo off\r\n",
    "other.cmd": b"@echo off\r\n",  # the same bytes under another name: clean
    "sample.dat": b"plantsweep demo hash IOC sample\n",
    "eicar.com": EICAR,
    "notes.txt": b"shift notes\n",
}
DEMO_YARA = {
    "alert.bin": {"PlantSweep_Demo_Alert"},
    "medium.txt": {"PlantSweep_Demo_Medium"},
    "plantsweep-demo-dropper.cmd": {"PlantSweep_Demo_Dropper_Name"},
    "eicar.com": {"EICAR_Test_File"},
}
DEMO_HASHES = {
    "sample.dat": {"sha256:" + hashlib.sha256(DEMO_FILES["sample.dat"]).hexdigest()},
    "eicar.com": {"sha256:" + hashlib.sha256(EICAR).hexdigest()},
}


def test_demo_bundle_scan_on_the_plant(make_fleet, wheel_dir, tmp_path, monkeypatch):
    """Build the demo bundle with a test key, import it, scan the plant with bundle:demo."""
    home = tmp_path / "home"
    monkeypatch.setenv("PLANTSWEEP_HOME", str(home))
    (home / "trusted-keys").mkdir(parents=True)
    key = tmp_path / "demo.key"
    assert main(["patterns", "keygen", "--secret", str(key),
                 "--public", str(home / "trusted-keys" / "demo.pub")]) == 0  # fmt: skip
    bundle = tmp_path / "demo-1.tar"
    assert main(["patterns", "build", str(default_patterns_dir()), "--key", str(key),
                 "--name", "demo", "--version", "1", "--expires", "2099-12-31",
                 "--out", str(bundle)]) == 0  # fmt: skip
    assert main(["patterns", "import", str(bundle)]) == 0

    hosts = ["demo-gw", "demo-hmi", "demo-ews"]
    fleet = make_fleet(3, names=hosts, pythons={"demo-gw": "3.6", "demo-ews": "3.8"}, plant=False)
    for host in hosts:
        fleet.plant_files(host, {f"/srv/plant/incoming/{n}": d for n, d in DEMO_FILES.items()})
    inventory = fleet.write_inventory(tmp_path / "plant.yml")
    run = run_scan_cli(tmp_path / "out", "-i", str(inventory), "--type", "folders",
                       "--path", "/srv/plant/incoming", "--patterns", "bundle:demo",
                       "--wheel-dir", str(wheel_dir))  # fmt: skip
    assert run.code == 1, run.summary  # findings, no failures

    for host in hosts:
        log = run.log(host)
        assert (log["patterns"]["name"], log["patterns"]["version"]) == ("demo", "1")
        found: dict[str, set[str]] = {}
        for f in log["findings"]:
            found.setdefault(f["path"].rsplit("/", 1)[1], set()).update(
                m["rule"] for m in f["matches"]
            )
        yara_engine = log["engines"]["yara"]
        want = {n: set(DEMO_HASHES.get(n, set())) for n in DEMO_FILES}
        if host == "demo-gw":  # Python 3.6: no yara-python wheel exists, hash IOCs only
            assert yara_engine["available"] is False
        else:
            # The pinned wheel was pushed: the bundle's compiled rules were loaded as they are.
            assert yara_engine["wheel"].startswith("yara_python-4.5.1-"), yara_engine
            assert (yara_engine["compiled_from"], yara_engine["rules_loaded"]) == ("bundle", 4)
            for name, rules in DEMO_YARA.items():
                want[name] |= rules
        assert found == {n: r for n, r in want.items() if r}, host


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
    # The scan used the demo bundle the script signed and imported, not the plain folder.
    logs = [json.loads(p.read_text()) for p in tmp_path.glob("*/*.json")]
    scans = [log for log in logs if log.get("scan_type") == "quick"]
    assert len(scans) == 4
    assert {(s["patterns"]["name"], s["patterns"]["version"]) for s in scans} == {("demo", "1")}
    # The script tears the simulated plant down on exit.
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert "psw-demo" not in netns
