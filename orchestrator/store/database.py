"""Opening the store: URL resolution, engines, migrations, append-only triggers.

The URL is `--store URL`, else `$PLANTSWEEP_STORE`, else the SQLite file
`$PLANTSWEEP_HOME/store.sqlite` (else `~/.local/share/plantsweep/store.sqlite`). PostgreSQL URLs
(`postgresql://user@host/db`) carry no password: libpq reads it from `~/.pgpass` or
`$PGPASSFILE`, so it is never on a command line or in a log. `sslmode` and the other libpq
settings go in the URL's query (`?sslmode=verify-full`).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, insert, select, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError

from orchestrator import __version__
from orchestrator.errors import PlantsweepError
from orchestrator.results import utc_now
from orchestrator.store import schema

SCHEMA_VERSION = 3


class StoreError(PlantsweepError):
    """The store cannot be opened, is of a newer schema, or refused a write."""


def default_store_path() -> Path:
    home = os.environ.get("PLANTSWEEP_HOME")
    base = Path(home) if home else Path.home() / ".local" / "share" / "plantsweep"
    return base / "store.sqlite"


def store_url(explicit: str | None = None) -> str:
    """The URL to open: the explicit one, `$PLANTSWEEP_STORE`, or the SQLite default."""
    url = explicit or os.environ.get("PLANTSWEEP_STORE")
    if url:
        return url
    return f"sqlite:///{default_store_path()}"


def redacted(url: str) -> str:
    """The URL as it may be shown: any password replaced."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable store URL>"


# Triggers that make the audit tables append-only. They stop accidents and casual edits; an
# administrator who drops them is caught by `plantsweep audit verify` (hashes, checkpoints).
_APPEND_ONLY = ("audit_entries", "audit_checkpoints")

_SQLITE_TRIGGERS = [
    f"CREATE TRIGGER IF NOT EXISTS {t}_no_{op} BEFORE {op.upper()} ON {t} "
    f"BEGIN SELECT RAISE(ABORT, '{t} is append-only'); END"
    for t in _APPEND_ONLY
    for op in ("update", "delete")
]

_PG_TRIGGERS = [
    """CREATE OR REPLACE FUNCTION plantsweep_append_only() RETURNS trigger AS $$
    BEGIN RAISE EXCEPTION '% is append-only', TG_TABLE_NAME; END $$ LANGUAGE plpgsql""",
    *(
        f"CREATE OR REPLACE TRIGGER {t}_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON {t} "
        f"FOR EACH STATEMENT EXECUTE FUNCTION plantsweep_append_only()"
        for t in _APPEND_ONLY
    ),
]


def _create_v1(conn: Connection) -> None:
    schema.metadata.create_all(conn)
    for statement in _PG_TRIGGERS if conn.dialect.name == "postgresql" else _SQLITE_TRIGGERS:
        conn.execute(text(statement))
    conn.execute(insert(schema.audit_head).values(id=1, seq=0, chain_hash="0" * 64))
    conn.execute(
        insert(schema.store_meta),
        [
            # The trail's origin line in its signed checkpoints: unique per store.
            {"key": "install_id", "value": "plantsweep-" + secrets.token_hex(8)},
            {"key": "created", "value": utc_now()},
            {"key": "created_by_version", "value": __version__},
        ],
    )


def _add_export_cursors_v2(conn: Connection) -> None:
    # checkfirst: a store created by _create_v1 of this version has the table already.
    schema.export_cursors.create(conn, checkfirst=True)


def _add_asset_os_v3(conn: Connection) -> None:
    """assets.os: the `os` object of each asset record, filled in for the records stored."""
    from sqlalchemy import inspect

    if "os" not in {c["name"] for c in inspect(conn).get_columns("assets")}:
        conn.execute(text("ALTER TABLE assets ADD COLUMN os TEXT"))
    assets = schema.assets
    rows = conn.execute(select(assets.c.id, assets.c.data).where(assets.c.os.is_(None)))
    for row in rows.all():
        os_info = json.loads(row.data).get("os")
        if isinstance(os_info, dict):
            conn.execute(
                update(assets).where(assets.c.id == row.id)
                .values(os=json.dumps(os_info, sort_keys=True))
            )


# version -> the step that brings a store from version - 1 to it. Never edit a released step.
MIGRATIONS = {1: _create_v1, 2: _add_export_cursors_v2, 3: _add_asset_os_v3}


