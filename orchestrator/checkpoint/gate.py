"""The gate: scan a device, record it, decide whether it may enter, print its pass.

    scan = checkpoint_scan(store, "/media/stick", device_id="USB-0042",
                           owner="Vendor Ltd / A. Smith", reason="firmware update line 3")
    verdict = verify(store, "USB-0042")           # stores an admission row and an audit entry

Scanning is the ordinary scan campaign (`campaign.run_scan`): a mounted USB stick or laptop
disk is one host of a one-line inventory written here (`ansible_connection: local`, scan type
`folders` over the path: everything under it, log-only, archives opened, no verdict cache), and
a device reachable over the network is a host of the user's inventory (`-i`, scan type `full`).
The log(s) go into the store with source `checkpoint`; the device is registered the first time
(`device_register`) and every scan is kept as a device scan, entry and exit alike
(`checkpoint_scan`).

The verdict looks at the device's last *entry* scan (latest `finished`): see policy.py for the
rule. A device that is not registered is refused ("no scan recorded"): the refusal is in the
audit trail, but it has no admissions row (that row needs a registered device).
"""

from __future__ import annotations

import dataclasses
import json
import re
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console
from sqlalchemy import Connection, func, insert, select

from orchestrator.audit import trail
from orchestrator.audit.identity import Actor, here, os_actor
from orchestrator.checkpoint import DIRECTIONS
from orchestrator.checkpoint.policy import Policy, format_duration, load_policy
from orchestrator.errors import PlantsweepError, UsageError
from orchestrator.results import utc_now
from orchestrator.store import schema
from orchestrator.store.database import Store
from orchestrator.store.ingest import ingest_run, parse_log, store_log

FUTURE_TOLERANCE = timedelta(minutes=5)  # clock skew between a scanning machine and this one


class CheckpointError(PlantsweepError):
    """A checkpoint scan could not be made or recorded."""


def _actor(store: Store) -> Actor:
    """Who acts: the logged-in store user (else the OS account where the store allows it),
    with the permission to work the gate."""
    from orchestrator.users.sessions import acting

    return acting(store, "checkpoint")


