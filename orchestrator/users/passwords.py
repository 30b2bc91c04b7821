"""Passwords: Argon2id hashes (argon2-cffi's PasswordHasher defaults, RFC 9106 "low memory"
profile), a minimum length, and reading them without echo.

A password is never logged, printed, put in an audit entry or passed on a command line: it is
read with getpass from the terminal, or as one line from stdin (`--password-stdin`, for
automation and tests).
"""

from __future__ import annotations

import getpass
import sys
from typing import TextIO

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from orchestrator.errors import UsageError

MIN_LENGTH = 12

_hasher = PasswordHasher()  # Argon2id, t=3, m=64 MiB, p=4, 16-byte salt, 32-byte hash

# Verified against when the username is unknown, so an unknown name costs the same time as a
# wrong password (no user enumeration by timing).
_DUMMY_HASH = _hasher.hash("plantsweep-dummy-password")


def check_policy(password: str) -> None:
    """Refuse a password the policy does not allow (UsageError says why)."""
    if len(password) < MIN_LENGTH:
        raise UsageError(f"a password needs at least {MIN_LENGTH} characters")
    if password.strip() != password:
        raise UsageError("a password may not begin or end with white space")


def hash_password(password: str) -> str:
    """The Argon2id hash (PHC string `$argon2id$v=19$m=...`) of a policy-conforming password."""
    check_policy(password)
    return _hasher.hash(password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    """True if `password` matches `stored_hash`; a missing hash still costs one verification."""
    try:
        return _hasher.verify(stored_hash or _DUMMY_HASH, password) and stored_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    """True if the hash was made with weaker parameters than today's defaults."""
    try:
        return _hasher.check_needs_rehash(stored_hash)
    except InvalidHashError:
        return True


def read_password(
    prompt: str = "Password: ",
    *,
    from_stdin: bool = False,
    confirm: bool = False,
    stream: TextIO | None = None,
) -> str:
    """A password from the terminal (no echo; asked twice with `confirm`) or, with `from_stdin`
    or when stdin is not a terminal, the next line of stdin (without its line end)."""
    source = stream or sys.stdin
    if from_stdin or not source.isatty():
        line = source.readline()
        if not line:
            raise UsageError("no password on stdin")
        return line.rstrip("\r\n")
    try:
        first = getpass.getpass(prompt)
        if confirm and getpass.getpass("Again: ") != first:
            raise UsageError("the two passwords differ")
    except EOFError:
        raise UsageError("no password given") from None
    return first


def read_username(prompt: str = "Username: ", *, given: str | None = None) -> str:
    """The username given on the command line, else asked on the terminal."""
    if given:
        return given
    if not sys.stdin.isatty():
        raise UsageError("give the username (--user NAME) when stdin is not a terminal")
    try:
        name = input(prompt).strip()
    except EOFError:
        name = ""
    if not name:
        raise UsageError("no username given")
    return name
