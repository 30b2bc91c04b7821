"""The controller's memory of work already done: the fleet verdict cache and each host's
last scan (for ``--since-last``). File formats: agentless_scanner/verdicts.py.

    cache = VerdictCache.default()
    ids = archive_ids(patterns_zip)                 # rules_id, patterns_id of what is pushed
    cache.export(ids.rules_id, dest)                # -> --verdicts file, or False if none yet
    cache.previous_scan(host, dest)                 # -> --since file, or False
    cache.absorb(host, files_index, log)            # after the scan: learn from it

Verdicts are kept per rules_id (a hash of the YARA rule files) and libyara version; a host
with another libyara gets no verdicts and contributes none. Only files the content rules
really ran on become verdicts: ``unchecked`` files (YARA missing, match failed) never do.
"""

from __future__ import annotations

import contextlib
import fcntl
import gzip
import hashlib
import json
import os
import tempfile
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agentless_scanner.patterns import YARA_SUFFIXES, content_id, is_pattern_file
from agentless_scanner.verdicts import FORMAT

#: Oldest verdicts are not dropped; a cache above this many clean hashes stops growing.
MAX_CLEAN = 5_000_000

_lock = threading.Lock()


def default_dir() -> Path:
    """`$PLANTSWEEP_HOME/cache`, else `~/.cache/plantsweep/verdicts`."""
    home = os.environ.get("PLANTSWEEP_HOME")
    if home:
        return Path(home) / "cache"
    return Path.home() / ".cache" / "plantsweep" / "verdicts"


@dataclass(frozen=True)
class ArchiveIds:
    rules_id: str | None  # None: no YARA rules
    patterns_id: str


def _files_id(entries: list[tuple[str, bytes]]) -> str:
    return content_id((rel, hashlib.sha256(data).hexdigest()) for rel, data in entries)


def archive_ids(patterns_zip: Path) -> ArchiveIds:
    """The ids the scanner will compute for the pattern archive it is given."""
    with zipfile.ZipFile(patterns_zip) as zf:
        entries = [
            (info.filename, zf.read(info))
            for info in zf.infolist()
            if not info.is_dir() and is_pattern_file(info.filename.rsplit("/", 1)[-1])
        ]
    rules = [(rel, data) for rel, data in entries if rel.lower().endswith(YARA_SUFFIXES)]
    return ArchiveIds(_files_id(rules) if rules else None, _files_id(entries))


def _read_gz_json(path: Path) -> Any:
    with gzip.open(path, "rb") as fh:
        return json.loads(fh.read().decode("utf-8"))


def _write_gz_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as fh:
            fh.write(json.dumps(data, sort_keys=True).encode("utf-8"))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_files_index(path: Path) -> tuple[dict[str, Any], list[list[Any]]]:
    """(header, entries) of a scanner's --files-out file."""
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        header = json.loads(fh.readline())
        return header, [json.loads(line) for line in fh if line.strip()]


def _safe_name(host: str) -> str:
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in host)


class VerdictCache:
    def __init__(self, root: Path):
        self.root = Path(root)

    @classmethod
    def default(cls) -> VerdictCache:
        return cls(default_dir())

    def _verdict_file(self, rules_id: str) -> Path:
        return self.root / "verdicts" / f"{rules_id}.json.gz"

    def _host_file(self, host: str) -> Path:
        return self.root / "hosts" / f"{_safe_name(host)}.json.gz"

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """One writer at a time: threads of this run and other controller processes."""
        self.root.mkdir(parents=True, exist_ok=True)
        with _lock, open(self.root / ".lock", "a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    # -- to the host ---------------------------------------------------------------------

    def export(self, rules_id: str | None, dest: Path) -> bool:
        """Write the --verdicts file for `rules_id`; False if there are none."""
        path = self._verdict_file(rules_id) if rules_id else None
        if path is None or not path.is_file():
            return False
        # The cache file already has the scanner's format.
        dest.write_bytes(path.read_bytes())
        return True

    def previous_scan(self, host: str, dest: Path) -> bool:
        """Write the --since file for `host`; False if it was never scanned with a files index."""
        path = self._host_file(host)
        if not path.is_file():
            return False
        dest.write_bytes(path.read_bytes())
        return True

    # -- from the host -------------------------------------------------------------------

    def absorb(self, host: str, files_index: Path, log: dict[str, Any]) -> dict[str, int]:
        """Learn from one finished scan; returns counts for the log."""
        header, entries = read_files_index(files_index)
        findings = log.get("findings") or []
        learned = {"content": 0, "path": 0}
        with self._locked():
            if log.get("complete", True):
                # A partial scan still says something about every file it listed, but
                # --since must not carry over a scan that did not reach every file.
                _write_gz_json(
                    self._host_file(host),
                    {
                        "format": FORMAT,
                        "patterns_id": header.get("patterns_id"),
                        "options": header.get("options"),
                        "files": [e[:5] for e in entries],
                        "findings": findings,
                    },
                )
            rules_id, libyara = header.get("rules_id"), header.get("libyara")
            if rules_id and libyara:
                learned = self._add_verdicts(rules_id, libyara, entries, findings)
        return learned

    def _add_verdicts(
        self, rules_id: str, libyara: str, entries: list[list[Any]], findings: list[Any]
    ) -> dict[str, int]:
        path = self._verdict_file(rules_id)
        data: dict[str, Any] = {"format": FORMAT, "rules_id": rules_id, "libyara": libyara}
        data["clean"], data["matched"] = [], {}
        if path.is_file():
            old = _read_gz_json(path)
            if old.get("libyara") != libyara:
                return {"content": 0, "path": 0}  # another libyara: keep the first one's
            data = old
        books = {
            "content": (set(data["clean"]), data["matched"]),
            "path": (set(data.get("path_clean", [])), data.setdefault("path_matched", {})),
        }
        before = {k: len(c) + len(m) for k, (c, m) in books.items()}
        by_scope: dict[str, dict[str, Any]] = {"content": {}, "path": {}}
        for f in findings:
            if "archive_member" in f:
                continue
            for scope in by_scope:
                found = [
                    m for m in f.get("matches", []) if m["engine"] == "yara" and m["scope"] == scope
                ]
                by_scope[scope][f["sha256"] if scope == "content" else f["path"]] = found
        for entry in entries:
            self._learn(books["content"], entry[4], entry[5], by_scope["content"].get(entry[4]))
            if len(entry) >= 8:
                self._learn(books["path"], entry[6], entry[7], by_scope["path"].get(entry[0]))
        data["clean"] = sorted(books["content"][0])
        data["path_clean"] = sorted(books["path"][0])
        _write_gz_json(path, data)
        return {k: len(c) + len(m) - before[k] for k, (c, m) in books.items()}

    @staticmethod
    def _learn(
        book: tuple[set[str], dict[str, Any]], key: str, state: str, matches: list[Any] | None
    ) -> None:
        clean, matched = book
        if state == "clean" and len(clean) < MAX_CLEAN:
            clean.add(key)
        elif state == "matched" and matches:
            matched[key] = matches
