"""Exit codes (documented in the README): bits, so findings and failures combine into 3."""

from __future__ import annotations

OK = 0
FINDINGS = 1
HOST_FAILED = 2
USAGE = 4
AUDIT_FAILED = 8  # `audit verify` (and `inspect verify`) found the trail or a record altered
INTERRUPTED = 130
INTERNAL = 250


def for_run(findings: bool, failed: bool, interrupted: bool = False) -> int:
    """0 all clean; 1 findings; 2 a host failed or was unreachable; 3 both; 130 Ctrl-C."""
    if interrupted:
        return INTERRUPTED
    return (FINDINGS if findings else OK) | (HOST_FAILED if failed else OK)
