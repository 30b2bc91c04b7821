"""Store users, roles and password checks.

Roles and what they may do (`PERMISSIONS`; `require_role` checks one permission):

| permission     | what                                                    | op | rev | admin |
|----------------|---------------------------------------------------------|----|-----|-------|
| `scan`, `run`  | scan hosts, run playbooks                               | x  | x   | x     |
| `import`       | import scan logs (USB kit, other controllers)           | x  | x   | x     |
| `checkpoint`   | gate checkpoint scans of devices (entry/exit)           | x  | x   | x     |
| `device`       | register devices, record admissions                     | x  | x   | x     |
| `remark`       | write the engineer's remarks on an inspection record    | x  | x   | x     |
| `view`         | list/show/verify inspection records, list users         | x  | x   | x     |
| `render`       | print an inspection record (HTML/PDF)                   | x  | x   | x     |
| `sign`         | e-sign an inspection record (`reviewed`, `approved`)    |    | x   | x     |
| `restore`      | restore a quarantined file                              |    | x   | x     |
| `audit.show`   | read the audit trail                                    |    | x   | x     |
| `audit.export` | export the audit trail                                  |    | x   | x     |
| `audit.verify` | verify the audit trail                                  |    | x   | x     |
| `user.manage`  | add users, deactivate, change roles, reset passwords    |    |     | x     |
| `policy`       | store policy (`plantsweep user policy --require-login`) |    |     | x     |
| `key.rotate`   | rotate the audit checkpoint key                         |    |     | x     |

(op = operator, rev = reviewer, admin = administrator.)

Who holds which permission (`require_role`):
- a store user (logged in, or who just typed the password) holds the permissions of the role;
  a deactivated user holds none;
- the operating-system account (nobody logged in) holds the operator permissions, and only
  while the store does not require login (store policy `require_login`, default off);
- while the store has no users at all, everyone may do everything, so a fresh install and the
  demo work without set-up. The first `plantsweep user add` (allowed without login, audited as
  the OS account) must create an administrator; from then on the matrix applies.

Users are never deleted and a username is never reused (§11.100): `deactivate` keeps the row,
its signatures and audit entries; the unique username column refuses a second user of that
name. Every change is an audit entry with old and new values, never a password or its hash.

Lockout (§11.300): each failed password check is an audit entry `login_failed`; after
`MAX_FAILURES` failures in a row the account is locked for `LOCK_MINUTES` minutes (audit entry
`lockout`), during which even the right password is refused. A successful check resets the count.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, func, insert, select, update

from orchestrator.audit import trail
from orchestrator.audit.identity import Actor, Where, os_actor
from orchestrator.errors import PlantsweepError, UsageError
from orchestrator.results import utc_now
from orchestrator.store import schema
from orchestrator.store.database import Store
from orchestrator.users import ROLES, passwords

_OPERATOR = frozenset(
    {"scan", "run", "import", "checkpoint", "device", "remark", "view", "render"}
)
_REVIEWER = _OPERATOR | {"sign", "restore", "audit.show", "audit.export", "audit.verify"}
_ADMINISTRATOR = _REVIEWER | {"user.manage", "policy", "key.rotate"}

PERMISSIONS: dict[str, frozenset[str]] = {
    "operator": _OPERATOR,
    "reviewer": frozenset(_REVIEWER),
    "administrator": frozenset(_ADMINISTRATOR),
}
ALL_PERMISSIONS = frozenset(_ADMINISTRATOR)

MAX_FAILURES = 5
LOCK_MINUTES = 15

USERNAME = re.compile(r"^[a-z][a-z0-9._-]{1,63}$")

# store_meta key of the login policy: "on" or "off" (default off).
REQUIRE_LOGIN_KEY = "require_login"


class AuthError(PlantsweepError):
    """A username/password check failed (wrong password, locked, deactivated)."""


class PermissionDenied(PlantsweepError):
    """The acting user's role does not allow the operation."""