def _parse_time(text: str) -> datetime:
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _fmt_time(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _age_text(age: timedelta) -> str:
    days = age.total_seconds() / 86400
    if days >= 1:
        shown = round(days, 1)
        return f"{shown:g} day{'s' if shown != 1 else ''}"
    hours = round(age.total_seconds() / 3600, 1)
    return f"{hours:g} hour{'s' if hours != 1 else ''}"


# -- recording a scan ---------------------------------------------------------------------------


@dataclass(frozen=True)
class DeviceScan:
    """One scan recorded for a device."""

    device_id: str
    owner: str
    direction: str
    scan_log_id: int
    scan_id: str
    host: str
    finished: str
    complete: bool
    findings: int  # all findings
    dirty: int  # findings at or above `min_level`
    min_level: str
    patterns: dict[str, Any]
    new_device: bool
    run_dir: Path | None = None

    @property
    def result(self) -> str:
        state = "clean"
        if self.dirty:
            state = f"{self.dirty} finding(s) at {self.min_level} or above"
        return state if self.complete else f"{state}, INCOMPLETE scan"


def _dirty_count(conn: Connection, scan_log_id: int, min_level: str) -> int:
    f = schema.findings
    return int(conn.execute(
        select(func.count()).select_from(f).where(
            f.c.scan_log_id == scan_log_id, f.c.rank >= schema.LEVEL_RANKS[min_level]
        )
    ).scalar() or 0)


def _device_row(conn: Connection, device_id: str) -> Any:
    return conn.execute(
        select(schema.devices).where(schema.devices.c.device_id == device_id)
    ).first()


def record_scan(
    store: Store,
    data: bytes,
    *,
    device_id: str,
    owner: str,
    reason: str,
    direction: str = "entry",
    description: str = "",
    site: str = "",
    target: str = "",
    actor: Actor | None = None,
    run_dir: Path | None = None,
) -> DeviceScan:
    """Store one scan log's exact bytes (source `checkpoint`) for a device, in one
    transaction: the log, the device (registered the first time) and the device scan, each
    audited."""
    if direction not in DIRECTIONS:
        raise UsageError(f"direction must be entry or exit, got {direction!r}")
    if not device_id.strip() or not owner.strip():
        raise UsageError("a device id and an owner are required")
    if not (reason and reason.strip()):
        raise UsageError("a reason is required for a checkpoint scan (--reason)")
    actor = actor or _actor(store)
    log = parse_log(data, target or "log")
    where = here(site)
    policy = load_policy(store, site)
    with store.begin() as conn:
        stored = store_log(conn, data, log, actor, source="checkpoint", where=where)
        device = _device_row(conn, device_id)
        new_device = device is None
        if new_device:
            now = utc_now()
            pk = conn.execute(insert(schema.devices).values(
                device_id=device_id, owner=owner.strip(), description=description.strip(),
                site=site, registered=now,
            )).inserted_primary_key[0]
            trail.append(conn, actor, "device_register", "device", device_id,
                         new={"owner": owner.strip(), "description": description.strip(),
                              "site": site}, reason=reason, where=where)
            device_pk = int(pk)
            registered_owner = owner.strip()
        else:
            device_pk = int(device.id)
            registered_owner = str(device.owner)
        conn.execute(insert(schema.device_scans).values(
            device_id=device_pk, scan_log_id=stored.scan_log_id, direction=direction,
            reason=reason.strip(), user_id=actor.user_id, recorded=utc_now(),
        ))
        row = conn.execute(
            select(schema.scan_logs).where(schema.scan_logs.c.id == stored.scan_log_id)
        ).one()
        dirty = _dirty_count(conn, stored.scan_log_id, policy.min_level)
        trail.append(
            conn, actor, "checkpoint_scan", "device", device_id,
            new={"direction": direction, "scan_id": stored.scan_id, "target": target,
                 "owner": owner.strip(), "complete": bool(row.complete),
                 "findings": int(row.findings), "max_level": row.max_level,
                 "patterns": {"name": row.bundle_name, "version": row.bundle_version,
                              "date": row.bundle_date}},
            reason=reason, where=where,
        )
    return DeviceScan(
        device_id=device_id, owner=registered_owner, direction=direction,
        scan_log_id=stored.scan_log_id, scan_id=stored.scan_id, host=stored.host,
        finished=str(row.finished), complete=bool(row.complete), findings=int(row.findings),
        dirty=dirty, min_level=policy.min_level,
        patterns={"name": row.bundle_name, "version": row.bundle_version,
                  "date": row.bundle_date},
        new_device=new_device, run_dir=run_dir,
    )


# -- scanning a device --------------------------------------------------------------------------


def _host_name(device_id: str) -> str:
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", device_id).strip("-.")
    return name or "device"


def _scan_request(**kwargs: Any) -> Any:
    from orchestrator.campaign import ScanRequest

    # run_scan stores the run in our store as a checkpoint run; record_scan below then finds
    # each log there (idempotent) and links it to the device.
    return ScanRequest(store_kind="checkpoint", **kwargs)


def checkpoint_scan(
    store: Store,
    target: str,
    *,
    device_id: str,
    owner: str,
    reason: str,
    direction: str = "entry",
    description: str = "",
    site: str = "",
    inventories: list[str] | None = None,
    extra_vars: dict[str, Any] | None = None,
    patterns: str | None = None,
    out: Path = Path("results"),
    scan_timeout: float = 3600.0,
    wheel_dir: Path | None = None,
    actor: Actor | None = None,
    console: Console | None = None,
) -> list[DeviceScan]:
    """Scan `target` (a local path, or with `inventories` a host name) with the ordinary scan
    campaign and record the log(s) for the device. Returns what was recorded."""
    from orchestrator.campaign import run_scan
    from orchestrator.detection import DetectionOptions

    if direction not in DIRECTIONS:
        raise UsageError(f"direction must be entry or exit, got {direction!r}")
    if not (reason and reason.strip()):
        raise UsageError("a reason is required for a checkpoint scan (--reason)")
    if not device_id.strip() or not owner.strip():
        raise UsageError("a device id (--device-id) and an owner (--owner) are required")
    actor = actor or _actor(store)
    policy = load_policy(store, site)
    detection = DetectionOptions(min_level=policy.min_level, use_cache=False, scan_archives=True)
    try:
        out.mkdir(parents=True, exist_ok=True)
        out_dir = Path(tempfile.mkdtemp(prefix="checkpoint-", dir=out))
    except OSError as exc:
        raise UsageError(f"cannot create the results folder: {exc.strerror or exc}",
                         path=str(out)) from None
    with tempfile.TemporaryDirectory(prefix="plantsweep-gate-") as work:
        if inventories:
            from orchestrator.inventory import load_inventory

            inventory = load_inventory(inventories, extra_vars=extra_vars or {})
            names = [h.name for h in inventory.select("all", limit=target)]
            if names != [target]:
                raise UsageError(f"{target!r} is not one host of the inventory "
                                 f"(it matches {len(names)} host(s))")
            request = _scan_request(
                inventories=list(inventories), extra_vars=extra_vars or {}, limit=target,
                scan_type="full", patterns=patterns, out=out_dir, scan_timeout=scan_timeout,
                wheel_dir=wheel_dir, detection=detection, store=store.url,
            )
        else:
            path = Path(target).resolve()
            if not path.exists():
                raise UsageError("no such file or folder to scan", path=target)
            host_tmp = Path(work) / "host-tmp"
            host_tmp.mkdir()
            inventory_file = Path(work) / "checkpoint.yml"
            host_vars: dict[str, Any] = {
                "ansible_connection": "local", "ansible_remote_tmp": str(host_tmp),
            }
            if site:
                host_vars["site"] = site
            inventory_file.write_text(
                yaml.safe_dump({"all": {"hosts": {_host_name(device_id): host_vars}}}),
                encoding="utf-8",
            )
            request = _scan_request(
                inventories=[str(inventory_file)], scan_type="folders", paths=(str(path),),
                patterns=patterns, out=out_dir, scan_timeout=scan_timeout, wheel_dir=wheel_dir,
                detection=detection, store=store.url,
            )
        run_scan(request, console)
    runs = [p.parent for p in out_dir.glob("*/run.json")]
    logs = [p for run in runs for p in sorted(run.glob("*.json"))
            if p.name != "run.json" and not p.name.endswith(".asset.json")]
    recorded = []
    for log_path in logs:
        recorded.append(record_scan(
            store, log_path.read_bytes(), device_id=device_id, owner=owner, reason=reason,
            direction=direction, description=description, site=site, target=target,
            actor=actor, run_dir=log_path.parent,
        ))
    if not recorded:
        raise CheckpointError(
            f"the scan of {target} produced no scan log (see the recap above): nothing recorded "
            f"for device {device_id}"
        )
    for run in runs:  # the run row (kind checkpoint) if run_scan did not store it already
        ingest_run(store, run, actor, kind="checkpoint")
    return recorded


# -- the verdict --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    device_id: str
    owner: str
    admitted: bool
    reasons: list[str]
    policy: Policy
    decided: str
    decided_by: str
    scan: dict[str, Any] | None = None  # the last entry scan: scan_id, finished, patterns, ...
    valid_until: str | None = None
    admission_id: int | None = None
    description: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def verdict(self) -> str:
        return "admitted" if self.admitted else "refused"

    def as_json(self) -> dict[str, Any]:
        return {
            "device_id": self.device_id, "owner": self.owner, "verdict": self.verdict,
            "reasons": self.reasons, "policy": self.policy.as_json(), "decided": self.decided,
            "decided_by": self.decided_by, "scan": self.scan, "valid_until": self.valid_until,
            "admission_id": self.admission_id,
        }


def _last_entry_scan(conn: Connection, device_pk: int) -> Any:
    ds, logs = schema.device_scans, schema.scan_logs
    return conn.execute(
        select(logs).join(ds, ds.c.scan_log_id == logs.c.id)
        .where(ds.c.device_id == device_pk, ds.c.direction == "entry")
        .order_by(logs.c.finished.desc(), logs.c.id.desc())
        .limit(1)
    ).first()


def _pattern_age(bundle_date: str, finished: datetime) -> tuple[timedelta, str]:
    """(age of the patterns when the scan finished, the date as shown)."""
    text = bundle_date.strip()
    if len(text) == 10:  # a bundle's release date (YYYY-MM-DD): whole days
        day = date.fromisoformat(text)
        return timedelta(days=(finished.astimezone(UTC).date() - day).days), text
    value = _parse_time(text)
    return finished - value, _fmt_time(value)[:10]


def evaluate(
    conn: Connection,
    device_id: str,
    policy: Policy,
    *,
    now: datetime | None = None,
    actor: Actor | None = None,
) -> Verdict:
    """The verdict for `device_id` under `policy` at `now` (default: the current time),
    without writing anything."""
    now = now or datetime.now(UTC)
    decided = _fmt_time(now)
    by = (actor or os_actor()).full_name
    device = _device_row(conn, device_id)
    if device is None:
        return Verdict(device_id, "", False, ["no scan recorded (device not registered)"],
                       policy, decided, by)
    row = _last_entry_scan(conn, int(device.id))
    base = {"device_id": device_id, "owner": str(device.owner), "policy": policy,
            "decided": decided, "decided_by": by, "description": str(device.description)}
    if row is None:
        return Verdict(admitted=False, reasons=["no scan recorded"], **base)
    reasons: list[str] = []
    finished = _parse_time(str(row.finished))
    dirty = _dirty_count(conn, int(row.id), policy.min_level)
    scan = {
        "scan_log_id": int(row.id), "scan_id": str(row.scan_id), "host": str(row.host),
        "scan_type": str(row.scan_type), "finished": _fmt_time(finished),
        "complete": bool(row.complete), "findings": int(row.findings), "dirty": dirty,
        "max_level": str(row.max_level), "errors": int(row.errors),
        "patterns": {"name": row.bundle_name, "version": row.bundle_version,
                     "date": row.bundle_date},
    }
    age = now - finished
    if age > policy.max_scan_age:
        reasons.append(f"last scan is {_age_text(age)} old "
                       f"(limit {format_duration(policy.max_scan_age)})")
    elif age < -FUTURE_TOLERANCE:
        reasons.append(f"last scan is dated in the future ({_fmt_time(finished)})")
    if not row.bundle_date:
        reasons.append("the scan log gives no pattern date")
    else:
        try:
            pattern_age, shown = _pattern_age(str(row.bundle_date), finished)
        except ValueError:
            reasons.append(f"unreadable pattern date {row.bundle_date!r}")
        else:
            if pattern_age > policy.max_pattern_age:
                reasons.append(f"patterns dated {shown}, older than "
                               f"{format_duration(policy.max_pattern_age)} at scan time")
    if row.scan_type == "asset":
        reasons.append("the last scan was asset-only (no file scan)")
    if policy.require_complete and not row.complete:
        reasons.append("the last scan did not complete")
    if dirty:
        reasons.append(f"{dirty} finding{'s' if dirty != 1 else ''} at {policy.min_level} "
                       "or above")
    admitted = not reasons
    valid_until = _fmt_time(finished + policy.max_scan_age) if admitted else None
    return Verdict(admitted=admitted, reasons=reasons, scan=scan, valid_until=valid_until,
                   **base)


def verify(
    store: Store,
    device_id: str,
    *,
    site: str | None = None,
    now: datetime | None = None,
    actor: Actor | None = None,
) -> Verdict:
    """Decide, store an admissions row (registered devices) and an `admission` audit entry.

    The policy is the one of `site`, else of the device's registered site."""
    actor = actor or _actor(store)
    if site is None:
        with store.connect() as conn:
            device = _device_row(conn, device_id)
        site = str(device.site) if device is not None else ""
    policy = load_policy(store, site)
    with store.begin() as conn:
        verdict = evaluate(conn, device_id, policy, now=now, actor=actor)
        device = _device_row(conn, device_id)
        admission_id = None
        if device is not None:
            admission_id = int(conn.execute(insert(schema.admissions).values(
                device_id=int(device.id),
                scan_log_id=verdict.scan["scan_log_id"] if verdict.scan else None,
                verdict=verdict.verdict, reason="; ".join(verdict.reasons) or "clean",
                policy=json.dumps(policy.as_json(), sort_keys=True), user_id=actor.user_id,
                decided=verdict.decided, valid_until=verdict.valid_until,
            )).inserted_primary_key[0])
        trail.append(
            conn, actor, "admission", "device", device_id,
            new={"verdict": verdict.verdict, "reasons": verdict.reasons,
                 "policy": policy.as_json(), "valid_until": verdict.valid_until,
                 "scan_id": verdict.scan["scan_id"] if verdict.scan else None},
            reason="; ".join(verdict.reasons) or None, where=here(site),
        )
    return dataclasses.replace(verdict, admission_id=admission_id)


# -- the pass and the list ----------------------------------------------------------------------


def render_pass_html(verdict: Verdict) -> str:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).resolve().parents[1] / "data" / "templates"),
        autoescape=True,
    )
    return env.get_template("checkpoint_pass.html").render(
        v=verdict, policy_lines=verdict.policy.describe()
    )


