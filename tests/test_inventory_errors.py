"""User mistakes in inventories: one clear InventoryError naming the file and line."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from orchestrator.errors import InventoryError
from orchestrator.inventory import load_inventory

ERRORS = Path(__file__).parent / "inventory" / "fixtures" / "errors"


def error_for(path: Path) -> InventoryError:
    with pytest.raises(InventoryError) as info:
        load_inventory([str(path)])
    return info.value


def error_in(tmp_path: Path, name: str, text: str | bytes) -> InventoryError:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return error_for(path)


def test_yaml_syntax_error_names_file_and_line() -> None:
    error = error_for(ERRORS / "bad_syntax.yml")
    assert error.path == str(ERRORS / "bad_syntax.yml")
    assert error.line == 6  # the badly indented "hmi02:"
    assert "invalid YAML" in error.message
    assert str(error).startswith(f"{ERRORS / 'bad_syntax.yml'}:6: invalid YAML")


def test_yaml_syntax_error_in_file_without_extension_is_reported_as_yaml(tmp_path: Path) -> None:
    # Such a file could be INI too; it starts like YAML, so the YAML error is the useful one.
    error = error_in(tmp_path, "hosts", "all:\n\thosts: {}\n")
    assert (error.line, "invalid YAML" in error.message) == (2, True)


def test_hosts_as_a_list_names_the_line_of_hosts() -> None:
    error = error_for(ERRORS / "hosts_list.yml")
    assert error.line == 7
    assert error.message == "'hosts' of group 'windows_hmi' must be a mapping, found a list"


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("web:\n  host:\n    h1:\n", 2, "unexpected key 'host' in group 'web'"),
        ("web:\n  vars:\n    - a\n", 2, "'vars' of group 'web' must be a mapping"),
        ("a: {hosts: {h1: }}\nweb:\n  children:\n    g: [h1]\n", 4, "group 'g' must be a mapping"),
        ("web:\n  hosts:\n    1234:\n", 3, "host pattern 1234 must be a string"),
        ("web:\n  hosts:\n    h1: [a]\n", 3, "host 'h1' in group 'web' must have a mapping"),
        ("web:\n  hosts:\n    h[3:1]:\n", 3, "must have begin <= end"),
        ("web:\n  hosts:\n    h1: {pw: !vault '$ANSIBLE_VAULT;1.1;AES256'}\n", 3, "!vault"),
        ("a:\n  children: {b: {children: {a: }}}\n", 2, "recursive dependency loop"),
        ("x: 1\nplugin: aws_ec2\n", 2, "inventory plugin configuration file"),
    ],
)
def test_yaml_structure_errors_name_the_line(
    tmp_path: Path, text: str, line: int, message: str
) -> None:
    error = error_in(tmp_path, "hosts.yml", text)
    assert error.path == str(tmp_path / "hosts.yml")
    assert error.line == line
    assert message in error.message


def test_ini_bad_host_line_names_the_line() -> None:
    error = error_for(ERRORS / "bad_host_line.ini")
    assert error.line == 3
    assert "expected key=value host variable assignment, got: ansible_port" in error.message


def test_ini_undefined_child_group_names_the_line_that_lists_it() -> None:
    error = error_for(ERRORS / "undefined_children.ini")
    assert error.line == 24  # "northeast" under [usa:children]
    assert "[usa:children] includes group 'northeast', which is never declared" in error.message


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("[web servers]\nh1\n", 1, "invalid section entry"),
        ("[web]\nh1\n[web:hosts2]\nx\n", 3, "has unknown type: hosts2"),
        ('[web]\nh1 x="unclosed\n', 2, "No closing quotation"),
        ("[web]\nh1\n[web:vars]\njust_a_word\n", 4, "expected key=value, got: just_a_word"),
        ("[web]\nh1\n[g:vars]\nx=1\n", 3, "section [g:vars] is for group 'g'"),
        ("[a:children]\nb\n[b:children]\na\n", 4, "recursive dependency loop"),
        ("[web]\nh1:\n", 2, "ending in ':' is not allowed"),
        ("[web]\nh[1:2:3:4]\n", 2, "must be begin:end or begin:end:step"),
        ("[web]\nh[01:100]\n", 2, "equal-length"),
        ("[p:children]\nbad child\n", 2, "expected a group name"),
    ],
)
def test_ini_errors_name_the_line(tmp_path: Path, text: str, line: int, message: str) -> None:
    error = error_in(tmp_path, "hosts.ini", text)
    assert (error.path, error.line) == (str(tmp_path / "hosts.ini"), line)
    assert message in error.message


def test_missing_inventory_file(tmp_path: Path) -> None:
    error = error_for(tmp_path / "nope.yml")
    assert error.path == str(tmp_path / "nope.yml")
    assert error.message == "inventory source not found"


def test_no_inventory_at_all() -> None:
    with pytest.raises(InventoryError, match="no inventory given"):
        load_inventory([])


def test_non_utf8_file_names_the_line(tmp_path: Path) -> None:
    error = error_in(tmp_path, "hosts.ini", b"[web]\nh1\nh\xff2\n")
    assert (error.line, error.message) == (3, "file is not UTF-8 text")


def test_dynamic_inventory_scripts_and_toml_are_refused(tmp_path: Path) -> None:
    script = tmp_path / "ec2.py"
    script.write_text("#!/usr/bin/env python3\nprint('{}')\n")
    os.chmod(script, 0o755)
    assert "dynamic inventory scripts are not supported" in error_for(script).message
    assert "TOML" in error_in(tmp_path, "hosts.toml", "[web]\n").message


# -- passwords ----------------------------------------------------------------------------------


def test_clear_text_password_in_yaml_is_refused_with_its_line() -> None:
    error = error_for(ERRORS / "clear_password.yml")
    assert error.line == 6
    assert "ansible_password must not hold a clear-text password" in error.message
    assert "env:" in error.message and "lookup('env'" in error.message
    assert "Plant2024!" not in str(error)  # never echo the secret


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("[web]\nh1 ansible_password=S3cret\n", 2),
        ("[web]\nh1\n[web:vars]\npassword=S3cret\n", 4),
        ("[web]\nh1 ansible_become_password=1234\n", 2),
    ],
)
def test_clear_text_password_in_ini_is_refused(tmp_path: Path, text: str, line: int) -> None:
    error = error_in(tmp_path, "hosts", text)
    assert error.line == line
    assert "clear-text password" in error.message
    assert "S3cret" not in str(error)


def test_clear_text_password_in_group_vars_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "hosts").write_text("[web]\nh1\n")
    (tmp_path / "group_vars").mkdir()
    vars_file = tmp_path / "group_vars" / "web.yml"
    vars_file.write_text("ansible_user: maint\nansible_password: S3cret\n")
    error = error_for(tmp_path / "hosts")
    assert (error.path, error.line) == (str(vars_file), 2)
    assert "clear-text password" in error.message


@pytest.mark.parametrize(
    "value",
    [
        "env:HMI_PASSWORD",
        "\"{{ lookup('env', 'HMI_PASSWORD') }}\"",
        '\'{{ lookup("ansible.builtin.env", "HMI_PASSWORD") }}\'',
        "''",
    ],
)
def test_password_references_are_accepted(tmp_path: Path, value: str) -> None:
    path = tmp_path / "hosts.yml"
    path.write_text(f"web:\n  hosts:\n    h1:\n      ansible_password: {value}\n")
    inv = load_inventory([str(path)])
    assert "ansible_password" in inv.host_vars("h1")


def test_group_vars_file_errors_name_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "hosts").write_text("[web]\nh1\n")
    (tmp_path / "host_vars").mkdir()
    vars_file = tmp_path / "host_vars" / "h1.yml"
    vars_file.write_text("a: 1\nb: [\n")
    error = error_for(tmp_path / "hosts")
    assert error.path == str(vars_file)
    assert error.line == 3
    vars_file.write_text("- just\n- a list\n")
    error = error_for(tmp_path / "hosts")
    assert (error.path, error.line) == (str(vars_file), 1)
    assert "must be a mapping" in error.message
