"""What a playbook run shows: Ansible-style lines and PLAY RECAP, or a JSON events stream.

Lines go to stdout as each task finishes on each host (hosts run independently, so lines of
different hosts interleave, each naming its host). `--json` replaces them with one JSON object
per line, so other tools can follow a run.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

STYLE = {"ok": "green", "changed": "yellow", "failed": "red", "skipped": "cyan",
         "unreachable": "magenta", "ignored": "yellow"}  # fmt: skip


@dataclass
class HostStats:
    host: str
    ok: int = 0
    changed: int = 0
    unreachable: int = 0
    failed: int = 0
    skipped: int = 0
    ignored: int = 0
    findings: int = 0
    cleanup: str = "not needed"
    message: str = ""
    logs: list[str] = field(default_factory=list)

    @property
    def status(self) -> str:
        if self.unreachable:
            return "unreachable"
        if self.failed:
            return "failed"
        return "findings" if self.findings else "clean"

    def as_dict(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "status": self.status,
            "ok": self.ok,
            "changed": self.changed,
            "unreachable": self.unreachable,
            "failed": self.failed,
            "skipped": self.skipped,
            "ignored": self.ignored,
            "findings": self.findings,
            "cleanup": self.cleanup,
            "message": self.message,
            "logs": self.logs,
        }


class Output:
    """Thread-safe: worker threads report tasks as they finish."""

    def __init__(self, as_json: bool = False, console: Console | None = None):
        self.as_json = as_json
        self.console = console or Console(
            highlight=False, width=None if sys.stdout.isatty() else 160
        )
        self.lock = threading.Lock()
        self.closed = False
        # A live bar of hosts done per play, only on a terminal (it shares the console, so
        # task lines print above it).
        self.progress: Progress | None = None
        self.task_id: Any = None

    def _event(self, **data: Any) -> None:
        self._write(lambda: print(json.dumps(data, default=str), flush=True))

    def _write(self, emit: Any) -> None:
        """A reader that went away (`| head`) must not stop the campaign: output stops instead."""
        if self.closed:
            return
        try:
            emit()
        except BrokenPipeError:
            self.closed = True
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())

    def _print(self, *args: Any) -> None:
        self._write(lambda: self.console.print(*args))

    def play(self, name: str, hosts: list[str], check: bool) -> None:
        with self.lock:
            if not self.as_json and self.console.is_terminal:
                self._stop_progress()
                self.progress = Progress(
                    TextColumn("[bold]{task.description}"),
                    BarColumn(),
                    MofNCompleteColumn(),
                    TimeElapsedColumn(),
                    console=self.console,
                    transient=True,
                )
                self.task_id = self.progress.add_task("hosts done", total=len(hosts))
                self.progress.start()
            if self.as_json:
                self._event(event="play", play=name, hosts=hosts, check=check)
            else:
                mode = " (check mode)" if check else ""
                self._print(f"\nPLAY {escape(f'[{name}]')}{mode} {'*' * 40}")

    def task(
        self, host: str, task: str, action: str, status: str, message: str, where: str
    ) -> None:
        with self.lock:
            if self.as_json:
                self._event(event="task", host=host, task=task, action=action, status=status,
                            msg=message, where=where)  # fmt: skip
            else:
                style = STYLE.get(status, "")
                detail = f" | {message}" if message else ""
                self._print(
                    f"[{style}]{status}: {escape(f'[{host}]')}[/] {escape(task)}{escape(detail)}"
                )

    def diff(self, host: str, task: str, lines: list[str]) -> None:
        with self.lock:
            if self.as_json:
                self._event(event="diff", host=host, task=task, changes=lines)
                return
            if not lines:
                self._print(f"  {escape(f'[{host}]')} no change since the previous run")
            for line in lines:
                style = {"+": "green", "-": "red"}.get(line[0], "yellow")
                self._print(f"  [{style}]{escape(line)}[/]")

    def host_done(self) -> None:
        with self.lock:
            if self.progress is not None:
                self.progress.advance(self.task_id)

    def _stop_progress(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None

    def note(self, text: str) -> None:
        with self.lock:
            if self.as_json:
                self._event(event="note", msg=text)
            else:
                self._print(escape(text))

    def recap(self, stats: list[HostStats], code: int, run_path: str) -> None:
        with self.lock:
            self._stop_progress()
            if self.as_json:
                self._event(event="recap", hosts=[s.as_dict() for s in stats], exit_code=code,
                            run=run_path)  # fmt: skip
                return
            self._print(f"\nPLAY RECAP {'*' * 60}")
            width = max([len(s.host) for s in stats] + [4])
            for s in stats:
                style = STYLE["failed" if s.failed or s.unreachable else "ok"]
                self._print(
                    f"[{style}]{escape(s.host):<{width}}[/] : ok={s.ok:<4} changed={s.changed:<4} "
                    f"unreachable={s.unreachable:<4} failed={s.failed:<4} skipped={s.skipped:<4} "
                    f"ignored={s.ignored:<4} findings={s.findings:<4} cleanup={s.cleanup}"
                )
            self._print(f"logs: {run_path}")
