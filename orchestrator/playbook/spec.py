"""What arguments a built-in action accepts, so the loader can check tasks before any host is
contacted. The engine registers the real actions; the loader only needs this description."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class ActionSpec:
    """The argument names of one action.

    ``free_form``: the argument a bare string fills (``command: "uname -a"`` means
    ``command: {cmd: "uname -a"}``); None means the action only takes a mapping.
    ``choices``: allowed values of some arguments, checked at load time when the value is a
    literal string (a templated value can only be checked by the action at run time).
    """

    name: str
    required: frozenset[str] = frozenset()
    optional: frozenset[str] = frozenset()
    free_form: str | None = None
    choices: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Accept any iterable of names but store frozensets, so specs are hashable-ish values.
        object.__setattr__(self, "required", frozenset(self.required))
        object.__setattr__(self, "optional", frozenset(self.optional))
        if self.required & self.optional:
            both = ", ".join(sorted(self.required & self.optional))
            raise ValueError(f"action {self.name!r}: {both} both required and optional")
        if self.free_form is not None and self.free_form not in self.allowed:
            raise ValueError(f"action {self.name!r}: free_form {self.free_form!r} is no argument")
        unknown = set(self.choices) - self.allowed
        if unknown:
            raise ValueError(f"action {self.name!r}: choices for unknown {sorted(unknown)}")

    @property
    def allowed(self) -> frozenset[str]:
        return self.required | self.optional


def spec_table(specs: Iterable[ActionSpec]) -> dict[str, ActionSpec]:
    """``{name: spec}`` from a list of specs (the form ``load_playbook`` takes)."""
    table: dict[str, ActionSpec] = {}
    for spec in specs:
        if spec.name in table:
            raise ValueError(f"action {spec.name!r} registered twice")
        table[spec.name] = spec
    return table
