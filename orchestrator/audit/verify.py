"""`plantsweep audit verify`: recompute the whole trail and name the first bad entry.

Checked, in one pass over the entries in seq order (streamed, so millions of entries are fine):

* seq runs 1..n without gaps; each entry's JSON names its own seq (else: out of order, an
  entry inserted, or entries deleted and the rest renumbered);
* the leaf hash recomputed from the stored entry text equals the stored one (content changed);
* the searchable columns (ts, user_id, action, object_type, object_id) equal the entry's JSON;
* chain_hash = SHA-256(previous chain_hash || leaf); an entry whose chain skips its predecessor
  shows that predecessor was inserted;
* time going backwards is a warning (reported, never "fixed");
* `audit_head` matches the last entry (else truncation or tampering);
* every stored checkpoint, and every checkpoint of `--checkpoint FILE` (exported earlier, e.g.
  kept by the SIEM): signature valid under a trusted key, size <= entries (else truncation), and
  the Merkle root over the first `size` leaves *recomputed from the entry texts* equals it. A
  rewrite with recomputed hashes and chain is caught there; the report then names the range
  between the last checkpoint that verifies and the first that does not.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import select

from orchestrator import exit_codes
from orchestrator.audit import trail
from orchestrator.audit.checkpoint import (
    Note,
    NoteError,
    fingerprint,
    keys_dir,
    parse_note,
    parse_notes_file,
    trusted_keys,
)
from orchestrator.audit.identity import Actor, Where, os_actor
from orchestrator.audit.merkle import MerkleBuilder
from orchestrator.store import Store, schema

AUDIT_FAILED = exit_codes.AUDIT_FAILED  # `plantsweep audit verify` on a failed trail

MAX_PROBLEMS = 50
MAX_WARNINGS = 20
_MAX_MISMATCHES = 10_000


@dataclass(order=True)
class Problem:
    seq: float  # the first bad seq it names (math.inf: no particular entry)
    rank: int  # among problems at one seq, the lower rank is the better explanation
    message: str


@dataclass
class VerifyReport:
    ok: bool
    origin: str
    entries: int
    head_seq: int
    checkpoints: int  # stored checkpoints that verified
    checkpoints_stored: int
    external_checkpoints: int  # from --checkpoint FILE that verified
    external_given: int
    last_checkpoint: str | None  # created time of the newest stored checkpoint that verified
    last_checkpoint_size: int | None
    last_checkpoint_note: str | None
    key_ids: list[str] = field(default_factory=list)  # signed-note key ids seen valid
    fingerprints: list[str] = field(default_factory=list)
    first_bad_seq: int | None = None
    first_bad_range: tuple[int, int] | None = None
    problems: list[str] = field(default_factory=list)  # the first is the headline
    warnings: list[str] = field(default_factory=list)

    @property
    def result(self) -> str:
        return "PASS" if self.ok else "FAIL"

    def summary(self) -> str:
        if not self.ok:
            return f"FAIL: {self.problems[0]}"
        parts = [f"{self.entries} entries", f"{self.checkpoints} checkpoints"]
        if self.external_given:
            parts.append(f"{self.external_checkpoints} exported checkpoints")
        if self.last_checkpoint:
            parts.append(f"last checkpoint {self.last_checkpoint} "
                         f"(covers {self.last_checkpoint_size})")
        if self.key_ids:
            parts.append("key ids " + ", ".join(self.key_ids))
        return "PASS: " + ", ".join(parts)

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["result"] = self.result
        data["first_bad_range"] = list(self.first_bad_range) if self.first_bad_range else None
        return data


@dataclass
class _Check:
    """A checkpoint to check: where it came from and what it says."""

    note: Note
    label: str  # "checkpoint of <time>" / "exported checkpoint 3"
    stored: bool
    row_size: int | None = None
    row_root: str | None = None


def _label(note: Note, stored: bool, index: int) -> str:
    if note.created:
        return f"checkpoint of {note.created}"
    return f"checkpoint {index}" if stored else f"exported checkpoint {index}"


def _json_get(data: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


_COLUMNS = {
    "ts": ("ts",),
    "user_id": ("who", "user_id"),
    "action": ("what", "action"),
    "object_type": ("what", "object_type"),
    "object_id": ("what", "object_id"),
}


def _parse_time(text: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(text))
    except ValueError:
        return None


def verify(
    store: Store,
    checkpoints_file: Path | str | None = None,
    *,
    trusted: list[Ed25519PublicKey] | None = None,
    record: bool = True,
    actor: Actor | None = None,
    where: Where | None = None,
) -> VerifyReport:
    """Verify the whole trail. With `record`, the verification is itself appended to the trail
    (action `audit_verify`, whatever the result: a failed verification is an event too)."""
    keys = trusted if trusted is not None else trusted_keys()
    problems: list[Problem] = []
    warnings: list[str] = []
    extra_warnings = 0

    def problem(seq: float, rank: int, message: str) -> None:
        if len(problems) < MAX_PROBLEMS or seq < min(problems).seq:
            problems.append(Problem(seq, rank, message))

    def warn(message: str) -> None:
        nonlocal extra_warnings
        if len(warnings) < MAX_WARNINGS:
            warnings.append(message)
        else:
            extra_warnings += 1

    external = parse_notes_file(Path(checkpoints_file)) if checkpoints_file else []
    table = schema.audit_entries
    checks: list[_Check] = []
    with store.connect() as conn:
        origin = str(conn.execute(
            select(schema.store_meta.c.value).where(schema.store_meta.c.key == "install_id")
        ).scalar() or "")
        head = conn.execute(
            select(schema.audit_head.c.seq, schema.audit_head.c.chain_hash)
            .where(schema.audit_head.c.id == 1)
        ).one()
        rows_cp = conn.execute(
            select(schema.audit_checkpoints).order_by(schema.audit_checkpoints.c.id)
        ).all()
        for index, row in enumerate(rows_cp, 1):
            try:
                note = parse_note(row.note)
            except NoteError as exc:
                problem(math.inf, 5, f"checkpoint of {row.created}: malformed note ({exc})")
                continue
            note.created = row.created
            checks.append(_Check(note, _label(note, True, index), True, int(row.size),
                                 row.root_hash))
        for index, note in enumerate(external, 1):
            checks.append(_Check(note, _label(note, False, index) + " (exported)", False))
        wanted = {c.note.size for c in checks}

        builder = MerkleBuilder()
        roots: dict[int, bytes] = {}
        count = 0
        expected = 1
        prev_chain, prev2_chain = trail.GENESIS, None
        prev_seq, prev2_seq = 0, 0
        prev_ts: datetime | None = None
        last_chain = trail.GENESIS
        mismatches: list[tuple[int, Any, bool]] = []  # (row seq, seq in its JSON, leaf intact)
        rows = conn.execution_options(yield_per=2000).execute(
            select(table.c.seq, table.c.ts, table.c.user_id, table.c.action, table.c.object_type,
                   table.c.object_id, table.c.entry, table.c.leaf_hash, table.c.chain_hash)
            .order_by(table.c.seq)
        )
        for row in rows:
            count += 1
            seq = int(row.seq)
            if seq != expected:
                missing = (f"entry {expected} missing" if seq == expected + 1
                           else f"entries {expected}..{seq - 1} missing")
                problem(expected, 0, f"{missing} (seq jumps {expected - 1} -> {seq})")
            leaf = trail.leaf_hash(row.entry.encode("utf-8"))
            builder.add(leaf)
            if builder.size in wanted:
                roots[builder.size] = builder.root()
            leaf_ok = leaf == row.leaf_hash
            if not leaf_ok:
                problem(seq, 2, f"entry {seq}: content changed (hash differs)")
            try:
                data = json.loads(row.entry)
            except ValueError:
                data = None
                problem(seq, 2, f"entry {seq}: not valid JSON")
            if isinstance(data, dict):
                if data.get("seq") != seq and len(mismatches) < _MAX_MISMATCHES:
                    mismatches.append((seq, data.get("seq"), leaf_ok))
                for column, path in _COLUMNS.items():
                    stored, inside = getattr(row, column), _json_get(data, *path)
                    if stored != inside:
                        problem(seq, 3, f"entry {seq}: column {column} is {stored!r} but the "
                                        f"entry says {inside!r}")
                ts = _parse_time(data.get("ts"))
                if ts is not None and prev_ts is not None and ts < prev_ts:
                    warn(f"entry {seq}: time goes backwards ({data.get('ts')} is before entry "
                         f"{prev_seq}'s time)")
                prev_ts = ts or prev_ts
            elif data is not None:
                problem(seq, 2, f"entry {seq}: not an audit entry")
            try:
                chain_ok = row.chain_hash == trail.chain_hash(prev_chain, row.leaf_hash)
                skips = (not chain_ok and prev2_chain is not None
                         and row.chain_hash == trail.chain_hash(prev2_chain, row.leaf_hash))
            except ValueError:
                chain_ok, skips = False, False
            if skips:
                problem(prev_seq, 1, f"entry {prev_seq}: inserted (entry {seq} chains directly "
                                     f"to entry {prev2_seq})")
            elif not chain_ok:
                problem(seq, 4, f"entry {seq}: chain hash broken (does not follow from "
                                f"{'the start' if prev_seq == 0 else f'entry {prev_seq}'})")
            prev2_chain, prev_chain = prev_chain, row.chain_hash
            prev2_seq, prev_seq = prev_seq, seq
            last_chain = row.chain_hash
            expected = seq + 1

    last_seq = prev_seq
    _explain_mismatches(mismatches, problem)

    # The head: where the next append will continue.
    if head.seq > last_seq:
        problem(last_seq + 1, 0, f"trail truncated: the audit head records {head.seq} entries, "
                                 f"the store has {last_seq}")
    elif head.seq < last_seq:
        problem(head.seq + 1, 1, f"entries {head.seq + 1}..{last_seq} were added without moving "
                                 f"the audit head")
    elif head.chain_hash != last_chain:
        problem(last_seq or math.inf, 4, f"the audit head's chain hash does not match entry "
                                         f"{last_seq}")

    # The checkpoints.
    key_ids: set[str] = set()
    fingerprints: set[str] = set()
    good_sizes: set[int] = set()
    bad: list[tuple[int, str]] = []  # (size, label) whose root does not match
    stored_ok = external_ok = 0
    last_good: _Check | None = None
    for check in checks:
        note = check.note
        if note.origin != origin:
            if check.stored:
                problem(math.inf, 5, f"{check.label}: for another trail ({note.origin!r})")
            else:
                warn(f"{check.label}: for another trail ({note.origin!r}), ignored")
            continue
        signer = note.verified_by(keys)
        if signer is None:
            hint = "" if keys else f"; no trusted public key in {keys_dir()}"
            problem(math.inf, 5, f"{check.label} (size {note.size}): signature not valid under "
                                 f"any trusted key (key id {', '.join(note.key_ids())}{hint})")
            continue
        if check.stored and (check.row_size != note.size or check.row_root != note.root.hex()):
            problem(math.inf, 5, f"{check.label}: its size/root columns differ from its signed "
                                 f"note")
        fingerprints.add(signer)
        key_ids.update(kid.hex() for name, kid, _ in note.signatures if name == note.origin)
        if note.size > count:
            problem(count + 1, 0, f"trail truncated: {check.label} covers {note.size} entries, "
                                  f"the store has {count}")
            continue
        if roots.get(note.size, _root_of_empty(note.size)) != note.root:
            bad.append((note.size, check.label))
            continue
        good_sizes.add(note.size)
        if check.stored:
            stored_ok += 1
            if last_good is None or note.size >= last_good.note.size:
                last_good = check
        else:
            external_ok += 1
    first_range: tuple[int, int] | None = None
    if bad:
        size, label = min(bad)
        after = max((s for s in good_sizes if s < size), default=0)
        if any(p.seq <= size for p in problems):  # the entry problems found explain it
            problem(math.inf, 6, f"{label} (size {size}) does not match the entries")
        elif size == after + 1:
            problem(size, 2, f"entry {size}: content changed ({label} does not match)")
        else:
            problem(after + 1, 6, f"entries rewritten: {label} (size {size}) does not match; "
                                  f"the first bad entry is in seq {after + 1}..{size} (after the "
                                  f"last checkpoint that verifies)")
            first_range = (after + 1, size)

    if not checks and count:
        warn("no checkpoint yet: a truncated trail cannot be detected")
    elif not problems and last_good is not None and count > last_good.note.size:
        first_open = last_good.note.size + 1
        warn(f"entry {count} is not covered by a checkpoint yet" if first_open == count
             else f"entries {first_open}..{count} are not covered by a checkpoint yet")
    if extra_warnings:
        warnings.append(f"... and {extra_warnings} more warnings")

    problems.sort()
    first = problems[0] if problems else None
    report = VerifyReport(
        ok=not problems,
        origin=origin,
        entries=count,
        head_seq=int(head.seq),
        checkpoints=stored_ok,
        checkpoints_stored=len(rows_cp),
        external_checkpoints=external_ok,
        external_given=len(external),
        last_checkpoint=last_good.note.created if last_good else None,
        last_checkpoint_size=last_good.note.size if last_good else None,
        last_checkpoint_note=last_good.note.text if last_good else None,
        key_ids=sorted(key_ids),
        fingerprints=sorted(fingerprints),
        first_bad_seq=int(first.seq) if first and first.seq != math.inf else None,
        first_bad_range=first_range if first and first.rank == 6 else None,
        problems=[p.message for p in problems],
        warnings=warnings,
    )
    if record:
        record_verification(store, report, actor=actor, where=where)
    return report


def _root_of_empty(size: int) -> bytes | None:
    return MerkleBuilder().root() if size == 0 else None


def _explain_mismatches(mismatches: list[tuple[int, Any, bool]], problem: Any) -> None:
    """Entries whose JSON names another seq: inserted, deleted and renumbered, or reordered."""
    if not mismatches:
        return
    seq, claimed, leaf_ok = mismatches[0]
    if not isinstance(claimed, int) or isinstance(claimed, bool):
        problem(seq, 1, f"entry {seq}: its seq is missing from the entry")
        return
    holders = {c: s for s, c, _ in mismatches if isinstance(c, int)}
    if claimed < seq and leaf_ok:
        what = (f"entry {claimed}: an extra entry was inserted" if seq - claimed == 1
                else f"entries {claimed}..{seq - 1}: extra entries were inserted")
        problem(claimed, 1, f"{what} (the original entry {claimed} is stored as seq {seq})")
    elif (claimed > seq and len(mismatches) > 1 and mismatches[1][:2] == (seq + 1, claimed + 1)
          and seq not in holders):
        what = (f"entry {seq} missing" if claimed == seq + 1
                else f"entries {seq}..{claimed - 1} missing")
        problem(seq, 0, f"{what} (the later entries were renumbered: seq {seq} holds entry "
                        f"{claimed})")
    else:
        where = f", entry {seq} is stored as seq {holders[seq]}" if seq in holders else ""
        problem(seq, 1, f"entry {seq} out of order (seq {seq} holds entry {claimed}{where})")


def record_verification(
    store: Store, report: VerifyReport, *, actor: Actor | None = None, where: Where | None = None
) -> int:
    """Append the `audit_verify` entry for a verification that was run."""
    with store.begin() as conn:
        return trail.append(
            conn, actor or os_actor(), "audit_verify", "audit_trail", report.origin or "-",
            new={"result": report.result, "entries": report.entries,
                 "checkpoints": report.checkpoints,
                 "external_checkpoints": report.external_checkpoints,
                 "first_bad_seq": report.first_bad_seq,
                 "problem": report.problems[0] if report.problems else None},
            where=where,
        )


def trusted_fingerprints() -> list[str]:
    return sorted(fingerprint(k) for k in trusted_keys())
