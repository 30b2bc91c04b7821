"""Inventory hosts in the store, so that `plantsweep status` counts hosts never scanned."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, insert, select, update

from orchestrator.audit import trail
from orchestrator.audit.identity import Actor, Where, here
from orchestrator.inventory import load_inventory
from orchestrator.results import utc_now
from orchestrator.store import schema
from orchestrator.store.database import Store


def upsert_host(conn: Connection, actor: Actor, where: Where, site: str, name: str,
                values: dict[str, Any], now: str, *, seen: bool) -> tuple[int, bool]:
    """The host's row id, created if new (and whether it was). A changed place (area, line,
    ...) is written and audited as an inventory change; `seen` also updates last_seen."""
    hosts = schema.hosts
    found = conn.execute(
        select(hosts.c.id, *(hosts.c[k] for k in values))
        .where(hosts.c.site == site, hosts.c.name == name)
    ).first()
    if found is None:
        host_id = conn.execute(
            insert(hosts).values(site=site, name=name, first_seen=now, last_seen=now, **values)
        ).inserted_primary_key[0]
        return int(host_id), True
    old = {k: getattr(found, k) for k in values}
    changes = dict(values, last_seen=now) if seen else values
    if seen or old != values:
        conn.execute(update(hosts).where(hosts.c.id == found.id).values(**changes))
    if old != values:
        trail.append(conn, actor, "inventory_change", "host", f"{site}/{name}", old=old,
                     new=values, where=where)
    return int(found.id), False


def register_inventory_hosts(store: Store, inventories: list[str], actor: Actor) -> int:
    """Add (or update the place of) every host of the inventories; returns how many are new.
    Plant variables come from the inventory as in scan logs: site, area, line, cell,
    criticality, and `scan_interval_days` (the overdue limit of that host)."""
    inventory = load_inventory(inventories)
    now = utc_now()
    new = 0
    with store.begin() as conn:
        for host in inventory.select("all"):
            hv = inventory.host_vars(host.name)
            site = str(hv.get("site") or "")
            values: dict[str, Any] = {
                k: str(hv.get(k) or "") for k in ("area", "line", "cell", "criticality")
            }
            interval = hv.get("scan_interval_days")
            values["scan_interval_days"] = int(interval) if str(interval).isdigit() else None
            _, created = upsert_host(conn, actor, here(site), site, host.name, values, now,
                                     seen=False)
            if created:
                trail.append(conn, actor, "inventory_change", "host", f"{site}/{host.name}",
                             new=values, where=here(site))
                new += 1
    return new
