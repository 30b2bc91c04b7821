"""Asset records in the store: the newest of each host, and a host's history.

Every scan log that carries an `asset` object is one row of the `assets` table (ingest.py), so a
host's asset history is its scans' history; nothing here writes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, func, select

from orchestrator.errors import UsageError
from orchestrator.store import schema


@dataclass
class HostAsset:
    site: str
    area: str
    line: str
    name: str
    criticality: str
    collected: str
    scan_id: str
    asset: dict[str, Any]

    @property
    def place(self) -> str:
        return "/".join(p for p in (self.site, self.area, self.line) if p) or "-"


def latest(
    conn: Connection,
    *,
    site: str | None = None,
    names: set[str] | None = None,
    os_only: bool = False,
) -> Iterator[HostAsset]:
    """The newest asset record of every host (of `site`, of `names`), by site and name, one at
    a time (a plant's records do not all fit in memory at once). `os_only`: the record holds
    only its `os` object (what end-of-life views need), read from its own column."""
    hosts, assets, logs = schema.hosts, schema.assets, schema.scan_logs
    newest = (
        select(assets.c.host_id, func.max(assets.c.collected).label("collected"))
        .group_by(assets.c.host_id)
        .subquery()
    )
    body = assets.c.os if os_only else assets.c.data
    query = (
        select(hosts.c.site, hosts.c.area, hosts.c.line, hosts.c.name, hosts.c.criticality,
               assets.c.id, assets.c.collected, body.label("data"), logs.c.scan_id)
        .select_from(
            hosts.join(newest, newest.c.host_id == hosts.c.id)
            .join(assets, and_(assets.c.host_id == newest.c.host_id,
                               assets.c.collected == newest.c.collected))
            .join(logs, logs.c.id == assets.c.scan_log_id)
        )
        .order_by(hosts.c.site, hosts.c.name, assets.c.id.desc())
    )  # fmt: skip
    if site is not None:
        query = query.where(hosts.c.site == site)
    if names is not None:
        query = query.where(hosts.c.name.in_(sorted(names)))
    seen: set[tuple[str, str]] = set()
    for r in conn.execution_options(stream_results=True, yield_per=200).execute(query):
        if (r.site, r.name) in seen:  # two logs collected in the same millisecond: newest id
            continue
        seen.add((r.site, r.name))
        if os_only:
            yield _host_asset(r, {"os": json.loads(r.data) if r.data else {}})
        else:
            yield _host_asset(r)


def history(conn: Connection, name: str, *, site: str | None = None) -> list[HostAsset]:
    """A host's asset records, oldest first; UsageError if the store has none."""
    hosts, assets, logs = schema.hosts, schema.assets, schema.scan_logs
    query = (
        select(hosts.c.site, hosts.c.area, hosts.c.line, hosts.c.name, hosts.c.criticality,
               assets.c.id, assets.c.collected, assets.c.data, logs.c.scan_id)
        .select_from(hosts.join(assets, assets.c.host_id == hosts.c.id)
                     .join(logs, logs.c.id == assets.c.scan_log_id))
        .where(hosts.c.name == name)
        .order_by(assets.c.collected, assets.c.id)
    )  # fmt: skip
    if site is not None:
        query = query.where(hosts.c.site == site)
    rows = conn.execute(query).all()
    sites = {r.site for r in rows}
    if len(sites) > 1:
        raise UsageError(
            f"host {name!r} exists at several sites ({', '.join(sorted(sites))}): pass --site"
        )
    if not rows:
        raise UsageError(f"the store has no asset record of host {name!r}")
    return [_host_asset(r) for r in rows]


def _host_asset(r: Any, asset: dict[str, Any] | None = None) -> HostAsset:
    return HostAsset(
        site=r.site, area=r.area, line=r.line, name=r.name, criticality=r.criticality,
        collected=r.collected, scan_id=r.scan_id,
        asset=json.loads(r.data) if asset is None else asset,
    )  # fmt: skip
