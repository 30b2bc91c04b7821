"""`plantsweep user|login|logout|whoami`: store users and who is acting.

plantsweep user add NAME --full-name "..." [--role operator|reviewer|administrator]
                [--password-stdin]
plantsweep user list [--json]
plantsweep user deactivate NAME --reason "..."
plantsweep user role NAME ROLE --reason "..."
plantsweep user passwd NAME [--reason "..."] [--password-stdin]
plantsweep user unlock NAME --reason "..."
plantsweep user policy [--require-login on|off --reason "..."]
plantsweep login [NAME] [--hours 8] [--password-stdin]
plantsweep logout
plantsweep whoami

The first `user add` of a store needs no login and must create an administrator; every later
user change needs a logged-in administrator. Passwords are read without echo from the terminal,
or as lines of stdin with `--password-stdin` (`user passwd` of one's own account: the current
password, then the new one).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from orchestrator import exit_codes
from orchestrator.audit.identity import here, os_actor
from orchestrator.errors import UsageError

COMMANDS = ("user", "login", "logout", "whoami")


def add_parsers(sub: Any, parser_class: type) -> None:
    """`user`, `login`, `logout` and `whoami` (parser_class: the CLI's)."""
    from orchestrator.users import ROLES

    user = sub.add_parser("user", help="store users: add, list, deactivate, role, passwd, policy")
    usub = user.add_subparsers(dest="user_command", metavar="ACTION", parser_class=parser_class)
    usub.required = True
    add = usub.add_parser("add", help="add a user (the first user: an administrator, no login)")
    add.add_argument("name", metavar="NAME", help="login name (never reused)")
    add.add_argument("--full-name", required=True, help="printed name, shown on signatures")
    add.add_argument("--role", choices=ROLES, help="required, except for the first user")
    add.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    ls = usub.add_parser("list", help="users, active and deactivated")
    ls.add_argument("--json", action="store_true", help="as JSON")
    deact = usub.add_parser("deactivate", help="deactivate a user (users are never deleted)")
    deact.add_argument("name", metavar="NAME")
    deact.add_argument("--reason", required=True)
    role = usub.add_parser("role", help="change a user's role")
    role.add_argument("name", metavar="NAME")
    role.add_argument("role", metavar="ROLE", choices=ROLES)
    role.add_argument("--reason", required=True)
    pw = usub.add_parser("passwd", help="change one's own password, or reset another's (admin)")
    pw.add_argument("name", metavar="NAME")
    pw.add_argument("--reason", help="required to reset another user's password")
    pw.add_argument("--password-stdin", action="store_true",
                    help="read the password(s) from stdin, one per line")
    unlock = usub.add_parser("unlock", help="lift a lockout before it expires")
    unlock.add_argument("name", metavar="NAME")
    unlock.add_argument("--reason", required=True)
    policy = usub.add_parser("policy", help="show or set the store's login policy")
    policy.add_argument("--require-login", choices=("on", "off"),
                        help="on: nobody acts as the OS account, everyone logs in")
    policy.add_argument("--reason", help="required to change the policy")

    login = sub.add_parser("login", help="log in to the store (a session for this OS account)")
    login.add_argument("name", metavar="NAME", nargs="?", help="asked when not given")
    login.add_argument("--hours", type=float, default=8.0, help="session length (default 8)")
    login.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    sub.add_parser("logout", help="end this OS account's store session")
    sub.add_parser("whoami", help="who is acting on the store, with which permissions")


def command(args: argparse.Namespace) -> int:
    """Run `user`, `login`, `logout` or `whoami`."""
    from orchestrator.store import open_store

    store = open_store(getattr(args, "store", None))
    try:
        if args.command == "login":
            return _login(store, args)
        if args.command == "logout":
            return _logout(store)
        if args.command == "whoami":
            return _whoami(store)
        if args.command == "user":
            handler = {
                "add": _add, "list": _list, "deactivate": _deactivate, "role": _role,
                "passwd": _passwd, "unlock": _unlock, "policy": _policy,
            }[args.user_command]
            return handler(store, args)
        raise UsageError(f"unknown command {args.command}")
    finally:
        store.dispose()


def _add(store: Any, args: argparse.Namespace) -> int:
    from orchestrator.users import accounts, passwords, sessions

    with store.connect() as conn:
        bootstrap = accounts.user_count(conn) == 0
    if bootstrap:
        actor = os_actor()
        role = args.role or "administrator"
    else:
        actor = sessions.acting(store, "user.manage")
        if not args.role:
            raise UsageError("give the new user's role (--role)")
        role = args.role
    password = passwords.read_password(f"Password for {args.name}: ",
                                       from_stdin=args.password_stdin, confirm=True)
    with store.begin() as conn:
        if bootstrap and accounts.user_count(conn) != 0:
            raise UsageError("another user was added meanwhile: log in and try again")
        user = accounts.create_user(conn, actor, args.name, args.full_name, role, password,
                                    where=here())
    print(f"user {user.username} ({user.full_name}) added, role {user.role}")
    if bootstrap:
        print("this is the store's first user: from now on user changes need it logged in "
              "(plantsweep login)")
    return exit_codes.OK


def _list(store: Any, args: argparse.Namespace) -> int:
    from orchestrator.users import accounts, sessions

    sessions.acting(store, "view")
    with store.connect() as conn:
        users = accounts.list_users(conn)
    if args.json:
        print(json.dumps([u.as_json() for u in users], indent=2))
        return exit_codes.OK
    rows = [("USERNAME", "FULL NAME", "ROLE", "STATE", "CREATED", "PASSWORD CHANGED")]
    for u in users:
        state = "active" if u.active else "deactivated"
        if u.active and u.locked():
            state = f"locked until {u.locked_until}"
        rows.append((u.username, u.full_name, u.role, state, u.created, u.password_changed))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    return exit_codes.OK


def _deactivate(store: Any, args: argparse.Namespace) -> int:
    from orchestrator.users import accounts, sessions

    actor = sessions.acting(store, "user.manage")
    with store.begin() as conn:
        accounts.deactivate_user(conn, actor, args.name, args.reason, where=here())
    print(f"user {args.name} deactivated (kept, never reused)")
    return exit_codes.OK


def _role(store: Any, args: argparse.Namespace) -> int:
    from orchestrator.users import accounts, sessions

    actor = sessions.acting(store, "user.manage")
    with store.begin() as conn:
        old = accounts.get_user(conn, args.name)
        accounts.change_role(conn, actor, args.name, args.role, args.reason, where=here())
    print(f"user {args.name}: role {old.role if old else '?'} -> {args.role}")
    return exit_codes.OK


def _passwd(store: Any, args: argparse.Namespace) -> int:
    from orchestrator.users import accounts, passwords, sessions

    actor = sessions.current_actor(store)
    own = actor.auth == "session" and actor.user_id == args.name
    if own:
        current = passwords.read_password("Current password: ", from_stdin=args.password_stdin)
        accounts.authenticate(store, args.name, current, purpose="password_change",
                              where=here())
    else:
        accounts.require_role(actor, store, "user.manage")
        if not (args.reason and args.reason.strip()):
            raise UsageError("a reason is required to reset another user's password (--reason)")
    new = passwords.read_password(f"New password for {args.name}: ",
                                  from_stdin=args.password_stdin, confirm=True)
    with store.begin() as conn:
        accounts.set_password(conn, actor, args.name, new, reason=args.reason, reset=not own,
                              where=here())
    print(f"password of {args.name} {'changed' if own else 'reset'}")
    return exit_codes.OK


def _unlock(store: Any, args: argparse.Namespace) -> int:
    from orchestrator.users import accounts, sessions

    actor = sessions.acting(store, "user.manage")
    with store.begin() as conn:
        accounts.unlock_user(conn, actor, args.name, args.reason, where=here())
    print(f"user {args.name} unlocked")
    return exit_codes.OK


def _policy(store: Any, args: argparse.Namespace) -> int:
    from orchestrator.users import accounts, sessions

    if args.require_login is None:
        state = "on" if accounts.login_required(store) else "off"
        print(f"require-login: {state}")
        return exit_codes.OK
    actor = sessions.acting(store, "policy")
    with store.connect() as conn:
        if args.require_login == "on" and accounts.user_count(conn) == 0:
            raise UsageError("add an administrator first (plantsweep user add): with no users "
                             "nobody could log in")
    with store.begin() as conn:
        accounts.set_login_required(conn, store, actor, args.require_login == "on",
                                    args.reason or "", where=here())
    print(f"require-login: {args.require_login}")
    return exit_codes.OK


def _login(store: Any, args: argparse.Namespace) -> int:
    from orchestrator.users import passwords, sessions

    username = passwords.read_username(given=args.name)
    password = passwords.read_password(from_stdin=args.password_stdin)
    session = sessions.login(store, username, password, hours=args.hours, where=here())
    print(f"logged in as {session.username} ({session.full_name}) until {session.expires}")
    return exit_codes.OK


def _logout(store: Any) -> int:
    from orchestrator.users import sessions

    name = sessions.logout(store, where=here())
    print(f"logged out {name}" if name else "not logged in")
    return exit_codes.OK


def _whoami(store: Any) -> int:
    from orchestrator.users import accounts, sessions

    actor = sessions.current_actor(store)
    perms = sorted(accounts.permissions_of(actor, store))
    if actor.auth == "session":
        with store.connect() as conn:
            user = accounts.get_user(conn, actor.user_id)
        role = user.role if user else "?"
        print(f"{actor.user_id} ({actor.full_name}), role {role}, logged in")
    else:
        print(f"{actor.user_id} ({actor.full_name}), not logged in")
    print(f"permissions: {', '.join(perms) if perms else 'none'}")
    return exit_codes.OK
