"""The persistent per-destination cursor: the audit seq up to which the destination accepted
every event. It only moves forward after a receiver accepted a batch (export.py)."""

from __future__ import annotations

from sqlalchemy import Connection, insert, select, update

from orchestrator.results import utc_now
from orchestrator.store import schema


def position(conn: Connection, name: str) -> int | None:
    """The stored position, or None for a destination never exported to."""
    c = schema.export_cursors
    found = conn.execute(select(c.c.position).where(c.c.name == name)).scalar()
    return None if found is None else int(found)


def save(conn: Connection, name: str, destination: str, seq: int) -> None:
    c = schema.export_cursors
    values = {"destination": destination, "position": seq, "updated": utc_now()}
    if conn.execute(select(c.c.name).where(c.c.name == name)).first() is None:
        conn.execute(insert(c).values(name=name, **values))
    else:
        conn.execute(update(c).where(c.c.name == name).values(**values))


def list_cursors(conn: Connection) -> list[tuple[str, str, int, str]]:
    c = schema.export_cursors
    rows = conn.execute(
        select(c.c.name, c.c.destination, c.c.position, c.c.updated).order_by(c.c.name)
    ).all()
    return [(r.name, r.destination, int(r.position), r.updated) for r in rows]
