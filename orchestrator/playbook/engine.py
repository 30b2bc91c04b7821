"""Run a playbook: plays in order, hosts in `serial` batches, each host through all its tasks
in one session (one connection, one temp dir, the payload pushed once), cleanup always.

    code = PlaybookRun(playbook, inventory, options, Output()).run_all()

The engine renders a task's arguments and hands them to the action the task names
(orchestrator.actions); it knows nothing about scanning.
"""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator import exit_codes
from orchestrator import payload as payloads
from orchestrator.actions import ACTIONS, ActionContext, Outcome, PatternArchives, RunContext
from orchestrator.connections import SSHOptions, Timeouts, make_connection
from orchestrator.errors import HostError, HostUnreachable
from orchestrator.inventory import Host, Inventory
from orchestrator.journal import Journal, journal_dir
from orchestrator.playbook.model import Play, Playbook, Task
from orchestrator.playbook.output import HostStats, Output
from orchestrator.playbook.selection import batches, play_must_stop, select_tasks
from orchestrator.playbook.templating import (
    TemplateError,
    evaluate_condition,
    render,
    variables_for,
)
from orchestrator.results import RunFolder, new_run_id, utc_now, write_json_atomic
from orchestrator.runner import run_hosts
from orchestrator.session import HostSession, new_session
from orchestrator.store.after_run import store_run
from orchestrator.targets import target_for


@dataclass
class RunOptions:
    check: bool = False
    limit: str | None = None
    tags: set[str] | None = None
    skip_tags: set[str] | None = None
    extra_vars: dict[str, Any] = field(default_factory=dict)
    forks: int = 20
    out: Path = Path("results")
    ssh: SSHOptions = field(default_factory=SSHOptions)
    timeouts: Timeouts = field(default_factory=Timeouts)
    password: str | None = field(default=None, repr=False)
    wheel_dir: Path | None = None
    step: bool = False
    ask: Callable[[str], str] = input
    diff: bool = False
    store: str | None = None  # the central store's URL (None: $PLANTSWEEP_STORE or the default)


class StepGate:
    """--step: ask once per task (not per host) whether to run it, as ansible-playbook asks;
    (c)ontinue stops asking. Worker threads wait for the one answer."""

    def __init__(self, ask: Callable[[str], str]):
        self.ask = ask
        self.lock = threading.Lock()
        self.answers: dict[tuple[str, int], bool] = {}
        self.continue_all = False

    def allows(self, task: Task) -> bool:
        with self.lock:
            key = (task.path, task.line)
            if key in self.answers:  # answered already (for a host further ahead)
                return self.answers[key]
            if self.continue_all:
                return True
            try:
                reply = self.ask(f"Perform task: {task.name} (N)o/(y)es/(c)ontinue: ")
            except EOFError:
                reply = "n"
            reply = reply.strip().lower()
            self.continue_all = reply in ("c", "continue")
            self.answers[key] = self.continue_all or reply in ("y", "yes")
            return self.answers[key]


def _cleanup_label(session: HostSession | None) -> str:
    if session is None or session.proof is None:
        return "not needed"
    proof = session.proof
    if proof.temp_dir is None:
        return "nothing written"
    return "verified" if proof.clean else "NOT PROVEN"


