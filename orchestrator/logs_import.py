"""`plantsweep logs import DIR`: bring the scan logs of an offline USB kit into a run folder.

    code = import_logs(Path("/media/usb"), ImportOptions(out=Path("results"), host="hmi-07"))

Every log under `<kit>/logs/` is checked, in this order, and refused with one line saying why
at the first check it fails: the stick's kit is in this controller's registry -> the log's
`.mac` exists and names this kit -> the HMAC-SHA256 over the exact bytes matches the kit's key
-> (same bytes imported before: "already imported", not a refusal) -> it is JSON and matches
the scan-log schema -> it was written by the kit's own scanner with the kit's patterns -> its
host (and machine id) is the one the operator named, when named. Logs that pass are
stored as `plantsweep scan` stores them (`<out>/<run-id>/<host>.json` plus `run.json`), with
the stick's exact bytes and MAC kept beside them in `kit-logs/`; the recap and exit code are
those of `plantsweep scan` (a refused log counts like a failed host).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agentless_scanner.logmac import MAC_FORMAT, MAC_SUFFIX, compute
from orchestrator import __version__, exit_codes
from orchestrator.detection import DEFAULT_MIN_LEVEL
from orchestrator.display import recap
from orchestrator.errors import PlantsweepError, UsageError
from orchestrator.kit import registry
from orchestrator.kit.usb import KIT_DIR_NAME, LOGS_DIR, MANIFEST
from orchestrator.payload import scan_log_schema
from orchestrator.results import RunFolder, new_run_id, safe_file_name, utc_now, write_json_atomic
from orchestrator.scan import HostResult, _result_from_log
from orchestrator.store.after_run import store_run

RAW_DIR = "kit-logs"  # the stick's exact bytes and MACs, inside the run folder


@dataclass(frozen=True)
class ImportOptions:
    out: Path = Path("results")
    host: str | None = None  # the host the operator says the stick was used on
    machine_id: str | None = None
    min_level: str = DEFAULT_MIN_LEVEL
    store: str | None = None  # the central store's URL (None: $PLANTSWEEP_STORE or the default)


@dataclass(frozen=True)
class Accepted:
    path: Path
    data: bytes
    sha256: str
    log: dict[str, Any]
    host: str


class Refused(Exception):
    """One log is not imported; the message says why in one line."""


def find_kit_or_none(directory: Path) -> Path | None:
    """DIR itself or DIR/plantsweep-kit, whichever holds kit.json; None if neither does."""
    for candidate in (directory, directory / KIT_DIR_NAME):
        if (candidate / MANIFEST).is_file():
            return candidate
    return None


def find_kit(directory: Path) -> Path:
    """DIR itself or DIR/plantsweep-kit, whichever holds kit.json."""
    for candidate in (directory, directory / KIT_DIR_NAME):
        if (candidate / MANIFEST).is_file():
            return candidate
    raise UsageError(
        f"no plantsweep kit here (no {MANIFEST} in it or in {KIT_DIR_NAME}/)", path=str(directory)
    )


def read_kit_id(kit: Path) -> str:
    path = kit / MANIFEST
    try:
        kit_id = json.loads(path.read_text(encoding="utf-8")).get("kit_id")
    except (OSError, ValueError, AttributeError) as exc:
        raise UsageError(f"unreadable kit manifest: {exc}", path=str(path)) from None
    if not isinstance(kit_id, str) or not registry.valid_kit_id(kit_id):
        raise UsageError("the kit manifest has no valid kit_id", path=str(path))
    return kit_id


def kit_logs(kit: Path) -> tuple[list[Path], list[Path]]:
    """(logs, MAC files whose log is missing); hidden names are a scanner's temp files."""
    folder = kit / LOGS_DIR
    try:
        names = sorted(p for p in folder.iterdir() if not p.name.startswith("."))
    except FileNotFoundError:
        return [], []
    except OSError as exc:
        raise UsageError(f"cannot list the logs: {exc.strerror or exc}", path=str(folder)) from None
    logs = [p for p in names if p.name.endswith(".json") and p.is_file()]
    orphans = [
        p for p in names if p.name.endswith(".json" + MAC_SUFFIX) and p.with_suffix("") not in logs
    ]
    return logs, orphans


