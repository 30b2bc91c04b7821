"""Jinja2 templating of playbook values and ``when`` conditions, as Ansible does it.

- Strict: an undefined variable is an error ("undefined variable 'foo'"), never an empty string.
- Sandboxed (``ImmutableSandboxedEnvironment``): a playbook cannot reach ``__class__`` and
  friends, nor modify the inventory's or a host's data through ``list.append`` and the like.
- Native: a string that is exactly one ``{{ expr }}`` gives the expression's value (a number,
  a list, a mapping); any other string gives a string.
- Lazy: a variable whose value is itself a template (``dir: "{{ base }}/logs"``) is rendered
  when it is used, with the same variables. Values that come from hosts (gathered facts,
  registered results) are never rendered: text found on a plant host is data, not a template.

The engine adds host, file and line to a ``TemplateError``; these functions know none of them.
"""

from __future__ import annotations

import functools
import json
import os
import posixpath
import re
from collections.abc import Iterator, Mapping
from typing import Any

from jinja2 import StrictUndefined, nodes
from jinja2 import TemplateError as JinjaTemplateError
from jinja2.exceptions import SecurityError, TemplateSyntaxError, UndefinedError
from jinja2.parser import Parser
from jinja2.runtime import missing
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import object_type_repr

from orchestrator.errors import PlantsweepError


class TemplateError(PlantsweepError):
    """A template or condition cannot be parsed or rendered.

    ``template_line`` is the line inside the template text (1 for one-line strings), so the
    loader can add it to the line of the YAML value the template came from.
    """

    def __init__(self, message: str, *, template_line: int | None = None):
        super().__init__(message)
        self.template_line = template_line


class _Undefined(StrictUndefined):
    """StrictUndefined with messages that say what is missing in playbook terms."""

    __slots__ = ()

    @property
    def _undefined_message(self) -> str:
        if self._undefined_hint:
            return self._undefined_hint
        if self._undefined_obj is missing:
            return f"undefined variable '{self._undefined_name}'"
        owner = object_type_repr(self._undefined_obj)
        if isinstance(self._undefined_name, str):
            return f"{owner} has no attribute '{self._undefined_name}'"
        return f"{owner} has no element {self._undefined_name!r}"


# --- filters, tests and lookups: the few Ansible ones playbooks use most ----------------------

_TRUE_WORDS = frozenset({"true", "yes", "on", "1", "y", "t"})
_FALSE_WORDS = frozenset({"false", "no", "off", "0", "n", "f", ""})


def _to_bool(value: Any) -> bool:
    # Ansible's `bool` filter: -e values arrive as strings, so "false" must be False.
    if isinstance(value, str):
        return value.strip().lower() in _TRUE_WORDS
    return bool(value)


def _to_json(value: Any, **kwargs: Any) -> str:
    return json.dumps(value, default=str, **kwargs)


def _to_nice_json(value: Any, indent: int = 4) -> str:
    return json.dumps(value, default=str, indent=indent, sort_keys=True)


def _regex_search(value: str, pattern: str, ignorecase: bool = False) -> str | None:
    match = re.search(pattern, value, re.IGNORECASE if ignorecase else 0)
    return match.group(0) if match else None


def _regex_replace(
    value: str, pattern: str, replacement: str = "", ignorecase: bool = False
) -> str:
    return re.sub(pattern, replacement, value, flags=re.IGNORECASE if ignorecase else 0)


def _version_key(version: Any) -> tuple[tuple[int, int | str], ...]:
    # Loose version order ("10.0.19045" > "9.1", "1.2rc1" < "1.2.1"): numbers compare as
    # numbers and sort before words, which is what OS and patch versions need.
    parts = re.findall(r"\d+|[a-zA-Z]+", str(version))
    return tuple((0, int(p)) if p.isdigit() else (1, p.lower()) for p in parts)


_VERSION_OPS = {
    "<": "lt", "lt": "lt", "<=": "le", "le": "le", ">": "gt", "gt": "gt", ">=": "ge",
    "ge": "ge", "==": "eq", "=": "eq", "eq": "eq", "!=": "ne", "<>": "ne", "ne": "ne",
}  # fmt: skip


