"""Run the WinRM test server by hand: python -m tests.winrm_server [--self-signed] ...

It prints the endpoint and the account on its first line, then serves until Ctrl-C/SIGTERM.
Commands run with /bin/sh, or with `--shell cmd --drive-c DIR` with the cmd.exe emulator
(cmd_shell.py) on DIR as C:\\.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import threading

from .pki import make_test_ca
from .process import SHELLS
from .server import DEFAULT_PASSWORD, DEFAULT_USER, WinRMServer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.winrm_server")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (loopback)")
    parser.add_argument("--port", type=int, default=0, help="0: the OS picks one")
    parser.add_argument(
        "--user", action="append", default=[], metavar="USER:PASSWORD", help="repeatable"
    )
    parser.add_argument("--auth", default="ntlm,basic", help="comma list of ntlm, basic")
    parser.add_argument("--cert", help="PEM certificate: serve HTTPS (with --key)")
    parser.add_argument("--key", help="PEM private key of --cert")
    parser.add_argument(
        "--self-signed", action="store_true", help="HTTPS with a fresh test CA for --host"
    )
    parser.add_argument("--allow-unencrypted", action="store_true")
    parser.add_argument(
        "--shell", choices=SHELLS, default="sh", help="run commands with sh or emulated cmd.exe"
    )
    parser.add_argument("--drive-c", metavar="DIR", help="the folder that is C:\\ (cmd shell)")
    args = parser.parse_args(argv)
    if args.shell == "cmd" and not (args.drive_c or os.environ.get("WINRM_TEST_DRIVE_C")):
        parser.error("--shell cmd needs --drive-c DIR")

    users = dict(u.split(":", 1) for u in args.user) or {DEFAULT_USER: DEFAULT_PASSWORD}
    certfile, keyfile, ca_note = args.cert, args.key, ""
    keep = None
    if args.self_signed:
        keep = tempfile.TemporaryDirectory(prefix="winrm-pki-")
        ca = make_test_ca(keep.name)
        cert = ca.issue(args.host, keep.name)
        certfile, keyfile = str(cert.cert_path), str(cert.key_path)
        ca_note = f" ca={ca.cert_path}"
    server = WinRMServer(
        args.host,
        args.port,
        users=users,
        auth=tuple(a.strip() for a in args.auth.split(",") if a.strip()),
        certfile=certfile,
        keyfile=keyfile,
        allow_unencrypted=args.allow_unencrypted,
        shell=args.shell,
        drive_c=args.drive_c,
    ).start()
    accounts = ", ".join(f"{u}:{p}" for u, p in users.items())
    print(f"WinRM test server listening on {server.endpoint} users={accounts}{ca_note}")
    sys.stdout.flush()
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    try:
        done.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
        if keep is not None:
            keep.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
