"""The management web view (`plantsweep serve`) over a real store (SQLite and PostgreSQL):
real scan logs, users made with orchestrator/users, Starlette's TestClient as the browser.
Login and lockout, CSRF, cookie flags, roles on every route, each page's data, no secrets."""

from __future__ import annotations

import copy
import re
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from starlette.testclient import TestClient

from orchestrator import cli
from orchestrator.audit.identity import Actor, here, os_actor
from orchestrator.checkpoint import gate
from orchestrator.inspection import records
from orchestrator.store import schema
from orchestrator.store.hosts import upsert_host
from orchestrator.store.ingest import ingest_log
from orchestrator.users import accounts
from orchestrator.web import create_app, pages
from orchestrator.web.auth import CSRF_COOKIE, SESSION_COOKIE
from tests.store_logs import real_logs, variant

ADMIN_PW = "admin-password-123"
REVIEW_PW = "review-password-123"
OPER_PW = "operator-password-1"
ADMIN = Actor("admin", "Ada Admin", "password")

# Every GET page and the permission it needs (views.py); ids are filled in per store.
ADMIN_ONLY = ["/users"]
REVIEWER_UP = ["/audit"]


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], dict[str, Any]]:
    return real_logs(tmp_path_factory.mktemp("web-logs"))


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _users(store: Any) -> None:
    with store.begin() as conn:
        accounts.create_user(conn, os_actor(), "admin", "Ada Admin", "administrator", ADMIN_PW)
        accounts.create_user(conn, ADMIN, "rita", "Rita Reviewer", "reviewer", REVIEW_PW)
        accounts.create_user(conn, ADMIN, "otto", "Otto Operator", "operator", OPER_PW)


@pytest.fixture
def plant_store(store: Any, logs: tuple[dict[str, Any], dict[str, Any]]) -> dict[str, Any]:
    return populate(store, logs)


def populate(store: Any, logs: tuple[dict[str, Any], dict[str, Any]]) -> dict[str, Any]:
    """Two sites, three lines, a dirty and clean hosts, a never-scanned host, a signed
    inspection record and an admitted checkpoint device; returns their ids."""
    dirty, clean = logs
    _users(store)
    now = _now()
    ids: dict[str, Any] = {"store": store}
    ids["dirty"] = ingest_log(
        store, variant(dirty, scan_id="w-1", host="hmi-01", finished=now), ADMIN, source="import"
    ).scan_log_id
    ingest_log(
        store, variant(clean, scan_id="w-2", host="hmi-02", finished=now), ADMIN, source="import"
    )
    old_os = copy.deepcopy(clean)  # an end-of-life Linux: the assessment column shows it
    old_os["asset"]["os"] = {
        "family": "linux",
        "id": "debian",
        "version_id": "9",
        "name": "Debian GNU/Linux",
        "version": "9",
    }
    ingest_log(
        store,
        variant(
            old_os, scan_id="w-3", host="hist-01", line="formulation-2", area="api", finished=now
        ),
        ADMIN,
        source="import",
    )
    ingest_log(
        store,
        variant(
            clean,
            scan_id="w-4",
            host="eng-ws-9",
            site="zurich",
            line="labs",
            area="qc",
            finished=now,
        ),
        ADMIN,
        source="import",
    )
    with store.begin() as conn:  # in the inventory, never scanned
        upsert_host(
            conn,
            ADMIN,
            here("basel"),
            "basel",
            "plc-gw-3",
            {
                "area": "fill-finish",
                "line": "packaging-1",
                "cell": "c1",
                "criticality": "mission-critical",
                "scan_interval_days": None,
            },
            now,
            seen=False,
        )
        f = schema.findings
        ids["finding"] = conn.execute(
            select(f.c.id).where(f.c.scan_log_id == ids["dirty"])
        ).scalar_one()
        ids["host"] = conn.execute(
            select(schema.hosts.c.id).where(schema.hosts.c.name == "hmi-01")
        ).scalar_one()
        r = schema.inspection_records
        ids["record"] = conn.execute(
            select(r.c.id).where(r.c.scan_log_id == ids["dirty"])
        ).scalar_one()
    records.sign_record(store, ids["record"], "rita", REVIEW_PW, "reviewed")
    gate.record_scan(
        store,
        variant(
            clean, scan_id="w-dev-1", host="usb-0042", area="gate", line="checkpoint", finished=now
        ),
        device_id="USB-0042",
        owner="Vendor Ltd / A. Smith",
        reason="firmware update line 3",
        site="basel",
        actor=ADMIN,
    )
    ids["verdict"] = gate.verify(store, "USB-0042", actor=ADMIN)
    return ids


