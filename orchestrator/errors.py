"""Errors a user can cause. The CLI turns each into one line, never a traceback."""

from __future__ import annotations


class PlantsweepError(Exception):
    """Base class: a problem the user can fix (bad input, unreachable host, ...)."""

    exit_code = 4

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None):
        super().__init__(message)
        self.message = message
        self.path = path
        self.line = line

    def __str__(self) -> str:
        where = ""
        if self.path:
            where = f"{self.path}:{self.line}: " if self.line else f"{self.path}: "
        return f"{where}{self.message}"


class UsageError(PlantsweepError):
    """Bad command-line arguments or option values."""


class InventoryError(PlantsweepError):
    """An inventory file (or group_vars/host_vars file) cannot be read or is malformed."""


class HostPatternError(PlantsweepError):
    """A host pattern (--limit, play hosts) is malformed or matches nothing."""


class PayloadError(PlantsweepError):
    """The scanner payload or its pattern directory cannot be built or read."""


class HostError(PlantsweepError):
    """A step on one host failed; `host` names it."""

    exit_code = 2

    def __init__(self, host: str, message: str):
        super().__init__(message)
        self.host = host

    def __str__(self) -> str:
        return f"{self.host}: {self.message}"


class HostUnreachable(HostError):
    """The host cannot be reached or refuses us (network, host key, authentication)."""


class StepFailed(HostError):
    """A command, transfer or timeout failed on a reachable host."""


class PlaybookError(PlantsweepError):
    """A playbook (or a vars file it names) is malformed; names file, line and what was expected."""