@dataclass(frozen=True)
class UserInfo:
    id: int
    username: str
    full_name: str
    role: str
    active: bool
    created: str
    password_changed: str
    failed_attempts: int
    locked_until: str | None

    def as_json(self) -> dict[str, Any]:
        """Everything but the password hash."""
        return {
            "username": self.username, "full_name": self.full_name, "role": self.role,
            "active": self.active, "created": self.created,
            "password_changed": self.password_changed, "failed_attempts": self.failed_attempts,
            "locked_until": self.locked_until,
        }

    def locked(self, now: str | None = None) -> bool:
        return bool(self.locked_until and self.locked_until > (now or utc_now()))


def _info(row: Any) -> UserInfo:
    return UserInfo(
        id=int(row.id), username=row.username, full_name=row.full_name, role=row.role,
        active=bool(row.active), created=row.created, password_changed=row.password_changed,
        failed_attempts=int(row.failed_attempts or 0), locked_until=row.locked_until,
    )


def get_user(conn: Connection, username: str) -> UserInfo | None:
    row = conn.execute(select(schema.users).where(schema.users.c.username == username)).first()
    return None if row is None else _info(row)


def get_user_by_id(conn: Connection, user_id: int) -> UserInfo | None:
    row = conn.execute(select(schema.users).where(schema.users.c.id == user_id)).first()
    return None if row is None else _info(row)


def list_users(conn: Connection) -> list[UserInfo]:
    rows = conn.execute(select(schema.users).order_by(schema.users.c.username)).all()
    return [_info(r) for r in rows]


def user_count(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).select_from(schema.users)).scalar() or 0)


def _need_user(conn: Connection, username: str) -> UserInfo:
    user = get_user(conn, username)
    if user is None:
        raise UsageError(f"no user {username!r}")
    return user


def _active_admins(conn: Connection) -> int:
    users = schema.users
    return int(conn.execute(
        select(func.count()).select_from(users)
        .where(users.c.role == "administrator", users.c.active.is_(True))
    ).scalar() or 0)


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise UsageError(f"unknown role {role!r} (choose from {', '.join(ROLES)})")


def create_user(
    conn: Connection,
    actor: Actor,
    username: str,
    full_name: str,
    role: str,
    password: str,
    *,
    where: Where | None = None,
) -> UserInfo:
    """Add a user (audited `create`). The first user of a store must be an administrator."""
    if not USERNAME.match(username):
        raise UsageError(
            f"invalid username {username!r}: 2-64 characters, lower-case letters, digits, "
            "'.', '_', '-', starting with a letter"
        )
    _check_role(role)
    full_name = " ".join(full_name.split())
    if not full_name:
        raise UsageError("a user needs a full name (--full-name): it is the printed name of "
                         "the user's signatures")
    if user_count(conn) == 0 and role != "administrator":
        raise UsageError("the first user of a store must be an administrator (--role "
                         "administrator)")
    if get_user(conn, username) is not None:
        raise UsageError(f"the username {username!r} exists (or existed: usernames are never "
                         "reused)")
    password_hash = passwords.hash_password(password)
    now = utc_now()
    users = schema.users
    conn.execute(insert(users).values(
        username=username, full_name=full_name, role=role, password_hash=password_hash,
        active=True, created=now, password_changed=now, failed_attempts=0, locked_until=None,
    ))
    user = _need_user(conn, username)
    trail.append(conn, actor, "create", "user", username,
                 new={"username": username, "full_name": full_name, "role": role,
                      "active": True},
                 where=where)
    return user