def _client(store: Any, **kwargs: Any) -> TestClient:
    return TestClient(create_app(store, **kwargs), follow_redirects=False)


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no CSRF token in the form"
    return found.group(1)


def _login(client: TestClient, username: str, password: str) -> Any:
    page = client.get("/login")
    assert page.status_code == 200
    return client.post(
        "/login",
        data={
            "username": username,
            "password": password,
            "csrf_token": _csrf(page.text),
            "next": "/",
        },
    )


def _logged_in(store: Any, username: str, password: str, **kwargs: Any) -> TestClient:
    client = _client(store, **kwargs)
    response = _login(client, username, password)
    assert response.status_code == 303, response.text
    return client


def _audit(store: Any, action: str) -> list[Any]:
    t = schema.audit_entries
    with store.connect() as conn:
        return conn.execute(
            select(t.c.object_id, t.c.entry).where(t.c.action == action).order_by(t.c.seq)
        ).all()


# -- login ----------------------------------------------------------------------------------------


def test_a_store_without_users_shows_how_to_create_an_administrator(store: Any) -> None:
    client = _client(store)
    assert client.get("/").headers["location"] == "/login?next=%2F"
    page = client.get("/login")
    assert "no users yet" in page.text and "plantsweep user add" in page.text
    refused = client.post(
        "/login", data={"username": "admin", "password": ADMIN_PW, "csrf_token": _csrf(page.text)}
    )
    assert refused.status_code == 401 and SESSION_COOKIE not in refused.cookies


def test_login_with_the_right_password_starts_an_audited_session(store: Any) -> None:
    _users(store)
    client = _client(store)
    response = _login(client, "rita", REVIEW_PW)
    assert response.status_code == 303 and response.headers["location"] == "/"
    cookie = next(
        h for h in response.headers.get_list("set-cookie") if h.startswith(SESSION_COOKIE + "=")
    )
    flags = [p.strip().lower() for p in cookie.split(";")]
    assert "httponly" in flags and "samesite=strict" in flags and "path=/" in flags
    assert "secure" not in flags  # plain HTTP on loopback: the browser would drop it
    home = client.get("/")
    assert home.status_code == 200 and "Rita Reviewer (rita, reviewer)" in home.text
    with store.connect() as conn:
        sessions = conn.execute(select(schema.sessions)).all()
    assert len(sessions) == 1 and sessions[0].ended is None
    token = client.cookies[SESSION_COOKIE]
    assert sessions[0].token_sha256 != token and token not in sessions[0].token_sha256
    logins = _audit(store, "login")
    assert [r.object_id for r in logins] == ["rita"]
    assert '"via":"web"' in logins[0].entry and '"client":"testclient"' in logins[0].entry


def test_cookies_are_secure_under_tls(store: Any) -> None:
    _users(store)
    client = TestClient(
        create_app(store, secure=True), base_url="https://testserver", follow_redirects=False
    )
    login_page = client.get("/login")
    assert "secure" in login_page.headers["set-cookie"].lower()  # the pre-session cookie
    response = _login(client, "otto", OPER_PW)
    cookie = next(
        h for h in response.headers.get_list("set-cookie") if h.startswith(SESSION_COOKIE + "=")
    )
    assert "secure" in [p.strip().lower() for p in cookie.split(";")]
    assert response.headers["strict-transport-security"].startswith("max-age=")


