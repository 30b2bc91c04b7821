"""Helpers shared by the asset collectors: reading files, running tools, section shapes.

Every list section of ``asset`` has the same shape::

    {"items": [...], "count": N, "source": "where it was read", "reason": None}

``reason`` says why the section could not be read (then ``items`` is empty or partial).
``truncated`` is added (True) when the items were capped.
"""

import os
import subprocess

COMMAND_TIMEOUT_S = 120
TOOL_DIRS = ("/usr/bin", "/bin", "/usr/sbin", "/sbin")


def find_tool(name, dirs=TOOL_DIRS):
    for directory in dirs:
        path = os.path.join(directory, name)
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    return None


def run_captured(argv, timeout=COMMAND_TIMEOUT_S, decode=None, **options):
    """Run a command without input; return (stdout bytes, None) or (None, error message).

    ``decode`` turns its stderr into text for the message (default: UTF-8); ``options`` go
    to subprocess.run (``env``, ``creationflags``)."""
    try:
        proc = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            timeout=timeout,
            **options,
        )
    except subprocess.TimeoutExpired:
        return None, "%s timed out after %ss" % (argv[0], timeout)
    except OSError as exc:
        return None, "%s could not run: %s" % (argv[0], exc)
    if proc.returncode != 0:
        stderr = decode(proc.stderr) if decode else proc.stderr.decode("utf-8", "replace")
        err = stderr.strip().splitlines()
        return None, "%s exited with %d%s" % (
            argv[0],
            proc.returncode,
            (": " + err[-1][:200]) if err else "",
        )
    return proc.stdout, None


def run_tool(argv, timeout=COMMAND_TIMEOUT_S):
    """Run a command; return (stdout text, None) or (None, error message)."""
    env = {"LC_ALL": "C", "LANG": "C", "PATH": "/usr/bin:/bin:/usr/sbin:/sbin"}
    out, error = run_captured(argv, timeout, env=env)
    if out is None:
        return None, error
    return out.decode("utf-8", "replace"), None


def read_text(path, limit=1 << 20):
    try:
        with open(path, "rb") as fh:
            return fh.read(limit).decode("utf-8", "replace")
    except OSError:
        return None


def read_line(path, limit=4096):
    """First line of a small file (sysfs attributes), stripped; None if unreadable or empty."""
    text = read_text(path, limit)
    if text is None:
        return None
    text = text.strip()
    return text or None


def listdir(path):
    """Sorted names in a folder, [] if it cannot be listed."""
    try:
        return sorted(os.listdir(path))
    except OSError:
        return []


def section(items, source, reason=None, cap=None):
    """A list section; ``cap`` keeps at most that many items (``truncated`` says so)."""
    result = {"items": items, "count": len(items), "source": source, "reason": reason}
    if cap is not None and len(items) > cap:
        result["items"] = items[:cap]
        result["count"] = cap
        result["truncated"] = True
    return result


def unreadable(reason, source=None):
    return section([], source, reason)


def guarded(errors, kind, collect, fallback):
    """``collect()``; an exception becomes ``fallback(reason)`` plus one ``errors`` entry,
    so one broken collector never loses the rest of the asset record."""
    try:
        return collect()
    except Exception as exc:  # noqa: BLE001 - any bug here must not fail the scan
        reason = "%s failed: %s: %s" % (kind, type(exc).__name__, exc)
        errors.append({"kind": kind, "message": reason[:500]})
        return fallback(reason[:500])