def _version_test(value: Any, other: Any, operator: str = "eq") -> bool:
    op = _VERSION_OPS.get(operator)
    if op is None:
        raise TemplateError(f"version test: unknown operator {operator!r}")
    left, right = _version_key(value), _version_key(other)
    return {
        "lt": left < right, "le": left <= right, "gt": left > right,
        "ge": left >= right, "eq": left == right, "ne": left != right,
    }[op]  # fmt: skip


def _lookup(plugin: str, *terms: str, default: str = "", wantlist: bool = False) -> Any:
    """``lookup('env', 'NAME')``: the controller's environment variable, '' when unset."""
    if plugin not in ("env", "ansible.builtin.env"):
        raise TemplateError(f"unknown lookup {plugin!r} (available: env)")
    values = [os.environ.get(str(term), default) for term in terms]
    return values if wantlist else ",".join(values)


def _query(plugin: str, *terms: str, **kwargs: Any) -> list[Any]:
    return _lookup(plugin, *terms, wantlist=True, **kwargs)


def _make_environment() -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(
        undefined=_Undefined,
        autoescape=False,
        keep_trailing_newline=True,  # YAML block scalars keep their final newline
        trim_blocks=True,  # as Ansible's templates: a {% %} line leaves no blank line behind
    )
    env.filters.update(
        bool=_to_bool,
        to_json=_to_json,
        to_nice_json=_to_nice_json,
        regex_search=_regex_search,
        regex_replace=_regex_replace,
        basename=posixpath.basename,
        dirname=posixpath.dirname,
    )
    env.tests.update(
        version=_version_test,
        version_compare=_version_test,
        match=lambda value, pattern: re.match(pattern, str(value)) is not None,
        search=lambda value, pattern: re.search(pattern, str(value)) is not None,
    )
    env.globals.update(lookup=_lookup, query=_query, q=_query)
    return env


ENV = _make_environment()


# --- variables --------------------------------------------------------------------------------


class Variables(Mapping[str, Any]):
    """The variables of one host at one point of a play (see ``variables_for``).

    ``unsafe``: names whose values are never rendered as templates (they came from a host).
    """

    __slots__ = ("_data", "unsafe")

    def __init__(self, data: Mapping[str, Any], unsafe: frozenset[str] = frozenset()):
        self._data = dict(data)
        self.unsafe = unsafe

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return f"Variables({self._data!r}, unsafe={sorted(self.unsafe)!r})"


def variables_for(
    *,
    host_vars: Mapping[str, Any] | None = None,
    play_vars: Mapping[str, Any] | None = None,
    vars_files_vars: Mapping[str, Any] | None = None,
    facts: Mapping[str, Any] | None = None,
    registered: Mapping[str, Any] | None = None,
    extra_vars: Mapping[str, Any] | None = None,
    magic: Mapping[str, Any] | None = None,
) -> Variables:
    """Merge the variable layers of one host, later layers winning (lowest first):

    1. ``host_vars``: the host's inventory variables (group and host vars already merged by
       the inventory's own precedence);
    2. ``play_vars``: the play's ``vars:``;
    3. ``vars_files_vars``: the play's ``vars_files`` (``Play.vars_files_vars``);
    4. ``facts``: what ``asset_info`` gathered on the host;
    5. ``registered``: results of earlier tasks' ``register:``;
    6. ``extra_vars``: ``-e`` on the command line, which win over everything the user wrote;
    7. ``magic``: names the engine defines (``inventory_hostname``, ``play_hosts``, ...), which
       describe the run and cannot be overridden.

    As Ansible's default (``hash_behaviour=replace``), a name is replaced as a whole: a
    mapping in a later layer is not merged into one of the same name in an earlier layer.
    Names whose winning value came from facts, registered results or magic are never rendered
    as templates.
    """
    data: dict[str, Any] = {}
    unsafe: set[str] = set()
    layers = (
        (host_vars, False),
        (play_vars, False),
        (vars_files_vars, False),
        (facts, True),
        (registered, True),
        (extra_vars, False),
        (magic, True),
    )
    for layer, from_host in layers:
        if not layer:
            continue
        data.update(layer)
        if from_host:
            unsafe.update(layer)
        else:
            unsafe.difference_update(layer)
    return Variables(data, frozenset(unsafe))


