"""Read a playbook file into a validated ``Playbook``, or fail with one line naming file and line.

The YAML is composed into nodes first (as the inventory loader does): every node carries its
start mark, so any refused value, key or template names the line it is on. Everything that
can be checked without a host is checked here (keys, action arguments, types, Jinja2 syntax of
every template and condition, vars files), so ``--syntax-check`` catches it before a
maintenance window starts, not halfway through one.
"""

from __future__ import annotations

import difflib
import keyword
import math
import os
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from orchestrator.errors import InventoryError, PlaybookError
from orchestrator.inventory.password_refs import PASSWORD_VARS, env_reference
from orchestrator.inventory.yaml_loading import (
    compose,
    construct,
    describe,
    is_null,
    mapping_items,
    node_line,
    read_text,
)

from .model import Play, Playbook, Task
from .spec import ActionSpec
from .templating import TemplateError, check_condition, check_template, has_template

PLAY_KEYS = (
    "name",
    "hosts",
    "vars",
    "vars_files",
    "serial",
    "max_fail_percentage",
    "any_errors_fatal",
    "tags",
    "tasks",
)
TASK_KEYS = ("name", "when", "tags", "register", "ignore_errors", "timeout")

# Ansible keywords a user may well write; naming them avoids a baffling "did you mean".
_ANSIBLE_PLAY_KEYS = frozenset(
    {"roles", "handlers", "pre_tasks", "post_tasks", "import_playbook", "gather_facts",
     "become", "become_user", "remote_user", "connection", "strategy", "order", "environment",
     "collections", "module_defaults", "vars_prompt", "check_mode", "diff", "force_handlers",
     "ignore_unreachable", "throttle", "run_once", "port", "timeout"}
)  # fmt: skip
_ANSIBLE_TASK_KEYS = frozenset(
    {"block", "rescue", "always", "include_tasks", "import_tasks", "include_role",
     "import_role", "loop", "loop_control", "with_items", "with_dict", "become", "become_user",
     "delegate_to", "notify", "vars", "changed_when", "failed_when", "until", "retries",
     "delay", "no_log", "check_mode", "diff", "environment", "args", "action", "local_action",
     "run_once", "any_errors_fatal", "listen", "throttle", "async", "poll"}
)  # fmt: skip

_MERGE_TAG = "tag:yaml.org,2002:merge"
_SERIAL_MESSAGE = 'serial must be an integer, a percentage like "25%", or a list of those'
_PERCENT_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%\s*$")


def load_playbook(path: str | Path, actions: Mapping[str, ActionSpec]) -> Playbook:
    """Load and validate a playbook. Raises ``PlaybookError`` ("path:line: message")."""
    return _Loader(str(path), actions).playbook()


def _listing(names: Any) -> str:
    return ", ".join(sorted(names))


def _suggest(word: str, candidates: Any) -> str | None:
    matches = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return matches[0] if matches else None


@contextmanager
def _as_playbook_error(path: str) -> Iterator[None]:
    # The YAML helpers are shared with the inventory and raise InventoryError; here the same
    # problem is a playbook error, with the same file and line.
    try:
        yield
    except InventoryError as exc:
        raise PlaybookError(exc.message, path=exc.path or path, line=exc.line) from None


