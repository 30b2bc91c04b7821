"""Derive the rule set for files that are not PE executables (first two bytes not ``MZ``).

Why: libyara builds the ``pe`` module's object tree (hundreds of objects and constants) for
every scanned file when any rule imports ``pe``, PE or not. Measured with yara-python 4.5.1 on
this machine: about 320 us per file, more than the rules themselves cost on a small file, and
half of the YARA CPU time on a copy of /usr. Most files on a Linux gateway, and many on a
Windows host, are not PE files; for them the bundle carries a second compiled set without the
rules that cannot match them and, where possible, without ``import "pe"``. The scanner picks the
set by the file's first two bytes (agentless_scanner/yara_engine.py ``rules_for``).

The derivation is exact, not heuristic. For data that does not start with ``MZ``:

- ``uint16(0) == 0x5a4d`` (and its spellings) is false;
- the pe module sets only its constants and ``is_pe = 0`` (libyara modules/pe/pe.c
  ``module_load``: ``pe_get_header`` returns NULL without the MZ signature), so any expression
  that reads nothing but the pe module has one value for all such data. Such a factor is
  evaluated here once, with the controller's libyara, on non-MZ bytes;
- a rule's condition is split at the top level into disjuncts of conjoined factors (``and``
  binds tighter than ``or``; fully parenthesised groups are opened). A disjunct with a factor
  that is false or undefined is false, and at the top of a rule an undefined or false disjunct
  contributes nothing, so it is removed. A rule with no disjunct left never matches: it is
  dropped (or kept as ``false`` when another rule refers to it).

Anything not proven is kept as it was: a rule file that does not parse, a namespace with a
``global`` rule, a factor that also reads strings, the file size, data or an external
variable. Every derived namespace is compiled alone and must hold exactly the rules expected
(same names, private and global flags) or the original file is used unchanged. Rules whose
text is not changed are copied verbatim from the source; only the condition of a rule with a
removed disjunct is rebuilt from the parser's tokens (plyara).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import plyara

MZ_FACTORS = frozenset(
    {"uint16 ( 0 ) == 0x5a4d", "0x5a4d == uint16 ( 0 )", "uint16be ( 0 ) == 0x4d5a"}
)
# Non-MZ sample data for evaluating pe-only factors (several, as a cross-check that the value
# does not depend on the data).
NON_MZ_SAMPLES = (b"", b"\x00" * 64, b"#!/bin/sh\necho plantsweep\n", b"\x7fELF" + b"\x01" * 60)
_DATA_READ = re.compile(r"^u?int(8|16|32)(be)?$")
_IMPORT = re.compile(r'^\s*import\s+"([^"]+)"\s*$', re.M)


@dataclass
class Derived:
    """The non-PE sources of a rule set and what the derivation did."""

    sources: dict[str, bytes] = field(default_factory=dict)  # namespace -> source (b"": none)
    dropped: int = 0  # rules that cannot match a non-PE file
    rewritten: int = 0  # rules with a condition part removed
    kept_verbatim: list[tuple[str, str]] = field(default_factory=list)  # (namespace, why)
    needs_pe: list[str] = field(default_factory=list)  # namespaces still importing pe


def _split_top(tokens: list[str], word: str) -> list[list[str]]:
    parts: list[list[str]] = [[]]
    depth = 0
    for token in tokens:
        if token in ("(", "["):
            depth += 1
        elif token in (")", "]"):
            depth -= 1
        if depth == 0 and token == word:
            parts.append([])
        else:
            parts[-1].append(token)
    return parts


def _strip_parens(tokens: list[str]) -> list[str]:
    """Remove parentheses that enclose the whole expression."""
    while len(tokens) >= 2 and tokens[0] == "(" and tokens[-1] == ")":
        depth = 0
        for i, token in enumerate(tokens):
            depth += token == "("
            depth -= token == ")"
            if depth == 0 and i != len(tokens) - 1:
                return tokens
        tokens = tokens[1:-1]
    return tokens


def disjuncts(tokens: list[str]) -> list[list[str]]:
    parts = _split_top(_strip_parens(tokens), "or")
    if len(parts) == 1:
        return parts
    return [d for part in parts for d in disjuncts(part)]


def factors(tokens: list[str]) -> list[list[str]]:
    parts = _split_top(_strip_parens(tokens), "and")
    if len(parts) == 1:
        return parts
    return [f for part in parts for f in factors(part)]


def _reads_pe_only(tokens: list[str], externals: frozenset[str]) -> bool:
    """True if ``tokens`` refer to the pe module and to nothing that depends on the data."""
    uses_pe = False
    for token in tokens:
        if token.startswith("pe."):
            uses_pe = True
        elif (
            token[:1] in "$#@!"
            or token in ("filesize", "entrypoint", "them")
            or (token in externals or _DATA_READ.match(token))
        ):
            return False
        elif "." in token.strip(".") and not token[:1].isdigit() and token[:1] != '"':
            return False  # another module
    return uses_pe


class _PeFactors:
    """Evaluates pe-only factors on non-MZ data (cached: the same factor recurs)."""

    def __init__(self, yara: Any):
        self.yara = yara
        self.cache: dict[str, bool] = {}

    def false_for_non_pe(self, text: str) -> bool:
        """True if the condition ``text`` is false or undefined for every non-MZ file."""
        if text not in self.cache:
            self.cache[text] = self._never(text)
        return self.cache[text]

    def offset_undefined(self, text: str) -> bool:
        """True if ``$s at <text>`` is false for every non-MZ file: the offset is undefined
        there, and this libyara makes ``at`` an undefined offset false."""
        return self.false_for_non_pe(f"defined ({text})") and self._at_undefined_false()

    def _at_undefined_false(self) -> bool:
        key = "$s at <undefined>"
        if key not in self.cache:
            rules = self.yara.compile(
                source='rule f { strings: $s = "x" condition: $s at uint8(filesize) }'
            )
            self.cache[key] = not rules.match(data=b"x" * 64)
        return self.cache[key]

    def _never(self, text: str) -> bool:
        try:
            rules = self.yara.compile(source=f'import "pe"\nrule f {{ condition: {text} }}')
        except self.yara.Error:
            return False  # not proven: keep the factor
        return not any(rules.match(data=sample) for sample in NON_MZ_SAMPLES)


def _factor_false(factor: list[str], pe: _PeFactors, externals: frozenset[str]) -> bool:
    text = " ".join(factor)
    if text.lower() in MZ_FACTORS:
        return True
    if len(factor) > 2 and factor[0][:1] == "$" and factor[1] == "at":
        offset = factor[2:]
        return _reads_pe_only(offset, externals) and pe.offset_undefined(" ".join(offset))
    return _reads_pe_only(factor, externals) and pe.false_for_non_pe(text)


def _rule_text(lines: list[str], rule: dict[str, Any]) -> str:
    text = "\n".join(lines[rule["start_line"] - 1 : rule["stop_line"]])
    return text[: text.rindex("}") + 1]


def _refers_to(tokens: list[str], name: str) -> bool:
    for token in tokens:
        if token == name or (token.endswith("*") and name.startswith(token[:-1])):
            return True
    return False


def parse_files(files: list[tuple[str, str]]) -> dict[str, list[dict[str, Any]] | str]:
    """plyara's rules of each file, or why the file does not parse. One parse of all files
    together: plyara builds its parser tables anew for each parser (about 50 ms each)."""
    parsed: dict[str, list[dict[str, Any]] | str] = {}
    starts, offset, chunks = [], 0, []
    for rel, text in files:
        starts.append((offset, rel))
        chunks.append(text)
        offset += text.count("\n") + 1
    try:
        rules = plyara.Plyara().parse_string("\n".join(chunks))
    except Exception:  # plyara raises its own and plain parser errors; retry file by file
        for rel, text in files:
            try:
                parsed[rel] = plyara.Plyara().parse_string(text)
            except Exception as exc:
                parsed[rel] = f"does not parse: {exc}"
        return parsed
    for rel, _text in files:
        parsed[rel] = []
    for rule in rules:
        first = max(i for i, (start, _rel) in enumerate(starts) if start < rule["start_line"])
        start, rel = starts[first]
        rule["start_line"] -= start
        rule["stop_line"] -= start
        parsed[rel].append(rule)  # type: ignore[union-attr]
    return parsed


def _derive_file(
    text: str, rules: list[dict[str, Any]], pe: _PeFactors, externals: frozenset[str]
) -> tuple[str | None, list[tuple[str, bool, bool]], int, int, str]:
    """``(source or None, expected rules, dropped, rewritten, why None)``."""
    if any("global" in r.get("scopes", ()) for r in rules):
        return None, [], 0, 0, "has a global rule"
    lines = text.split("\n")
    plan: dict[str, list[list[str]] | None] = {}  # name -> kept disjuncts (None: all)
    for rule in rules:
        terms = rule.get("condition_terms", [])
        parts = disjuncts(terms)
        kept = [d for d in parts if not any(_factor_false(f, pe, externals) for f in factors(d))]
        plan[rule["rule_name"]] = None if len(kept) == len(parts) else kept
    conditions: dict[str, list[str]] = {}
    for rule in rules:
        kept = plan[rule["rule_name"]]
        conditions[rule["rule_name"]] = (
            rule.get("condition_terms", []) if kept is None else [t for d in kept for t in d]
        )
    live = [r for r in rules if plan[r["rule_name"]] is None or plan[r["rule_name"]]]
    referenced = {
        r["rule_name"]
        for r in rules
        if not plan[r["rule_name"]]
        and plan[r["rule_name"]] is not None
        and any(_refers_to(conditions[o["rule_name"]], r["rule_name"]) for o in live)
    }
    parts_out, expected, dropped, rewritten = [], [], 0, 0
    for rule in rules:
        name, kept = rule["rule_name"], plan[rule["rule_name"]]
        scopes = rule.get("scopes", ())
        if kept is not None and not kept and name not in referenced:
            dropped += 1
            continue
        body = _rule_text(lines, rule)
        if kept is not None:
            raw = rule.get("raw_condition", "").rstrip()
            at = body.rfind(raw) if raw else -1
            if at < 0:
                return None, [], 0, 0, f"rule {name}: condition not found in its text"
            condition = " or ".join(f"({' '.join(d)})" for d in kept) or "false"
            if rule.get("strings"):
                # Strings only the removed parts used must still be referenced.
                condition += " or (false and any of them)"
            body = body[:at] + "condition:\n        " + condition + "\n}"
            rewritten += 1
        parts_out.append(body)
        expected.append((name, "private" in scopes, False))
    uses_pe = any(t.startswith("pe.") for r in live for t in conditions[r["rule_name"]])
    imports = [m for m in _IMPORT.findall(text) if m != "pe" or uses_pe]
    header = "".join(f'import "{m}"\n' for m in dict.fromkeys(imports))
    source = header + "\n\n".join(parts_out) + "\n" if parts_out else ""
    return source, expected, dropped, rewritten, ""


RuleId = tuple[str, bool, bool]  # name, private, global


def _compiled_rules(yara: Any, source: str, externals: dict[str, str]) -> list[RuleId]:
    rules = yara.compile(source=source, externals=externals, includes=False)
    return [(r.identifier, bool(r.is_private), bool(r.is_global)) for r in rules]


def derive(yara: Any, files: list[tuple[str, bytes]], externals: dict[str, str]) -> Derived:
    """Non-PE sources for ``[(namespace, source bytes)]`` of rule files that compile."""
    result = Derived()
    pe = _PeFactors(yara)
    names = frozenset(externals)
    texts: list[tuple[str, str]] = []
    for rel, data in files:
        try:
            # CRLF line ends become LF (whitespace either way; plyara counts CRLF as two lines).
            text = data.decode("utf-8").replace("\r\n", "\n")
        except UnicodeDecodeError:
            text = None  # rebuilt text must give back the same bytes: only UTF-8 is derived
        if text is None or "\r" in text:
            result.sources[rel] = data
            result.kept_verbatim.append((rel, "not UTF-8 text with LF or CRLF line ends"))
            if b'import "pe"' in data:
                result.needs_pe.append(rel)
            continue
        texts.append((rel, text))
    parsed = parse_files(texts)
    for rel, text in texts:
        rules = parsed[rel]
        if isinstance(rules, str):
            source, expected, dropped, rewritten, why = None, [], 0, 0, rules
        else:
            source, expected, dropped, rewritten, why = _derive_file(text, rules, pe, names)
        if source is not None:
            try:
                original = _compiled_rules(yara, text, externals)
                got = _compiled_rules(yara, source, externals) if source else []
            except yara.Error as exc:
                source, why = None, f"derived rules do not compile: {exc}"
            else:
                lost = len(original) - len(expected) - dropped
                if sorted(got) != sorted(expected) or lost:
                    source, why = None, "derived rules differ from the expected ones"
        if source is None:
            source = text
            result.kept_verbatim.append((rel, why))
        else:
            result.dropped += dropped
            result.rewritten += rewritten
        result.sources[rel] = source.encode("utf-8")
        if "pe" in _IMPORT.findall(source):
            result.needs_pe.append(rel)
    return result
