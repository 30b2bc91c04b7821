"""The knowledge data in use: an imported signed bundle, else the default shipped with the package.

    k = load_knowledge()             # verified imported bundle, or orchestrator/data/knowledge
    k.date, k.version, k.origin      # newest source date, data version, "bundle"/"default"
    warn_if_stale(k)                 # one stderr line per process when older than the limit

Imported bundles live in ``$PLANTSWEEP_HOME/data/knowledge/<version>/`` (the pattern bundle
store layout, see orchestrator/bundles/store.py), checked again against the trusted keys
(``$PLANTSWEEP_HOME/trusted-keys/*.pub``) every time they are loaded. The default data is
part of the installed package (like the default patterns) and so trusted without a signature.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from orchestrator import bundles
from orchestrator.bundles.verify import verify_installed
from orchestrator.knowledge.errors import KnowledgeError
from orchestrator.knowledge.sources import DATA_FILES
from orchestrator.patterns_cli import trusted_keys_dir

BUNDLE_NAME = "knowledge"
KIND = "knowledge"
DEFAULT_DIR = Path(__file__).resolve().parent.parent / "data" / "knowledge"
DEFAULT_MAX_AGE_DAYS = 90
MAX_AGE_ENV = "PLANTSWEEP_MAX_DATA_AGE"


def store_dir() -> Path:
    """Where imported data bundles are installed."""
    home = os.environ.get("PLANTSWEEP_HOME")
    base = Path(home) if home else Path.home() / ".local" / "share" / "plantsweep"
    return base / "data"


@dataclass(frozen=True)
class Knowledge:
    version: int
    date: date | None  # the newest source date: how current the data is
    origin: str  # "bundle" (imported, signed) or "default" (shipped with the package)
    path: Path
    sources: list[dict[str, Any]]
    eol: dict[str, Any] = field(repr=False)
    windows_builds: dict[str, Any] = field(repr=False)
    kev: dict[str, Any] = field(repr=False)
    osv: dict[str, Any] = field(repr=False)

    def age_days(self, today: date | None = None) -> int | None:
        return None if self.date is None else ((today or date.today()) - self.date).days

    def stamp(self) -> dict[str, Any]:
        """``{version, date, origin}``: what a report says about the data it used."""
        return {
            "version": self.version,
            "date": self.date.isoformat() if self.date else None,
            "origin": self.origin,
        }


def from_files(files: dict[str, bytes], origin: str, path: Path) -> Knowledge:
    """Knowledge from the raw data files (``{name: bytes}``)."""
    try:
        data = {name: json.loads(files[name].decode("utf-8")) for name in DATA_FILES}
    except KeyError as exc:
        raise KnowledgeError(f"knowledge data lacks {exc.args[0]}", path=str(path)) from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise KnowledgeError(f"knowledge data is not valid JSON: {exc}", path=str(path)) from None
    meta = data["sources.json"]
    raw_date = meta.get("date")
    return Knowledge(
        version=int(meta.get("version") or 0),
        date=date.fromisoformat(raw_date) if raw_date else None,
        origin=origin,
        path=path,
        sources=list(meta.get("sources") or []),
        eol=data["eol.json"],
        windows_builds=data["windows_builds.json"],
        kev=data["kev.json"],
        osv=data["osv.json"],
    )


def load_default(folder: Path = DEFAULT_DIR) -> Knowledge:
    files = {}
    for name in DATA_FILES:
        try:
            files[name] = (folder / name).read_bytes()
        except OSError as exc:
            raise KnowledgeError(
                f"default knowledge data missing: {exc.strerror}", path=str(folder / name)
            ) from None
    return from_files(files, "default", folder)


def load_knowledge(today: date | None = None) -> Knowledge:
    """The imported bundle (verified again now) if there is one, else the default data.

    A bundle that no longer verifies (edited on disk, key removed, expired) is an error, not a
    silent fall-back: the user imported it to be used."""
    found = bundles.installed(store_dir(), BUNDLE_NAME)
    if found is None:
        return load_default()
    keys = sorted(trusted_keys_dir().glob("*.pub"))
    try:
        manifest, files = verify_installed(found[1], keys, today, kind=KIND)
    except bundles.BundleError as exc:
        raise KnowledgeError(
            f"installed knowledge data refused: {exc.message}", path=exc.path
        ) from None
    knowledge = from_files(files, "bundle", found[1])
    if knowledge.version != manifest.version:
        raise KnowledgeError("data version differs from the signed manifest", path=str(found[1]))
    return knowledge


def max_age_days(value: int | None = None) -> int:
    """The staleness limit: the option, else $PLANTSWEEP_MAX_DATA_AGE, else 90 days."""
    if value is not None:
        return value
    env = os.environ.get(MAX_AGE_ENV)
    if env is None or env == "":
        return DEFAULT_MAX_AGE_DAYS
    if not env.isdigit():
        raise KnowledgeError(f"{MAX_AGE_ENV} must be a number of days, got {env!r}")
    return int(env)


_warned: set[tuple[str, str]] = set()


def stale_message(knowledge: Knowledge, max_age: int, today: date | None = None) -> str | None:
    age = knowledge.age_days(today)
    if age is None or age <= max_age:
        return None
    return (
        f"WARNING: knowledge data dated {knowledge.date} is {age} days old (limit {max_age}): "
        "import a newer data bundle (plantsweep data import)"
    )


def warn_if_stale(
    knowledge: Knowledge, max_age: int | None = None, today: date | None = None
) -> bool:
    """Print the staleness warning on stderr, once per process and data set; True if stale."""
    message = stale_message(knowledge, max_age_days(max_age), today)
    if message is None:
        return False
    key = (str(knowledge.path), message)
    if key not in _warned:
        _warned.add(key)
        print(message, file=sys.stderr)
    return True


def use_knowledge(max_age: int | None = None, today: date | None = None) -> Knowledge:
    """``load_knowledge`` + ``warn_if_stale``: what a command that assesses hosts calls once
    (then puts ``knowledge.stamp()`` in its output, so every report names the data's date)."""
    knowledge = load_knowledge(today)
    warn_if_stale(knowledge, max_age, today)
    return knowledge
