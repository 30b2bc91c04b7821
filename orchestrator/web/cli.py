"""`plantsweep serve`: the read-only management web view.

plantsweep serve [--host 127.0.0.1] [--port 8080] [--tls-cert FILE --tls-key FILE] [--store URL]

Loopback by default; to serve the plant network give --host and a certificate (without TLS the
passwords and session cookies cross the network in clear, so serve warns).
"""

from __future__ import annotations

import argparse
import ipaddress
import socket
import sys
from pathlib import Path
from typing import Any

from orchestrator.errors import UsageError

DEFAULT_PORT = 8080


def add_parser(sub: Any) -> argparse.ArgumentParser:
    serve = sub.add_parser("serve", help="the read-only management web view over the store")
    serve.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1: this machine only)",
    )
    serve.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"TCP port (default {DEFAULT_PORT})"
    )
    serve.add_argument("--tls-cert", metavar="FILE", help="PEM certificate (serve HTTPS)")
    serve.add_argument("--tls-key", metavar="FILE", help="PEM private key of --tls-cert")
    # SUPPRESS: without it the sub-command's default None would override a global --store.
    serve.add_argument(
        "--store",
        metavar="URL",
        default=argparse.SUPPRESS,
        help="the central store (as the global --store)",
    )
    return serve


def listen_socket(host: str, port: int) -> socket.socket:
    """A bound, listening socket (a clear error if the address is taken or wrong)."""
    if not 0 <= port <= 65535:
        raise UsageError(f"--port must be 0-65535, not {port}")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise UsageError(f"cannot listen on {host!r}: {exc.strerror}") from None
    family, _, _, _, address = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.set_inheritable(True)
    return sock


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def serve_command(args: argparse.Namespace) -> int:
    import uvicorn

    from orchestrator.store import open_store
    from orchestrator.web.app import create_app

    cert, key = args.tls_cert, args.tls_key
    if bool(cert) != bool(key):
        raise UsageError("give both --tls-cert and --tls-key (or neither)")
    for label, value in (("--tls-cert", cert), ("--tls-key", key)):
        if value and not Path(value).is_file():
            raise UsageError(f"{label}: no such file", path=value)
    store = open_store(getattr(args, "store", None))
    try:
        app = create_app(store, secure=bool(cert))
        if not app.app.state.web.auth.has_users():
            print(
                "WARNING: the store has no users: create an administrator with "
                '`plantsweep user add NAME --full-name "..." --role administrator` '
                "to log in",
                file=sys.stderr,
            )
        if not cert and not _is_loopback(args.host):
            print(
                f"WARNING: serving {args.host} without TLS: passwords and session cookies "
                "travel in clear (use --tls-cert/--tls-key)",
                file=sys.stderr,
            )
        sock = listen_socket(args.host, args.port)
        scheme = "https" if cert else "http"
        print(
            f"plantsweep web view on {scheme}://{args.host}:{sock.getsockname()[1]}/ "
            "(Ctrl-C stops it)",
            file=sys.stderr,
        )
        config = uvicorn.Config(
            app,
            ssl_certfile=cert,
            ssl_keyfile=key,
            log_level="warning",
            access_log=False,
            proxy_headers=False,
            server_header=False,
        )
        try:
            uvicorn.Server(config).run(sockets=[sock])
        except (OSError, ValueError) as exc:  # e.g. an unreadable or mismatched key
            raise UsageError(f"cannot serve: {exc}") from None
        finally:
            sock.close()
    finally:
        store.dispose()
    return 0
