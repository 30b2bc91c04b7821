"""The rule sets for non-PE files (orchestrator/bundles/nonpe.py), on small hand-written rules.

Each case compiles the original and the derived source with the real yara-python and checks
that both give the same matches on non-MZ data, and what the derivation removed. The whole
signature-base set is checked the same way in test_signature_base.py.
"""

from __future__ import annotations

import pytest
import yara

from agentless_scanner.yara_engine import EXTERNALS
from orchestrator.bundles import nonpe

EXTERNALS_EMPTY = dict.fromkeys(EXTERNALS, "")
SAMPLES = (
    b"",
    b"plain text with alpha and beta\n",
    b"#!/bin/sh\nalpha beta gamma\n",
    b"\x7fELF" + b"\0" * 60 + b"gamma",
    b"M alpha",  # starts with M but not MZ
)


def derive_one(source: str) -> tuple[nonpe.Derived, str]:
    derived = nonpe.derive(yara, [("ns.yar", source.encode())], EXTERNALS_EMPTY)
    return derived, derived.sources["ns.yar"].decode()


def names(rules: yara.Rules | None, data: bytes) -> list[str]:
    if rules is None:
        return []
    return sorted(m.rule for m in rules.match(data=data, externals=EXTERNALS_EMPTY))


def assert_same_on_non_pe(original: str, derived: str) -> None:
    full = yara.compile(source=original, externals=EXTERNALS_EMPTY)
    lean = yara.compile(source=derived, externals=EXTERNALS_EMPTY) if derived else None
    for data in SAMPLES:
        assert names(full, data) == names(lean, data), data


def test_a_rule_that_needs_mz_is_dropped_and_pe_goes_with_it():
    source = """import "pe"
rule Needs_MZ { strings: $a = "alpha" condition: uint16(0) == 0x5A4D and $a }
rule Needs_PE_Export { strings: $a = "alpha" condition: $a and pe.exports("Run") }
rule Text { strings: $b = "beta" condition: $b }
"""
    derived, text = derive_one(source)
    assert derived.dropped == 2 and derived.rewritten == 0
    assert "Needs_MZ" not in text and "Needs_PE_Export" not in text
    assert 'import "pe"' not in text and derived.needs_pe == []
    assert_same_on_non_pe(source, text)
    assert names(yara.compile(source=text), SAMPLES[1]) == ["Text"]


def test_a_pe_only_branch_of_an_or_is_removed():
    source = """import "pe"
rule Either {
  strings: $a = "alpha" $x = "zeta"
  condition: ( uint16(0) == 0x5a4d and filesize < 1MB and $x ) or pe.imphash() == "00" or $a
}
"""
    derived, text = derive_one(source)
    assert derived.rewritten == 1 and derived.dropped == 0
    assert "pe." not in text.split("condition:")[1] and 'import "pe"' not in text
    # $x is only used by the removed branch: still referenced, so the rule compiles.
    assert "any of them" in text
    assert_same_on_non_pe(source, text)
    assert names(yara.compile(source=text), SAMPLES[1]) == ["Either"]


def test_a_pe_value_that_is_defined_for_other_files_is_kept():
    # pe.is_pe is 0 (defined) for a non-PE file, so "not pe.is_pe" is true there.
    source = """import "pe"
rule Not_PE { strings: $a = "alpha" condition: $a and not pe.is_pe }
rule Sliver_Like { strings: $a = "alpha" condition: $a and not pe.number_of_signatures > 0 }
"""
    derived, text = derive_one(source)
    assert "Not_PE" in text and "Sliver_Like" not in text
    assert derived.needs_pe == ["ns.yar"] and 'import "pe"' in text
    assert_same_on_non_pe(source, text)
    assert names(yara.compile(source=text), SAMPLES[1]) == ["Not_PE"]


def test_a_string_at_an_offset_only_pe_knows_is_false_for_other_files():
    source = """import "pe"
rule At_Entry { strings: $a = "alpha" $b = "beta" condition: $a at pe.entry_point or $b }
"""
    derived, text = derive_one(source)
    assert derived.rewritten == 1 and 'import "pe"' not in text
    assert_same_on_non_pe(source, text)


def test_a_dropped_rule_that_another_rule_uses_stays_as_false():
    source = """import "pe"
private rule Is_Exe { condition: uint16(0) == 0x5a4d }
rule Exe_Or_Beta { strings: $b = "beta" condition: Is_Exe or $b }
"""
    derived, text = derive_one(source)
    assert "private rule Is_Exe" in text and derived.dropped == 0
    assert_same_on_non_pe(source, text)
    assert names(yara.compile(source=text), SAMPLES[1]) == ["Exe_Or_Beta"]


def test_what_is_not_proven_is_kept_as_it_was():
    global_rule = """import "pe"
global rule Only_Exe { condition: uint16(0) == 0x5a4d }
rule Alpha { strings: $a = "alpha" condition: $a }
"""
    derived, text = derive_one(global_rule)
    assert text == global_rule and derived.kept_verbatim == [("ns.yar", "has a global rule")]
    # A factor that reads the data as well as pe is not evaluated: kept.
    mixed = """import "pe"
rule Mixed { condition: pe.number_of_sections == uint8(0) or filesize > 3 }
"""
    derived, text = derive_one(mixed)
    assert "Mixed" in text and derived.needs_pe == ["ns.yar"]
    assert_same_on_non_pe(mixed, text)


def test_crlf_files_are_derived_and_other_encodings_kept():
    crlf = 'import "pe"\r\nrule A {\r\n condition: uint16(0) == 0x5a4d\r\n}\r\nrule B {\r\n'
    crlf += ' strings: $b = "beta"\r\n condition: $b\r\n}\r\n'
    derived, text = derive_one(crlf)
    assert derived.dropped == 1 and "rule B" in text and "rule A" not in text
    latin = 'rule C { strings: $c = "caf\xe9" condition: $c }\n'.encode("latin-1")
    derived = nonpe.derive(yara, [("l.yar", latin)], EXTERNALS_EMPTY)
    assert derived.sources["l.yar"] == latin and derived.kept_verbatim[0][0] == "l.yar"


@pytest.mark.parametrize(
    "condition, parts",
    [
        ("a and b or c", [["a", "and", "b"], ["c"]]),
        ("( a or ( b or c ) )", [["a"], ["b"], ["c"]]),
        ("not ( a or b ) and c", [["not", "(", "a", "or", "b", ")", "and", "c"]]),
        (
            "for any i in ( 0 .. 2 ) : ( a or b )",
            [["for", "any", "i", "in", "(", "0", "..", "2", ")", ":", "(", "a", "or", "b", ")"]],
        ),
    ],
)
def test_top_level_split(condition, parts):
    assert nonpe.disjuncts(condition.split()) == parts


def test_factors_open_nested_conjunctions_only():
    # A disjunction inside a conjunction stays one factor (its parentheses dropped).
    tokens = "( a and ( b and c ) ) and ( d or e )"
    assert nonpe.factors(tokens.split()) == [
        ["a"],
        ["b"],
        ["c"],
        ["d", "or", "e"],
    ]