class Store:
    """An open store: `begin()` gives a transaction (a SQLAlchemy Connection)."""

    def __init__(self, engine: Engine, url: str):
        self.engine = engine
        self.url = url
        self.controller = socket.gethostname()

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextlib.contextmanager
    def begin(self) -> Iterator[Connection]:
        try:
            with self.engine.begin() as conn:
                yield conn
        except DBAPIError as exc:
            raise StoreError(f"the store refused a write: {_db_message(exc)}") from None

    @contextlib.contextmanager
    def connect(self) -> Iterator[Connection]:
        """A read-only use (no commit)."""
        try:
            with self.engine.connect() as conn:
                yield conn
        except DBAPIError as exc:
            raise StoreError(f"the store could not be read: {_db_message(exc)}") from None

    def meta(self, key: str) -> str | None:
        with self.connect() as conn:
            return conn.execute(
                select(schema.store_meta.c.value).where(schema.store_meta.c.key == key)
            ).scalar()

    def set_meta(self, conn: Connection, key: str, value: str) -> None:
        table = schema.store_meta
        found = conn.execute(select(table.c.value).where(table.c.key == key)).first()
        if found is None:
            conn.execute(insert(table).values(key=key, value=value))
        else:
            conn.execute(update(table).where(table.c.key == key).values(value=value))

    def dispose(self) -> None:
        self.engine.dispose()

    def __repr__(self) -> str:
        return f"Store({redacted(self.url)})"


def _db_message(exc: DBAPIError) -> str:
    text_ = str(exc.orig) if exc.orig is not None else str(exc)
    return text_.strip().splitlines()[0] if text_.strip() else type(exc).__name__


def _sqlite_engine(url: str) -> Engine:
    path = make_url(url).database
    if path and path != ":memory:":
        folder = Path(path).parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
            os.chmod(folder, 0o700) if not any(folder.iterdir()) else None
        except OSError as exc:
            raise StoreError(f"cannot create the store's folder: {exc.strerror or exc}",
                             path=str(folder)) from None
    engine = create_engine(url, connect_args={"timeout": 30})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # transactions are begun below, not by pysqlite
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # IMMEDIATE: take the write lock at the start, so two controllers appending to the
        # trail queue up instead of failing with "database is locked" halfway.
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def open_store(url: str | None = None, *, create: bool = True) -> Store:
    """Open (and create or migrate) the store at `url` (see store_url)."""
    url = store_url(url)
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise StoreError(f"not a store URL: {redacted(url)}") from None
    backend = parsed.get_backend_name()
    try:
        if backend == "sqlite":
            engine = _sqlite_engine(url)
        elif backend == "postgresql":
            if parsed.drivername == "postgresql":
                parsed = parsed.set(drivername="postgresql+psycopg")
            engine = create_engine(parsed, pool_pre_ping=True)
        else:
            raise StoreError(
                f"unsupported store {backend!r}: use sqlite:///PATH or postgresql://USER@HOST/DB"
            )
    except NoSuchModuleError as exc:
        raise StoreError(f"no database driver for {redacted(url)}: {exc}") from None
    store = Store(engine, url)
    try:
        _migrate(store, create)
    except DBAPIError as exc:
        engine.dispose()
        raise StoreError(f"cannot open the store {redacted(url)}: {_db_message(exc)}") from None
    except BaseException:
        engine.dispose()
        raise
    if backend == "sqlite" and parsed.database and parsed.database != ":memory:":
        with contextlib.suppress(OSError):
            os.chmod(parsed.database, 0o600)
    return store


def _migrate(store: Store, create: bool) -> None:
    with store.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # One migrator at a time when several controllers start at once.
            conn.execute(text("SELECT pg_advisory_xact_lock(74657311)"))
        has_meta = conn.dialect.has_table(conn, "store_meta")
        version = 0
        if has_meta:
            row = conn.execute(
                select(schema.store_meta.c.value).where(
                    schema.store_meta.c.key == "schema_version"
                )
            ).scalar()
            version = int(row) if row else 0
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"the store {redacted(store.url)} has schema version {version}; this plantsweep "
                f"({__version__}) knows up to {SCHEMA_VERSION}: upgrade plantsweep"
            )
        if version == SCHEMA_VERSION:
            return
        if version == 0 and not create:
            raise StoreError(f"no store at {redacted(store.url)}")
        for step in range(version + 1, SCHEMA_VERSION + 1):
            MIGRATIONS[step](conn)
            store.set_meta(conn, "schema_version", str(step))
