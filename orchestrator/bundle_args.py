"""Command-line arguments that pattern bundles and data bundles share (kept out of the
bundles package, whose import loads the bundle library)."""

from __future__ import annotations

import argparse


def add_check_parsers(sub: argparse._SubParsersAction, what: str, reason: bool = False) -> None:
    """``import`` and ``verify`` of a bundle file: the bundle, trusted keys and, with
    ``reason``, why (for the audit trail)."""
    for verb, text in (("import", "verify and install"), ("verify", "verify only")):
        p = sub.add_parser(verb, help=f"{text} {what} (signature, hashes, version, dates)")
        p.add_argument("bundle", metavar="BUNDLE")
        p.add_argument(
            "--trusted",
            action="append",
            metavar="PUBLIC_KEY",
            help="trusted public key (default: every *.pub in the trusted-keys folder)",
        )
        if reason:
            p.add_argument("--reason", help="why (recorded in the audit trail on import)")
