"""Read YAML (and JSON) keeping line numbers, for inventory and group_vars/host_vars files.

We compose the document into nodes first and construct Python values node by node: every node
carries its start mark, so structural errors ("hosts is a list") and refused values can name
the line they are on, not just the file.
"""

from __future__ import annotations

import json
from typing import Any

import yaml

from orchestrator.errors import InventoryError

NULL_TAG = "tag:yaml.org,2002:null"
STR_TAG = "tag:yaml.org,2002:str"


class _Loader(yaml.SafeLoader):
    """SafeLoader (YAML 1.1 like Ansible's) plus Ansible's ``!unsafe`` and ``!vault`` tags."""


def _construct_unsafe(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    # !unsafe only stops Ansible from templating; we never template inventory values anyway.
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_mapping(node, deep=True)


def _construct_vault(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    raise InventoryError(
        "ansible-vault encrypted values (!vault) are not supported: "
        "put secrets in environment variables and reference them as env:NAME",
        line=node_line(node),
    )


_Loader.add_constructor("!unsafe", _construct_unsafe)
_Loader.add_constructor("!vault", _construct_vault)


def read_text(path: str) -> str:
    """File contents as text; unreadable or non-UTF-8 files are user errors, not tracebacks."""
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except FileNotFoundError:
        raise InventoryError("file not found", path=path) from None
    except OSError as exc:
        raise InventoryError(f"cannot read file: {exc.strerror}", path=path) from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InventoryError("file is not UTF-8 text", path=path, line=line) from None


def node_line(node: yaml.Node | None) -> int | None:
    """1-based line of a node (None for nodes built from JSON, which have no marks)."""
    mark = getattr(node, "start_mark", None)
    return mark.line + 1 if mark is not None else None


def compose(text: str, path: str, *, json_fallback: bool = False) -> yaml.Node | None:
    """The document's root node, or None for an empty document.

    ``json_fallback``: a .json file that YAML rejects (JSON allows things YAML 1.1 does not,
    such as tabs for indentation) is read with the json module instead; its nodes then carry
    no line numbers.
    """
    loader = _Loader(text)
    try:
        return loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        error = _syntax_error(exc, path)
    except yaml.YAMLError as exc:
        error = InventoryError(f"invalid YAML: {exc}", path=path)
    finally:
        loader.dispose()
    if json_fallback:
        try:
            return yaml.SafeDumper(None).represent_data(json.loads(text))  # type: ignore[arg-type]
        except ValueError:
            pass
    raise error


def _syntax_error(exc: yaml.MarkedYAMLError, path: str) -> InventoryError:
    mark = exc.problem_mark or exc.context_mark
    problem = exc.problem or "syntax error"
    context = f" ({exc.context})" if exc.context else ""
    column = f" (column {mark.column + 1})" if mark is not None else ""
    line = mark.line + 1 if mark is not None else None
    return InventoryError(f"invalid YAML: {problem}{context}{column}", path=path, line=line)


def construct(node: yaml.Node, path: str) -> Any:
    """Build the Python value of a node (a var's value, a key, ...)."""
    loader = _Loader("")
    try:
        return loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        raise _syntax_error(exc, path) from None
    except InventoryError as exc:
        raise InventoryError(exc.message, path=path, line=exc.line or node_line(node)) from None
    finally:
        loader.dispose()


def mapping_items(node: yaml.MappingNode, path: str) -> list[tuple[yaml.Node, yaml.Node]]:
    """Key/value node pairs of a mapping, with YAML merge keys (``<<: *anchor``) applied."""
    loader = _Loader("")
    try:
        loader.flatten_mapping(node)
    except yaml.MarkedYAMLError as exc:
        raise _syntax_error(exc, path) from None
    finally:
        loader.dispose()
    return list(node.value)


def is_null(node: yaml.Node) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.tag == NULL_TAG


def describe(node: yaml.Node) -> str:
    """'a list', 'a mapping', 'a string', ... for error messages."""
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    if is_null(node):
        return "an empty value"
    kind = node.tag.rsplit(":", 1)[-1]
    return {"str": "a string", "int": "a number", "float": "a number", "bool": "a boolean"}.get(
        kind, f"a {kind}"
    )
