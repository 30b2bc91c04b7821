"""The web view in a real browser: uvicorn on a free loopback port, Debian's Chromium driven
headless by Playwright (no `playwright install`: executable_path is the system browser).
Logs in, drills down company -> site -> line -> host -> finding, checks that an operator gets
403 on the administrator page, and takes the screenshots kept in docs/screenshots/
(PLANTSWEEP_SCREENSHOTS=docs/screenshots refreshes them)."""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from orchestrator.store import open_store
from orchestrator.web import create_app
from orchestrator.web.cli import listen_socket
from tests.store_logs import real_logs
from tests.test_web import ADMIN_PW, OPER_PW, populate

CHROMIUM = "/usr/bin/chromium"
# Screenshots go to a temp folder; PLANTSWEEP_SCREENSHOTS=docs/screenshots refreshes the ones
# kept in the docs (so a test run does not rewrite committed files).
SHOTS = Path(os.environ.get("PLANTSWEEP_SCREENSHOTS") or tempfile.mkdtemp(prefix="ps-shots-"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1200, "height": 760}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The real server (uvicorn, in a thread) over a populated SQLite store."""
    base = tmp_path_factory.mktemp("web-browser")
    store = open_store(f"sqlite:///{base / 'store.sqlite'}")
    ids = populate(store, real_logs(base / "logs"))
    sock = listen_socket("127.0.0.1", 0)
    config = uvicorn.Config(create_app(store), log_level="warning", access_log=False)
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    for _ in range(100):  # until it accepts connections
        if uv.started:
            break
        threading.Event().wait(0.05)
    assert uv.started, "uvicorn did not start"
    ids["url"] = f"http://127.0.0.1:{sock.getsockname()[1]}"
    try:
        yield ids
    finally:
        uv.should_exit = True
        thread.join(10)
        sock.close()
        store.dispose()


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    assert Path(CHROMIUM).exists(), "Debian's chromium is missing (scripts/setup.sh)"
    with sync_playwright() as pw:
        launched = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    # A new context is a fresh profile: no cookies or cache from another test.
    ctx = browser.new_context(viewport=VIEWPORT)
    try:
        yield ctx
    finally:
        ctx.close()


def _login(page: Page, url: str, username: str, password: str) -> None:
    page.goto(url + "/")
    assert page.url.startswith(url + "/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(url + "/")


def _shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5000


def test_drill_down_from_company_to_finding(
    server: dict[str, Any], context: BrowserContext
) -> None:
    page = context.new_page()
    page.goto(server["url"] + "/")
    _shot(page, "login")
    _login(page, server["url"], "admin", ADMIN_PW)
    assert page.locator("header").inner_text().count("Ada Admin (admin, administrator)") == 1
    assert page.locator("svg.chart").count() == 2  # coverage and findings over time
    _shot(page, "company")

    page.get_by_role("link", name="basel").click()
    assert page.locator("h1").inner_text() == "Site basel"
    page.get_by_role("link", name="packaging-1").click()
    assert page.locator("h1").inner_text() == "Line packaging-1"
    rows = page.locator("tbody tr")
    assert rows.filter(has_text="plc-gw-3").inner_text().count("never scanned") == 1
    assert "1 alert" in rows.filter(has_text="hmi-01").inner_text()
    _shot(page, "line")

    page.get_by_role("link", name="hmi-01").click()
    assert page.locator("h1").inner_text() == "Host hmi-01"
    _shot(page, "host")
    page.locator("td.path a", has_text="eicar.com").first.click()
    assert page.locator("h1").inner_text() == f"Finding {server['finding']}"
    details = page.locator("table.kv").inner_text()
    assert "eicar.com" in details and "alert" in details and "hmi-01" in details
    _shot(page, "finding")

    page.goto(server["url"] + "/checkpoint")
    assert "USB-0042" in page.locator("table").first.inner_text()
    _shot(page, "checkpoint")
    page.goto(f"{server['url']}/inspections/{server['record']}")
    assert "Rita Reviewer" in page.locator("table").nth(1).inner_text()
    _shot(page, "inspection")
    page.goto(server["url"] + "/audit")
    page.get_by_role("button", name="Verify the trail now").click()
    page.wait_for_url(server["url"] + "/audit")
    assert page.locator("section.verify").inner_text().count("PASS:") == 1
    _shot(page, "audit")

    page.get_by_role("button", name="Log out").click()
    page.wait_for_url(server["url"] + "/login")
    page.goto(server["url"] + "/users")
    assert page.url.startswith(server["url"] + "/login")  # the session ended


def test_an_operator_cannot_reach_the_administrator_page(
    server: dict[str, Any], context: BrowserContext
) -> None:
    page = context.new_page()
    _login(page, server["url"], "otto", OPER_PW)
    nav = page.locator("nav").inner_text()
    assert "Company" in nav and "Users" not in nav and "Audit trail" not in nav
    response = page.goto(server["url"] + "/users")
    assert response is not None and response.status == 403
    assert page.locator("h1").inner_text() == "403 Forbidden"
    assert "you are otto (operator)" in page.locator("main").inner_text()
    _shot(page, "forbidden")
    response = page.goto(server["url"] + "/audit")
    assert response is not None and response.status == 403


def test_the_session_cookie_is_not_readable_by_scripts(
    server: dict[str, Any], context: BrowserContext
) -> None:
    page = context.new_page()
    _login(page, server["url"], "otto", OPER_PW)
    cookies = {c["name"]: c for c in context.cookies()}
    session = cookies["plantsweep_session"]
    assert session["httpOnly"] and session["sameSite"] == "Strict"
    assert page.evaluate("document.cookie") == ""  # HttpOnly: invisible to page scripts