def test_a_wrong_password_is_refused_and_five_lock_the_account(store: Any) -> None:
    _users(store)
    client = _client(store)
    first = _login(client, "otto", "not-the-password")
    assert first.status_code == 401 and "wrong username or password" in first.text
    assert SESSION_COOKIE not in client.cookies
    for _ in range(4):
        last = _login(client, "otto", "not-the-password")
    assert "locked until" in last.text
    locked = _login(client, "otto", OPER_PW)  # even the right password, while locked
    assert locked.status_code == 401 and "is locked until" in locked.text
    assert SESSION_COOKIE not in client.cookies
    assert len(_audit(store, "login_failed")) == 6
    assert [r.object_id for r in _audit(store, "lockout")] == ["otto"]
    with store.connect() as conn:
        assert accounts.get_user(conn, "otto").locked()


def test_an_unknown_user_gets_the_same_answer(store: Any) -> None:
    _users(store)
    response = _login(_client(store), "mallory", "whatever-password")
    assert response.status_code == 401 and "wrong username or password" in response.text


def test_logout_ends_the_session_in_the_store(store: Any) -> None:
    _users(store)
    client = _logged_in(store, "admin", ADMIN_PW)
    token = client.cookies[SESSION_COOKIE]
    home = client.get("/")
    out = client.post("/logout", data={"csrf_token": _csrf(home.text)})
    assert out.status_code == 303 and out.headers["location"] == "/login"
    with store.connect() as conn:
        assert conn.execute(select(schema.sessions.c.ended)).scalar() is not None
    assert [r.object_id for r in _audit(store, "logout")] == ["admin"]
    replay = _client(store)  # the old cookie, replayed, no longer works
    replay.cookies.set(SESSION_COOKIE, token)
    assert replay.get("/").status_code == 303


def test_a_deactivated_user_is_logged_out_at_once(store: Any) -> None:
    _users(store)
    client = _logged_in(store, "otto", OPER_PW)
    assert client.get("/").status_code == 200
    with store.begin() as conn:
        accounts.deactivate_user(conn, ADMIN, "otto", "left the company")
    assert client.get("/").headers["location"].startswith("/login")


def test_login_redirects_only_inside_the_site(store: Any) -> None:
    _users(store)
    client = _client(store)
    page = client.get("/login?next=//evil.example/x")
    response = client.post(
        "/login",
        data={
            "username": "admin",
            "password": ADMIN_PW,
            "csrf_token": _csrf(page.text),
            "next": "//evil.example/x",
        },
    )
    assert response.headers["location"] == "/"


# -- CSRF -----------------------------------------------------------------------------------------


def test_forms_without_the_csrf_token_are_refused(store: Any) -> None:
    _users(store)
    client = _client(store)
    client.get("/login")
    no_token = client.post("/login", data={"username": "admin", "password": ADMIN_PW})
    assert no_token.status_code == 403 and SESSION_COOKIE not in client.cookies
    forged = client.post(
        "/login", data={"username": "admin", "password": ADMIN_PW, "csrf_token": "0" * 64}
    )
    assert forged.status_code == 403
    assert _audit(store, "login") == [] and _audit(store, "login_failed") == []
    fresh = _client(store)  # a cross-site post carries no pre-session cookie either
    page = client.get("/login")
    assert CSRF_COOKIE not in fresh.cookies
    stolen = fresh.post(
        "/login", data={"username": "admin", "password": ADMIN_PW, "csrf_token": _csrf(page.text)}
    )
    assert stolen.status_code == 403

    admin = _logged_in(store, "admin", ADMIN_PW)
    assert admin.post("/logout", data={}).status_code == 403
    assert admin.post("/audit/verify", data={"csrf_token": "x"}).status_code == 403
    assert admin.get("/").status_code == 200  # still logged in
    login_token = _csrf(client.get("/login").text)  # another browser's token does not fit
    assert admin.post("/logout", data={"csrf_token": login_token}).status_code == 403


