"""Detection settings shared by `plantsweep scan`, `plantsweep run` and the scan action:
the level that counts as a finding, speed and impact on the host, the verdict cache.

    options = DetectionOptions(min_level="alert", threads=2, since_last=True)
    options.scanner_args()          # flags for the payload
    counted(log["findings"], options.min_level)
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from agentless_scanner.scoring import LEVELS, level_at_least
from orchestrator.errors import UsageError

MIN_LEVELS = LEVELS[1:]  # notice, warning, alert
DEFAULT_MIN_LEVEL = "warning"


@dataclass(frozen=True)
class DetectionOptions:
    min_level: str = DEFAULT_MIN_LEVEL
    threads: int | None = None
    low_impact: bool = False
    cpu_limit: int | None = None
    all_types: bool = False
    scan_archives: bool = False
    use_cache: bool = True
    since_last: bool = False

    def __post_init__(self) -> None:
        if self.min_level not in MIN_LEVELS:
            raise UsageError(f"min level must be one of {', '.join(MIN_LEVELS)}")
        if self.threads is not None and not 1 <= self.threads <= 64:
            raise UsageError("threads must be 1-64")
        if self.cpu_limit is not None and not 1 <= self.cpu_limit <= 100:
            raise UsageError("cpu limit must be 1-100 (percent of one CPU)")
        if self.since_last and not self.use_cache:
            raise UsageError("--since-last needs the cache (it cannot go with --no-cache)")

    def scanner_args(self) -> tuple[str, ...]:
        args: list[str] = []
        if self.threads is not None:
            args += ["--threads", str(self.threads)]
        if self.low_impact:
            args.append("--low-impact")
        if self.cpu_limit is not None:
            args += ["--cpu-limit", str(self.cpu_limit)]
        if self.all_types:
            args.append("--all-types")
        if self.scan_archives:
            args.append("--scan-archives")
        return tuple(args)


def counted(findings: Iterable[dict[str, Any]], min_level: str) -> int:
    """Findings at or above `min_level` (a log without levels: every finding counts)."""
    return sum(1 for f in findings if level_at_least(f.get("level", "alert"), min_level))


def add_detection_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("detection")
    g.add_argument(
        "--min-level",
        choices=MIN_LEVELS,
        default=DEFAULT_MIN_LEVEL,
        help="findings at or above this level count in the recap and exit code (warning)",
    )
    g.add_argument("--threads", type=int, metavar="N", help="scanner threads per host")
    g.add_argument(
        "--low-impact",
        action="store_true",
        help="weak hosts: one thread, lowest CPU/IO priority, CPU limit 50%%",
    )
    g.add_argument("--cpu-limit", type=int, metavar="PCT", help="CPU limit, %% of one CPU")
    g.add_argument(
        "--all-types",
        action="store_true",
        help="quick scan: match all files, not only executables, scripts, macro documents, "
        "archives",
    )
    g.add_argument("--scan-archives", action="store_true", help="scan inside zip archives")
    g.add_argument(
        "--no-cache", action="store_true", help="neither use nor feed the fleet verdict cache"
    )
    g.add_argument(
        "--since-last",
        action="store_true",
        help="do not match again files unchanged since the host's last scan with these patterns",
    )


def from_args(args: argparse.Namespace) -> DetectionOptions:
    return DetectionOptions(
        min_level=args.min_level,
        threads=args.threads,
        low_impact=args.low_impact,
        cpu_limit=args.cpu_limit,
        all_types=args.all_types,
        scan_archives=args.scan_archives,
        use_cache=not args.no_cache,
        since_last=args.since_last,
    )