def _schema_validator() -> Callable[[Any], str | None]:
    try:
        import jsonschema
    except ImportError:
        raise PlantsweepError(
            "logs import needs the jsonschema package (pip install jsonschema)"
        ) from None
    validator = jsonschema.Draft202012Validator(scan_log_schema())

    def check(document: Any) -> str | None:
        error = jsonschema.exceptions.best_match(validator.iter_errors(document))
        if error is None:
            return None
        where = "/".join(str(p) for p in error.absolute_path) or "(top level)"
        return f"{where}: {error.message[:160]}"

    return check


def _check_mac(path: Path, data: bytes, record: registry.KitRecord) -> None:
    mac_path = path.with_name(path.name + MAC_SUFFIX)
    try:
        mac = json.loads(mac_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise Refused(
            f"no MAC ({mac_path.name} is missing): cannot prove the log is unedited"
        ) from None
    except (OSError, ValueError) as exc:
        raise Refused(f"unreadable MAC file {mac_path.name}: {exc}") from None
    if not isinstance(mac, dict) or mac.get("format") != MAC_FORMAT:
        raise Refused(f"{mac_path.name} is not a plantsweep log MAC")
    if mac.get("kit_id") != record.kit_id:
        raise Refused(
            f"made by another kit ({mac.get('kit_id')!r}), not by this stick's kit "
            f"{record.kit_id}: import it from its own stick"
        )
    expected = compute(record.key, record.kit_id, data)
    if not hmac.compare_digest(expected, str(mac.get("mac", ""))):
        raise Refused(
            f"MAC mismatch: the log was changed after the scan, or not written by kit "
            f"{record.kit_id}"
        )


def _check_identity(log: dict[str, Any], options: ImportOptions) -> None:
    asset = log.get("asset") or {}
    hostname = str(log.get("host") or asset.get("hostname") or "")
    if options.host is not None:
        names = {hostname.lower(), hostname.split(".")[0].lower()}
        if asset.get("fqdn"):
            names.add(str(asset["fqdn"]).lower())
        if options.host.lower() not in names:
            raise Refused(f"the log is of host {hostname!r}, not {options.host!r}")
    if options.machine_id is not None:
        found = asset.get("machine_id")
        if not found:
            raise Refused("the log records no machine id to compare with --machine-id")
        if str(found).lower() != options.machine_id.strip().lower():
            raise Refused(f"the log is of machine id {found}, not {options.machine_id}")


def check_content(
    path: Path,
    data: bytes,
    record: registry.KitRecord,
    options: ImportOptions,
    schema_errors: Callable[[Any], str | None],
) -> Accepted:
    """After the MAC: raise Refused at the first check the log's content fails."""
    try:
        log = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise Refused(f"not a JSON scan log: {exc}") from None
    problem = schema_errors(log)
    if problem is not None:
        raise Refused(f"does not match the scan-log schema at {problem}")
    scanner = log["scanner"].get("payload_sha256")
    if scanner != record.scanner_sha256:
        raise Refused(f"not written by this kit's scanner (payload sha256 {scanner})")
    used = log["patterns"].get("version")
    if used != record.patterns.get("version"):
        raise Refused(
            f"scanned with patterns version {used}, the kit has {record.patterns.get('version')}"
        )
    _check_identity(log, options)
    host = options.host or str(log["host"])
    return Accepted(path, data, hashlib.sha256(data).hexdigest(), log, host)


def _say(line: str) -> None:
    # Plain lines (no wrapping): one line per log, whatever the terminal width.
    print(line, file=sys.stderr, flush=True)


def _store(
    run: RunFolder,
    item: Accepted,
    record: registry.KitRecord,
    options: ImportOptions,
    taken: dict[str, int],
) -> Path:
    """Write the log as `plantsweep scan` does, plus the stick's exact bytes and MAC."""
    count = taken.get(item.host, 0) + 1
    taken[item.host] = count
    dest = run.host_log(item.host)
    if count > 1:  # the same host scanned twice with one stick: as a playbook's second scan
        dest = dest.with_name(f"{safe_file_name(item.host)}.scan-{count}.json")
    raw = run.path / RAW_DIR
    raw.mkdir(exist_ok=True)
    (raw / item.path.name).write_bytes(item.data)
    mac = item.path.with_name(item.path.name + MAC_SUFFIX)
    shutil.copyfile(mac, raw / mac.name)
    log = dict(item.log)
    log["run_id"] = run.run_id
    log["kit_import"] = {
        "kit_id": record.kit_id,
        "kit_name": record.name,
        "file": item.path.name,
        "sha256": item.sha256,
        "mac_verified": True,
        "imported": utc_now(),
        "host_checked": options.host,
        "machine_id_checked": options.machine_id,
    }
    write_json_atomic(dest, log)
    return dest


def import_logs(directory: Path, options: ImportOptions) -> int:
    kit = find_kit(Path(directory))
    kit_id = read_kit_id(kit)
    logs, orphans = kit_logs(kit)
    if not logs and not orphans:
        raise UsageError(f"no scan logs on the stick (nothing in {LOGS_DIR}/)", path=str(kit))
    refused: list[dict[str, str]] = [
        {"file": p.name, "reason": "its log is missing (deleted from the stick?)"} for p in orphans
    ]
    record = registry.load(kit_id)
    if record is None:
        reason = (
            f"unknown kit {kit_id}: not built by this controller "
            f"(no record in {registry.kits_dir()})"
        )
        refused += [{"file": p.name, "reason": reason} for p in logs]
        for r in refused:
            _say(f"REFUSED: {r['file']}: {r['reason']}")
        return exit_codes.HOST_FAILED
    schema_errors = _schema_validator()
    accepted: list[Accepted] = []
    already: list[dict[str, str]] = []
    results: list[HostResult] = []
    run = RunFolder(options.out, new_run_id())
    started = utc_now()
    with registry.ImportIndex(kit_id) as index:
        seen: set[str] = set()
        for path in logs:
            try:
                data = path.read_bytes()
            except OSError as exc:
                refused.append({"file": path.name, "reason": f"unreadable: {exc.strerror}"})
                continue
            digest = hashlib.sha256(data).hexdigest()
            try:
                # The MAC first, even for a log seen before: the stick is checked every time.
                _check_mac(path, data, record)
                before = index.find(digest)
                if before is not None or digest in seen:
                    where = f"run {before['run_id']}, {before['path']}" if before else "this import"
                    already.append({"file": path.name, "where": where})
                    _say(f"already imported: {path.name} ({where})")
                    continue
                accepted.append(check_content(path, data, record, options, schema_errors))
                seen.add(digest)
            except Refused as exc:
                refused.append({"file": path.name, "reason": str(exc)})
        for r in refused:
            _say(f"REFUSED: {r['file']}: {r['reason']}")
        if accepted:
            try:
                run.path.mkdir(parents=True)
            except OSError as exc:
                raise UsageError(
                    f"cannot create the results folder: {exc.strerror or exc}", path=str(run.path)
                ) from None
            taken: dict[str, int] = {}
            for item in accepted:
                dest = _store(run, item, record, options, taken)
                index.add(
                    {
                        "sha256": item.sha256,
                        "file": item.path.name,
                        "host": item.host,
                        "run_id": run.run_id,
                        "path": str(dest),
                        "imported": utc_now(),
                    }
                )
                result = _result_from_log(item.host, item.log, dest, options.min_level)
                result.message = result.message or f"from kit {kit_id} ({item.path.name})"
                result.cleanup_by = "by kit, no proof"  # run.sh removes its dir; no report back
                results.append(result)
                _say(f"imported: {item.path.name} -> {dest}")
    code = exit_codes.for_run(
        findings=any(r.status == "findings" for r in results),
        failed=bool(refused) or any(r.status == "failed" for r in results),
    )
    if not accepted:
        _say(f"nothing new imported from kit {kit_id}")
        return code
    write_json_atomic(
        run.summary(),
        {
            "run_id": run.run_id,
            "plantsweep": __version__,
            "source": "usb-kit",
            "kit": {"kit_id": kit_id, "name": record.name, "stick": str(kit)},
            "scan_type": ",".join(sorted({str(a.log["scan_type"]) for a in accepted})),
            "action": "log-only",
            "min_level": options.min_level,
            "started": started,
            "finished": utc_now(),
            "exit_code": code,
            "interrupted": False,
            "hosts": [r.as_summary() for r in results],
            "refused": refused,
            "already_imported": already,
        },
    )
    recap(results)
    _say(f"logs: {run.path}")
    store_run(run.path, "kit", options.store)
    return code