def write_pass(verdict: Verdict, path: Path) -> Path:
    """The printable pass: HTML, or PDF (WeasyPrint) when `path` ends in .pdf."""
    html = render_pass_html(verdict)
    suffix = path.suffix.lower()
    try:
        if suffix == ".pdf":
            from weasyprint import HTML

            HTML(string=html).write_pdf(str(path))
        elif suffix in (".html", ".htm"):
            path.write_text(html, encoding="utf-8")
        else:
            raise UsageError("--pass-out must end in .html or .pdf", path=str(path))
    except OSError as exc:
        raise CheckpointError(f"cannot write the pass: {exc.strerror or exc}",
                              path=str(path)) from None
    return path


def list_devices(store: Store, device_id: str | None = None) -> list[dict[str, Any]]:
    """Every device (or one) with its last scan (either direction) and last verdict."""
    d, ds, logs, adm = schema.devices, schema.device_scans, schema.scan_logs, schema.admissions
    out = []
    with store.connect() as conn:
        query = select(d).order_by(d.c.device_id)
        if device_id is not None:
            query = query.where(d.c.device_id == device_id)
        for device in conn.execute(query).all():
            scan = conn.execute(
                select(logs.c.scan_id, logs.c.finished, logs.c.findings, logs.c.max_level,
                       logs.c.complete, ds.c.direction)
                .join(ds, ds.c.scan_log_id == logs.c.id)
                .where(ds.c.device_id == device.id)
                .order_by(logs.c.finished.desc(), logs.c.id.desc()).limit(1)
            ).first()
            decision = conn.execute(
                select(adm.c.verdict, adm.c.decided, adm.c.valid_until, adm.c.reason)
                .where(adm.c.device_id == device.id)
                .order_by(adm.c.decided.desc(), adm.c.id.desc()).limit(1)
            ).first()
            out.append({
                "device_id": device.device_id, "owner": device.owner,
                "description": device.description, "site": device.site,
                "registered": device.registered,
                "last_scan": None if scan is None else {
                    "scan_id": scan.scan_id, "finished": scan.finished,
                    "direction": scan.direction, "findings": int(scan.findings),
                    "max_level": scan.max_level, "complete": bool(scan.complete)},
                "last_verdict": None if decision is None else {
                    "verdict": decision.verdict, "decided": decision.decided,
                    "valid_until": decision.valid_until, "reason": decision.reason},
            })
    return out
