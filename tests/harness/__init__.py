"""Simulated plant for end-to-end tests and the demo: N Linux hosts, each a real sshd in
its own network namespace, with private /tmp, /root, /home, /srv/plant and hostname.

See tests/harness/README.md. Needs root, iproute2, util-linux and openssh-server.
"""

from .files import (
    EICAR,
    HASH_IOC_NAME,
    HASH_IOC_SHA256,
    MARKER,
    TEST_HASH_IOCS,
    TEST_YARA_RULES,
    YARA_EICAR_RULE,
    YARA_MARKER_RULE,
    PlantedFile,
    write_test_patterns,
)
from .fleet import DEFAULT_NETWORK, Fleet, Host, down_state_dir, teardown
from .hostfs import DATA_DIR, OPERATOR_USER, PLANTOPS_PASSWORD, PLANTOPS_USER
from .proc import HarnessError
from .pythons import DEFAULT_PYTHON, HOST_PYTHONS

__all__ = [
    "DATA_DIR",
    "DEFAULT_NETWORK",
    "DEFAULT_PYTHON",
    "EICAR",
    "HASH_IOC_NAME",
    "HASH_IOC_SHA256",
    "HOST_PYTHONS",
    "MARKER",
    "OPERATOR_USER",
    "PLANTOPS_PASSWORD",
    "PLANTOPS_USER",
    "TEST_HASH_IOCS",
    "TEST_YARA_RULES",
    "YARA_EICAR_RULE",
    "YARA_MARKER_RULE",
    "Fleet",
    "HarnessError",
    "Host",
    "PlantedFile",
    "down_state_dir",
    "teardown",
    "write_test_patterns",
]
