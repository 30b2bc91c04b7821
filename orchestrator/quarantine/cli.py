"""`plantsweep quarantine list|restore`: the command line over the vault.

plantsweep quarantine list [--host H] [--json]
plantsweep quarantine restore ID -i INVENTORY --reason WHY [--force]

A restore needs the reviewer role and a reason; it is refused before any host is touched if
the audit trail cannot record it, and its entry names the file, host and hash.
"""

from __future__ import annotations

import argparse
import getpass
import json
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator import exit_codes
from orchestrator.errors import UsageError
from orchestrator.results import utc_now, write_json_atomic

if TYPE_CHECKING:  # imported when a command runs: building the parser stays cheap
    from orchestrator.quarantine.vault import Vault, VaultEntry


def add_parser(
    sub: Any, add_inventory_args: Callable[[argparse.ArgumentParser], None], parser_class: type
) -> None:
    """`quarantine` with its `list` and `restore` sub-commands (parser_class: the CLI's)."""
    q = sub.add_parser(
        "quarantine", help="files quarantined in the controller's vault: list, restore"
    )
    qsub = q.add_subparsers(dest="quarantine_command", metavar="ACTION", parser_class=parser_class)
    qsub.required = True
    ls = qsub.add_parser("list", help="quarantined files (oldest first)")
    ls.add_argument("--host", metavar="NAME", help="only files taken from this host")
    ls.add_argument("--json", action="store_true", help="the index entries as JSON")
    restore = qsub.add_parser(
        "restore", help="put a quarantined file back on its host, byte for byte, with its metadata"
    )
    restore.add_argument("id", metavar="ID", help="the id shown by `plantsweep quarantine list`")
    add_inventory_args(restore)
    restore.add_argument(
        "--force",
        action="store_true",
        help="replace whatever is at the path now; restore an entry already restored",
    )
    restore.add_argument(
        "--reason", required=True, help="why the file goes back (kept in the audit trail)"
    )
    restore.add_argument("--known-hosts", metavar="FILE", help="known_hosts (~/.ssh/known_hosts)")
    restore.add_argument("-k", "--ask-pass", action="store_true", help="prompt for the password")
    restore.add_argument("--connect-timeout", type=float, default=10.0, metavar="S")
    restore.add_argument("--command-timeout", type=float, default=60.0, metavar="S")


def quarantine_command(args: argparse.Namespace, extra_vars: dict[str, Any] | None = None) -> int:
    from orchestrator.quarantine.vault import Vault

    vault = Vault.open()
    if args.quarantine_command == "list":
        return _list(vault, args.host, args.json)
    return _restore(vault, args, extra_vars or {})


def _ns_time(ns: int) -> str:
    return (
        datetime.fromtimestamp(ns / 1e9, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    )


def _list(vault: Vault, host: str | None, as_json: bool) -> int:
    entries = vault.entries(host)
    if as_json:
        print(json.dumps([e.as_json() for e in entries], indent=2))
        return exit_codes.OK
    rows = [("ID", "QUARANTINED", "HOST", "PATH", "SIZE", "MODE", "LEVEL", "RULE", "STATE")]
    for e in entries:
        rows.append(
            (
                e.id,
                e.quarantined_at,
                e.host,
                e.path,
                str(e.size),
                f"{e.mode:04o}",
                e.level or "-",
                e.rule or "-",
                e.state,
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    for r in rows:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=False)) + "  " + r[-1])
    print(f"{len(entries)} file(s) in {vault.root}")
    return exit_codes.OK


def _restore(vault: Vault, args: argparse.Namespace, extra_vars: dict[str, Any]) -> int:
    from orchestrator.audit import record as audit_record
    from orchestrator.connections import SSHOptions, Timeouts, make_connection
    from orchestrator.errors import HostPatternError
    from orchestrator.inventory import load_inventory
    from orchestrator.journal import Journal, journal_dir
    from orchestrator.quarantine.remote import restore_file
    from orchestrator.quarantine.vault import controller_user
    from orchestrator.results import new_run_id
    from orchestrator.session import new_session
    from orchestrator.targets import target_for

    entry = vault.entry(args.id)
    if entry.restored_at and not args.force:
        raise UsageError(
            f"{entry.id} was already restored to {entry.host}:{entry.path} at "
            f"{entry.restored_at}; pass --force to restore it again"
        )
    if not args.reason.strip():
        raise UsageError("a reason is required to restore a quarantined file (--reason)")
    actor = audit_record.authorise(args.store, "restore")
    inventory = load_inventory(args.inventory, extra_vars=extra_vars)
    try:
        hostvars = inventory.host_vars(entry.host)
    except HostPatternError:
        raise UsageError(
            f"{entry.id} was taken from host {entry.host}, which is not in the inventory"
        ) from None
    password = getpass.getpass("SSH password: ") if args.ask_pass else None
    target = target_for(entry.host, hostvars, password)
    timeouts = Timeouts(
        connect=args.connect_timeout,
        command=args.command_timeout,
        transfer=max(args.command_timeout, 120.0),
    )
    ssh = SSHOptions(
        known_hosts=Path(args.known_hosts) if args.known_hosts else None,
        banner_timeout=args.connect_timeout,
    )
    with tempfile.TemporaryDirectory(prefix="plantsweep-restore-") as tmp:
        plain = Path(tmp) / "plain"
        vault.decrypt_to(entry, plain)  # authenticated and re-hashed before any host is touched
        journal = Journal.open(journal_dir(), new_run_id(), list(args.inventory))
        session = new_session(
            make_connection(target, ssh, timeouts), target, timeouts, None, journal
        )
        try:
            with session:
                answer = restore_file(session, plain, entry, force=args.force)
        finally:
            journal.finished()
    now = utc_now()
    notes = [*entry.notes, *answer.get("notes", [])]
    vault.update(entry.id, restored_at=now, restored_by=controller_user(), notes=notes)
    logged = _record_in_log(entry, now, answer)
    audit_record.record(
        args.store,
        actor,
        "restore",
        "quarantine",
        entry.id,
        old={"state": entry.state, "restored_at": entry.restored_at},
        new={
            "host": entry.host,
            "path": entry.path,
            "sha256": entry.sha256,
            "restored_at": now,
            "forced": bool(args.force),
        },
        reason=args.reason,
    )
    print(
        f"restored {entry.id} to {entry.host}:{entry.path} ({answer['size']} bytes, mode "
        f"{answer['mode']:04o}, owner {answer['uid']}:{answer['gid']}, mtime "
        f"{_ns_time(answer['mtime_ns'])})" + "".join(f"; {n}" for n in answer.get("notes", []))
    )
    if not logged:
        print(f"note: the scan log {entry.log} is gone; the restore is recorded in the vault only")
    proof = session.proof
    if proof is not None and not proof.clean:
        print(f"WARNING: {entry.host}: the session's temp dir could not be proven removed")
        return exit_codes.HOST_FAILED
    return exit_codes.OK


def _record_in_log(entry: VaultEntry, when: str, answer: dict[str, Any]) -> bool:
    """Append the restore to the scan log that recorded the quarantine (if it still exists)."""
    from orchestrator.quarantine.vault import controller_user

    if not entry.log:
        return False
    path = Path(entry.log)
    try:
        log = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    log.setdefault("actions", []).append(
        {
            "action": "restore",
            "path": entry.path,
            "sha256": entry.sha256,
            "result": "restored",
            "vault_id": entry.id,
            "message": f"restored by {controller_user()} with mode {answer['mode']:04o}",
            "time": when,
        }
    )
    write_json_atomic(path, log)
    return True
