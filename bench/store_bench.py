"""Benchmark: the central store's queries at 100,000 scan logs and 10 million findings.

    .venv/bin/python bench/store_bench.py [--logs 100000] [--findings-per-log 100]
        [--hosts 2000] [--backend sqlite,postgresql] [--work /var/tmp/plantsweep-store-bench]

Fills a fresh store (the real schema, created by open_store) with synthetic rows generated
inside the database (a recursive CTE on SQLite, generate_series on PostgreSQL; the findings'
indexes are built after the load), then times, median of 5 runs each, what users run: `logs
list` newest 50 without and with filters (site+line, host, level+date), `logs show` of one log
with its findings, `status` over all sites and lines, and storing one real scan log (with
its audit entry) plus storing it again (refused as already stored). PostgreSQL runs on a
private server started here (tests/harness/postgres.py, Debian's package). There is no
reference tool for this: the figures are absolute.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import tempfile
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import text  # noqa: E402

from orchestrator.audit.identity import os_actor  # noqa: E402
from orchestrator.store import open_store  # noqa: E402
from orchestrator.store.ingest import ingest_log  # noqa: E402
from orchestrator.store.queries import (  # noqa: E402
    LogFilter,
    find_log,
    list_logs,
    log_findings,
    status,
)

SITES, LINES = 5, 10


def fill(store: Any, logs: int, per_log: int, hosts: int) -> float:
    body = zlib.compress(json.dumps({"synthetic": True}).encode())
    pg = store.dialect == "postgresql"
    series = (lambda n: f"generate_series(0, {n - 1}) AS c(x)") if pg else None

    def rows(n: int) -> str:
        if pg:
            return f"FROM {series(n)}"
        return (f"FROM (WITH RECURSIVE c(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM c "
                f"WHERE x < {n - 1}) SELECT x FROM c)")

    ts = ("to_char(timestamp '2026-01-01' + x * interval '5 minutes', "
          "'YYYY-MM-DD\"T\"HH24:MI:SS.000\"Z\"')" if pg else
          "strftime('%Y-%m-%dT%H:%M:%S.000Z', '2026-01-01', '+' || (x * 5) || ' minutes')")
    hexid = "md5(x::text) || md5((x + 1)::text)" if pg else "printf('%064x', x)"
    # 20,000 distinct contents over all findings: fleets share files
    sha_of_x = ("md5((x % 20000)::text) || md5((x % 20000)::text)" if pg
                else "printf('%064x', x % 20000)")
    mod = "%"
    started = time.perf_counter()
    with store.begin() as conn:
        for index in ("ix_findings_scan_log", "ix_findings_host_rank", "ix_findings_sha256"):
            conn.execute(text(f"DROP INDEX {index}"))
        conn.execute(text(
            "INSERT INTO hosts (id, site, name, area, line, cell, criticality, first_seen, "
            f"last_seen) SELECT x + 1, 'site-' || (x {mod} {SITES}), 'host-' || x, 'area', "
            f"'line-' || ((x / {SITES}) {mod} {LINES}), '', 'standard', '2026-01-01', "
            f"'2026-01-01' {rows(hosts)}"
        ))
        conn.execute(text(
            "INSERT INTO scan_logs (id, sha256, scan_id, run_id, host_id, host, site, area, "
            "line, scan_type, action, complete, started, finished, bundle_name, "
            "bundle_version, bundle_date, files, findings, max_score, max_level, max_rank, "
            f"errors, source, stored_at, body) SELECT x + 1, {hexid}, 'scan-' || x, "
            f"'run-' || (x / {hosts}), (x {mod} {hosts}) + 1, 'host-' || (x {mod} {hosts}), "
            f"'site-' || ((x {mod} {hosts}) {mod} {SITES}), 'area', "
            f"'line-' || (((x {mod} {hosts}) / {SITES}) {mod} {LINES}), 'quick', 'log-only', "
            f"{'true' if pg else '1'}, {ts}, {ts}, 'site', '2026.1', '2026-01-01', 5000, "
            f"{per_log}, CASE WHEN x {mod} 50 = 0 THEN 90 ELSE 30 END, "
            f"CASE WHEN x {mod} 50 = 0 THEN 'alert' ELSE 'info' END, "
            f"CASE WHEN x {mod} 50 = 0 THEN 3 ELSE 0 END, 0, 'run', {ts}, :body "
            f"{rows(logs)}"
        ), {"body": body})
        total = logs * per_log
        conn.execute(text(
            "INSERT INTO findings (scan_log_id, host_id, path, sha256, score, level, rank, "
            f"engine, rule, action) SELECT (x / {per_log}) + 1, ((x / {per_log}) {mod} {hosts}) "
            f"+ 1, '/opt/vendor/bin/file-' || (x {mod} 5000) || '.exe', "
            f"{sha_of_x}, "
            f"CASE WHEN (x / {per_log}) {mod} 50 = 0 AND x {mod} {per_log} = 0 THEN 90 ELSE 30 "
            f"END, CASE WHEN (x / {per_log}) {mod} 50 = 0 AND x {mod} {per_log} = 0 THEN "
            f"'alert' ELSE 'info' END, CASE WHEN (x / {per_log}) {mod} 50 = 0 AND x {mod} "
            f"{per_log} = 0 THEN 3 ELSE 0 END, 'yara', 'Rule_' || (x {mod} 300), 'logged' "
            f"{rows(total)}"
        ))
        conn.execute(text("CREATE INDEX ix_findings_scan_log ON findings (scan_log_id)"))
        conn.execute(text("CREATE INDEX ix_findings_host_rank ON findings (host_id, rank)"))
        conn.execute(text("CREATE INDEX ix_findings_sha256 ON findings (sha256)"))
        if pg:
            conn.execute(text(
                "SELECT setval(pg_get_serial_sequence('scan_logs', 'id'), "
                "(SELECT max(id) FROM scan_logs))"))
            conn.execute(text(
                "SELECT setval(pg_get_serial_sequence('hosts', 'id'), "
                "(SELECT max(id) FROM hosts))"))
    with store.engine.connect() as conn:
        conn.execute(text("ANALYZE"))
        conn.commit()
    return time.perf_counter() - started


def timed(fn: Callable[[], Any], runs: int = 5) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(runs):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def queries(store: Any, real_log: bytes, n_logs: int) -> list[tuple[str, float, str]]:
    out: list[tuple[str, float, str]] = []

    def q(label: str, fn: Callable[[Any], Any], describe: Callable[[Any], str]) -> None:
        def run() -> Any:
            with store.connect() as conn:
                return fn(conn)

        seconds, result = timed(run)
        out.append((label, seconds, describe(result)))

    q("logs list (newest 50)", lambda c: list_logs(c, LogFilter()), lambda r: f"{len(r)} rows")
    q("logs list --site --line", lambda c: list_logs(c, LogFilter(site="site-3", line="line-4")),
      lambda r: f"{len(r)} rows")
    q("logs list --host", lambda c: list_logs(c, LogFilter(host="host-77")),
      lambda r: f"{len(r)} rows")
    q("logs list --level alert --since 2026-03-01",
      lambda c: list_logs(c, LogFilter(min_level="alert", since="2026-03-01")),
      lambda r: f"{len(r)} rows")
    q("logs show (one log, its findings)",
      lambda c: log_findings(c, find_log(c, f"scan-{n_logs // 2 + 1}").id),
      lambda r: f"{len(r)} findings")
    q("status (all sites and lines)",
      lambda c: status(c, overdue_days=30, min_level="warning"),
      lambda r: f"{len(r)} lines, {sum(s.hosts for s in r)} hosts, "
                f"{sum(s.open_findings for s in r)} open findings")
    actor = os_actor()
    t0 = time.perf_counter()
    first = ingest_log(store, real_log, actor, source="import")
    out.append(("store one real log (+ audit entry)", time.perf_counter() - t0,
                f"created={first.created}"))
    seconds, again = timed(lambda: ingest_log(store, real_log, actor, source="import"))
    out.append(("store it again (already stored)", seconds, f"created={again.created}"))
    return out


@contextlib.contextmanager
def fresh_store_url(backend: str, work: Path) -> Iterator[str]:
    """The URL of an empty store: a new SQLite file in `work`, or a database on a private
    PostgreSQL server (Debian's package, tests/harness/postgres.py) stopped afterwards."""
    if backend == "sqlite":
        work.mkdir(parents=True, exist_ok=True)
        db = work / "store.sqlite"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
        yield f"sqlite:///{db}"
        return
    from tests.harness.postgres import PostgresServer

    server = PostgresServer().start()
    try:
        yield server.create_database("bench")
    finally:
        server.stop()


def add_store_args(ap: argparse.ArgumentParser, work: str) -> None:
    """The size of the filled store, the backends and the work folder (also web_bench.py)."""
    ap.add_argument("--logs", type=int, default=100_000)
    ap.add_argument("--findings-per-log", type=int, default=100)
    ap.add_argument("--hosts", type=int, default=2000)
    ap.add_argument("--backend", default="sqlite,postgresql")
    ap.add_argument("--work", default=work)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_store_args(ap, "/var/tmp/plantsweep-store-bench")
    args = ap.parse_args()
    from tests.store_logs import real_logs, variant

    with tempfile.TemporaryDirectory() as tmp:
        dirty, _ = real_logs(Path(tmp))
    real_log = variant(dirty, scan_id="bench-real-1", host="host-5")
    total = args.logs * args.findings_per_log
    print(f"store benchmark: {args.logs:,} scan logs, {total:,} findings, {args.hosts:,} hosts "
          f"({SITES} sites x {LINES} lines)")
    for backend in args.backend.split(","):
        with fresh_store_url(backend, Path(args.work)) as url:
            store = open_store(url)
            load = fill(store, args.logs, args.findings_per_log, args.hosts)
            print(f"\n{backend}: loaded in {load:.1f} s")
            print(f"  {'query':45} {'median of 5':>12}  result")
            for label, seconds, result in queries(store, real_log, args.logs):
                print(f"  {label:45} {seconds * 1000:9.1f} ms  {result}")
            store.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
