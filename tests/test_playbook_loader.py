"""Loading playbooks: the model built from a valid file, and one clear line for each mistake.

Every bad-playbook case checks the exact file and line and the words that say what was
expected, because that line is all a maintenance engineer sees at 3 a.m. in a downtime window.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from orchestrator.errors import PlantsweepError, PlaybookError
from orchestrator.playbook import ActionSpec, Play, Task, load_playbook, spec_table
from tests.playbook.specs import ACTIONS

FIXTURES = Path(__file__).parent / "playbook"
CAMPAIGN = FIXTURES / "campaign.yml"
ALL_ACTIONS = "assert, asset_info, cleanup, command, fetch_logs, report, scan"


def _load_text(tmp_path: Path, text: str) -> tuple[str, PlaybookError]:
    path = tmp_path / "pb.yml"
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    with pytest.raises(PlaybookError) as caught:
        load_playbook(path, ACTIONS)
    return str(path), caught.value


# --- a valid playbook -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def campaign() -> list[Play]:
    return load_playbook(CAMPAIGN, ACTIONS).plays


def test_playbook_path_and_plays(campaign: list[Play]) -> None:
    playbook = load_playbook(str(CAMPAIGN), ACTIONS)
    assert playbook.path == str(CAMPAIGN)
    assert [play.name for play in playbook.plays] == ["Line 1 downtime scan", "historians,hmi"]


def test_play_keys(campaign: list[Play]) -> None:
    play = campaign[0]
    assert play.hosts == "line1:&linux"
    assert play.vars == {"scan_type": "quick", "report_dir": "{{ playbook_dir }}/reports"}
    assert play.serial == [1, "25%", "100%"]
    assert play.max_fail_percentage == 30.0
    assert play.any_errors_fatal is False
    assert play.tags == ("line1",)
    assert (play.path, play.line) == (str(CAMPAIGN), 2)
    assert len(play.tasks) == 4


def test_vars_files_resolved_against_the_playbook_and_merged_in_order(
    campaign: list[Play],
) -> None:
    play = campaign[0]
    assert play.vars_files == [str(FIXTURES / "vars/common.yml"), str(FIXTURES / "vars/site.yml")]
    # site.yml comes second, so its retention_days wins over common.yml's.
    assert play.vars_files_vars == {"scan_type": "full", "retention_days": 90, "site": "Basel"}


def test_play_defaults_and_hosts_list(campaign: list[Play]) -> None:
    play = campaign[1]
    # A list of patterns is one pattern joined with ","; an unnamed play is named after it.
    assert play.hosts == "historians,hmi"
    assert play.name == "historians,hmi"
    assert play.serial == [2]
    assert (play.vars, play.vars_files, play.vars_files_vars) == ({}, [], {})
    assert play.max_fail_percentage is None
    assert play.tags == ()
    assert play.tasks == [
        Task(
            name="cleanup",
            action="cleanup",
            args={},
            when=None,
            tags=(),
            register=None,
            ignore_errors=False,
            timeout=None,
            path=str(CAMPAIGN),
            line=46,
        )
    ]


def test_task_keys(campaign: list[Play]) -> None:
    gather, scan, uname, debug = campaign[0].tasks
    assert (gather.name, gather.action, gather.args) == (
        "Gather asset information",
        "asset_info",
        {},
    )
    assert gather.register == "facts"
    assert gather.tags == ("asset", "always")
    assert gather.line == 15

    assert scan.action == "scan"
    assert scan.args == {"type": "{{ scan_type }}", "paths": ["/srv/plant", "{{ report_dir }}"]}
    assert scan.when == "asset.os.family == 'linux'"
    assert scan.timeout == 600.0
    assert scan.tags == ("scan",)  # a single tag as a string
    assert scan.line == 20

    # Free-form string fills the action's free_form argument; no name shows the action.
    assert (uname.name, uname.args) == ("command", {"cmd": "uname -a"})
    assert uname.when == ["facts is defined", "uname_out is not defined"]
    assert uname.ignore_errors is True
    assert uname.register == "uname_out"

    assert debug.args == {"cmd": "cat /etc/os-release", "chdir": "/"}
    assert debug.tags == ("never", "debug")


def test_comma_separated_tags_numbers_and_when_false(tmp_path: Path) -> None:
    path = tmp_path / "pb.yml"
    path.write_text(
        "- hosts: all\n"
        "  tags: 'a, b,a'\n"
        "  max_fail_percentage: '25%'\n"
        "  serial: '3'\n"
        "  tasks:\n"
        "    - cleanup:\n"
        "      tags: [2024, x]\n"
        "      when: false\n"
        "      timeout: 1.5\n"
    )
    play = load_playbook(path, ACTIONS).plays[0]
    assert play.tags == ("a", "b")
    assert play.max_fail_percentage == 25.0
    assert play.serial == [3]
    task = play.tasks[0]
    assert task.tags == ("2024", "x")
    assert task.when == "False"
    assert task.timeout == 1.5


def test_yaml_merge_keys_may_override(tmp_path: Path) -> None:
    # `<<: *defaults` then an explicit key is an override, not a duplicate key.
    path = tmp_path / "pb.yml"
    path.write_text(
        "- hosts: all\n"
        "  tasks:\n"
        "    - &base\n"
        "      name: base\n"
        "      scan: {type: quick}\n"
        "    - <<: *base\n"
        "      name: second\n"
        "    - *base\n"
    )
    tasks = load_playbook(path, ACTIONS).plays[0].tasks
    assert [t.name for t in tasks] == ["base", "second", "base"]
    assert all(t.args == {"type": "quick"} for t in tasks)


def test_playbook_error_is_a_plantsweep_error() -> None:
    # The CLI turns PlantsweepError into one line and exit code 4.
    assert issubclass(PlaybookError, PlantsweepError)
    assert PlaybookError("x").exit_code == 4


# --- one line per mistake ---------------------------------------------------------------------

BAD = [
    pytest.param(
        """
        - hosts: all
          tasks:
          - name: a
             scan: x
        """,
        4,
        ["invalid YAML", "mapping values are not allowed here", "column"],
        id="yaml-syntax",
    ),
    pytest.param(
        "name: not a list\nhosts: all\n",
        1,
        ["a playbook is a list of plays, found a mapping"],
        id="top-level-mapping",
    ),
    pytest.param("[]\n", 1, ["playbook has no plays"], id="no-plays"),
    pytest.param("- just text\n", 1, ["a play is a mapping", "found a string"], id="play-string"),
    pytest.param(
        """
        - hosts: all
          taks: []
        """,
        2,
        ["unknown play key 'taks'", "did you mean 'tasks'?", "allowed: name, hosts, vars,"],
        id="play-unknown-key",
    ),
    pytest.param(
        """
        - hosts: all
          roles: [common]
        """,
        2,
        ["'roles' is an Ansible play keyword that plantsweep does not support", "allowed:"],
        id="play-ansible-key",
    ),
    pytest.param(
        """
        - name: Scan line 1
          tasks:
            - asset_info:
        - hosts: all
        """,
        1,
        ["'hosts' is required in a play"],
        id="hosts-missing",
    ),
    pytest.param(
        """
        - hosts:
            line: 1
        """,
        2,
        ["'hosts' must be a host pattern", "found a mapping"],
        id="hosts-mapping",
    ),
    pytest.param(
        """
        - hosts: all
          name: [a]
        """,
        2,
        ["a play's 'name' must be a non-empty string, found a list"],
        id="play-name-list",
    ),
    pytest.param(
        """
        - hosts: all
          serial: ten
        """,
        2,
        ['serial must be an integer, a percentage like "25%", or a list of those', "'ten'"],
        id="serial-word",
    ),
    pytest.param(
        """
        - hosts: all


          serial: [1, -2]
        """,
        4,
        ['serial must be an integer, a percentage like "25%", or a list of those', "-2"],
        id="serial-negative-in-list",
    ),
    pytest.param(
        """
        - hosts: all
          serial: []
        """,
        2,
        ["serial must be", "found an empty list"],
        id="serial-empty-list",
    ),
    pytest.param(
        """
        - hosts: all
          max_fail_percentage: 150
        """,
        2,
        ["'max_fail_percentage' must be a number from 0 to 100, found 150"],
        id="max-fail-range",
    ),
    pytest.param(
        """
        - hosts: all
          any_errors_fatal: maybe
        """,
        2,
        ["'any_errors_fatal' must be true or false, found 'maybe'"],
        id="any-errors-fatal-word",
    ),
    pytest.param(
        """
        - hosts: all
          tasks:
            scan: {type: quick}
        """,
        3,
        ["'tasks' must be a list of tasks, found a mapping"],
        id="tasks-mapping",
    ),
    pytest.param(
        """
        - hosts: all
          tasks:
            - scan the hosts
        """,
        3,
        ["a task is a mapping with one action", f"expected one of: {ALL_ACTIONS}"],
        id="task-string",
    ),
    pytest.param(
        """
        - hosts: all
          tasks:
            - asset_info:
            - name: forgot the action
              tags: scan
        """,
        4,
        [f"task has no action (expected one of: {ALL_ACTIONS})"],
        id="task-no-action",
    ),
    pytest.param(
        """
        - hosts: all
          tasks:
            - name: typo
              scna:
                type: quick
        """,
        4,
        ["unknown action 'scna' (did you mean 'scan'?)"],
        id="action-typo",
    ),
    pytest.param(
        """
        - hosts: all
          tasks:
            - name: not ours
              frobnicate: {}
        """,
        4,
        [f"unknown action 'frobnicate' (expected one of: {ALL_ACTIONS})"],
        id="action-unknown",
    ),
    pytest.param(
        """
        - hosts: all
          tasks:
            - scan: {type: quick}
              whn: asset is defined
        """,
        4,
        ["unknown task key 'whn' (did you mean 'when'?)"],
        id="task-key-typo",
    ),
    pytest.param(
        """
        - hosts: all
          tasks:
            - scan: {type: quick}
              loop: [1, 2]
        """,
        4,
        ["'loop' is an Ansible task keyword that plantsweep does not support", "task keys: name,"],
        id="task-ansible-key",
    ),
    pytest.param(
        """
        - hosts: all
          tasks:
            - name: two things
              asset_info:
              scan: {type: quick}
        """,
        5,
        ["task has more than one action: 'asset_info' and 'scan'", "exactly one"],
        id="two-actions",
    ),
    pytest.param(
        """
        - hosts: all
          tasks:
            - scan: {type: quick}
              when: asset is defined
              when: true
        """,
        5,
        ["duplicate key 'when' (first at line 4)"],
        id="duplicate-key",
    ),
    pytest.param(
        """
        - hosts: all
          tasks:
            - scan: {type: quick}
              timeout: -5
        """,
        4,
        ["'timeout' must be a positive number of seconds, found -5"],
        id="timeout-negative",
    ),
    pytest.param(
        """
        - hosts: all
          tasks:
            - scan: {type: quick}
              timeout: 10s
        """,
        4,
        ["'timeout' must be a positive number of seconds, found '10s'"],
        id="timeout-text",
    ),
    pytest.param(
        """
        - hosts: all
          tasks:
            - scan: {type: quick}
              timeout: true
        """,
        4,
        ["'timeout' must be a positive number of seconds, found True"],
        id="timeout-bool",
    ),
    pytest.param(
        """
        - hosts: all
          tasks:
            - scan: {type: quick}
              when: {os: linux}
        """,
        4,
        ["'when' must be an expression or a list of expressions, found a mapping"],
        id="when-mapping",
    ),
    pytest.param(
        """
        - hosts: all
          tasks:
            - scan: {type: quick}
              when:
                - asset is defined
                - 42
        """,
        6,
        ["'when' must be an expression or a list of expressions, found a number"],
        id="when-list-number",
    ),
    pytest.param(
        """
        - hosts: all
          tasks:
            - scan: {type: quick}
              when: "{{ asset.os.id == 'debian' }}"
        """,
        4,
        ["a condition is a bare expression", "not `{{ x == 1 }}`"],
        id="when-braces",
    ),
    pytest.param(
        """
        - hosts: all
          tasks:
            - scan: {type: quick}
              when:
                - asset is defined
                - asset.os.id ==
        """,
        6,
        ["condition syntax error in 'asset.os.id =='", "end of template"],
        id="when-syntax",
    ),
    pytest.param(
        """
        - hosts: all
          tasks:
            - scan: {type: quick}
              register: scan-result
        """,
        4,
        ["'register' must be a variable name", "found 'scan-result'"],
        id="register-dash",
    ),
    pytest.param(
        """
        - hosts: all
          tasks:
            - scan: {type: quick}
              register: class
        """,
        4,
        ["'register' must be a variable name", "found 'class'"],
        id="register-keyword",
    ),
    pytest.param(
        """
        - hosts: all
          tasks:
            - scan: {type: quick}
              ignore_errors: sometimes
        """,
        4,
        ["'ignore_errors' must be true or false, found 'sometimes'"],
        id="ignore-errors-word",
    ),
    pytest.param(
        """
        - hosts: all
          tasks:
            - scan: {type: quick}
              tags: {a: 1}
        """,
        4,
        ["'tags' must be a tag name or a list of tag names, found a mapping"],
        id="tags-mapping",
    ),
    pytest.param(
        """
        - hosts: all
          tasks:
            - name: ok
              scan:
                paths: [/srv]
        """,
        4,
        ["action 'scan' requires argument 'type'", "allowed: action, paths, patterns, type"],
        id="missing-argument",
    ),
    pytest.param(
        """
        - hosts: all
          tasks:
            - report:
        """,
        3,
        ["action 'report' requires arguments 'dest', 'template'"],
        id="missing-arguments",
    ),
    pytest.param(
        """
        - hosts: all
          tasks:
            - scan:
                type: quick
                pths: [/srv]
        """,
        5,
        [
            "unknown argument 'pths' for action 'scan'",
            "did you mean 'paths'?",
            "allowed: action, paths, patterns, type",
        ],
        id="unknown-argument",
    ),
    pytest.param(
        """
        - hosts: all
          tasks:
            - cleanup: {force: true}
        """,
        3,
        ["unknown argument 'force' for action 'cleanup' (allowed: none)"],
        id="argument-to-no-argument-action",
    ),
    pytest.param(
        """
        - hosts: all
          tasks:
            - scan: quick
        """,
        3,
        ["action 'scan' takes a mapping of arguments (allowed: action, paths, patterns, type)"],
        id="string-to-mapping-action",
    ),
    pytest.param(
        """
        - hosts: all
          tasks:
            - command: [uname, -a]
        """,
        3,
        ["action 'command' takes a string or a mapping (allowed: chdir, cmd), found a list"],
        id="free-form-list",
    ),
    pytest.param(
        """
        - hosts: all
          tasks:
            - scan:
                type: quik
        """,
        4,
        ["'type' of action 'scan' must be one of quick, full, folders, asset, found 'quik'"],
        id="argument-choice",
    ),
    pytest.param(
        """
        - hosts: all
          tasks:
            - scan:
                type: quick
                paths:
                  - /srv
                  - "{{ extra_dir }"
        """,
        7,
        ["template syntax error in '{{ extra_dir }': unexpected '}'"],
        id="template-syntax-in-args",
    ),
    pytest.param(
        """
        - hosts: all
          tasks:
            - command:
                cmd: |
                  echo one
                  echo {{ two }
        """,
        6,
        ["template syntax error in 'echo {{ two }': unexpected '}'"],
        id="template-syntax-in-block-scalar",
    ),
    pytest.param(
        """
        - hosts: all
          tasks:
            - name: "scan {{ inventory_hostname"
              scan: {type: quick}
        """,
        3,
        ["template syntax error", "scan {{ inventory_hostname"],
        id="template-syntax-in-task-name",
    ),
    pytest.param(
        """
        - hosts: all
          vars:
            site: Basel
            motd: "{% if site %}hello"
        """,
        4,
        ["template syntax error", "endif"],
        id="template-syntax-in-play-vars",
    ),
    pytest.param(
        """
        - hosts: all
          vars:
            my-var: 1
        """,
        3,
        ["'my-var' is not a valid variable name"],
        id="var-name",
    ),
    pytest.param(
        """
        - hosts: all
          vars:
            ansible_password: hunter2
        """,
        3,
        ["ansible_password must not hold a clear-text password", "env:"],
        id="clear-text-password",
    ),
    pytest.param(
        """
        - hosts: all
          vars_files: "vars/{{ site }}.yml"
        """,
        2,
        ["'vars_files' names cannot use templates"],
        id="vars-files-template",
    ),
]


@pytest.mark.parametrize(("text", "line", "words"), BAD)
def test_bad_playbook_names_file_line_and_expectation(
    tmp_path: Path, text: str, line: int, words: list[str]
) -> None:
    path, error = _load_text(tmp_path, text)
    message = str(error)
    assert (error.path, error.line) == (path, line)
    assert message.startswith(f"{path}:{line}: ")
    assert "\n" not in message
    for word in words:
        assert word in message


def test_empty_playbook(tmp_path: Path) -> None:
    path, error = _load_text(tmp_path, "# nothing here\n")
    assert str(error) == f"{path}: playbook is empty (expected a list of plays)"


def test_missing_playbook(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yml"
    with pytest.raises(PlaybookError) as caught:
        load_playbook(missing, ACTIONS)
    assert str(caught.value) == f"{missing}: file not found"


def test_non_utf8_playbook(tmp_path: Path) -> None:
    path = tmp_path / "pb.yml"
    path.write_bytes(b"- hosts: all\n  name: caf\xe9\n")
    with pytest.raises(PlaybookError) as caught:
        load_playbook(path, ACTIONS)
    assert str(caught.value) == f"{path}:2: file is not UTF-8 text"


@pytest.mark.parametrize(
    ("playbook", "where", "words"),
    [
        ("bad-vars-syntax.yml", "vars/bad-syntax.yml:3", ["invalid YAML", "flow sequence"]),
        (
            "bad-vars-list.yml",
            "vars/not-mapping.yml:1",
            ["a vars file must be a mapping of names to values, found a list"],
        ),
        ("bad-vars-template.yml", "vars/bad-template.yml:2", ["template syntax error"]),
        # A missing file is the playbook's mistake: its line is named.
        ("bad-vars-missing.yml", "bad-vars-missing.yml:4", ["vars file not found", "nowhere.yml"]),
    ],
)
def test_bad_vars_file(playbook: str, where: str, words: list[str]) -> None:
    with pytest.raises(PlaybookError) as caught:
        load_playbook(FIXTURES / playbook, ACTIONS)
    message = str(caught.value)
    assert message.startswith(f"{FIXTURES / where}: ")
    for word in words:
        assert word in message


def test_action_spec_checks_itself() -> None:
    with pytest.raises(ValueError, match="free_form 'cmd' is no argument"):
        ActionSpec("command", optional=frozenset({"chdir"}), free_form="cmd")
    with pytest.raises(ValueError, match="both required and optional"):
        ActionSpec("scan", required=frozenset({"type"}), optional=frozenset({"type"}))
    with pytest.raises(ValueError, match="registered twice"):
        spec_table([ActionSpec("scan"), ActionSpec("scan")])
    spec = ActionSpec("fetch_logs", required={"src"}, optional={"dest"})  # type: ignore[arg-type]
    assert spec.allowed == frozenset({"src", "dest"})
