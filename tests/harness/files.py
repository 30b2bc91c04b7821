"""Files planted on plant hosts, and the test patterns (YARA rules, hash IOCs) that find them.

Every planted file is recorded (in-host path, sha256, kind, indicator) so tests can assert
on exact findings: a file with an indicator must be found, a clean file must not.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from pathlib import Path

# The standard 68-byte EICAR anti-malware test string.
EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
assert len(EICAR) == 68

MARKER = b"PLANTSWEEP-TEST-MALWARE-MARKER"

# Rule names double as indicator names: "yara:<rule>" / "hash:<name>".
YARA_EICAR_RULE = "EICAR_Test_File"
YARA_MARKER_RULE = "PlantSweep_Test_Marker"
HASH_IOC_NAME = "PlantSweep.Test.HashIOC"

TEST_YARA_RULES = f"""\
rule {YARA_EICAR_RULE}
{{
    meta:
        description = "EICAR anti-malware test file"
    strings:
        $eicar = "X5O!P%@AP[4\\\\PZX54(P^)7CC)7}}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
    condition:
        $eicar at 0
}}

rule {YARA_MARKER_RULE}
{{
    meta:
        description = "plantsweep test marker (harmless)"
    strings:
        $m = "{MARKER.decode()}"
    condition:
        $m
}}
"""

# Content whose only "malicious" trait is its hash; it matches no YARA rule.
HASH_IOC_CONTENT = b"plantsweep hash-ioc test payload v1\n" + bytes(range(256))
HASH_IOC_SHA256 = hashlib.sha256(HASH_IOC_CONTENT).hexdigest()
TEST_HASH_IOCS = {HASH_IOC_SHA256: HASH_IOC_NAME}

MARKER_CONTENT = b"MZ\x90\x00fake vendor update\n" + MARKER + b"\n" + b"\x00" * 64


@dataclass(frozen=True)
class PlantedFile:
    host: str
    path: str  # absolute path inside the host
    sha256: str
    size: int
    kind: str  # eicar | yara | hash | clean | custom
    indicator: str | None  # "yara:<rule>" or "hash:<name>", None for clean files

    def to_json(self) -> dict[str, object]:
        return asdict(self)


def describe(host: str, path: str, data: bytes, kind: str, indicator: str | None) -> PlantedFile:
    return PlantedFile(
        host=host,
        path=path,
        sha256=hashlib.sha256(data).hexdigest(),
        size=len(data),
        kind=kind,
        indicator=indicator,
    )


def default_set(index: int, name: str) -> list[tuple[str, bytes, str, str | None]]:
    """The default planted files for host number `index` (1-based).

    Deterministic so tests can rely on it; with 5 hosts:
    01 eicar; 02 marker in /srv/plant; 03 eicar + hash IOC in /tmp; 04 clean;
    05 eicar + marker in /srv/plant + marker in /root.
    """
    files: list[tuple[str, bytes, str, str | None]] = [
        (
            f"/srv/plant/recipes/recipe-{index:03d}.csv",
            f"step,temp_c,minutes\n1,{60 + index},15\n2,72,30\n".encode(),
            "clean",
            None,
        ),
        ("/home/operator/Documents/shift-notes.txt", f"{name}: line OK\n".encode(), "clean", None),
        ("/root/notes.txt", b"maintenance window: scan only, no changes\n", "clean", None),
        ("/tmp/hmi-cache.dat", b"\x00cache\x01" * 16, "clean", None),
    ]
    if index % 2 == 1:
        files.append(
            ("/home/operator/Downloads/eicar.com", EICAR, "eicar", f"yara:{YARA_EICAR_RULE}")
        )
    if index % 3 == 2:
        files.append(
            (
                "/srv/plant/updates/hmi-update.exe",
                MARKER_CONTENT,
                "yara",
                f"yara:{YARA_MARKER_RULE}",
            )
        )
    if index % 3 == 0:
        files.append(("/tmp/vendor/fwtool.bin", HASH_IOC_CONTENT, "hash", f"hash:{HASH_IOC_NAME}"))
    if index % 5 == 0:
        files.append(
            (
                "/root/.local/bin/update-helper",
                b"#!/bin/sh\n# " + MARKER + b"\nexit 0\n",
                "yara",
                f"yara:{YARA_MARKER_RULE}",
            )
        )
    return files


def write_test_patterns(directory: Path) -> dict[str, Path]:
    """Write the test YARA rules and hash IOC list (`sha256  name` per line)."""
    directory.mkdir(parents=True, exist_ok=True)
    yar = directory / "plantsweep-test.yar"
    yar.write_text(TEST_YARA_RULES)
    iocs = directory / "plantsweep-test-sha256.txt"
    iocs.write_text("# sha256  name\n" + "".join(f"{h}  {n}\n" for h, n in TEST_HASH_IOCS.items()))
    return {"yara": yar, "sha256": iocs}