class _Loader:
    def __init__(self, path: str, actions: Mapping[str, ActionSpec]):
        self.path = path
        self.actions = actions
        self.basedir = os.path.dirname(path)
        self._checked_mappings: set[int] = set()

    # --- helpers ------------------------------------------------------------------------------

    def error(self, message: str, node: yaml.Node | None, path: str | None = None) -> PlaybookError:
        return PlaybookError(message, path=path or self.path, line=node_line(node))

    def value(self, node: yaml.Node, path: str | None = None) -> Any:
        with _as_playbook_error(path or self.path):
            return construct(node, path or self.path)

    def mapping(
        self, node: yaml.Node, path: str | None = None
    ) -> dict[str, tuple[yaml.Node, yaml.Node]]:
        """``{key: (key node, value node)}`` of a mapping node, with string keys only.

        A key written twice is refused (PyYAML would silently keep the last one, hiding e.g. a
        second ``when:``); keys brought in by a YAML merge (``<<: *defaults``) may be overridden.
        """
        path = path or self.path
        if id(node) not in self._checked_mappings:
            self._checked_mappings.add(id(node))
            seen: dict[Any, yaml.Node] = {}
            for key_node, _ in node.value:
                if key_node.tag == _MERGE_TAG:
                    continue
                key = self.value(key_node, path)
                if isinstance(key, str) and key in seen:
                    first = node_line(seen[key])
                    raise self.error(
                        f"duplicate key '{key}' (first at line {first})", key_node, path
                    )
                seen[key] = key_node
        with _as_playbook_error(path):
            items = mapping_items(node, path)
        result: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        for key_node, value_node in items:
            key = self.value(key_node, path)
            if not isinstance(key, str):
                raise self.error(f"keys must be names, found {describe(key_node)}", key_node, path)
            result[key] = (key_node, value_node)
        return result

    def check_templates(self, node: yaml.Node, path: str | None = None) -> None:
        """Parse every templated string under ``node``: a syntax error names its line now."""
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                self.check_templates(key_node, path)
                self.check_templates(value_node, path)
        elif isinstance(node, yaml.SequenceNode):
            for item in node.value:
                self.check_templates(item, path)
        elif (
            isinstance(node, yaml.ScalarNode)
            and node.tag == "tag:yaml.org,2002:str"
            and has_template(node.value)
        ):
            try:
                check_template(node.value)
            except TemplateError as exc:
                raise self.template_error(exc, node, path) from None

    def template_error(
        self, exc: TemplateError, node: yaml.Node, path: str | None = None
    ) -> PlaybookError:
        line = node_line(node)
        # In a literal block (|) the template's line 1 is the line after the indicator.
        if line is not None and exc.template_line and getattr(node, "style", None) == "|":
            line += exc.template_line
        return PlaybookError(exc.message, path=path or self.path, line=line)

    def string(self, node: yaml.Node, what: str) -> str:
        value = self.value(node)
        if not isinstance(value, str) or not value.strip():
            raise self.error(f"{what} must be a non-empty string, found {describe(node)}", node)
        return value

    def boolean(self, node: yaml.Node, what: str) -> bool:
        value = self.value(node)
        if not isinstance(value, bool):
            found = repr(value) if isinstance(node, yaml.ScalarNode) else describe(node)
            raise self.error(f"'{what}' must be true or false, found {found}", node)
        return value

    def tags(self, node: yaml.Node) -> tuple[str, ...]:
        value = self.value(node)
        if value is None:
            return ()
        # Ansible accepts "a,b" as well as a list; numbers are tag names too.
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, list):
            raise self.error(
                f"'tags' must be a tag name or a list of tag names, found {describe(node)}", node
            )
        tags: list[str] = []
        for item in items:
            if isinstance(item, bool) or not isinstance(item, str | int):
                raise self.error(f"tag names must be strings, found {item!r}", node)
            name = str(item).strip()
            if not name:
                raise self.error("tag names must not be empty", node)
            if name not in tags:
                tags.append(name)
        return tuple(tags)

    # --- playbook and plays -------------------------------------------------------------------

    def playbook(self) -> Playbook:
        with _as_playbook_error(self.path):
            root = compose(read_text(self.path), self.path)
        if root is None or is_null(root):
            raise PlaybookError("playbook is empty (expected a list of plays)", path=self.path)
        if not isinstance(root, yaml.SequenceNode):
            raise self.error(f"a playbook is a list of plays, found {describe(root)}", root)
        if not root.value:
            raise self.error("playbook has no plays (expected a list of plays)", root)
        return Playbook(self.path, [self.play(node) for node in root.value])

    def play(self, node: yaml.Node) -> Play:
        if not isinstance(node, yaml.MappingNode):
            raise self.error(
                f"a play is a mapping (hosts, tasks, ...), found {describe(node)}", node
            )
        entries = self.mapping(node)
        for key, (key_node, _) in entries.items():
            if key not in PLAY_KEYS:
                raise self.error(self.unknown_key("play", key, PLAY_KEYS), key_node)
        if "hosts" not in entries:
            raise self.error("'hosts' is required in a play", node)

        def get(key: str) -> yaml.Node | None:
            found = entries.get(key)
            return None if found is None or is_null(found[1]) else found[1]

        hosts = self.hosts(entries["hosts"][1])
        name_node = get("name")
        name = hosts
        if name_node is not None:
            name = self.string(name_node, "a play's 'name'")
            self.check_templates(name_node)
        vars_node = get("vars")
        play_vars = self.vars_mapping(vars_node, self.path, "a play's 'vars'") if vars_node else {}
        vars_files, files_vars = self.vars_files(get("vars_files"))
        mfp_node = get("max_fail_percentage")
        fatal_node = get("any_errors_fatal")
        tags_node = get("tags")
        tasks_node = get("tasks")
        return Play(
            name=name,
            hosts=hosts,
            vars=play_vars,
            vars_files=vars_files,
            serial=self.serial(get("serial")),
            max_fail_percentage=self.max_fail(mfp_node) if mfp_node else None,
            any_errors_fatal=self.boolean(fatal_node, "any_errors_fatal") if fatal_node else False,
            tags=self.tags(tags_node) if tags_node else (),
            tasks=self.tasks(tasks_node) if tasks_node else [],
            path=self.path,
            line=node_line(node) or 1,
            vars_files_vars=files_vars,
        )

    def unknown_key(self, where: str, key: str, allowed: tuple[str, ...]) -> str:
        known = _ANSIBLE_PLAY_KEYS if where == "play" else _ANSIBLE_TASK_KEYS
        if key in known:
            return (
                f"'{key}' is an Ansible {where} keyword that plantsweep does not support "
                f"(allowed: {', '.join(allowed)})"
            )
        close = _suggest(key, allowed)
        hint = f"did you mean '{close}'? " if close else ""
        return f"unknown {where} key '{key}' ({hint}allowed: {', '.join(allowed)})"

    def hosts(self, node: yaml.Node) -> str:
        value = self.value(node)
        if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
            value = ",".join(v.strip() for v in value)  # Ansible's list form of a pattern
        if not isinstance(value, str) or not value.strip():
            raise self.error(
                f"'hosts' must be a host pattern (e.g. all, plc_gateways:&line1), "
                f"found {describe(node)}",
                node,
            )
        self.check_templates(node)
        return value.strip()

    def vars_mapping(self, node: yaml.Node, path: str, what: str) -> dict[str, Any]:
        if not isinstance(node, yaml.MappingNode):
            raise self.error(
                f"{what} must be a mapping of names to values, found {describe(node)}", node, path
            )
        result: dict[str, Any] = {}
        for key, (key_node, value_node) in self.mapping(node, path).items():
            if not key.isidentifier() or keyword.iskeyword(key):
                raise self.error(
                    f"'{key}' is not a valid variable name (letters, digits and _, "
                    "not starting with a digit)",
                    key_node,
                    path,
                )
            value = self.value(value_node, path)
            if key in PASSWORD_VARS and value not in (None, "") and env_reference(value) is None:
                # Playbooks are copied and attached to audit reports like inventories.
                raise self.error(
                    f"{key} must not hold a clear-text password: put it in an environment "
                    f"variable and write {key}: env:HMI_PASSWORD",
                    key_node,
                    path,
                )
            self.check_templates(value_node, path)
            result[key] = value
        return result

    def vars_files(self, node: yaml.Node | None) -> tuple[list[str], dict[str, Any]]:
        if node is None:
            return [], {}
        entries = node.value if isinstance(node, yaml.SequenceNode) else [node]
        paths: list[str] = []
        merged: dict[str, Any] = {}
        for entry in entries:
            name = self.value(entry)
            if not isinstance(name, str) or not name.strip():
                raise self.error(
                    f"'vars_files' must be a file name or a list of file names, "
                    f"found {describe(entry)}",
                    entry,
                )
            if has_template(name):
                raise self.error(
                    "'vars_files' names cannot use templates (write the file name)", entry
                )
            full = os.path.normpath(os.path.join(self.basedir, os.path.expanduser(name)))
            if not os.path.isfile(full):
                raise self.error(f"vars file not found: {full}", entry)
            with _as_playbook_error(full):
                root = compose(read_text(full), full, json_fallback=full.endswith(".json"))
            if root is not None and not is_null(root):
                merged.update(self.vars_mapping(root, full, "a vars file"))
            paths.append(full)
        return paths, merged

    def serial(self, node: yaml.Node | None) -> list[int | str]:
        if node is None:
            return []
        value = self.value(node)
        items = value if isinstance(value, list) else [value]
        result: list[int | str] = []
        for item in items:
            if isinstance(item, int) and not isinstance(item, bool) and item >= 0:
                result.append(item)
            elif isinstance(item, str) and item.strip().isdigit():
                result.append(int(item))
            elif isinstance(item, str) and re.fullmatch(r"\s*\d+\s*%\s*", item):
                result.append(item.replace(" ", ""))
            else:
                raise self.error(f"{_SERIAL_MESSAGE} (found {item!r})", node)
        if isinstance(value, list) and not result:
            raise self.error(f"{_SERIAL_MESSAGE} (found an empty list)", node)
        return result

    def max_fail(self, node: yaml.Node) -> float:
        value = self.value(node)
        number: float | None = None
        if isinstance(value, int | float) and not isinstance(value, bool):
            number = float(value)
        elif isinstance(value, str) and _PERCENT_RE.match(value):
            number = float(_PERCENT_RE.match(value).group(1))  # type: ignore[union-attr]
        if number is None or not 0 <= number <= 100:
            raise self.error(
                f"'max_fail_percentage' must be a number from 0 to 100, found {value!r}", node
            )
        return number

    # --- tasks --------------------------------------------------------------------------------

    def tasks(self, node: yaml.Node) -> list[Task]:
        if not isinstance(node, yaml.SequenceNode):
            raise self.error(f"'tasks' must be a list of tasks, found {describe(node)}", node)
        return [self.task(item) for item in node.value]

    def task(self, node: yaml.Node) -> Task:
        expected = f"expected one of: {_listing(self.actions)}"
        if not isinstance(node, yaml.MappingNode):
            raise self.error(
                f"a task is a mapping with one action ({expected}), found {describe(node)}", node
            )
        entries = self.mapping(node)
        actions: list[str] = []
        for key, (key_node, _) in entries.items():
            if key in TASK_KEYS:
                continue
            if key in self.actions:
                actions.append(key)
                continue
            raise self.error(self.unknown_task_key(key), key_node)
        if not actions:
            raise self.error(f"task has no action ({expected})", node)
        if len(actions) > 1:
            first, second = actions[0], actions[1]
            raise self.error(
                f"task has more than one action: '{first}' and '{second}' "
                "(a task runs exactly one; split it into two tasks)",
                entries[second][0],
            )
        action = actions[0]
        action_key, args_node = entries[action]
        args = self.args(self.actions[action], action_key, args_node)

        def get(key: str) -> yaml.Node | None:
            found = entries.get(key)
            return None if found is None or is_null(found[1]) else found[1]

        name = action
        if (name_node := get("name")) is not None:
            name = self.string(name_node, "a task's 'name'")
            self.check_templates(name_node)
        when_node = get("when")
        when = self.when(when_node) if when_node is not None else None
        register = None
        if (register_node := get("register")) is not None:
            register = self.value(register_node)
            if (
                not isinstance(register, str)
                or not register.isidentifier()
                or keyword.iskeyword(register)
            ):
                raise self.error(
                    f"'register' must be a variable name (letters, digits and _, not starting "
                    f"with a digit), found {register!r}",
                    register_node,
                )
        ignore_node = get("ignore_errors")
        tags_node = get("tags")
        timeout_node = get("timeout")
        return Task(
            name=name,
            action=action,
            args=args,
            when=when,
            tags=self.tags(tags_node) if tags_node else (),
            register=register,
            ignore_errors=self.boolean(ignore_node, "ignore_errors") if ignore_node else False,
            timeout=self.timeout(timeout_node) if timeout_node else None,
            path=self.path,
            line=node_line(node) or 1,
        )

    def unknown_task_key(self, key: str) -> str:
        if key in _ANSIBLE_TASK_KEYS:
            return (
                f"'{key}' is an Ansible task keyword that plantsweep does not support "
                f"(task keys: {', '.join(TASK_KEYS)}; actions: {_listing(self.actions)})"
            )
        close = _suggest(key, self.actions)
        if close:
            return f"unknown action '{key}' (did you mean '{close}'?)"
        close = _suggest(key, TASK_KEYS)
        if close:
            return f"unknown task key '{key}' (did you mean '{close}'?)"
        return f"unknown action '{key}' (expected one of: {_listing(self.actions)})"

    def args(self, spec: ActionSpec, action_node: yaml.Node, node: yaml.Node) -> dict[str, Any]:
        allowed = _listing(spec.allowed) or "none"
        args: dict[str, Any] = {}
        if is_null(node):
            pass
        elif isinstance(node, yaml.MappingNode):
            for key, (key_node, value_node) in self.mapping(node).items():
                if key not in spec.allowed:
                    close = _suggest(key, spec.allowed)
                    hint = f"did you mean '{close}'? " if close else ""
                    raise self.error(
                        f"unknown argument '{key}' for action '{spec.name}' "
                        f"({hint}allowed: {allowed})",
                        key_node,
                    )
                args[key] = self.value(value_node)
                self.check_choice(spec, key, args[key], value_node)
                self.check_templates(value_node)
        elif spec.free_form is not None and isinstance(self.value(node), str):
            args[spec.free_form] = self.value(node)
            self.check_templates(node)
        else:
            form = "a string or a mapping" if spec.free_form else "a mapping of arguments"
            raise self.error(
                f"action '{spec.name}' takes {form} (allowed: {allowed}), found {describe(node)}",
                node,
            )
        missing = sorted(spec.required - set(args))
        if missing:
            names = ", ".join(f"'{name}'" for name in missing)
            plural = "s" if len(missing) > 1 else ""
            raise self.error(
                f"action '{spec.name}' requires argument{plural} {names} (allowed: {allowed})",
                action_node,
            )
        return args

    def check_choice(self, spec: ActionSpec, key: str, value: Any, node: yaml.Node) -> None:
        choices = spec.choices.get(key)
        if choices is None or not isinstance(value, str) or has_template(value):
            return  # a templated value is only known per host: the action checks it then
        if value not in choices:
            raise self.error(
                f"'{key}' of action '{spec.name}' must be one of {', '.join(choices)}, "
                f"found {value!r}",
                node,
            )

    def when(self, node: yaml.Node) -> str | list[str]:
        value = self.value(node)
        items = value if isinstance(value, list) else [value]
        item_nodes = node.value if isinstance(node, yaml.SequenceNode) else [node]
        conditions: list[str] = []
        for item, item_node in zip(items, item_nodes, strict=True):
            if isinstance(item, bool):
                item = str(item)  # `when: false` switches a task off, as in Ansible
            if not isinstance(item, str) or not item.strip():
                raise self.error(
                    f"'when' must be an expression or a list of expressions, "
                    f"found {describe(item_node)}",
                    item_node,
                )
            try:
                check_condition(item)
            except TemplateError as exc:
                raise self.template_error(exc, item_node) from None
            conditions.append(item)
        return conditions if isinstance(value, list) else conditions[0]

    def timeout(self, node: yaml.Node) -> float:
        value = self.value(node)
        number = not isinstance(value, bool) and isinstance(value, int | float)
        if not number or not math.isfinite(value) or value <= 0:
            raise self.error(
                f"'timeout' must be a positive number of seconds, found {value!r}", node
            )
        return float(value)
