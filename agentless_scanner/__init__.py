"""plantsweep scanner payload: pushed to a plant host, run from a private temp dir.

Standard library only, Python 3.6+. It walks files per scan type, matches hash IOCs and
(when a yara-python wheel for the host's interpreter is shipped) YARA rules, collects asset
information and writes exactly one JSON scan log. It never changes a scanned file.

Run as a zipapp built by ``orchestrator.payload.build_payload``::

    python3 -I -B scanner.pyz --type quick --patterns patterns --out scan.json

The log format is documented by ``scan-log.schema.json`` in this package.
"""

__version__ = "1.0.0"

#: Version of the scan-log format (``schema_version`` in every log).
SCHEMA_VERSION = "2.0"

#: File name of the JSON Schema shipped inside this package.
SCHEMA_FILE = "scan-log.schema.json"
