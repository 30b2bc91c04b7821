"""Inventory hosts in the store, so that `plantsweep status` counts hosts never scanned."""

from __future__ import annotations

from sqlalchemy import insert, select, update

from orchestrator.audit import trail
from orchestrator.audit.identity import Actor, here
from orchestrator.inventory import load_inventory
from orchestrator.results import utc_now
from orchestrator.store import schema
from orchestrator.store.database import Store


def register_inventory_hosts(store: Store, inventories: list[str], actor: Actor) -> int:
    """Add (or update the place of) every host of the inventories; returns how many are new.
    Plant variables come from the inventory as in scan logs: site, area, line, cell,
    criticality, and `scan_interval_days` (the overdue limit of that host)."""
    inventory = load_inventory(inventories)
    hosts = schema.hosts
    now = utc_now()
    new = 0
    with store.begin() as conn:
        for host in inventory.select("all"):
            hv = inventory.host_vars(host.name)
            site = str(hv.get("site") or "")
            values = {k: str(hv.get(k) or "") for k in ("area", "line", "cell", "criticality")}
            interval = hv.get("scan_interval_days")
            values["scan_interval_days"] = int(interval) if str(interval).isdigit() else None
            found = conn.execute(
                select(hosts.c.id, *(hosts.c[k] for k in values))
                .where(hosts.c.site == site, hosts.c.name == host.name)
            ).first()
            object_id = f"{site}/{host.name}"
            if found is None:
                conn.execute(insert(hosts).values(site=site, name=host.name, first_seen=now,
                                                  last_seen=now, **values))
                trail.append(conn, actor, "inventory_change", "host", object_id, new=values,
                             where=here(site))
                new += 1
                continue
            old = {k: getattr(found, k) for k in values}
            if old != values:
                conn.execute(update(hosts).where(hosts.c.id == found.id).values(**values))
                trail.append(conn, actor, "inventory_change", "host", object_id, old=old,
                             new=values, where=here(site))
    return new
