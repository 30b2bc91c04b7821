"""`ansible-playbook --list-tasks/--list-tags` cases for ansible-parity.yml.

tests/test_playbook_selection.py compares `describe()` with the output ansible-core printed,
stored in expected/ (ansible-playbook takes seconds to start, so it is not run by the tests).
Regenerate with:  .venv/bin/python tests/playbook/listing_cases.py
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
PLAYBOOK = "tests/playbook/ansible-parity.yml"  # as given on the command line, from the repo root

# name: (ansible-playbook options, describe() keyword arguments)
CASES: dict[str, tuple[list[str], dict[str, object]]] = {
    "list-tasks": (["--list-tasks"], {}),
    "tags-debug": (["--list-tasks", "--tags", "debug"], {"tags": {"debug"}}),
    "tags-play-tag": (["--list-tasks", "--tags", "line1"], {"tags": {"line1"}}),
    "skip-always": (["--list-tasks", "--skip-tags", "always"], {"skip_tags": {"always"}}),
    "tags-untagged": (["--list-tasks", "--tags", "untagged"], {"tags": {"untagged"}}),
    "tags-tagged": (["--list-tasks", "--tags", "tagged"], {"tags": {"tagged"}}),
    "skip-all": (["--list-tasks", "--skip-tags", "all"], {"skip_tags": {"all"}}),
    "tags-never-skip-b": (
        ["--list-tasks", "--tags", "never", "--skip-tags", "b"],
        {"tags": {"never"}, "skip_tags": {"b"}},
    ),
    "list-tags": (["--list-tags"], {"list_tasks": False, "list_tags": True}),
    "list-both-tags-scan": (
        ["--list-tasks", "--list-tags", "--tags", "scan"],
        {"tags": {"scan"}, "list_tags": True},
    ),
}


def main() -> None:
    root = HERE.parents[1]
    ansible = Path(sys.executable).parent / "ansible-playbook"
    for name, (options, _) in CASES.items():
        result = subprocess.run(
            [str(ansible), "-i", "localhost,", *options, PLAYBOOK],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        )
        (HERE / "expected" / f"{name}.txt").write_text(result.stdout)
        print(f"{name}: {len(result.stdout.splitlines())} lines")


if __name__ == "__main__":
    main()
