"""The Starlette application of `plantsweep serve`.

    app = create_app(open_store(), secure=False)     # secure=True under TLS (Secure cookies)

Routes and their permissions are listed in views.py. Every response carries headers that
keep the pages private to the browser that asked (no caching, no framing, a CSP that allows
no script at all: the view has none).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from orchestrator.errors import PlantsweepError
from orchestrator.store.database import Store
from orchestrator.users.sessions import DEFAULT_HOURS
from orchestrator.web import views
from orchestrator.web.auth import WebAuth

STATIC = Path(__file__).resolve().parent / "static"

SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
        b"frame-ancestors 'none'; base-uri 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
]


class SecurityHeaders:
    """Adds SECURITY_HEADERS (and HSTS under TLS) to every HTTP response."""

    def __init__(self, app: ASGIApp, *, secure: bool):
        self.app = app
        self.headers = list(SECURITY_HEADERS)
        if secure:
            self.headers.append((b"strict-transport-security", b"max-age=31536000"))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {k.lower() for k, _ in message.get("headers", [])}
                message.setdefault("headers", [])
                message["headers"] = list(message["headers"]) + [
                    (k, v) for k, v in self.headers if k not in names
                ]
            await send(message)

        await self.app(scope, receive, send_with_headers)


ROUTES = [
    Route("/login", views.login, methods=["GET", "POST"]),
    Route("/logout", views.logout, methods=["POST"]),
    Route("/", views.company),
    Route("/site", views.site),
    Route("/line", views.line),
    Route("/hosts/{host_id:int}", views.host),
    Route("/scans/{scan_id:int}", views.scan),
    Route("/findings/{finding_id:int}", views.finding),
    Route("/checkpoint", views.checkpoint),
    Route("/inspections", views.inspections),
    Route("/inspections/{record_id:int}", views.inspection),
    Route("/audit", views.audit),
    Route("/audit/verify", views.audit_verify, methods=["POST"]),
    Route("/users", views.users),
]


def create_app(store: Store, *, secure: bool = False, hours: float = DEFAULT_HOURS) -> Any:
    """The web view over `store`. `secure`: served over TLS (cookies get the Secure flag)."""

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        web: views.Web = request.app.state.web
        if web.auth.user(request) is None:  # no page content, not even "not found"
            return PlainTextResponse(exc.detail, status_code=exc.status_code)
        return web.render(
            request, "error.html", exc.status_code, title=f"{exc.status_code}", message=exc.detail
        )

    async def user_error(request: Request, exc: Exception) -> Response:
        # A store that cannot be read (e.g. PostgreSQL down): one line, no traceback.
        return HTMLResponse(f"<h1>Store unavailable</h1><p>{_escape(str(exc))}</p>", 503)

    app = Starlette(
        routes=[*ROUTES, Mount("/static", app=StaticFiles(directory=STATIC), name="static")],
        exception_handlers={HTTPException: http_error, PlantsweepError: user_error},
    )
    app.state.web = views.Web(store, WebAuth(store, secure=secure, hours=hours))
    return SecurityHeaders(app, secure=secure)


def _escape(text: str) -> str:
    from markupsafe import escape

    return str(escape(text))
