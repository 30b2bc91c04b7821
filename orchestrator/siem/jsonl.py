"""JSON lines: one event object per line, appended to a file; a batch is accepted once it is
written and fsync'ed.

    with JsonlWriter(Path("events.jsonl")) as w:
        w.send_batch(events)
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import TracebackType

from orchestrator.errors import UsageError
from orchestrator.siem.events import Event
from orchestrator.siem.syslog import DeliveryError


def line(event: Event) -> str:
    return json.dumps(event.as_json(), ensure_ascii=False, sort_keys=True, separators=(",", ":"))


class JsonlWriter:
    def __init__(self, path: Path):
        self.path = path
        self._fd: int | None = None

    def send_batch(self, events: list[Event]) -> None:
        if self._fd is None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            except OSError as exc:
                raise UsageError(
                    f"cannot open for writing: {exc.strerror}", path=str(self.path)
                ) from None
        data = "".join(line(e) + "\n" for e in events).encode("utf-8")
        try:
            os.write(self._fd, data)
            os.fsync(self._fd)  # accepted = on disk
        except OSError as exc:
            raise DeliveryError(f"writing failed: {exc.strerror}", path=str(self.path)) from None

    def close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

    def __enter__(self) -> JsonlWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
