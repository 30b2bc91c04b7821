"""Split ``host:port`` inventory entries and recognise host names / IP addresses.

Ansible accepts ``badwolf.example.com:5309``, ``10.0.0.5:2222`` and ``[fe80::1]:2222`` (an IPv6
address needs brackets to carry a port). The part before the port must look like a host name
or an address (ranges allowed); otherwise the whole entry is kept as the host name, as Ansible
does. The same test tells a single host pattern from a ``a:b`` list in ``split_host_pattern``.
"""

from __future__ import annotations

import ipaddress
import re

# Range forms that may replace a label or a component (validated again when expanded).
_ALNUM_RANGE = r"\[(?:[a-z]:[a-z]|[0-9]+:[0-9]+)(?::[0-9]+)?\]"
_DEC_RANGE = r"\[[0-9]+:[0-9]+(?::[0-9]+)?\]"
_HEX_RANGE = r"\[[0-9a-f]+:[0-9a-f]+(?::[0-9]+)?\]"

# A DNS-ish label: word characters and dashes (or ranges), not ending in '-' or '_'.
_LABEL = rf"(?:\w|{_ALNUM_RANGE})(?:[\w-]|{_ALNUM_RANGE})*(?<![_-])"
_HOSTNAME_RE = re.compile(rf"^{_LABEL}(?:\.{_LABEL})*$", re.IGNORECASE)

_OCTET = rf"(?:25[0-5]|2[0-4][0-9]|[01]?[0-9]?[0-9]|{_DEC_RANGE})"
_IPV4_RE = re.compile(rf"^{_OCTET}(?:\.{_OCTET}){{3}}$")

_IPV6_RANGE_RE = re.compile(_HEX_RANGE, re.IGNORECASE)

_BRACKETED_PORT_RE = re.compile(r"^\[(.+)\]:([0-9]+)$")
# "host:port" where host has no ':' except inside complete [..] range brackets.
_HOST_PORT_RE = re.compile(r"^((?:[^:\[\]]|\[[^\]]*\])*):([0-9]+)$")


def is_ipv4(text: str) -> bool:
    return bool(_IPV4_RE.match(text))


def is_ipv6(text: str) -> bool:
    if "::" not in text and text.count(":") < 2:
        return False
    # Ranges stand in for one 16-bit group: check the address with each range's begin value.
    plain = _IPV6_RANGE_RE.sub(lambda m: m.group(0)[1:].split(":", 1)[0], text)
    try:
        ipaddress.IPv6Address(plain)
    except ValueError:
        return False
    return True


def is_host_address(text: str) -> bool:
    """True for a host name, IPv4 or IPv6 address (each may contain ranges)."""
    return bool(is_ipv4(text) or is_ipv6(text) or _HOSTNAME_RE.match(text))


def parse_address(entry: str) -> tuple[str, int | None] | None:
    """``'web1:2222'`` -> ``('web1', 2222)``, ``'web1'`` -> ``('web1', None)``; None if the
    entry is not a host name or address with an optional port."""
    address, port = entry, None
    bracketed = _BRACKETED_PORT_RE.match(address)
    if bracketed:
        address, port = bracketed.group(1), int(bracketed.group(2))
    else:
        plain = _HOST_PORT_RE.match(address)
        if plain:
            address, port = plain.group(1), int(plain.group(2))
    if not is_host_address(address):
        return None
    return address, port


def split_host_port(entry: str) -> tuple[str, int | None]:
    """Like parse_address, but an entry that is not host[:port] is kept whole (as Ansible)."""
    return parse_address(entry) or (entry, None)
