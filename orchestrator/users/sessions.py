"""Who is acting: `plantsweep login` sessions and `current_actor`.

    actor = current_actor(store)                 # the logged-in user, or the OS account
    require_role(actor, store, "sign")           # accounts.require_role

`login` checks the password (accounts.authenticate: failures are audited and count towards the
lockout) and makes a session: a random 256-bit token written to the 0600 file
`$PLANTSWEEP_HOME/session.json` (else `~/.local/state/plantsweep/session.json`) with the
username, the store's install_id and the expiry (default 8 hours). The store keeps only the
token's SHA-256 (table `sessions`), so reading the store does not let anyone act as the user.
A session counts only for the store it was made for, until it expires, the user logs out or is
deactivated. One session file per OS account: logging in to another store replaces it.

Without a valid session, `current_actor` gives the OS account (`os:<name>`, auth "os-account")
unless the store requires login (`plantsweep user policy --require-login on`), in which case it
refuses with "log in first: plantsweep login".
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select, update

from orchestrator.audit import trail
from orchestrator.audit.identity import Actor, Where, os_actor
from orchestrator.errors import UsageError
from orchestrator.results import utc_now
from orchestrator.store import schema
from orchestrator.store.database import Store
from orchestrator.users import accounts

DEFAULT_HOURS = 8.0
MAX_HOURS = 24.0 * 7


def session_path() -> Path:
    home = os.environ.get("PLANTSWEEP_HOME")
    base = Path(home) if home else Path.home() / ".local" / "state" / "plantsweep"
    return base / "session.json"


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def _iso(dt: datetime) -> str:
    return dt.replace(microsecond=0).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class Session:
    username: str
    full_name: str
    install_id: str
    expires: str


def _write_session_file(data: dict[str, Any]) -> Path:
    path = session_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2)
            fh.write("\n")
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    return path


def _read_session_file() -> dict[str, Any] | None:
    path = session_path()
    try:
        st = path.stat()
        if st.st_mode & 0o077:
            return None  # readable by others: not trusted (login again)
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not all(
        isinstance(data.get(k), str) for k in ("token", "username", "install_id", "expires")
    ):
        return None
    return data


def login(store: Store, username: str, password: str, *, hours: float = DEFAULT_HOURS,
          where: Where | None = None) -> Session:
    """Check the password and start a session (audited `login`)."""
    if not 0 < hours <= MAX_HOURS:
        raise UsageError(f"--hours must be more than 0 and at most {MAX_HOURS:g}")
    user = accounts.authenticate(store, username, password, purpose="login", where=where)
    install_id = store.meta("install_id") or ""
    token, expires = start_session(store, user, hours, where=where)
    _write_session_file({"username": user.username, "install_id": install_id,
                         "expires": expires, "token": token})
    return Session(user.username, user.full_name, install_id, expires)


def start_session(store: Store, user: accounts.UserInfo, hours: float, *,
                  where: Where | None = None, audit: dict[str, Any] | None = None
                  ) -> tuple[str, str]:
    """A new session of an authenticated user: (random token, expiry). The store keeps only
    the token's SHA-256; the `login` audit entry gets `audit` (e.g. the web client) too."""
    token = secrets.token_urlsafe(32)
    now = datetime.now(UTC)
    expires = _iso(now + timedelta(hours=hours))
    with store.begin() as conn:
        conn.execute(insert(schema.sessions).values(
            token_sha256=token_hash(token), user_id=user.id, created=_iso(now), expires=expires,
            ended=None, controller=store.controller,
        ))
        trail.append(conn, Actor(user.username, user.full_name, "password"), "login", "user",
                     user.username, new={"expires": expires, **(audit or {})}, where=where)
    return token, expires


def session_actor(store: Store) -> Actor | None:
    """The user of a valid, unexpired session for this store, else None."""
    data = _read_session_file()
    if data is None or data["install_id"] != (store.meta("install_id") or ""):
        return None
    now = utc_now()
    if data["expires"] <= now:
        return None
    sessions, users = schema.sessions, schema.users
    with store.connect() as conn:
        row = conn.execute(
            select(sessions.c.expires, sessions.c.ended, users.c.username, users.c.full_name,
                   users.c.active)
            .join(users, users.c.id == sessions.c.user_id)
            .where(sessions.c.token_sha256 == token_hash(data["token"]))
        ).first()
    if (row is None or row.ended is not None or row.expires <= now or not row.active
            or row.username != data["username"]):
        return None
    return Actor(user_id=row.username, full_name=row.full_name, auth="session")


def current_actor(store: Store, *, require_login: bool | None = None) -> Actor:
    """Who is acting: the logged-in user (auth "session"), else the OS account when the store
    (or `require_login=False`) allows it; else UsageError "log in first"."""
    actor = session_actor(store)
    if actor is not None:
        return actor
    required = accounts.login_required(store) if require_login is None else require_login
    if required:
        raise UsageError("log in first: plantsweep login")
    return os_actor()


def acting(store: Store, permission: str, *, require_login: bool | None = None) -> Actor:
    """current_actor + require_role in one call: the actor, allowed to do `permission`."""
    actor = current_actor(store, require_login=require_login)
    accounts.require_role(actor, store, permission)
    return actor


def logout(store: Store, *, where: Where | None = None) -> str | None:
    """End this OS account's session (in the store and the file). Returns the username."""
    data = _read_session_file()
    path = session_path()
    if data is None:
        with contextlib.suppress(OSError):
            path.unlink()
        return None
    username = data["username"]
    if data["install_id"] == (store.meta("install_id") or ""):
        sessions, users = schema.sessions, schema.users
        with store.begin() as conn:
            row = conn.execute(
                select(sessions.c.id, sessions.c.ended, users.c.full_name)
                .join(users, users.c.id == sessions.c.user_id)
                .where(sessions.c.token_sha256 == token_hash(data["token"]))
            ).first()
            if row is not None and row.ended is None:
                conn.execute(update(sessions).where(sessions.c.id == row.id)
                             .values(ended=utc_now()))
                trail.append(conn, Actor(username, row.full_name, "session"), "logout", "user",
                             username, where=where)
    with contextlib.suppress(OSError):
        path.unlink()
    return username
