"""Action specs for the playbook language tests: shaped like the real built-in actions, but
owned by the tests so they do not change when the engine's actions grow arguments."""

from orchestrator.playbook import ActionSpec, spec_table

ACTIONS = spec_table(
    [
        ActionSpec("asset_info"),
        ActionSpec(
            "scan",
            required=frozenset({"type"}),
            optional=frozenset({"paths", "patterns", "action"}),
            choices={"type": ("quick", "full", "folders", "asset")},
        ),
        ActionSpec("fetch_logs", required=frozenset({"src"}), optional=frozenset({"dest"})),
        ActionSpec("assert", required=frozenset({"that"}), optional=frozenset({"fail_msg"})),
        ActionSpec(
            "command",
            required=frozenset({"cmd"}),
            optional=frozenset({"chdir"}),
            free_form="cmd",
        ),
        ActionSpec("report", required=frozenset({"template", "dest"})),
        ActionSpec("cleanup"),
    ]
)