def deactivate_user(conn: Connection, actor: Actor, username: str, reason: str, *,
                    where: Where | None = None) -> UserInfo:
    """Deactivate (never delete) a user; their sessions end (audited `deactivate`)."""
    user = _need_user(conn, username)
    if not user.active:
        raise UsageError(f"user {username!r} is deactivated already")
    if user.role == "administrator" and _active_admins(conn) <= 1:
        raise UsageError("refusing to deactivate the last active administrator")
    users = schema.users
    conn.execute(update(users).where(users.c.id == user.id).values(active=False))
    sessions = schema.sessions
    conn.execute(update(sessions).where(sessions.c.user_id == user.id,
                                        sessions.c.ended.is_(None)).values(ended=utc_now()))
    trail.append(conn, actor, "deactivate", "user", username, old={"active": True},
                 new={"active": False}, reason=reason, where=where)
    return _need_user(conn, username)


def change_role(conn: Connection, actor: Actor, username: str, role: str, reason: str, *,
                where: Where | None = None) -> UserInfo:
    """Give a user another role (audited `role_change`)."""
    _check_role(role)
    user = _need_user(conn, username)
    if user.role == role:
        raise UsageError(f"user {username!r} is {role} already")
    if not user.active:
        raise UsageError(f"user {username!r} is deactivated")
    if user.role == "administrator" and _active_admins(conn) <= 1:
        raise UsageError("refusing to demote the last active administrator")
    if not (reason and reason.strip()):
        raise UsageError("a reason is required to change a role (--reason)")
    users = schema.users
    conn.execute(update(users).where(users.c.id == user.id).values(role=role))
    trail.append(conn, actor, "role_change", "user", username, old={"role": user.role},
                 new={"role": role}, reason=reason, where=where)
    return _need_user(conn, username)


def set_password(conn: Connection, actor: Actor, username: str, new_password: str, *,
                 reason: str | None = None, reset: bool, where: Where | None = None) -> None:
    """Set a new password: the user's own change (`password_change`) or an administrator's
    reset (`password_reset`, reason required). Unlocks the account. The audit entry names the
    change, never the password or its hash."""
    user = _need_user(conn, username)
    if not user.active:
        raise UsageError(f"user {username!r} is deactivated")
    password_hash = passwords.hash_password(new_password)
    now = utc_now()
    users = schema.users
    conn.execute(update(users).where(users.c.id == user.id).values(
        password_hash=password_hash, password_changed=now, failed_attempts=0, locked_until=None,
    ))
    trail.append(conn, actor, "password_reset" if reset else "password_change", "user",
                 username, old={"password_changed": user.password_changed},
                 new={"password_changed": now}, reason=reason, where=where)


def unlock_user(conn: Connection, actor: Actor, username: str, reason: str, *,
                where: Where | None = None) -> None:
    """Lift a lockout before it expires (audited `modify`, reason required)."""
    user = _need_user(conn, username)
    users = schema.users
    trail.append(conn, actor, "modify", "user", username,
                 old={"failed_attempts": user.failed_attempts, "locked_until": user.locked_until},
                 new={"failed_attempts": 0, "locked_until": None}, reason=reason, where=where)
    conn.execute(update(users).where(users.c.id == user.id)
                 .values(failed_attempts=0, locked_until=None))