class _Scope(Mapping[str, Any]):
    """What a template sees: the variables, rendered lazily, then the environment's globals.

    Jinja resolves every name a template mentions up front, even in branches not taken, so a
    variable that cannot be rendered becomes an Undefined carrying the reason: it is an error
    only if the template really uses it (``x | default(1)`` still works).
    """

    def __init__(self, variables: Mapping[str, Any]):
        self._vars = variables
        self._unsafe = variables.unsafe if isinstance(variables, Variables) else frozenset()
        self._done: dict[str, Any] = {}
        self._resolving: list[str] = []

    def __contains__(self, key: object) -> bool:
        return key in self._vars or key in ENV.globals

    def __getitem__(self, key: str) -> Any:
        if key in self._done:
            return self._done[key]
        if key not in self._vars:
            return ENV.globals[key]
        value = self._vars[key]
        if key not in self._unsafe and has_template(value):
            if key in self._resolving:
                chain = " -> ".join([*self._resolving[self._resolving.index(key) :], key])
                return ENV.undefined(hint=f"variable loop: {chain}")
            self._resolving.append(key)
            try:
                value = _render(value, self)
            except TemplateError as exc:
                # Name the innermost variable only: that is where the bad template is.
                hint = exc.message
                if "(in variable '" not in hint and not hint.startswith("variable loop"):
                    hint = f"{hint} (in variable '{key}')"
                value = ENV.undefined(hint=hint)
            finally:
                self._resolving.pop()
        self._done[key] = value
        return value

    def __iter__(self) -> Iterator[str]:
        yield from self._vars
        yield from (name for name in ENV.globals if name not in self._vars)

    def __len__(self) -> int:
        return sum(1 for _ in self)


# --- compiling --------------------------------------------------------------------------------

_MARKERS = ("{{", "{%", "{#")


def has_template(value: Any) -> bool:
    """True if ``value`` (or a string anywhere inside it) contains Jinja2 markup."""
    if isinstance(value, str):
        return any(marker in value for marker in _MARKERS)
    if isinstance(value, Mapping):
        return any(has_template(item) for item in value.values())
    if isinstance(value, list | tuple):
        return any(has_template(item) for item in value)
    return False


def _assign_result(expr: nodes.Expr) -> Any:
    # As Environment.compile_expression: a template whose only statement stores the
    # expression's value in the context, so we get the value itself, not its text.
    body = [nodes.Assign(nodes.Name("result", "store"), expr, lineno=1)]
    return ENV.from_string(nodes.Template(body, lineno=1))


def _reason(exc: TemplateSyntaxError) -> str:
    return (exc.message or "syntax error").rstrip(".")


def _excerpt(source: str, line: int) -> str:
    """The template line an error is on, short enough for a one-line message."""
    lines = source.splitlines() or [""]
    text = lines[min(max(line, 1), len(lines)) - 1].strip()
    return text if len(text) <= 80 else text[:77] + "..."


@functools.lru_cache(maxsize=4096)
def _compile(source: str) -> tuple[Any, bool]:
    """(template, is_single_expression); cached: the same task renders for hundreds of hosts."""
    try:
        tree = ENV.parse(source)
        body = tree.body
        if (
            len(body) == 1
            and isinstance(body[0], nodes.Output)
            and len(body[0].nodes) == 1
            and not isinstance(body[0].nodes[0], nodes.TemplateData)
        ):
            return _assign_result(body[0].nodes[0]), True
        return ENV.from_string(tree), False
    except TemplateSyntaxError as exc:
        raise TemplateError(
            f"template syntax error in {_excerpt(source, exc.lineno or 1)!r}: {_reason(exc)}",
            template_line=exc.lineno,
        ) from None


@functools.lru_cache(maxsize=4096)
def _compile_condition(expr: str) -> Any:
    try:
        parser = Parser(ENV, expr, state="variable")
        node = parser.parse_expression()
        if not parser.stream.eos:
            token = parser.stream.current
            raise TemplateSyntaxError(
                f"unexpected {token.value!r} after the expression", token.lineno
            )
        node.set_environment(ENV)
        return _assign_result(node)
    except TemplateSyntaxError as exc:
        raise TemplateError(
            f"condition syntax error in {_excerpt(expr, exc.lineno or 1)!r}: {_reason(exc)}",
            template_line=exc.lineno,
        ) from None


