"""Store users, roles, passwords, lockout and sessions (21 CFR Part 11 §11.10(d)(g), §11.100,
§11.300), on SQLite and PostgreSQL (the `store` fixture runs each test on both)."""

from __future__ import annotations

import argparse
import io
import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from orchestrator.audit.identity import Actor, os_actor
from orchestrator.errors import UsageError
from orchestrator.store import open_store, schema
from orchestrator.users import accounts, passwords, sessions
from orchestrator.users.accounts import AuthError, PermissionDenied
from orchestrator.users.cli import add_parsers, command

ADMIN_PW = "admin-password-1"
REVIEW_PW = "review-password-2"
OPER_PW = "operator-password-3"


@pytest.fixture(autouse=True)
def own_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A PLANTSWEEP_HOME per test: the session file does not carry over."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("PLANTSWEEP_HOME", str(home))
    return home


def run_cli(store: Any, argv: list[str], stdin: str = "",
            monkeypatch: pytest.MonkeyPatch | None = None) -> int:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command")
    add_parsers(sub, argparse.ArgumentParser)
    args = parser.parse_args(argv)
    args.store = store.url
    assert monkeypatch is not None
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    return command(args)


def audit(store: Any, action: str | None = None) -> list[dict[str, Any]]:
    with store.connect() as conn:
        rows = conn.execute(
            select(schema.audit_entries.c.entry).order_by(schema.audit_entries.c.seq)
        ).scalars().all()
    entries = [json.loads(r) for r in rows]
    return [e for e in entries if action is None or e["what"]["action"] == action]


def add_users(store: Any) -> None:
    """admin (administrator), rita (reviewer), otto (operator), made directly."""
    with store.begin() as conn:
        accounts.create_user(conn, os_actor(), "admin", "Ada Admin", "administrator", ADMIN_PW)
        admin = Actor("admin", "Ada Admin", "password")
        accounts.create_user(conn, admin, "rita", "Rita Reviewer", "reviewer", REVIEW_PW)
        accounts.create_user(conn, admin, "otto", "Otto Operator", "operator", OPER_PW)