class PlaybookRun:
    def __init__(self, playbook: Playbook, inventory: Inventory, options: RunOptions, out: Output):
        self.playbook = playbook
        self.inventory = inventory
        self.options = options
        self.out = out
        self.stats: dict[str, HostStats] = {}
        self.dropped: set[str] = set()  # failed or unreachable: left out of later plays
        self.run = RunFolder(options.out, new_run_id())
        self.gate = StepGate(options.ask) if options.step else None

    def _stats(self, host: str) -> HostStats:
        return self.stats.setdefault(host, HostStats(host))

    def run_all(self) -> int:
        """Run every play; return the exit code (as `plantsweep scan`'s, 130 if interrupted)."""
        self.run.path.mkdir(parents=True, exist_ok=True)
        journal = (
            None
            if self.options.check
            else Journal.open(journal_dir(), self.run.run_id, list(self.inventory.sources))
        )
        started = utc_now()
        interrupted = aborted = False
        with tempfile.TemporaryDirectory(prefix="plantsweep-build-") as build:
            context = RunContext(
                run=self.run,
                payload=payloads.build_payload(payloads.default_wheel_dir().parent / "payload"),
                default_patterns=payloads.default_patterns_dir(),
                wheel_dir=self.options.wheel_dir or payloads.default_wheel_dir(),
                timeouts=self.options.timeouts,
                playbook_dir=Path(self.playbook.path).parent,
                archives=PatternArchives(Path(build)),
                journal=journal,
                diff=self.options.diff,
            )
            for play in self.playbook.plays:
                interrupted, aborted = self._play(play, context)
                if interrupted or aborted:
                    break
        if journal is not None:
            journal.finished()
        stats = [self.stats[h] for h in self.stats]
        code = self._exit_code(stats, interrupted)
        write_json_atomic(
            self.run.summary(),
            {
                "run_id": self.run.run_id,
                "playbook": self.playbook.path,
                "check": self.options.check,
                "started": started,
                "finished": utc_now(),
                "interrupted": interrupted,
                "aborted": aborted,
                "exit_code": code,
                "hosts": [s.as_dict() for s in stats],
            },
        )
        self.out.recap(stats, code, str(self.run.path))
        if not self.options.check:
            store_run(self.run.path, "playbook", self.options.store)
        return code

    @staticmethod
    def _exit_code(stats: list[HostStats], interrupted: bool) -> int:
        return exit_codes.for_run(
            findings=any(s.findings for s in stats),
            failed=any(s.failed or s.unreachable or s.cleanup == "NOT PROVEN" for s in stats),
            interrupted=interrupted,
        )

    def _play(self, play: Play, context: RunContext) -> tuple[bool, bool]:
        hosts = [
            h
            for h in self.inventory.select(play.hosts, limit=self.options.limit)
            if h.name not in self.dropped
        ]
        tasks = select_tasks(play, self.options.tags, self.options.skip_tags)
        self.out.play(play.name, [h.name for h in hosts], self.options.check)
        for batch in batches(hosts, play.serial):
            outcome = run_hosts(
                batch,
                lambda host, cancel: self._host(play, tasks, host, context, cancel),
                self.options.forks,
                lambda stats: self.out.host_done(),
            )
            if outcome.interrupted:
                self.out.note(f"interrupted: {len(hosts) - len(self.stats)} host(s) not started")
                return True, False
            failed = [s for s in outcome.results if s.failed or s.unreachable]
            self.dropped.update(s.host for s in failed)
            if play_must_stop(
                len(failed),
                len(batch),
                max_fail_percentage=play.max_fail_percentage,
                any_errors_fatal=play.any_errors_fatal,
            ):
                self.out.note(
                    f"NO MORE HOSTS LEFT: {len(failed)} of {len(batch)} host(s) failed in "
                    f"play '{play.name}' (max_fail_percentage "
                    f"{play.max_fail_percentage}, any_errors_fatal {play.any_errors_fatal})"
                )
                return False, True
        return False, False

    def _variables(self, host: Host, play: Play, state: dict[str, Any]) -> Any:
        magic = self.inventory.magic_vars(host.name)
        magic.update(ansible_check_mode=self.options.check, plantsweep_run_id=self.run.run_id)
        return variables_for(
            host_vars=self.inventory.host_vars(host.name),
            play_vars=play.vars,
            vars_files_vars=play.vars_files_vars,
            facts=state.setdefault("facts", {}),
            registered=state.setdefault("registered", {}),
            extra_vars=self.options.extra_vars,
            magic=magic,
        )

    def _host(
        self,
        play: Play,
        tasks: list[Task],
        host: Host,
        context: RunContext,
        cancel: threading.Event,
    ) -> HostStats:
        stats = self._stats(host.name)
        state: dict[str, Any] = {}
        hostvars = self.inventory.host_vars(host.name)
        session: HostSession | None = None
        try:
            target = target_for(host.name, hostvars, self.options.password)
            conn = make_connection(target, self.options.ssh, self.options.timeouts)
            if self.options.check:
                conn.open()  # reachable and authenticated, but nothing is created
            else:
                session = new_session(conn, target, self.options.timeouts, cancel, context.journal)
                session.__enter__()
        except HostUnreachable as exc:
            stats.unreachable += 1
            stats.message = exc.message
            self.out.task(host.name, "connect", "connect", "unreachable", exc.message, "")
            return stats
        except HostError as exc:
            stats.failed += 1
            stats.message = exc.message
            self.out.task(host.name, "connect", "connect", "failed", exc.message, "")
            return stats
        try:
            for task in tasks:
                if cancel.is_set():
                    break
                if not self._task(play, task, host, session, context, state, stats, hostvars):
                    break
        finally:
            if session is not None:
                session.__exit__(None, None, None)
                self._finish_logs(session, state, stats)
            else:
                conn.close()
            stats.cleanup = _cleanup_label(session)
            if stats.cleanup == "NOT PROVEN":
                stats.message = stats.message or "cleanup could not be proven"
        return stats

    def _task(
        self,
        play: Play,
        task: Task,
        host: Host,
        session: HostSession | None,
        context: RunContext,
        state: dict[str, Any],
        stats: HostStats,
        hostvars: dict[str, Any],
    ) -> bool:
        """Run one task; False when the host must stop (failed or unreachable)."""
        where = f"{task.path}:{task.line}"
        variables = self._variables(host, play, state)
        try:
            if self.gate is not None and not self.gate.allows(task):
                outcome = Outcome("skipped", message="skipped at --step")
            elif task.when is not None and not evaluate_condition(task.when, variables):
                outcome = Outcome("skipped", message="condition false")
            else:
                args = render(task.args, variables)
                ctx = ActionContext(
                    host.name, session, self.options.check, dict(variables), hostvars, context,
                    task.timeout, state,
                )  # fmt: skip
                action = ACTIONS[task.action]
                outcome = action.check(ctx, args) if self.options.check else action.run(ctx, args)
        except TemplateError as exc:
            outcome = Outcome("failed", message=f"{where}: {exc.message}")
        except HostUnreachable as exc:
            stats.unreachable += 1
            stats.message = exc.message
            self.out.task(host.name, task.name, task.action, "unreachable", exc.message, where)
            return False
        except HostError as exc:
            outcome = Outcome("failed", message=exc.message)
        except Exception as exc:  # a bug in one action must not end the run for other hosts
            outcome = Outcome("failed", message=f"internal error: {type(exc).__name__}: {exc}")
        state["facts"].update(outcome.facts)
        if task.register:
            state["registered"][task.register] = {
                **outcome.data,
                "status": outcome.status,
                "failed": outcome.status == "failed",
                "skipped": outcome.status == "skipped",
                "msg": outcome.message,
            }
        stats.findings += outcome.findings
        shown = outcome.status
        if outcome.status == "failed" and task.ignore_errors:
            shown = "ignored"
            stats.ignored += 1
        else:
            setattr(stats, outcome.status, getattr(stats, outcome.status) + 1)
        if outcome.status == "failed" and not task.ignore_errors:
            stats.message = outcome.message
        self.out.task(host.name, task.name, task.action, shown, outcome.message, where)
        if outcome.diff is not None:
            self.out.diff(host.name, task.name, outcome.diff)
        return not (outcome.status == "failed" and not task.ignore_errors)

    def _finish_logs(self, session: HostSession, state: dict[str, Any], stats: HostStats) -> None:
        """Add the cleanup proof to every log this host's play produced."""
        proof = session.proof
        for path, log in state.get("log_data", {}).items():
            if proof is not None:
                log["cleanup"] = proof.as_log()
            write_json_atomic(path, log)
            stats.logs.append(path.name)
