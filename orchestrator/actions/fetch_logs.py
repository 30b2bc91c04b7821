"""`fetch_logs`: bring back a file or folder from the host's temp area to the run folder.

- fetch_logs: {src: scan-log.json}              # -> results/<run>/<host>/scan-log.json
- fetch_logs: {src: ".", dest: "{{ inventory_hostname }}-temp"}
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path, PurePosixPath
from typing import Any

from orchestrator.actions.base import Action, ActionContext, Outcome
from orchestrator.errors import StepFailed
from orchestrator.playbook.spec import ActionSpec
from orchestrator.results import safe_file_name

# Lists regular files under the source without following symlinks (nothing outside the temp
# dir can be reached through one).
_LIST = r"""
import json, os, stat, sys
root = sys.argv[1]
found = []
st = os.lstat(root)
if stat.S_ISREG(st.st_mode):
    found.append('')
elif stat.S_ISDIR(st.st_mode):
    for here, dirs, files in os.walk(root):
        for name in files:
            path = os.path.join(here, name)
            if stat.S_ISREG(os.lstat(path).st_mode):
                found.append(os.path.relpath(path, root))
print(json.dumps(found))
"""

MAX_FILES = 10000


def _relative(src: str, host: str) -> PurePosixPath:
    path = PurePosixPath(src)
    if path.is_absolute() or ".." in path.parts:
        raise StepFailed(host, f"fetch_logs src must be inside the temp dir: {src!r}")
    return path


class FetchLogs(Action):
    spec = ActionSpec(name="fetch_logs", required=frozenset({"src"}), optional=frozenset({"dest"}))

    def run(self, ctx: ActionContext, args: dict[str, Any]) -> Outcome:
        session = ctx.live_session()
        session.require_posix("fetch_logs")
        assert session.facts is not None
        rel = _relative(str(args["src"]), ctx.host)
        remote = PurePosixPath(session.facts.temp_dir) / rel
        listing = session.run(
            f"{shlex.quote(session.facts.python)} -I -B -c {shlex.quote(_LIST)} "
            f"{shlex.quote(str(remote))}",
            leaves_nothing_running=True,  # our own listing script, waited for
        )
        if not listing.ok:
            raise StepFailed(
                ctx.host, f"cannot read {rel} in the temp dir: {listing.stderr_tail()}"
            )
        files = json.loads(listing.stdout.decode("utf-8", "surrogateescape").strip())
        if len(files) > MAX_FILES:
            raise StepFailed(ctx.host, f"{rel} holds {len(files)} files (at most {MAX_FILES})")
        dest_name = str(args.get("dest") or safe_file_name(ctx.host))
        dest = ctx.run.run.path / _relative(dest_name, ctx.host)
        fetched = []
        for name in files:
            source = remote / name if name else remote
            local = dest / (name or rel.name)
            local.parent.mkdir(parents=True, exist_ok=True)
            session.conn.get(str(source), Path(local), ctx.run.timeouts.transfer)
            fetched.append(str(local))
        return Outcome(
            "ok", {"files": fetched, "dest": str(dest)}, f"{len(fetched)} file(s) to {dest}"
        )

    def check(self, ctx: ActionContext, args: dict[str, Any]) -> Outcome:
        return Outcome("skipped", message=f"check mode: would fetch {args['src']}")