def test_bootstrap_first_user_must_be_admin_then_login_needed(
        store: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(UsageError, match="first user of a store must be an administrator"):
        run_cli(store, ["user", "add", "boss", "--full-name", "Bo Boss", "--role", "operator",
                        "--password-stdin"], ADMIN_PW + "\n", monkeypatch)
    assert run_cli(store, ["user", "add", "boss", "--full-name", "Bo  Boss", "--password-stdin"],
                   ADMIN_PW + "\n", monkeypatch) == 0
    with store.connect() as conn:
        boss = accounts.get_user(conn, "boss")
    assert boss is not None and boss.role == "administrator" and boss.full_name == "Bo Boss"
    created = audit(store, "create")
    assert created[-1]["who"]["auth"] == "os-account"
    assert created[-1]["what"]["new"] == {"username": "boss", "full_name": "Bo Boss",
                                          "role": "administrator", "active": True}
    # The second user needs a logged-in administrator: the OS account is refused.
    with pytest.raises(PermissionDenied, match="user.manage"):
        run_cli(store, ["user", "add", "eve", "--full-name", "Eve", "--role", "administrator",
                        "--password-stdin"], "eve-password-123\n", monkeypatch)
    assert run_cli(store, ["login", "boss", "--password-stdin"], ADMIN_PW + "\n",
                   monkeypatch) == 0
    assert run_cli(store, ["user", "add", "eve", "--full-name", "Eve Example", "--role",
                           "reviewer", "--password-stdin"], "eve-password-123\n",
                   monkeypatch) == 0
    assert audit(store, "create")[-1]["who"] == {"user_id": "boss", "full_name": "Bo Boss",
                                                 "auth": "session"}
    capsys.readouterr()
    assert run_cli(store, ["user", "list", "--json"], "", monkeypatch) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [u["username"] for u in listed] == ["boss", "eve"]
    assert all("password_hash" not in u for u in listed)


def test_password_is_argon2id_never_stored_or_audited(store: Any) -> None:
    add_users(store)
    with store.connect() as conn:
        hashes = conn.execute(select(schema.users.c.password_hash)).scalars().all()
    assert len(hashes) == 3
    for h in hashes:
        assert h.startswith("$argon2id$v=19$")
        assert ADMIN_PW not in h and REVIEW_PW not in h
    everything = json.dumps(audit(store))
    for secret in (ADMIN_PW, REVIEW_PW, OPER_PW, *hashes):
        assert secret not in everything
    assert passwords.verify_password(hashes[0], ADMIN_PW)
    assert not passwords.verify_password(hashes[0], ADMIN_PW + "x")
    with pytest.raises(UsageError, match="at least 12"), store.begin() as conn:
        accounts.create_user(conn, os_actor(), "shorty", "Short Pw", "operator", "elevenchars")


def test_permission_matrix(store: Any) -> None:
    nobody = os_actor()
    # No users at all: everything is allowed (the demo works without set-up).
    accounts.require_role(nobody, store, "user.manage")
    add_users(store)
    rita = Actor("rita", "Rita Reviewer", "session")
    otto = Actor("otto", "Otto Operator", "session")
    admin = Actor("admin", "Ada Admin", "session")
    accounts.require_role(otto, store, "scan")
    accounts.require_role(otto, store, "remark")
    with pytest.raises(PermissionDenied, match="reviewer or administrator"):
        accounts.require_role(otto, store, "sign")
    accounts.require_role(rita, store, "sign")
    accounts.require_role(rita, store, "audit.export")
    with pytest.raises(PermissionDenied, match="administrator"):
        accounts.require_role(rita, store, "user.manage")
    accounts.require_role(admin, store, "key.rotate")
    # The OS account: operator permissions only.
    accounts.require_role(nobody, store, "scan")
    with pytest.raises(PermissionDenied, match="plantsweep login"):
        accounts.require_role(nobody, store, "sign")
    with pytest.raises(ValueError, match="unknown permission"):
        accounts.require_role(admin, store, "launch-missiles")
    assert accounts.PERMISSIONS["operator"] < accounts.PERMISSIONS["reviewer"] \
        < accounts.PERMISSIONS["administrator"]


def test_lockout_after_five_failures(store: Any) -> None:
    add_users(store)
    for attempt in range(1, accounts.MAX_FAILURES):
        with pytest.raises(AuthError, match="wrong username or password$"):
            accounts.authenticate(store, "otto", f"not-the-password-{attempt}")
    with pytest.raises(AuthError, match="now locked until"):
        accounts.authenticate(store, "otto", "not-the-password-5")
    # Locked: even the right password is refused (and that attempt is audited too).
    with pytest.raises(AuthError, match="is locked until"):
        accounts.authenticate(store, "otto", OPER_PW)
    failed = [e for e in audit(store, "login_failed") if e["what"]["object_id"] == "otto"]
    assert [e["what"]["new"]["cause"] for e in failed] == ["wrong password"] * 5 + ["locked"]
    assert [e["what"]["new"]["failed_attempts"] for e in failed[:5]] == [1, 2, 3, 4, 5]
    assert len(audit(store, "lockout")) == 1
    with store.connect() as conn:
        otto = accounts.get_user(conn, "otto")
    assert otto is not None and otto.locked() and otto.failed_attempts == 5
    # Once the lock has run out the right password works and resets the count.
    with store.begin() as conn:
        conn.execute(update(schema.users).where(schema.users.c.username == "otto")
                     .values(locked_until="2000-01-01T00:00:00Z"))
    assert accounts.authenticate(store, "otto", OPER_PW).username == "otto"
    with store.connect() as conn:
        otto = accounts.get_user(conn, "otto")
    assert otto is not None and otto.failed_attempts == 0 and otto.locked_until is None


def test_unknown_user_fails_like_a_wrong_password_and_is_audited(store: Any) -> None:
    add_users(store)
    with pytest.raises(AuthError, match="wrong username or password"):
        accounts.authenticate(store, "mallory", "whatever-password")
    last = audit(store, "login_failed")[-1]
    assert last["what"]["object_id"] == "mallory"
    assert last["what"]["new"]["cause"] == "unknown user"
    assert "whatever-password" not in json.dumps(last)


def test_login_session_gives_the_user(store: Any, own_home: Path) -> None:
    add_users(store)
    assert sessions.current_actor(store).auth == "os-account"
    session = sessions.login(store, "rita", REVIEW_PW, hours=2)
    assert session.username == "rita"
    path = own_home / "session.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    token = json.loads(path.read_text())["token"]
    with store.connect() as conn:
        stored = conn.execute(select(schema.sessions.c.token_sha256)).scalars().all()
    assert stored == [sessions.token_hash(token)] and token not in stored
    actor = sessions.current_actor(store, require_login=True)
    assert actor == Actor("rita", "Rita Reviewer", "session")
    assert sessions.acting(store, "sign") == actor
    assert audit(store, "login")[-1]["who"]["user_id"] == "rita"
    assert sessions.logout(store) == "rita"
    assert not path.exists()
    assert sessions.current_actor(store).auth == "os-account"
    with store.connect() as conn:
        assert conn.execute(select(schema.sessions.c.ended)).scalar() is not None


def test_wrong_password_makes_no_session(store: Any, own_home: Path) -> None:
    add_users(store)
    with pytest.raises(AuthError):
        sessions.login(store, "rita", "wrong-password-xx")
    assert not (own_home / "session.json").exists()
    assert sessions.current_actor(store).auth == "os-account"


def test_expired_foreign_or_tampered_session_is_ignored(
        store: Any, own_home: Path, tmp_path: Path) -> None:
    add_users(store)
    sessions.login(store, "rita", REVIEW_PW)
    assert sessions.current_actor(store).user_id == "rita"
    # Another store (its own install_id): the session is not for it.
    other = open_store(f"sqlite:///{tmp_path / 'other.sqlite'}")
    try:
        assert sessions.current_actor(other).auth == "os-account"
    finally:
        other.dispose()
    # The file's expiry says it is valid, but the store's row has run out.
    with store.begin() as conn:
        conn.execute(update(schema.sessions).values(expires="2000-01-01T00:00:00Z"))
    assert sessions.current_actor(store).auth == "os-account"
    with pytest.raises(UsageError, match="log in first"):
        sessions.current_actor(store, require_login=True)
    # A hand-edited file (another username, same token) does not make one somebody else.
    sessions.login(store, "otto", OPER_PW)
    path = own_home / "session.json"
    data = json.loads(path.read_text())
    data["username"] = "admin"
    path.write_text(json.dumps(data))
    os.chmod(path, 0o600)
    assert sessions.current_actor(store).auth == "os-account"


def test_require_login_policy_refuses_the_os_account(
        store: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    add_users(store)
    # Only an administrator may switch it on; the OS account may not.
    with pytest.raises(PermissionDenied):
        run_cli(store, ["user", "policy", "--require-login", "on", "--reason", "GMP"], "",
                monkeypatch)
    assert run_cli(store, ["login", "admin", "--password-stdin"], ADMIN_PW + "\n",
                   monkeypatch) == 0
    with pytest.raises(UsageError, match="reason"):
        run_cli(store, ["user", "policy", "--require-login", "on"], "", monkeypatch)
    assert run_cli(store, ["user", "policy", "--require-login", "on", "--reason",
                           "SOP-17 requires named users"], "", monkeypatch) == 0
    change = audit(store, "config_change")[-1]
    assert change["what"]["old"] == {"require_login": "off"}
    assert change["what"]["new"] == {"require_login": "on"}
    assert change["why"] == "SOP-17 requires named users"
    assert sessions.current_actor(store).user_id == "admin"
    sessions.logout(store)
    with pytest.raises(UsageError, match="log in first: plantsweep login"):
        sessions.current_actor(store)
    with pytest.raises(UsageError, match="log in first"):
        sessions.acting(store, "scan")
    with pytest.raises(PermissionDenied, match="requires login"):
        accounts.require_role(os_actor(), store, "scan")


def test_deactivate_keeps_the_user_and_never_reuses_the_name(
        store: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    add_users(store)
    sessions.login(store, "otto", OPER_PW)
    admin = Actor("admin", "Ada Admin", "session")
    with pytest.raises(UsageError, match="reason"), store.begin() as conn:
        accounts.deactivate_user(conn, admin, "otto", "")
    with store.begin() as conn:
        accounts.deactivate_user(conn, admin, "otto", "left the company")
    with store.connect() as conn:
        otto = accounts.get_user(conn, "otto")
    assert otto is not None and otto.active is False
    entry = audit(store, "deactivate")[-1]
    assert (entry["what"]["old"], entry["what"]["new"]) == ({"active": True}, {"active": False})
    assert entry["why"] == "left the company"
    # Their session ended; they cannot log in; their name is not given out again.
    assert sessions.current_actor(store).auth == "os-account"
    with pytest.raises(AuthError):
        accounts.authenticate(store, "otto", OPER_PW)
    with pytest.raises(UsageError, match="never reused"), store.begin() as conn:
        accounts.create_user(conn, admin, "otto", "Otto Two", "operator", "another-pw-1234")
    with pytest.raises(UsageError, match="last active administrator"), store.begin() as conn:
        accounts.deactivate_user(conn, admin, "admin", "oops")
    # No deletion command exists at all.
    parser = argparse.ArgumentParser()
    add_parsers(parser.add_subparsers(dest="command"), argparse.ArgumentParser)
    with pytest.raises(SystemExit):
        parser.parse_args(["user", "delete", "otto"])


def test_role_change_and_password_reset_are_audited(
        store: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    add_users(store)
    assert run_cli(store, ["login", "admin", "--password-stdin"], ADMIN_PW + "\n",
                   monkeypatch) == 0
    assert run_cli(store, ["user", "role", "otto", "reviewer", "--reason", "trained"], "",
                   monkeypatch) == 0
    change = audit(store, "role_change")[-1]
    assert change["what"]["old"] == {"role": "operator"}
    assert change["what"]["new"] == {"role": "reviewer"}
    with pytest.raises(UsageError, match="reason"):
        run_cli(store, ["user", "passwd", "otto", "--password-stdin"],
                "new-otto-password-1\n", monkeypatch)
    assert run_cli(store, ["user", "passwd", "otto", "--reason", "forgotten",
                           "--password-stdin"], "new-otto-password-1\n", monkeypatch) == 0
    assert audit(store, "password_reset")[-1]["why"] == "forgotten"
    with pytest.raises(AuthError):
        accounts.authenticate(store, "otto", OPER_PW)
    assert accounts.authenticate(store, "otto", "new-otto-password-1").role == "reviewer"
    # The user's own change asks the current password first.
    assert run_cli(store, ["login", "otto", "--password-stdin"], "new-otto-password-1\n",
                   monkeypatch) == 0
    with pytest.raises(AuthError):
        run_cli(store, ["user", "passwd", "otto", "--password-stdin"],
                "wrong-current-pw\nthird-otto-password\n", monkeypatch)
    assert run_cli(store, ["user", "passwd", "otto", "--password-stdin"],
                   "new-otto-password-1\nthird-otto-password\n", monkeypatch) == 0
    assert audit(store, "password_change")[-1]["who"]["user_id"] == "otto"
    assert "third-otto-password" not in json.dumps(audit(store))
