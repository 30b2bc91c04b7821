"""Web login, sessions, CSRF tokens and permissions.

    auth = WebAuth(store, secure=True)         # secure: cookies only over TLS
    token = auth.login(request, "rita", pw)    # accounts.authenticate + a `sessions` row
    user = auth.user(request)                  # WebUser or None

Sessions are server-side: the cookie holds a random 256-bit token, the store keeps only its
SHA-256 (table `sessions`, as `plantsweep login` does), so a copy of the store does not let
anyone act as a user, and a logout or a deactivation ends the session at once. The password
check is the CLI's (`accounts.authenticate`): failures are audited and count towards the
lockout; a login and a logout are audit entries naming the web and the client address.

CSRF: every form carries a token bound to the session (or, before login, to a random
pre-session cookie) by an HMAC with a per-process key; a POST without the matching token is
refused with 403. Cookies are HttpOnly and SameSite=Strict, and Secure under TLS.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from starlette.requests import Request
from starlette.responses import Response

from orchestrator.audit import trail
from orchestrator.audit.identity import Actor, Where
from orchestrator.errors import PlantsweepError
from orchestrator.results import utc_now
from orchestrator.store import schema
from orchestrator.store.database import Store
from orchestrator.users import accounts
from orchestrator.users.sessions import DEFAULT_HOURS, start_session, token_hash

SESSION_COOKIE = "plantsweep_session"
CSRF_COOKIE = "plantsweep_csrf"
CSRF_FIELD = "csrf_token"


class CsrfRefused(PlantsweepError):
    """A form came without the CSRF token of this session (or login page)."""


@dataclass(frozen=True)
class WebUser:
    """The logged-in store user of a request. `session_hash` stays server-side."""

    username: str
    full_name: str
    role: str
    permissions: frozenset[str]
    expires: str
    session_hash: str

    def may(self, permission: str) -> bool:
        return permission in self.permissions


def _iso(moment: datetime) -> str:
    return moment.replace(microsecond=0).isoformat().replace("+00:00", "Z")


def roles_with(permission: str) -> list[str]:
    """The roles that hold `permission` (for the 403 page)."""
    return [r for r in accounts.ROLES if permission in accounts.PERMISSIONS[r]]


class WebAuth:
    def __init__(self, store: Store, *, secure: bool = False, hours: float = DEFAULT_HOURS):
        self.store = store
        self.secure = secure
        self.hours = hours
        # Per process: a restart only makes open forms stale (the sessions live in the store).
        self._key = secrets.token_bytes(32)

    # -- who is logged in -----------------------------------------------------------------

    def user(self, request: Request) -> WebUser | None:
        """The user of the request's session cookie, if the session is valid (looked up once
        per request)."""
        if "web_user" in request.scope:
            return request.scope["web_user"]
        found = self._lookup(request.cookies.get(SESSION_COOKIE))
        request.scope["web_user"] = found
        return found

    def _lookup(self, token: str | None) -> WebUser | None:
        if not token or len(token) > 128:
            return None
        sessions, users = schema.sessions, schema.users
        with self.store.connect() as conn:
            row = conn.execute(
                select(
                    sessions.c.expires,
                    sessions.c.ended,
                    users.c.username,
                    users.c.full_name,
                    users.c.role,
                    users.c.active,
                )
                .join(users, users.c.id == sessions.c.user_id)
                .where(sessions.c.token_sha256 == token_hash(token))
            ).first()
        if row is None or row.ended is not None or row.expires <= utc_now() or not row.active:
            return None
        return WebUser(
            username=row.username,
            full_name=row.full_name,
            role=row.role,
            permissions=accounts.PERMISSIONS.get(row.role, frozenset()),
            expires=row.expires,
            session_hash=token_hash(token),
        )

    def has_users(self) -> bool:
        with self.store.connect() as conn:
            return accounts.user_count(conn) > 0

    # -- login and logout -----------------------------------------------------------------

    def login(self, request: Request, username: str, password: str) -> tuple[str, str]:
        """Check the password (AuthError on failure, audited) and start a session: returns
        (token, expires). Audited `login` as the CLI's, with `via: web` and the client."""
        where = Where(controller=self.store.controller)
        user = accounts.authenticate(self.store, username, password, purpose="login", where=where)
        return start_session(
            self.store, user, self.hours, where=where,
            audit={"via": "web", "client": _client(request)},
        )  # fmt: skip

    def logout(self, request: Request) -> str | None:
        """End the request's session in the store (audited `logout`); returns the username."""
        user = self.user(request)
        if user is None:
            return None
        sessions = schema.sessions
        with self.store.begin() as conn:
            ended = conn.execute(
                update(sessions)
                .where(sessions.c.token_sha256 == user.session_hash, sessions.c.ended.is_(None))
                .values(ended=utc_now())
            ).rowcount
            if ended:
                trail.append(
                    conn,
                    Actor(user.username, user.full_name, "session"),
                    "logout",
                    "user",
                    user.username,
                    new={"via": "web", "client": _client(request)},
                    where=Where(controller=self.store.controller),
                )
        request.scope["web_user"] = None
        return user.username

    # -- cookies --------------------------------------------------------------------------

    def _cookie(self, response: Response, name: str, value: str, max_age: int | None) -> None:
        response.set_cookie(
            name,
            value,
            max_age=max_age,
            path="/",
            httponly=True,
            samesite="strict",
            secure=self.secure,
        )

    def set_session(self, response: Response, token: str) -> None:
        self._cookie(response, SESSION_COOKIE, token, int(self.hours * 3600))
        response.delete_cookie(CSRF_COOKIE, path="/")

    def clear_session(self, response: Response) -> None:
        response.delete_cookie(
            SESSION_COOKIE, path="/", httponly=True, samesite="strict", secure=self.secure
        )

    def ensure_login_cookie(self, request: Request, response: Response) -> None:
        """The pre-session cookie the login form's CSRF token is bound to."""
        if request.scope.get("new_csrf_cookie"):
            self._cookie(response, CSRF_COOKIE, request.scope["new_csrf_cookie"], 3600)

    # -- CSRF -----------------------------------------------------------------------------

    def _mac(self, label: str, value: str) -> str:
        return hmac.new(self._key, f"{label}:{value}".encode(), hashlib.sha256).hexdigest()

    def csrf_token(self, request: Request) -> str:
        """The token a form on this page must send back."""
        user = self.user(request)
        if user is not None:
            return self._mac("session", user.session_hash)
        seed = request.cookies.get(CSRF_COOKIE) or request.scope.get("new_csrf_cookie")
        if not seed:
            seed = secrets.token_urlsafe(24)
            request.scope["new_csrf_cookie"] = seed  # set on the response by the view
        return self._mac("login", seed)

    def check_csrf(self, request: Request, form: Any) -> None:
        """Raise CsrfRefused unless the form's token matches this session (or login cookie)."""
        sent = form.get(CSRF_FIELD)
        if not isinstance(sent, str) or not sent:
            raise CsrfRefused("the form has no CSRF token: reload the page and try again")
        user = self.user(request)
        if user is not None:
            expected = self._mac("session", user.session_hash)
        else:
            seed = request.cookies.get(CSRF_COOKIE)
            if not seed:
                raise CsrfRefused("the login form expired: reload the page and try again")
            expected = self._mac("login", seed)
        if not hmac.compare_digest(sent, expected):
            raise CsrfRefused("the form's CSRF token does not match: reload the page")


def _client(request: Request) -> str:
    return request.client.host if request.client else "-"
