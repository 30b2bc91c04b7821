"""Benchmark: the web view's pages on a store of 100,000 scan logs and 10 million findings.

    .venv/bin/python bench/web_bench.py [--logs 100000] [--findings-per-log 100] [--hosts 2000]
        [--backend sqlite,postgresql] [--work /var/tmp/plantsweep-web-bench]

Fills a fresh store as bench/store_bench.py does (synthetic scan logs and findings generated in
the database), gives every host an asset record (this machine's real asset object, with its
package list cut to 200 entries) on its newest scan, adds an administrator, then requests each
page through the real application (Starlette's TestClient: the full ASGI stack, templates and
queries, without a network hop) logged in as that user: median of 5 requests after one warm-up.
There is no reference tool for this: the figures are absolute.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from sqlalchemy import func, insert, select, text  # noqa: E402
from starlette.testclient import TestClient  # noqa: E402
from store_bench import add_store_args, fill, fresh_store_url  # noqa: E402

from orchestrator.audit.identity import os_actor  # noqa: E402
from orchestrator.store import open_store, schema  # noqa: E402
from orchestrator.users import accounts  # noqa: E402
from orchestrator.web import create_app  # noqa: E402

PASSWORD = "bench-admin-password-1"


def real_asset() -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "asset.json"
        subprocess.run(
            [sys.executable, "-m", "agentless_scanner", "--type", "asset", "--out", str(out)],
            check=True, cwd=ROOT, capture_output=True, timeout=120,
        )  # fmt: skip
        asset = json.loads(out.read_text())["asset"]
    asset["packages"]["items"] = asset["packages"]["items"][:200]
    asset["packages"]["count"] = len(asset["packages"]["items"])
    return asset


def add_assets_and_admin(store: Any, asset: dict[str, Any]) -> float:
    started = time.perf_counter()
    logs = schema.scan_logs
    data = json.dumps(asset, sort_keys=True)
    with store.begin() as conn:
        newest = conn.execute(
            select(logs.c.host_id, func.max(logs.c.id), func.max(logs.c.finished)).group_by(
                logs.c.host_id
            )
        ).all()
        conn.execute(
            insert(schema.assets),
            [{"scan_log_id": log_id, "host_id": host_id, "collected": finished,
              "os_name": asset["os"].get("name"), "os_version": asset["os"].get("version"),
              "data": data} for host_id, log_id, finished in newest],
        )  # fmt: skip
        accounts.create_user(conn, os_actor(), "admin", "Bench Admin", "administrator", PASSWORD)
    with store.engine.connect() as conn:
        conn.execute(text("ANALYZE"))
        conn.commit()
    return time.perf_counter() - started


def login(client: TestClient) -> None:
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    answer = client.post("/login", data={"username": "admin", "password": PASSWORD,
                                         "csrf_token": token, "next": "/"})  # fmt: skip
    assert answer.status_code == 303, answer.text


def pages(store: Any) -> list[tuple[str, str]]:
    with store.connect() as conn:
        host = conn.execute(select(schema.hosts).where(schema.hosts.c.id == 6)).one()
        scan = conn.execute(
            select(func.max(schema.scan_logs.c.id)).where(schema.scan_logs.c.host_id == host.id)
        ).scalar()
        finding = conn.execute(
            select(func.min(schema.findings.c.id)).where(schema.findings.c.scan_log_id == scan)
        ).scalar()
    return [
        ("company (all sites, charts)", "/"),
        ("site", f"/site?site={host.site}"),
        (
            "line (hosts with EOL/patch columns)",
            f"/line?site={host.site}&area={host.area}&line={host.line}",
        ),  # fmt: skip
        ("host (scans, findings, asset)", f"/hosts/{host.id}"),
        ("scan log (100 findings)", f"/scans/{scan}"),
        ("finding", f"/findings/{finding}"),
        ("audit trail (newest page)", "/audit"),
        ("checkpoint admissions", "/checkpoint"),
        ("inspection records", "/inspections"),
    ]


def measure(client: TestClient, url: str, runs: int = 5) -> tuple[float, int, int]:
    client.get(url)  # warm-up
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        answer = client.get(url)
        times.append(time.perf_counter() - start)
        assert answer.status_code == 200, (url, answer.status_code)
    return statistics.median(times), answer.status_code, len(answer.content)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_store_args(ap, "/var/tmp/plantsweep-web-bench")
    args = ap.parse_args()
    asset = real_asset()
    total = args.logs * args.findings_per_log
    print(f"web view benchmark: {args.logs:,} scan logs, {total:,} findings, "
          f"{args.hosts:,} hosts with an asset record each")  # fmt: skip
    for backend in args.backend.split(","):
        with fresh_store_url(backend, Path(args.work)) as url:
            store = open_store(url)
            load = fill(store, args.logs, args.findings_per_log, args.hosts)
            extra = add_assets_and_admin(store, asset)
            print(f"\n{backend}: loaded in {load:.1f} s (+{extra:.1f} s assets and user)")
            print(f"  {'page':40} {'median of 5':>12} {'size':>10}")
            with TestClient(create_app(store), follow_redirects=False) as client:
                login(client)
                for label, url_path in pages(store):
                    seconds, _, size = measure(client, url_path)
                    print(f"  {label:40} {seconds * 1000:9.1f} ms {size / 1024:8.1f} KiB")
            store.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
