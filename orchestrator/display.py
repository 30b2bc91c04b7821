"""What the user sees: live progress while hosts run, then a recap like Ansible's PLAY RECAP.

On a terminal: a rich progress bar with the steps of the hosts in flight. Otherwise (CI, a
pipe, a log file): one plain line per host step, so nothing depends on a TTY.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Sequence

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from orchestrator.scan import HostResult

STATUS_STYLE = {
    "clean": "green",
    "findings": "bold red",
    "failed": "red",
    "unreachable": "magenta",
}


def cleanup_label(result: HostResult) -> str:
    proof = result.cleanup
    if proof is None:
        return result.cleanup_by or "not needed"
    if proof.temp_dir is None:
        return "nothing written"
    if proof.clean:
        return "removed, verified"
    return "NOT PROVEN"


class Reporter:
    """Thread-safe: worker threads call `step` and `done`."""

    def __init__(self, total: int, title: str, console: Console | None = None):
        self.console = console or Console(stderr=True, highlight=False)
        self.live = self.console.is_terminal
        self.lock = threading.Lock()
        self.steps: dict[str, str] = {}
        self.progress: Progress | None = None
        if self.live:
            self.progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TextColumn("{task.fields[active]}"),
                console=self.console,
                transient=True,
            )
            self.task = self.progress.add_task(title, total=total, active="")
            self.progress.start()
        else:
            self.console.print(f"{title}: {total} host(s)")

    def _refresh(self) -> None:
        if self.progress is not None:
            active = ", ".join(f"{h}:{s}" for h, s in list(self.steps.items())[:4])
            more = len(self.steps) - 4
            self.progress.update(self.task, active=active + (f" +{more}" if more > 0 else ""))

    def step(self, host: str, step: str) -> None:
        with self.lock:
            self.steps[host] = step
            if self.live:
                self._refresh()
            else:
                self.console.print(f"[{host}] {step}", markup=False)

    def done(self, result: HostResult) -> None:
        with self.lock:
            self.steps.pop(result.host, None)
            style = STATUS_STYLE.get(result.status, "")
            detail = f"{result.files_scanned} files, {result.findings} findings"
            if result.message:
                detail = result.message
            line = f"[{style}]{result.status}[/]: {escape(f'[{result.host}]')} {escape(detail)}"
            if self.progress is not None:
                self.progress.console.print(line)
                self.progress.advance(self.task)
                self._refresh()
            else:
                self.console.print(line)

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()


def recap(results: Sequence[HostResult], console: Console | None = None) -> None:
    """PLAY RECAP: one row per host, to stdout so it can be piped or saved."""
    out = console or Console(width=None if sys.stdout.isatty() else 120, highlight=False)
    table = Table(title="SCAN RECAP", title_justify="left")
    for column in ("host", "status", "files", "findings", "errors", "cleanup", "note"):
        numeric = column in ("files", "findings", "errors")
        table.add_column(column, justify="right" if numeric else "left")
    for r in results:
        style = STATUS_STYLE.get(r.status, "")
        table.add_row(
            escape(r.host),
            f"[{style}]{r.status}[/]",
            str(r.files_scanned),
            str(r.findings),
            str(r.errors),
            cleanup_label(r),
            escape(r.message),
        )
    out.print(table)
