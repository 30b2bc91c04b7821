"""The admission policy of one site, kept in the store (store_meta `checkpoint_policy:<site>`,
JSON), so every controller writing into one store applies the same rule.

A device is admitted when its last entry scan
- is no older than `max_scan_age` (default 2 days); the admission is valid until the scan's
  time + `max_scan_age`;
- was made with patterns dated no more than `max_pattern_age` (default 7 days) before the scan
  finished. The age is judged at scan time only: a vendor scanning at the office with the
  patterns current then is not refused because a new bundle came out since. Relative to now the
  patterns are therefore at most `max_pattern_age + max_scan_age` old (9 days by default);
  a scan log without a pattern date is refused;
- has no finding at or above `min_level` (default `warning`, the default `--min-level` of
  scans: `notice` findings are weak signals that need a person, not a refusal at the gate);
- is complete (`require_complete`, default on): a scan that stopped early proves nothing.

The site "" is the policy of a controller without sites. Changes are audited
(`config_change`, object `checkpoint_policy`, old and new value, reason required).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from orchestrator.audit import trail
from orchestrator.audit.identity import Actor, here
from orchestrator.checkpoint import LEVELS
from orchestrator.errors import UsageError
from orchestrator.store import schema
from orchestrator.store.database import Store

META_PREFIX = "checkpoint_policy:"
MAX_SITE_LEN = 64 - len(META_PREFIX)  # store_meta.key is 64 characters

_UNITS = {"w": 7 * 86400, "d": 86400, "h": 3600, "m": 60, "s": 1}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([wdhms]?)\s*$", re.IGNORECASE)


def parse_duration(text: str) -> timedelta:
    """"2d", "36h", "90m", "1w" or a plain number of days -> timedelta (must be > 0)."""
    match = _DURATION.match(text or "")
    if not match:
        raise UsageError(f"not a duration: {text!r} (use e.g. 2d, 36h, 90m, 1w)")
    seconds = float(match.group(1)) * _UNITS[(match.group(2) or "d").lower()]
    if seconds <= 0:
        raise UsageError(f"a duration must be more than zero, got {text!r}")
    return timedelta(seconds=seconds)


def format_duration(value: timedelta) -> str:
    """2 days, 1 day, 36 hours, 90 minutes: whole units where they fit, as a person says it."""
    seconds = int(value.total_seconds())
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''}"
    if seconds >= 86400:
        return f"{seconds / 86400:.1f} days"
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} hours"
    return f"{seconds} seconds"


@dataclass(frozen=True)
class Policy:
    site: str = ""
    max_scan_age: timedelta = timedelta(days=2)
    max_pattern_age: timedelta = timedelta(days=7)
    min_level: str = "warning"
    require_complete: bool = True

    def __post_init__(self) -> None:
        if self.min_level not in LEVELS:
            raise UsageError(
                f"min level must be one of {', '.join(LEVELS)}, got {self.min_level!r}"
            )
        if self.max_scan_age <= timedelta(0) or self.max_pattern_age <= timedelta(0):
            raise UsageError("policy ages must be more than zero")

    def as_json(self) -> dict[str, Any]:
        return {
            "site": self.site,
            "max_scan_age_s": int(self.max_scan_age.total_seconds()),
            "max_pattern_age_s": int(self.max_pattern_age.total_seconds()),
            "min_level": self.min_level,
            "require_complete": self.require_complete,
        }

    @classmethod
    def from_json(cls, site: str, data: dict[str, Any]) -> Policy:
        default = cls(site=site)
        return cls(
            site=site,
            max_scan_age=timedelta(seconds=int(data.get("max_scan_age_s")
                                               or default.max_scan_age.total_seconds())),
            max_pattern_age=timedelta(seconds=int(data.get("max_pattern_age_s")
                                                  or default.max_pattern_age.total_seconds())),
            min_level=str(data.get("min_level") or default.min_level),
            require_complete=bool(data.get("require_complete", default.require_complete)),
        )

    def describe(self) -> list[str]:
        return [
            f"site: {self.site or '(none)'}",
            f"max scan age: {format_duration(self.max_scan_age)}",
            f"max pattern age at scan time: {format_duration(self.max_pattern_age)}",
            f"dirty from level: {self.min_level}",
            f"complete scan required: {'yes' if self.require_complete else 'no'}",
        ]


def _key(site: str) -> str:
    if len(site) > MAX_SITE_LEN:
        raise UsageError(f"site name too long for a checkpoint policy (max {MAX_SITE_LEN})")
    return META_PREFIX + site


def load_policy(store: Store, site: str = "") -> Policy:
    """The site's stored policy, else the defaults."""
    return _decode(site, store.meta(_key(site)))


def _decode(site: str, raw: str | None) -> Policy:
    if not raw:
        return Policy(site=site)
    try:
        data = json.loads(raw)
    except ValueError:
        raise UsageError(f"the stored checkpoint policy of site {site!r} is not JSON") from None
    return Policy.from_json(site, data if isinstance(data, dict) else {})


def set_policy(
    store: Store,
    actor: Actor,
    reason: str,
    *,
    site: str = "",
    max_scan_age: timedelta | None = None,
    max_pattern_age: timedelta | None = None,
    min_level: str | None = None,
    require_complete: bool | None = None,
) -> tuple[Policy, Policy]:
    """Change the given settings of the site's policy, audited. Returns (old, new)."""
    if not (reason and reason.strip()):
        raise UsageError("a reason is required to change the checkpoint policy (--reason)")
    changes: dict[str, Any] = {}
    if max_scan_age is not None:
        changes["max_scan_age"] = max_scan_age
    if max_pattern_age is not None:
        changes["max_pattern_age"] = max_pattern_age
    if min_level is not None:
        changes["min_level"] = min_level
    if require_complete is not None:
        changes["require_complete"] = require_complete
    key = _key(site)
    with store.begin() as conn:
        raw = conn.execute(
            select(schema.store_meta.c.value).where(schema.store_meta.c.key == key)
            .with_for_update()
        ).scalar()
        old = _decode(site, raw)
        new = replace(old, **changes)
        store.set_meta(conn, key, json.dumps(new.as_json(), sort_keys=True))
        trail.append(conn, actor, "config_change", "checkpoint_policy", site or "(default)",
                     old=old.as_json(), new=new.as_json(), reason=reason, where=here(site))
    return old, new
