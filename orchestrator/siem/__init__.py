"""SIEM export from the central store: Splunk HEC, QRadar LEEF 2.0 and ArcSight CEF over RFC
5424 syslog (TCP, TLS, UDP), and JSON lines.

    store = open_store()
    dest = Destination.from_args(kind="cef", to="tls://siem.example:6514", ca="ca.pem")
    result = export(store, dest, actor)        # at-least-once, resumes at the stored cursor

The data flows one way: store rows -> neutral events (events.py) -> one format (cef.py,
leef.py, hec.py, jsonl.py) -> one transport (syslog.py, hec.py, jsonl.py). The cursor
(cursor.py) is the audit seq: every record the store keeps is written together with an audit
entry, and audit seqs are gapless and commit in order, so one number says "everything up to
here was accepted". docs/siem-export.md has the field mapping and delivery semantics.
"""

from typing import Any

__all__ = ["Destination", "ExportResult", "export"]


def __getattr__(name: str) -> Any:
    # Lazy: `plantsweep` builds its parser from siem/cli.py without importing the store.
    if name in __all__:
        from orchestrator.siem import export as module

        return getattr(module, name)
    raise AttributeError(name)
