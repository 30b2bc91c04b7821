"""Templating: native values, strict undefined, the sandbox, conditions and variable precedence."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator.errors import PlantsweepError
from orchestrator.playbook import (
    TemplateError,
    Variables,
    check_condition,
    check_template,
    evaluate_condition,
    has_template,
    render,
    render_text,
    variables_for,
)

VARS: dict[str, Any] = {
    "n": 3,
    "hosts_list": ["hmi-01", "ews-01"],
    "asset": {"os": {"id": "debian", "version": "12.5"}, "patches": ["KB1", "KB2"]},
    "base": "/srv/plant",
    "log_dir": "{{ base }}/logs",
    "archive": "{{ log_dir }}/archive",
    "empty": "",
}


# --- rendering --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{ 3 }}", 3),
        ("{{ n * 2 }}", 6),
        ("{{ hosts_list }}", ["hmi-01", "ews-01"]),
        ("{{ asset.os }}", {"id": "debian", "version": "12.5"}),
        ("{{ n > 2 }}", True),
        ("{{ none }}", None),
        ("{{ '007' }}", "007"),  # a string result stays a string, not the number 7
    ],
)
def test_single_expression_is_native(template: str, expected: Any) -> None:
    result = render(template, {**VARS, "none": None})
    assert result == expected
    assert type(result) is type(expected)


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("n={{ n }}", "n=3"),
        (" {{ n }}", " 3"),
        ("{{ n }}{{ n }}", "33"),
        ("{{ n }}\n", "3\n"),  # a YAML block scalar's trailing newline is kept
        ("{% if n %}yes{% endif %}", "yes"),
        ("{% for h in hosts_list %}{{ h }};{% endfor %}", "hmi-01;ews-01;"),
        ("no template here", "no template here"),
    ],
)
def test_anything_else_is_a_string(template: str, expected: str) -> None:
    assert render(template, VARS) == expected


def test_render_recurses_and_leaves_input_alone() -> None:
    args = {
        "paths": ["{{ base }}", "/tmp", {"deep": "{{ n + 1 }}"}],
        "count": 5,
        "flag": True,
        "nothing": None,
        "pair": ("{{ n }}", "x"),
    }
    rendered = render(args, VARS)
    assert rendered == {
        "paths": ["/srv/plant", "/tmp", {"deep": 4}],
        "count": 5,
        "flag": True,
        "nothing": None,
        "pair": (3, "x"),
    }
    assert args["paths"][0] == "{{ base }}"  # the task's raw args are reused for every host


def test_variables_that_are_templates_render_when_used() -> None:
    assert render("{{ archive }}", VARS) == "/srv/plant/logs/archive"
    assert render("{{ log_dir | length }}", VARS) == len("/srv/plant/logs")


def test_render_text_is_always_text() -> None:
    assert render_text("{{ n }}", VARS) == "3"
    assert render_text("{{ hosts_list | join(', ') }}\n", VARS) == "hmi-01, ews-01\n"
    assert render_text("plain", VARS) == "plain"


def test_ansible_filters_and_tests() -> None:
    assert render("{{ 'yes' | bool }}", {}) is True
    assert render("{{ 'false' | bool }}", {}) is False
    assert render("{{ asset | to_json }}", VARS).startswith('{"os": {"id": "debian"')
    assert render("{{ base | basename }}", VARS) == "plant"
    assert render("{{ 'KB5034441' | regex_search('[0-9]+') }}", {}) == "5034441"
    assert render("{{ '10.0.19045' is version('6.1', '>') }}", {}) is True
    assert render("{{ '1.2' is version('1.10', '<') }}", {}) is True  # not string order
    assert render("{{ asset.os.id is match('deb') }}", VARS) is True


def test_has_template() -> None:
    assert has_template({"a": ["x", "{% if y %}{% endif %}"]})
    assert has_template("{# comment #}")
    assert not has_template({"a": ["x", 1, None], "b": "{ not jinja }"})


# --- errors -----------------------------------------------------------------------------------


def test_template_error_is_a_plantsweep_error() -> None:
    assert issubclass(TemplateError, PlantsweepError)


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{{ foo }}", "undefined variable 'foo'"),
        ("path: {{ foo }}", "undefined variable 'foo'"),
        ("{{ foo.bar }}", "undefined variable 'foo'"),
        ("{{ [1, foo] }}", "undefined variable 'foo'"),  # hidden inside a native list
        ("{{ {'k': foo} }}", "undefined variable 'foo'"),
        ("{{ asset.os.idx }}", "dict object has no attribute 'idx'"),
        ("{{ asset.patches[5] }}", "list object has no element 5"),
        ("{{ n / 0 }}", "ZeroDivisionError"),
    ],
)
def test_strict_undefined_and_runtime_errors(template: str, message: str) -> None:
    with pytest.raises(TemplateError) as caught:
        render(template, VARS)
    assert message in str(caught.value)


def test_undefined_inside_a_variable_names_that_variable() -> None:
    variables = {**VARS, "report": "{{ site }}-{{ base }}", "outer": "{{ report }}"}
    with pytest.raises(TemplateError) as caught:
        render("{{ outer }}", variables)
    assert str(caught.value) == "undefined variable 'site' (in variable 'report')"
    # Jinja resolves every name up front; an unused broken variable must not fail the render.
    assert render("{{ missing | default(report | default('n/a')) }}", variables) == "n/a"


def test_variable_loop_is_an_error_not_a_recursion_error() -> None:
    with pytest.raises(TemplateError, match=r"variable loop: a -> b -> a"):
        render("{{ a }}", {"a": "{{ b }}", "b": "{{ a }}"})


def test_bad_template_in_a_variable_fails_at_use() -> None:
    with pytest.raises(
        TemplateError, match=r"template syntax error in '\{\{ x \}': .*\(in variable 'v'\)"
    ):
        render("{{ v }}", {"v": "{{ x }"})


@pytest.mark.parametrize(
    "template",
    [
        "{{ ''.__class__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ hosts_list.__class__ }}",
        "{{ lookup.__globals__ }}",
        "{{ asset.os.__init__ }}",
        "{{ hosts_list.append('evil') }}",
        "{{ asset.os.update({'id': 'evil'}) }}",
    ],
)
def test_sandbox_refuses_internals_and_mutation(template: str) -> None:
    variables = {
        **VARS,
        "hosts_list": ["hmi-01", "ews-01"],
        "asset": {"os": {"id": "debian"}},
    }
    with pytest.raises(TemplateError, match="unsafe"):
        render(template, variables)
    # The inventory's and the host's data are shared by every task: nothing was changed.
    assert variables["hosts_list"] == ["hmi-01", "ews-01"]
    assert variables["asset"] == {"os": {"id": "debian"}}


def test_lookup_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PS_TEST_SITE", "Basel")
    monkeypatch.delenv("PS_TEST_UNSET", raising=False)
    assert render("{{ lookup('env', 'PS_TEST_SITE') }}", {}) == "Basel"
    assert render("{{ lookup('ansible.builtin.env', 'PS_TEST_SITE') }}", {}) == "Basel"
    assert render("{{ lookup('env', 'PS_TEST_UNSET') }}", {}) == ""
    assert render("{{ lookup('env', 'PS_TEST_UNSET', default='x') }}", {}) == "x"
    assert render("{{ query('env', 'PS_TEST_SITE', 'PS_TEST_UNSET') }}", {}) == ["Basel", ""]
    with pytest.raises(TemplateError, match=r"unknown lookup 'file' \(available: env\)"):
        render("{{ lookup('file', '/etc/shadow') }}", {})


def test_check_template_reports_the_line_inside_the_template() -> None:
    check_template("fine {{ n }}")
    check_template("no markup at all {")
    with pytest.raises(TemplateError) as caught:
        check_template("line one\nline {{ two }\n")
    assert caught.value.template_line == 2
    assert "'line {{ two }'" in caught.value.message


# --- conditions -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ("asset.os.id == 'debian'", True),
        ("asset.os.id == 'windows'", False),
        ("'KB2' in asset.patches", True),
        ("asset.os.version is version('12', '>=')", True),
        ("n", True),  # a number: its truth
        ("empty", False),  # "" is false
        ("hosts_list", True),  # a non-empty list
        ("[]", False),
        ("flag", False),  # -e flag=false arrives as the string "false"
        ("flag | bool", False),
        ("undefined_thing is defined", False),
        ("undefined_thing | default(true)", True),
        (["asset is defined", "asset.os.id == 'debian'"], True),
        (["n == 3", "n == 4"], False),
        ([], True),
    ],
)
def test_evaluate_condition(condition: str | list[str], expected: bool) -> None:
    assert evaluate_condition(condition, {**VARS, "flag": "false"}) is expected


def test_condition_list_stops_at_first_false() -> None:
    # The second condition would fail (undefined), as Ansible's list it is never reached.
    assert evaluate_condition(["asset is defined", "asset.os.id == 'x'"], {}) is False
    with pytest.raises(TemplateError, match="undefined variable 'asset'"):
        evaluate_condition(["true", "asset.os.id == 'x'"], {})


def test_condition_giving_text_is_an_error() -> None:
    with pytest.raises(TemplateError, match=r"condition 'asset.os.id' gave the text 'debian'"):
        evaluate_condition("asset.os.id", VARS)


@pytest.mark.parametrize(
    ("condition", "message"),
    [
        ("n ==", "condition syntax error in 'n =='"),
        ("n == 1 }} {{ x", "a condition is a bare expression"),
        ("{{ n == 1 }}", "a condition is a bare expression"),
        ("n == 1 n", "condition syntax error in 'n == 1 n': unexpected 'n' after the expression"),
    ],
)
def test_check_condition(condition: str, message: str) -> None:
    check_condition("asset.os.id == 'debian' and n > 1")
    with pytest.raises(TemplateError) as caught:
        check_condition(condition)
    assert message in caught.value.message


# --- precedence -------------------------------------------------------------------------------

LAYERS = ["host_vars", "play_vars", "vars_files_vars", "facts", "registered", "extra_vars", "magic"]


@pytest.mark.parametrize("top", range(len(LAYERS)))
def test_precedence_each_layer_beats_the_ones_below(top: int) -> None:
    # Every layer up to `top` sets `x`; the highest of them must win.
    layers = {name: {"x": name, f"only_{name}": 1} for name in LAYERS[: top + 1]}
    merged = variables_for(**layers)
    assert merged["x"] == LAYERS[top]
    assert all(merged[f"only_{name}"] == 1 for name in layers)  # nothing else is lost


def test_precedence_full_order() -> None:
    merged = variables_for(
        host_vars={"a": "host", "b": "host", "c": "host", "d": "host", "e": "host", "f": "host"},
        play_vars={"b": "play", "c": "play", "d": "play", "e": "play", "f": "play"},
        vars_files_vars={"c": "files", "d": "files", "e": "files", "f": "files"},
        facts={"d": "facts", "e": "facts", "f": "facts"},
        registered={"e": "registered", "f": "registered"},
        extra_vars={"f": "extra"},
    )
    assert dict(merged) == {
        "a": "host",
        "b": "play",
        "c": "files",
        "d": "facts",
        "e": "registered",
        "f": "extra",
    }


def test_a_mapping_is_replaced_not_merged() -> None:
    merged = variables_for(host_vars={"scan": {"type": "full", "paths": ["/"]}},
                           play_vars={"scan": {"type": "quick"}})  # fmt: skip
    assert merged["scan"] == {"type": "quick"}


def test_values_from_hosts_are_never_rendered() -> None:
    # A file name on a plant host could contain "{{ ... }}": it is data, not a template.
    variables = variables_for(
        host_vars={"secret": "s3cret", "site": "Basel"},
        facts={"asset": {"hostname": "{{ secret }}"}, "label": "{{ site }}"},
        registered={"out": {"stdout": "{{ secret }}"}},
    )
    assert isinstance(variables, Variables)
    assert variables.unsafe == frozenset({"asset", "label", "out"})
    assert render("{{ asset.hostname }}", variables) == "{{ secret }}"
    assert render("{{ label }}", variables) == "{{ site }}"
    assert render("{{ out.stdout }}", variables) == "{{ secret }}"
    assert render_text("{{ out }}", variables) == "{'stdout': '{{ secret }}'}"


def test_extra_vars_over_a_fact_are_rendered_again() -> None:
    variables = variables_for(
        host_vars={"site": "Basel"}, facts={"label": "{{ x }}"}, extra_vars={"label": "{{ site }}"}
    )
    assert "label" not in variables.unsafe
    assert render("{{ label }}", variables) == "Basel"


def test_magic_variables_win_and_are_not_rendered() -> None:
    variables = variables_for(
        extra_vars={"inventory_hostname": "spoofed"},
        magic={"inventory_hostname": "hmi-01", "playbook_dir": "{{ odd }}"},
    )
    assert render("{{ inventory_hostname }}", variables) == "hmi-01"
    assert render("{{ playbook_dir }}", variables) == "{{ odd }}"


def test_plain_mappings_are_all_rendered() -> None:
    # render() also takes a plain dict (every value trusted), e.g. for report templates.
    assert render("{{ a }}", {"a": "{{ b }}", "b": 2}) == 2
