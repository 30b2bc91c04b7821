"""Who is acting and where: every audit entry names both."""

from __future__ import annotations

import getpass
import socket
from dataclasses import dataclass


@dataclass(frozen=True)
class Actor:
    """The person (or account) behind a command.

    `user_id` is the store user's login name, or `os:<account>` when nobody is logged in and
    the store allows that (see orchestrator/users); `auth` says how identity was established:
    "password" (asked just now), "session" (`plantsweep login`), "os-account".
    """

    user_id: str
    full_name: str
    auth: str

    def as_json(self) -> dict[str, str]:
        return {"user_id": self.user_id, "full_name": self.full_name, "auth": self.auth}


@dataclass(frozen=True)
class Where:
    controller: str
    site: str = ""

    def as_json(self) -> dict[str, str]:
        return {"controller": self.controller, "site": self.site}


def os_actor() -> Actor:
    """The operating-system account running this process (no store login)."""
    try:
        account = getpass.getuser()
    except (KeyError, OSError):
        account = "unknown"
    return Actor(user_id=f"os:{account}", full_name=f"OS account {account}", auth="os-account")


def here(site: str = "") -> Where:
    return Where(controller=socket.gethostname(), site=site)
