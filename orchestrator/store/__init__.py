"""The central store: scan logs, findings, assets, quarantine and inspection records, users,
the audit trail and the site-gate checkpoint, in one relational database.

    store = open_store()                       # $PLANTSWEEP_STORE, else the SQLite default
    with store.begin() as conn:                # one transaction; audit entries go in it too
        ...

SQLite (one file, zero set-up) is the default; a PostgreSQL URL makes it company-wide (several
controllers at several sites write into one server). Both run the same SQLAlchemy Core
statements; `schema.py` holds the tables and `database.py` the migrations.
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from orchestrator.store.database import Store, StoreError, open_store, store_url

__all__ = ["Store", "StoreError", "open_store", "store_url"]


def __getattr__(name: str) -> Any:
    # Lazy: `plantsweep` builds its parser from store/cli.py without importing SQLAlchemy.
    if name in __all__:
        from orchestrator.store import database

        return getattr(database, name)
    raise AttributeError(name)
