"""The pages. Each GET view names the permission it needs (`requires`), checked on the server
for every request: no session -> the login page, a role without the permission -> 403.

| route                    | page                                        | permission     |
|--------------------------|---------------------------------------------|----------------|
| /                        | company: sites, charts                      | view           |
| /site?site=S             | a site's areas and lines                    | view           |
| /line?site=&area=&line=  | a line's hosts (last scan, findings, OS)    | view           |
| /hosts/{id}              | a host: asset, latest findings, scans       | view           |
| /scans/{id}              | one scan log's summary and findings         | view           |
| /findings/{id}           | one finding, and where else its file was    | view           |
| /checkpoint              | open admissions, devices, recent decisions  | view           |
| /inspections[/{id}]      | inspection records and their signatures     | view           |
| /audit                   | the audit trail, newest first, verify state | audit.show     |
| POST /audit/verify       | run `audit verify` now (cached briefly)     | audit.verify   |
| /users                   | users, roles, lockouts (no hashes)          | user.manage    |
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import jinja2
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from orchestrator.errors import PlantsweepError, UsageError
from orchestrator.inspection import records
from orchestrator.store.database import Store
from orchestrator.store.queries import age_text
from orchestrator.users import accounts
from orchestrator.web import charts, pages
from orchestrator.web.auth import CSRF_FIELD, CsrfRefused, WebAuth, WebUser, roles_with

TEMPLATES = Path(__file__).resolve().parent / "templates"
VERIFY_CACHE_SECONDS = 60.0

# Navigation: (label, path, permission). Links a user may not follow are not shown, but the
# route checks the permission anyway.
NAV = (
    ("Company", "/", "view"),
    ("Checkpoint", "/checkpoint", "view"),
    ("Inspection records", "/inspections", "view"),
    ("Audit trail", "/audit", "audit.show"),
    ("Users", "/users", "user.manage"),
)


@dataclass
class VerifyResult:
    summary: str
    ok: bool
    entries: int
    problems: list[str]
    warnings: list[str]
    when: str
    by: str
    at: float  # time.monotonic() of the run


class Web:
    """What every view needs: the store, the auth and the templates."""

    def __init__(self, store: Store, auth: WebAuth):
        self.store = store
        self.auth = auth
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(TEMPLATES),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.globals.update(url=url, age=age_text, LEVELS=pages.LEVELS)
        self._verify: VerifyResult | None = None
        self._verify_lock = threading.Lock()

    def render(
        self, request: Request, template: str, status_code: int = 200, **context: Any
    ) -> HTMLResponse:
        user = self.auth.user(request)
        nav = [(label, path) for label, path, perm in NAV if user and user.may(perm)]
        html = self.env.get_template(template).render(
            user=user,
            nav=nav,
            csrf_field=CSRF_FIELD,
            csrf=self.auth.csrf_token(request),
            path=request.url.path,
            **context,
        )
        response = HTMLResponse(html, status_code=status_code)
        self.auth.ensure_login_cookie(request, response)
        return response

    def forbidden(self, request: Request, permission: str, user: WebUser) -> HTMLResponse:
        return self.render(
            request,
            "error.html",
            403,
            title="403 Forbidden",
            message=f"This page needs the permission {permission!r}, which the role "
            f"{' or '.join(roles_with(permission))} holds; you are "
            f"{user.username} ({user.role}).",
        )

    # -- audit verify, cached ------------------------------------------------------------

    def verify_status(self) -> VerifyResult | None:
        return self._verify

    def run_verify(self, user: WebUser) -> VerifyResult:
        """Verify the trail now, unless a verification ran in the last VERIFY_CACHE_SECONDS
        (it reads every entry: repeated clicks must not load the store)."""
        from orchestrator.audit.verify import verify

        with self._verify_lock:
            cached = self._verify
            if cached is not None and time.monotonic() - cached.at < VERIFY_CACHE_SECONDS:
                return cached
            # record=False: the web view does not write to the store (see the module docstring
            # of orchestrator/web); `plantsweep audit verify` records its runs.
            report = verify(self.store, record=False)
            self._verify = VerifyResult(
                summary=report.summary(),
                ok=report.ok,
                entries=report.entries,
                problems=report.problems[:10],
                warnings=report.warnings[:10],
                when=pages.now_text(),
                by=user.username,
                at=time.monotonic(),
            )
            return self._verify


def url(path: str, **params: Any) -> str:
    """A link with query parameters (empty strings kept: a site or line may be '')."""
    query = urlencode({k: v for k, v in params.items() if v is not None})
    return f"{path}?{query}" if query else path


def _web(request: Request) -> Web:
    return request.app.state.web  # type: ignore[no-any-return]


def requires(permission: str) -> Callable[[Callable[..., Response]], Callable[[Request], Any]]:
    """Wrap a view (request, web, user) -> Response: logged-in user holding `permission`."""
    if permission not in accounts.ALL_PERMISSIONS:
        raise ValueError(f"unknown permission {permission!r}")

    def wrap(view: Callable[..., Response]) -> Callable[[Request], Any]:
        @functools.wraps(view)
        def endpoint(request: Request) -> Response:
            web = _web(request)
            user = web.auth.user(request)
            if user is None:
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                return RedirectResponse(f"/login?next={quote(target, safe='')}", 303)
            if not user.may(permission):
                return web.forbidden(request, permission, user)
            return view(request, web, user)

        endpoint.permission = permission  # type: ignore[attr-defined]
        return endpoint

    return wrap


def _int(request: Request, name: str) -> int:
    value = request.path_params.get(name) or request.query_params.get(name)
    try:
        return int(value)
    except (TypeError, ValueError):
        raise HTTPException(404, f"no such {name}") from None


# -- login and logout ---------------------------------------------------------------------------


def _safe_next(value: str | None) -> str:
    # Only a path of this site: never an absolute URL or //host (open redirect).
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/"


async def login(request: Request) -> Response:
    web = _web(request)
    if request.method == "GET":
        if web.auth.user(request) is not None:
            return RedirectResponse(_safe_next(request.query_params.get("next")), 303)
        return await run_in_threadpool(_login_page, request, web, None, 200)
    form = await request.form()
    try:
        web.auth.check_csrf(request, form)
    except CsrfRefused as exc:
        return await run_in_threadpool(_login_page, request, web, str(exc), 403)
    username = str(form.get("username") or "").strip()
    password = str(form.get("password") or "")
    target = _safe_next(str(form.get("next") or ""))
    if not username or not password:
        return await run_in_threadpool(
            _login_page, request, web, "enter your username and password", 400
        )
    try:
        token, _ = await run_in_threadpool(web.auth.login, request, username, password)
    except PlantsweepError as exc:
        return await run_in_threadpool(_login_page, request, web, exc.message, 401)
    response = RedirectResponse(target, 303)
    web.auth.set_session(response, token)
    return response


def _login_page(request: Request, web: Web, error: str | None, status: int) -> Response:
    return web.render(
        request,
        "login.html",
        status,
        title="Log in",
        error=error,
        has_users=web.auth.has_users(),
        next=_safe_next(request.query_params.get("next")),
    )


async def logout(request: Request) -> Response:
    web = _web(request)
    form = await request.form()
    try:
        web.auth.check_csrf(request, form)
    except CsrfRefused as exc:
        message = str(exc)
        return await run_in_threadpool(
            lambda: web.render(request, "error.html", 403, title="403 Forbidden", message=message)
        )
    await run_in_threadpool(web.auth.logout, request)
    response = RedirectResponse("/login", 303)
    web.auth.clear_session(response)
    return response


# -- company, site, line -------------------------------------------------------------------------


@requires("view")
def company(request: Request, web: Web, user: WebUser) -> Response:
    with web.store.connect() as conn:
        lines = pages.line_statuses(conn)
        days, series = pages.scans_per_day(conn)
    site_rows = pages.sites(lines)
    coverage = (
        charts.coverage_bars(
            [(s.site, s.current, s.overdue, s.never) for s in site_rows],
            title="Scan coverage per site",
        )
        if site_rows
        else None
    )
    findings_chart = charts.stacked_columns(
        days, series, title="Scans per day by their highest finding level (last 30 days)"
    )
    return web.render(
        request,
        "company.html",
        title="Company",
        sites=site_rows,
        coverage=coverage,
        findings_chart=findings_chart,
        legend=charts.legend(list(series)),
        overdue_days=pages.OVERDUE_DAYS,
        open_level=pages.OPEN_LEVEL,
    )


@requires("view")
def site(request: Request, web: Web, user: WebUser) -> Response:
    name = request.query_params.get("site")
    if name is None:
        raise HTTPException(404, "no site given")
    with web.store.connect() as conn:
        lines = [ln for ln in pages.line_statuses(conn) if ln.site == name]
    if not lines:
        raise HTTPException(404, f"no site {name!r} in the store")
    return web.render(
        request,
        "site.html",
        title=f"Site {name or '(no site)'}",
        site=name,
        lines=lines,
        summary=pages.sites(lines)[0],
        overdue_days=pages.OVERDUE_DAYS,
        open_level=pages.OPEN_LEVEL,
    )


@requires("view")
def line(request: Request, web: Web, user: WebUser) -> Response:
    q = request.query_params
    site_name, area, line_name = q.get("site"), q.get("area", ""), q.get("line", "")
    if site_name is None:
        raise HTTPException(404, "no site given")
    with_data = pages.assessment_available()
    with web.store.connect() as conn:
        hosts, pg = pages.line_hosts(
            conn,
            site_name,
            area,
            line_name,
            pages.page_number(q.get("page")),
            with_asset_data=with_data,
        )
    if not pg.total:
        raise HTTPException(404, "no hosts on this line")
    return web.render(
        request,
        "line.html",
        title=f"Line {line_name or '(none)'}",
        site=site_name,
        area=area,
        line=line_name,
        hosts=hosts,
        page=pg,
        show_assessment=any(h["assessment"] for h in hosts),
    )


# -- host, scan, finding -------------------------------------------------------------------------


@requires("view")
def host(request: Request, web: Web, user: WebUser) -> Response:
    host_id = _int(request, "host_id")
    with web.store.connect() as conn:
        row = pages.get_host(conn, host_id)
        if row is None:
            raise HTTPException(404, f"no host {host_id}")
        summary = pages.host_summary(conn, row, with_asset_data=True, full_assessment=True)
        asset = pages.latest_asset(conn, host_id, with_data=True)
        scans, pg = pages.host_scans(
            conn, host_id, pages.page_number(request.query_params.get("page"))
        )
        latest = summary["last_scan"]
        findings = pages.scan_findings(conn, int(latest.id), 200) if latest else []
    return web.render(
        request,
        "host.html",
        title=f"Host {row.name}",
        host=summary,
        asset_rows=pages.asset_summary(asset["asset"] if asset else None),
        asset_collected=asset["collected"] if asset else None,
        scans=scans,
        page=pg,
        findings=findings,
    )


@requires("view")
def scan(request: Request, web: Web, user: WebUser) -> Response:
    scan_log_id = _int(request, "scan_id")
    with web.store.connect() as conn:
        log = pages.get_scan(conn, scan_log_id)
        if log is None:
            raise HTTPException(404, f"no scan log {scan_log_id}")
        findings = pages.scan_findings(conn, scan_log_id)
        record_id = pages.inspection_id_of(conn, scan_log_id)
    return web.render(
        request,
        "scan.html",
        title=f"Scan {log.scan_id}",
        log=log,
        findings=findings,
        record_id=record_id,
    )


@requires("view")
def finding(request: Request, web: Web, user: WebUser) -> Response:
    finding_id = _int(request, "finding_id")
    with web.store.connect() as conn:
        row = pages.get_finding(conn, finding_id)
        if row is None:
            raise HTTPException(404, f"no finding {finding_id}")
        log = pages.get_scan(conn, int(row.scan_log_id))
        elsewhere = pages.same_hash_elsewhere(conn, row.sha256, finding_id)
        record_id = pages.inspection_id_of(conn, int(row.scan_log_id))
    return web.render(
        request,
        "finding.html",
        title=f"Finding {finding_id}",
        f=row,
        log=log,
        elsewhere=elsewhere,
        record_id=record_id,
    )


# -- checkpoint ----------------------------------------------------------------------------------


@requires("view")
def checkpoint(request: Request, web: Web, user: WebUser) -> Response:
    q = request.query_params
    with web.store.connect() as conn:
        admissions, apg = pages.open_admissions(
            conn, pages.page_number(q.get("page")), pages.now_text()
        )
        devices, dpg = pages.devices_page(conn, pages.page_number(q.get("devices_page")))
        decisions = pages.recent_decisions(conn)
    return web.render(
        request,
        "checkpoint.html",
        title="Checkpoint",
        admissions=admissions,
        apage=apg,
        devices=devices,
        dpage=dpg,
        decisions=decisions,
    )


# -- audit trail ---------------------------------------------------------------------------------


@requires("audit.show")
def audit(request: Request, web: Web, user: WebUser) -> Response:
    before_text = request.query_params.get("before")
    before = int(before_text) if before_text and before_text.isdigit() else None
    with web.store.connect() as conn:
        entries, head = pages.audit_entries(conn, before)
    return web.render(
        request,
        "audit.html",
        title="Audit trail",
        entries=entries,
        head=head,
        before=before,
        verify=web.verify_status(),
        may_verify=user.may("audit.verify"),
    )


async def audit_verify(request: Request) -> Response:
    web = _web(request)
    form = await request.form()

    def run() -> Response:
        user = web.auth.user(request)
        if user is None:
            return RedirectResponse("/login?next=/audit", 303)
        try:
            web.auth.check_csrf(request, form)
        except CsrfRefused as exc:
            return web.render(request, "error.html", 403, title="403 Forbidden", message=str(exc))
        if not user.may("audit.verify"):
            return web.forbidden(request, "audit.verify", user)
        web.run_verify(user)
        return RedirectResponse("/audit", 303)

    return await run_in_threadpool(run)


audit_verify.permission = "audit.verify"  # type: ignore[attr-defined]


# -- inspection records --------------------------------------------------------------------------


@requires("view")
def inspections(request: Request, web: Web, user: WebUser) -> Response:
    q = request.query_params
    status = q.get("status") or None
    if status is not None and status not in records.STATUSES:
        raise HTTPException(404, f"unknown status {status!r}")
    with web.store.connect() as conn:
        rows, pg = pages.inspection_records(conn, pages.page_number(q.get("page")), status)
        signed = pages.signature_counts(conn, [int(r.id) for r in rows])
    return web.render(
        request,
        "inspections.html",
        title="Inspection records",
        rows=rows,
        page=pg,
        status=status,
        signed=signed,
        statuses=records.STATUSES,
    )


@requires("view")
def inspection(request: Request, web: Web, user: WebUser) -> Response:
    record_id = _int(request, "record_id")
    with web.store.connect() as conn:
        try:
            view = records.record_view(conn, record_id)
        except UsageError:
            raise HTTPException(404, f"no inspection record {record_id}") from None
        scan_log_id = pages.scan_log_of_record(conn, record_id)
    return web.render(
        request,
        "inspection.html",
        title=f"Inspection record {record_id}",
        r=view,
        scan_log_id=scan_log_id,
    )


# -- users ---------------------------------------------------------------------------------------


@requires("user.manage")
def users(request: Request, web: Web, user: WebUser) -> Response:
    with web.store.connect() as conn:
        rows = accounts.list_users(conn)
    # UserInfo.as_json: everything but the password hash.
    return web.render(
        request,
        "users.html",
        title="Users",
        users=[u.as_json() for u in rows],
        now=pages.now_text(),
    )