def authenticate(store: Store, username: str, password: str, *, purpose: str = "login",
                 where: Where | None = None) -> UserInfo:
    """Check a username and password in a transaction of its own and return the user.

    A failure is committed as an audit entry `login_failed` (with `purpose`: login, sign, ...)
    before AuthError is raised, and counts towards the lockout."""
    failure: AuthError | None = None
    who = os_actor()  # the account at the terminal: the attempted name is the object
    users = schema.users
    with store.begin() as conn:
        row = conn.execute(
            select(users).where(users.c.username == username).with_for_update()
        ).first()
        now_dt = datetime.now(UTC).replace(microsecond=0)
        now = now_dt.isoformat().replace("+00:00", "Z")
        if row is None or not row.active:
            passwords.verify_password(None, password)  # same cost as a wrong password
            trail.append(conn, who, "login_failed", "user", username,
                         new={"purpose": purpose,
                              "cause": "unknown user" if row is None else "deactivated"},
                         where=where)
            failure = AuthError("wrong username or password")
        elif row.locked_until and row.locked_until > now:
            trail.append(conn, who, "login_failed", "user", username,
                         new={"purpose": purpose, "cause": "locked",
                              "locked_until": row.locked_until}, where=where)
            failure = AuthError(f"account {username!r} is locked until {row.locked_until} "
                                f"after {MAX_FAILURES} failed password checks")
        elif not passwords.verify_password(row.password_hash, password):
            previous = 0 if row.locked_until else int(row.failed_attempts or 0)
            attempts = previous + 1
            locked_until = None
            if attempts >= MAX_FAILURES:
                locked_until = (now_dt + timedelta(minutes=LOCK_MINUTES)).isoformat().replace(
                    "+00:00", "Z")
            conn.execute(update(users).where(users.c.id == row.id)
                         .values(failed_attempts=attempts, locked_until=locked_until))
            trail.append(conn, who, "login_failed", "user", username,
                         new={"purpose": purpose, "cause": "wrong password",
                              "failed_attempts": attempts}, where=where)
            if locked_until:
                trail.append(conn, who, "lockout", "user", username,
                             new={"failed_attempts": attempts, "locked_until": locked_until},
                             where=where)
                failure = AuthError(f"wrong username or password; account {username!r} is now "
                                    f"locked until {locked_until}")
            else:
                failure = AuthError("wrong username or password")
        else:
            values: dict[str, Any] = {"failed_attempts": 0, "locked_until": None}
            if passwords.needs_rehash(row.password_hash):
                values["password_hash"] = passwords.hash_password(password)
            conn.execute(update(users).where(users.c.id == row.id).values(**values))
            return _need_user(conn, username)
    assert failure is not None
    raise failure


def _policy(conn: Connection) -> str:
    table = schema.store_meta
    return conn.execute(
        select(table.c.value).where(table.c.key == REQUIRE_LOGIN_KEY)
    ).scalar() or "off"


def login_required(store: Store) -> bool:
    """The store's policy: must everyone log in (no acting as the OS account)?"""
    with store.connect() as conn:
        return _policy(conn) == "on"


def set_login_required(conn: Connection, store: Store, actor: Actor, required: bool,
                       reason: str, *, where: Where | None = None) -> None:
    """Switch the policy (audited `config_change` with old and new value)."""
    old = _policy(conn)
    new = "on" if required else "off"
    store.set_meta(conn, REQUIRE_LOGIN_KEY, new)
    trail.append(conn, actor, "config_change", "store_policy", REQUIRE_LOGIN_KEY,
                 old={"require_login": old}, new={"require_login": new}, reason=reason,
                 where=where)


def permissions_of(actor: Actor, store: Store) -> frozenset[str]:
    """The permissions `actor` holds in `store` (see the module docstring)."""
    with store.connect() as conn:
        if user_count(conn) == 0:
            return ALL_PERMISSIONS
        if actor.auth == "os-account" or actor.user_id.startswith("os:"):
            return frozenset() if _policy(conn) == "on" else PERMISSIONS["operator"]
        user = get_user(conn, actor.user_id)
    if user is None or not user.active:
        return frozenset()
    return PERMISSIONS.get(user.role, frozenset())


def require_role(actor: Actor, store: Store, permission: str) -> None:
    """Raise PermissionDenied unless `actor` holds `permission` in `store`."""
    if permission not in ALL_PERMISSIONS:
        raise ValueError(f"unknown permission {permission!r}")
    if permission in permissions_of(actor, store):
        return
    roles = [r for r in ROLES if permission in PERMISSIONS[r]]
    if actor.auth == "os-account":
        if login_required(store):
            raise PermissionDenied("this store requires login: plantsweep login")
        raise PermissionDenied(
            f"{permission!r} needs a logged-in {' or '.join(roles)} (plantsweep login); "
            f"{actor.user_id} acts with operator permissions only"
        )
    raise PermissionDenied(
        f"user {actor.user_id!r} may not do this: {permission!r} needs the role "
        f"{' or '.join(roles)}"
    )
