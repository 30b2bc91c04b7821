"""Where a scan's patterns come from: a folder, or `bundle:NAME`, an installed signed bundle
(checked again against its signature before use). Either way the hosts get one zip; a
bundle's zip also holds its compiled rules (compiled/*.yarc) and, in bundle.json, the libyara
that compiled them.

    archive, has_yara = pattern_archive("bundle:site", Path("build/patterns.zip"))
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

from orchestrator import payload
from orchestrator.bundles import installed
from orchestrator.bundles.verify import verify_installed
from orchestrator.errors import UsageError

BUNDLE_PREFIX = "bundle:"
RULE_SUFFIXES = (".yar", ".yara")


def _has_yara(names: list[str]) -> bool:
    return any(n.lower().endswith(RULE_SUFFIXES) for n in names)


def pattern_archive(spec: str | Path, dest: Path) -> tuple[Path, bool]:
    """Zip the patterns named by `spec`; also say whether they hold YARA rules."""
    text = str(spec)
    if text.startswith(BUNDLE_PREFIX):
        return _bundle_archive(text[len(BUNDLE_PREFIX) :], dest)
    files = payload.pattern_files(Path(text))
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in files:
            zf.write(path, path.relative_to(text).as_posix())
    return dest, _has_yara([p.name for p in files])


def _bundle_archive(name: str, dest: Path) -> tuple[Path, bool]:
    from orchestrator.patterns_cli import store_dir, trusted_keys_dir

    found = installed(store_dir(), name)
    if found is None:
        raise UsageError(
            f"no pattern bundle {name!r} is installed in {store_dir()} "
            "(plantsweep patterns import BUNDLE)"
        )
    manifest, files = verify_installed(found[1], sorted(trusted_keys_dir().glob("*.pub")))
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as zf:
        for rel, data in sorted(files.items()):
            zf.writestr(rel, data)
        # The scanner records these in every scan log (patterns.name/version/date).
        meta: dict[str, str | int] = {
            "name": manifest.name,
            "version": str(manifest.version),
            "date": manifest.released.isoformat(),
        }
        if manifest.yara is not None:
            # The payload loads compiled/*.yarc only if its own libyara is this one.
            meta["libyara"] = manifest.yara.libyara
            meta["content_rules"] = manifest.yara.content_rules
            meta["path_rules"] = manifest.yara.path_rules
        zf.writestr("bundle.json", json.dumps(meta))
    return dest, _has_yara(list(files))
