"""Roles through the real command line: a logged-in operator may scan but not read the audit
trail or manage users; with the login policy on, an anonymous scan is refused before any host
is touched. Runs on SQLite and PostgreSQL (the `store` fixture)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from orchestrator.audit.identity import Actor, os_actor
from orchestrator.cli import main
from orchestrator.users import accounts
from tests.harness.files import EICAR
from tests.store_logs import audit_entries

ADMIN_PW = "admin-password-1"
OPER_PW = "operator-password-3"


@pytest.fixture(autouse=True)
def own_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("PLANTSWEEP_HOME", str(home))  # the login session file lives here
    return home


def cli(store: Any, monkeypatch: pytest.MonkeyPatch, *argv: str, stdin: str = "") -> int:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    return main(["--store", store.url, *argv])


def login(store: Any, monkeypatch: pytest.MonkeyPatch, user: str, password: str) -> None:
    assert cli(store, monkeypatch, "login", user, "--password-stdin", stdin=password + "\n") == 0


def local_scan(store: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> tuple[int, Path]:
    stick = tmp_path / "stick"
    stick.mkdir(exist_ok=True)
    (stick / "eicar.com").write_bytes(EICAR)
    host_tmp = tmp_path / "host-tmp"
    host_tmp.mkdir(exist_ok=True)
    inventory = tmp_path / "gate.ini"
    inventory.write_text(f"laptop ansible_connection=local ansible_remote_tmp={host_tmp}\n")
    out = tmp_path / "out"
    code = cli(store, monkeypatch, "scan", "-i", str(inventory), "--type", "folders",
               "--path", str(stick), "--out", str(out))  # fmt: skip
    return code, out


@pytest.fixture
def users(store: Any) -> None:
    with store.begin() as conn:
        accounts.create_user(conn, os_actor(), "admin", "Ada Admin", "administrator", ADMIN_PW)
        admin = Actor("admin", "Ada Admin", "password")
        accounts.create_user(conn, admin, "otto", "Otto Operator", "operator", OPER_PW)


def test_logged_in_operator_scans_but_may_not_audit_or_manage_users(
    store: Any, users: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: Any
) -> None:
    login(store, monkeypatch, "otto", OPER_PW)
    capsys.readouterr()
    code, out = local_scan(store, monkeypatch, tmp_path)
    assert code == 1  # findings: EICAR
    log = json.loads(next(out.glob("*/laptop.json")).read_text())
    stored = audit_entries("scan_log_store", store.url)
    assert [(e["who"]["user_id"], e["what"]["object_id"]) for e in stored] == [
        ("otto", log["scan_id"])
    ]
    assert log["findings"]

    capsys.readouterr()
    assert cli(store, monkeypatch, "audit", "verify") == accounts.PermissionDenied.exit_code
    err = capsys.readouterr().err
    assert err.startswith("ERROR: ") and "otto" in err and "Traceback" not in err
    assert cli(store, monkeypatch, "user", "add", "eve", "--full-name", "Eve", "--role",
               "administrator", "--password-stdin", stdin="eve-password-12\n") != 0  # fmt: skip
    assert "may not" in capsys.readouterr().err
    with store.connect() as conn:
        assert accounts.get_user(conn, "eve") is None


def test_login_policy_refuses_an_anonymous_scan_before_any_host_is_touched(
    store: Any, users: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: Any
) -> None:
    login(store, monkeypatch, "admin", ADMIN_PW)
    assert cli(store, monkeypatch, "user", "policy", "--require-login", "on",
               "--reason", "SOP-17: named users only") == 0  # fmt: skip
    assert cli(store, monkeypatch, "logout") == 0
    capsys.readouterr()
    code, out = local_scan(store, monkeypatch, tmp_path)
    assert code == 4
    assert "log in first: plantsweep login" in capsys.readouterr().err
    assert not out.exists()  # refused before the run folder was made
    assert not list((tmp_path / "host-tmp").iterdir())