def check_template(source: str) -> None:
    """Raise ``TemplateError`` (with ``template_line``) if ``source`` is not valid Jinja2."""
    if isinstance(source, str) and has_template(source):
        _compile(source)


def check_condition(expr: str) -> None:
    """Raise ``TemplateError`` if ``expr`` is not a valid bare ``when`` expression."""
    if any(marker in expr for marker in ("{{", "{%")):
        # Ansible warns and then templates twice; we refuse the ambiguity.
        raise TemplateError(
            "a condition is a bare expression: write `x == 1`, not `{{ x == 1 }}`",
            template_line=1,
        )
    _compile_condition(expr)


# --- rendering --------------------------------------------------------------------------------


def _fail_if_undefined(value: Any) -> None:
    # A single expression returns the value itself, so an Undefined (or one inside a list
    # or mapping the expression built) would slip through without ever being printed.
    if isinstance(value, StrictUndefined):
        value._fail_with_undefined_error()
    elif isinstance(value, list | tuple):
        for item in value:
            _fail_if_undefined(item)
    elif isinstance(value, dict):
        for item in value.values():
            _fail_if_undefined(item)


def _run(template: Any, scope: _Scope, single: bool, source: str) -> Any:
    try:
        context = template.new_context(scope, shared=True)
        if single:
            for _ in template.root_render_func(context):
                pass
            result = context.vars["result"]
            _fail_if_undefined(result)
            return result
        return ENV.concat(template.root_render_func(context))  # type: ignore[attr-defined]
    except TemplateError:
        raise
    except SecurityError as exc:
        raise TemplateError(f"unsafe template: {exc}") from None
    except UndefinedError as exc:
        raise TemplateError(str(exc)) from None
    except TemplateSyntaxError as exc:
        raise TemplateError(f"template syntax error: {exc.message}") from None
    except JinjaTemplateError as exc:
        raise TemplateError(f"template error: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - a filter or operator failed on user data
        raise TemplateError(f"error rendering {source!r}: {type(exc).__name__}: {exc}") from None


def _render(value: Any, scope: _Scope) -> Any:
    if isinstance(value, str):
        if not has_template(value):
            return value
        template, single = _compile(value)
        return _run(template, scope, single, value)
    if isinstance(value, dict):
        return {key: _render(item, scope) for key, item in value.items()}
    if isinstance(value, list):
        return [_render(item, scope) for item in value]
    if isinstance(value, tuple):
        return tuple(_render(item, scope) for item in value)
    return value


def render(value: Any, variables: Mapping[str, Any]) -> Any:
    """Render every string in ``value`` (recursing into lists and dict values).

    A string that is exactly one ``{{ expr }}`` becomes the expression's value ("{{ 3 }}" -> 3,
    "{{ hosts_list }}" -> that list); any other templated string becomes a string. Strings
    without Jinja2 markup are returned as they are. Raises ``TemplateError``.
    """
    return _render(value, _Scope(variables))


def render_text(source: str, variables: Mapping[str, Any]) -> str:
    """Render a template (e.g. a report template file) to text, never to a native value."""
    template, single = _compile(source) if has_template(source) else (None, False)
    if template is None:
        return source
    result = _run(template, _Scope(variables), single, source)
    return result if isinstance(result, str) else str(result)


def evaluate_condition(expr: str | list[str], variables: Mapping[str, Any]) -> bool:
    """Evaluate a ``when``: a bare expression, or a list of them that must all hold (checked
    in order, stopping at the first false one, so later ones may rely on earlier ones).

    The result must be a truth value: booleans, numbers, None, lists and mappings (empty is
    false), and the strings true/false/yes/no/on/off/1/0 (``-e`` values are strings). Any
    other string is an error, as "when: result.stdout" is almost always a mistake.
    """
    scope = _Scope(variables)
    for item in [expr] if isinstance(expr, str) else expr:
        if not _truth(_run(_compile_condition(item), scope, True, item), item):
            return False
    return True


def _truth(value: Any, expr: str) -> bool:
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _TRUE_WORDS:
            return True
        if word in _FALSE_WORDS:
            return False
        raise TemplateError(
            f"condition {expr!r} gave the text {value!r}, not true or false "
            "(compare it, e.g. `x != ''`, or use `| bool`)"
        )
    return bool(value)