# -- roles ----------------------------------------------------------------------------------------


def test_roles_are_enforced_on_every_route(plant_store: dict[str, Any]) -> None:
    store = plant_store["store"]
    anonymous = _client(store)
    for path in [
        "/",
        "/site?site=basel",
        f"/hosts/{plant_store['host']}",
        "/audit",
        "/users",
        f"/findings/{plant_store['finding']}",
        "/checkpoint",
        "/inspections",
    ]:
        response = anonymous.get(path)
        assert response.status_code == 303 and response.headers["location"].startswith(
            "/login?next="
        ), path
    assert anonymous.post("/audit/verify", data={}).status_code in (303, 403)

    operator = _logged_in(store, "otto", OPER_PW)
    for path in ADMIN_ONLY + REVIEWER_UP:
        denied = operator.get(path)
        assert denied.status_code == 403, path
        assert "403 Forbidden" in denied.text and "you are otto (operator)" in denied.text
    home = operator.get("/")
    assert 'href="/users"' not in home.text and 'href="/audit"' not in home.text
    assert operator.post("/audit/verify", data={"csrf_token": _csrf(home.text)}).status_code == 403

    reviewer = _logged_in(store, "rita", REVIEW_PW)
    assert reviewer.get("/audit").status_code == 200
    assert reviewer.get("/users").status_code == 403
    admin = _logged_in(store, "admin", ADMIN_PW)
    for path in ADMIN_ONLY + REVIEWER_UP:
        assert admin.get(path).status_code == 200, path


# -- the pages ------------------------------------------------------------------------------------


def test_the_drill_down_pages_show_the_stored_data(plant_store: dict[str, Any]) -> None:
    store = plant_store["store"]
    client = _logged_in(store, "otto", OPER_PW)
    company = client.get("/").text
    assert 'href="/site?site=basel"' in company and 'href="/site?site=zurich"' in company
    assert "<svg" in company and "Scan coverage per site" in company
    assert "Scans per day" in company and "<script" not in company

    site = client.get("/site", params={"site": "basel"}).text
    assert "packaging-1" in site and "formulation-2" in site and "labs" not in site
    line = client.get(
        "/line", params={"site": "basel", "area": "fill-finish", "line": "packaging-1"}
    ).text
    assert "hmi-01" in line and "hmi-02" in line and "plc-gw-3" in line
    assert "never scanned" in line  # plc-gw-3
    assert "1 alert" in line  # hmi-01's latest scan: the EICAR finding
    assert "Debian GNU/Linux 12" in line  # the OS from the stored asset record
    assert "hist-01" not in line

    host = client.get(f"/hosts/{plant_store['host']}").text
    assert "eicar.com" in host and "Asset" in host and "x86_64" in host
    assert f'href="/findings/{plant_store["finding"]}"' in host
    finding = client.get(f"/findings/{plant_store['finding']}").text
    assert "eicar.com" in finding and "lvl-alert" in finding
    assert f'href="/inspections/{plant_store["record"]}"' in finding
    scan = client.get(f"/scans/{plant_store['dirty']}").text
    assert "w-1" in scan and "eicar.com" in scan

    old_line = client.get(
        "/line", params={"site": "basel", "area": "api", "line": "formulation-2"}
    ).text
    assert "hist-01" in old_line and "end of life" in old_line  # the assessment's columns
    assert "end-of-life (Debian 9)" in old_line

    assert client.get("/hosts/999999").status_code == 404
    assert client.get("/findings/999999").status_code == 404
    assert client.get("/site", params={"site": "nowhere"}).status_code == 404


def test_checkpoint_page_lists_the_open_admission(plant_store: dict[str, Any]) -> None:
    verdict = plant_store["verdict"]
    assert verdict.admitted, verdict.reasons
    page = _logged_in(plant_store["store"], "otto", OPER_PW).get("/checkpoint").text
    section = page.split("Open admissions")[1].split("Recent decisions")[0]
    assert "USB-0042" in section and "Vendor Ltd / A. Smith" in section
    assert verdict.valid_until in section
    assert "admitted" in page.split("Recent decisions")[1]


