"""A private PostgreSQL server for the tests: Debian's postgresql package, a cluster of its own
in a temporary folder, listening only on a Unix socket in that folder (no TCP port, nothing
reachable from elsewhere), run as the `postgres` system user (the server refuses root).

    with PostgresServer() as pg:
        url = pg.url("plantsweep_test")    # postgresql+psycopg://postgres@/db?host=SOCKETDIR
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path


def pg_bin_dir() -> Path | None:
    """The newest /usr/lib/postgresql/N/bin with initdb, or None when the package is missing."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=_major)
    return Path(found[-1]).parent if found else None


def _major(path: str) -> int:
    try:
        return int(Path(path).parts[-3])
    except ValueError:
        return 0


class PostgresServer:
    def __init__(self, user: str = "postgres"):
        bindir = pg_bin_dir()
        if bindir is None:
            raise RuntimeError("PostgreSQL is not installed (scripts/setup.sh installs it)")
        self.bindir = bindir
        self.user = user
        self.root = Path(tempfile.mkdtemp(prefix="plantsweep-pg-"))
        self.data = self.root / "data"
        self.socket_dir = self.root / "run"
        self._started = False

    def _as_user(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.bindir / args[0]), *args[1:]]
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", self.user, "--", *cmd]
        return subprocess.run(cmd, check=check, capture_output=True, text=True, timeout=120)

    def start(self) -> PostgresServer:
        self.socket_dir.mkdir(parents=True)
        if os.geteuid() == 0:
            shutil.chown(self.root, self.user)
            shutil.chown(self.socket_dir, self.user)
        self._as_user("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust",
                      "-E", "UTF8", "--locale=C.UTF-8", "--no-sync")
        options = (
            f"-c listen_addresses='' -c unix_socket_directories={self.socket_dir} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        self._as_user("pg_ctl", "-D", str(self.data), "-o", options, "-w", "-t", "60",
                      "-l", str(self.root / "server.log"), "start")
        self._started = True
        return self

    def create_database(self, name: str) -> str:
        self.psql("postgres", f'CREATE DATABASE "{name}"')
        return self.url(name)

    def drop_database(self, name: str) -> None:
        self.psql("postgres", f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def psql(self, database: str, sql: str) -> str:
        result = subprocess.run(
            ["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", str(self.socket_dir),
             "-U", "postgres", "-d", database, "-c", sql],
            check=True, capture_output=True, text=True, timeout=60,
        )
        return result.stdout

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@/{database}?host={self.socket_dir}"

    def stop(self) -> None:
        if self._started:
            self._as_user("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop",
                          check=False)
            self._started = False
        # Give the server a moment to release the socket before the folder goes.
        for _ in range(20):
            if not any(self.socket_dir.glob(".s.PGSQL.*")):
                break
            time.sleep(0.05)
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