def test_inspection_records_show_their_signatures(plant_store: dict[str, Any]) -> None:
    client = _logged_in(plant_store["store"], "otto", OPER_PW)
    listing = client.get("/inspections", params={"status": "reviewed"}).text
    assert f'href="/inspections/{plant_store["record"]}"' in listing and "hmi-01" in listing
    record = client.get(f"/inspections/{plant_store['record']}").text
    signatures = record.split("<h2>Signatures</h2>")[1].split("<h2>")[0]
    assert "Rita Reviewer" in signatures and "reviewed" in signatures
    assert re.search(r"\d{4}-\d\d-\d\dT\d\d:\d\d", signatures)  # the date and time
    assert "valid" in signatures and "INVALID" not in signatures


def test_the_audit_trail_pages_newest_first_and_verifies(
    plant_store: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    store = plant_store["store"]
    monkeypatch.setattr(pages, "PER_PAGE", 5)  # a few pages from the fixture's entries
    client = _logged_in(store, "rita", REVIEW_PW)
    page = client.get("/audit").text
    seqs = [int(s) for s in re.findall(r'<td class="num">(\d+)</td><td>\d{4}-', page)]
    assert seqs == sorted(seqs, reverse=True) and len(seqs) == 5
    assert "Not verified since this server started" in page
    older = client.get("/audit", params={"before": seqs[-1]}).text
    older_seqs = [int(s) for s in re.findall(r'<td class="num">(\d+)</td><td>\d{4}-', older)]
    assert len(older_seqs) == 5 and max(older_seqs) == seqs[-1] - 1
    with store.connect() as conn:
        entries_before = conn.execute(
            select(func.count()).select_from(schema.audit_entries)
        ).scalar()
    verified = client.post("/audit/verify", data={"csrf_token": _csrf(page)})
    assert verified.status_code == 303
    shown = client.get("/audit").text
    assert "PASS:" in shown and "Verified" in shown and "by rita" in shown
    with store.connect() as conn:  # read-only: the web's verification writes nothing
        assert (
            conn.execute(select(func.count()).select_from(schema.audit_entries)).scalar()
            == entries_before
        )


def test_the_user_list_shows_roles_and_lockouts(plant_store: dict[str, Any]) -> None:
    page = _logged_in(plant_store["store"], "admin", ADMIN_PW).get("/users").text
    for name, role in (("admin", "administrator"), ("rita", "reviewer"), ("otto", "operator")):
        assert re.search(rf"<td>{name}</td><td>[^<]+</td><td>{role}</td>", page)


def test_no_secret_is_in_any_page(plant_store: dict[str, Any]) -> None:
    store = plant_store["store"]
    admin = _logged_in(store, "admin", ADMIN_PW)
    token = admin.cookies[SESSION_COOKIE]
    pages_html = [
        admin.get(p).text
        for p in [
            "/",
            "/site?site=basel",
            "/line?site=basel&area=fill-finish&line=packaging-1",
            f"/hosts/{plant_store['host']}",
            f"/findings/{plant_store['finding']}",
            f"/scans/{plant_store['dirty']}",
            "/checkpoint",
            "/inspections",
            f"/inspections/{plant_store['record']}",
            "/audit",
            "/users",
        ]
    ]
    with store.connect() as conn:
        hashes = conn.execute(select(schema.users.c.password_hash)).scalars().all()
        session_hashes = conn.execute(select(schema.sessions.c.token_sha256)).scalars().all()
    for html in pages_html:
        assert "$argon2" not in html and token not in html
        for secret in [*hashes, *session_hashes]:
            assert secret not in html


def test_browsing_writes_nothing_but_the_login(plant_store: dict[str, Any]) -> None:
    store = plant_store["store"]

    def counts() -> list[int]:
        with store.connect() as conn:
            return [
                conn.execute(select(func.count()).select_from(t)).scalar()
                for t in (
                    schema.audit_entries,
                    schema.sessions,
                    schema.scan_logs,
                    schema.inspection_records,
                    schema.admissions,
                )
            ]

    before = counts()
    client = _logged_in(store, "admin", ADMIN_PW)
    for path in [
        "/",
        "/checkpoint",
        "/inspections",
        "/audit",
        "/users",
        f"/hosts/{plant_store['host']}",
    ]:
        assert client.get(path).status_code == 200
    after = counts()
    assert after[0] == before[0] + 1 and after[1] == before[1] + 1  # the login entry, session
    assert after[2:] == before[2:]


def test_pages_carry_security_headers(plant_store: dict[str, Any]) -> None:
    response = _logged_in(plant_store["store"], "otto", OPER_PW).get("/")
    assert "default-src 'none'" in response.headers["content-security-policy"]
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["cache-control"] == "no-store"


def test_host_assessment_hook_is_none_without_the_assessment_package(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "orchestrator.assessment", None)  # not importable
    assert pages.host_assessment({"os": {"name": "Windows", "version": "6.1"}}) is None
    assert pages.assessment_available() is False


def test_serve_refuses_half_a_tls_configuration(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = cli.main(["serve", "--tls-cert", str(tmp_path / "cert.pem")])
    err = capsys.readouterr().err
    assert code == 4 and err.strip() == ("ERROR: give both --tls-cert and --tls-key (or neither)")
    code = cli.main(
        ["serve", "--tls-cert", str(tmp_path / "c.pem"), "--tls-key", str(tmp_path / "k.pem")]
    )
    assert code == 4 and "--tls-cert: no such file" in capsys.readouterr().err


def test_serve_names_a_taken_port(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from orchestrator.web.cli import listen_socket

    taken = listen_socket("127.0.0.1", 0)
    try:
        port = taken.getsockname()[1]
        code = cli.main(
            ["--store", f"sqlite:///{tmp_path / 's.sqlite'}", "serve", "--port", str(port)]
        )
    finally:
        taken.close()
    err = capsys.readouterr().err
    assert code == 4 and f"ERROR: cannot listen on 127.0.0.1:{port}" in err


def _self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key (PEM files)."""
    import ipaddress
    from datetime import timedelta

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "plantsweep test")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "web.crt", folder / "web.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def test_plantsweep_serve_serves_https(tmp_path: Path) -> None:
    """The real command: uvicorn with the certificate, the login page over TLS with a Secure
    pre-session cookie, and a warning that the store has no users."""
    import ssl
    import subprocess
    import sys
    import urllib.request

    cert, key = _self_signed(tmp_path)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "orchestrator",
            "--store",
            f"sqlite:///{tmp_path / 's.sqlite'}",
            "serve",
            "--port",
            "0",
            "--tls-cert",
            str(cert),
            "--tls-key",
            str(key),
        ],
        stderr=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    try:
        assert proc.stderr is not None
        lines = [proc.stderr.readline(), proc.stderr.readline()]
        assert "the store has no users" in lines[0]
        found = re.search(r"on (https://127\.0\.0\.1:\d+)/", lines[1])
        assert found, lines
        context = ssl.create_default_context(cafile=str(cert))
        response = None
        for _ in range(50):  # the socket listens already; uvicorn may still be starting
            try:
                response = urllib.request.urlopen(
                    found.group(1) + "/login", context=context, timeout=5
                )
                break
            except OSError:
                time.sleep(0.1)
        assert response is not None, "no answer over TLS"
        body = response.read().decode()
        assert response.status == 200 and "plantsweep user add" in body
        cookie = response.headers["set-cookie"].lower()
        assert "secure" in cookie and "httponly" in cookie and "samesite=strict" in cookie
    finally:
        proc.terminate()
        proc.wait(10)
