"""Shared pytest fixtures: the simulated plant (tests/harness). Needs root.

Set PLANTSWEEP_NO_PLANT=1 to skip tests that need the plant (e.g. without root).
"""

from __future__ import annotations

import itertools
import os
import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

# `python -m tests.harness` and the fixtures must import the same module; make the repo
# root importable whether pytest runs as `pytest` or `python -m pytest`.
ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.harness import Fleet  # noqa: E402

# Address plan (each fleet has its own /24 and its own unreachable safety route):
#   10.203.1.0/24        session `plant` fleet (id "pt")
#   10.203.101-199.0/24  fresh fleets from `make_fleet` (ids "pf1".."pf99")
#   10.203.250-251.0/24  harness self-tests of the CLI / debugging
#   10.204.0.0/24        the demo (`python -m tests.harness up`, id "demo")
#   PLANTSWEEP_TEST_SLOT=N (1-9) moves a whole pytest session to its own ids and addresses
#   (plant 10.{210+N}.0.0/24, fresh fleets 10.{210+N}.k.0/24, k <= 99), so that several
#   sessions can run side by side on one machine.
TEST_SLOT = int(os.environ.get("PLANTSWEEP_TEST_SLOT", "0") or 0)
PLANT_NETWORK = f"10.{210 + TEST_SLOT}.0.0/24" if TEST_SLOT else "10.203.1.0/24"
PLANT_PYTHONS = {"plant-host-02": "3.6", "plant-host-03": "3.8"}
_fresh_ids = itertools.count(1)


def _require_plant() -> None:
    if os.environ.get("PLANTSWEEP_NO_PLANT") == "1":
        pytest.skip("PLANTSWEEP_NO_PLANT=1: simulated plant disabled")
    if os.geteuid() != 0:
        pytest.fail("the simulated plant needs root (or set PLANTSWEEP_NO_PLANT=1 to skip)")


def _sigterm_to_interrupt(signum: int, frame: Any) -> None:
    # pytest runs finalizers on KeyboardInterrupt but not on SIGTERM (e.g. a CI timeout).
    raise KeyboardInterrupt


@pytest.fixture(scope="session", autouse=True)
def plantsweep_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Each test session gets its own PLANTSWEEP_HOME (journal, verdict cache, pattern store,
    quarantine vault), so no state carries over between runs on one machine. A test that
    needs a fresh one sets its own with monkeypatch."""
    home = tmp_path_factory.mktemp("plantsweep-home")
    old = os.environ.get("PLANTSWEEP_HOME")
    os.environ["PLANTSWEEP_HOME"] = str(home)
    yield home
    if old is None:
        os.environ.pop("PLANTSWEEP_HOME", None)
    else:
        os.environ["PLANTSWEEP_HOME"] = old


@pytest.fixture(scope="session")
def plant() -> Iterator[Fleet]:
    """5 plant hosts shared by the session: 01 /usr/bin/python3, 02 Python 3.6, 03 Python 3.8,
    04-05 /usr/bin/python3. Default planted files (see tests/harness/files.py). Do not break
    these hosts in a test: use `make_fleet` for fault injection."""
    _require_plant()
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _sigterm_to_interrupt)
    fleet = Fleet(5, fleet_id=f"pt{TEST_SLOT or ''}", network=PLANT_NETWORK, pythons=PLANT_PYTHONS)
    with fleet:
        yield fleet


@pytest.fixture
def make_fleet() -> Iterator[Callable[..., Fleet]]:
    """Factory for a fresh fleet with its own id and /24, torn down after the test.

    make_fleet(2) or make_fleet(3, pythons={...}, plant=False)
    """
    _require_plant()
    fleets: list[Fleet] = []

    def make(hosts: int = 2, **kwargs: Any) -> Fleet:
        if TEST_SLOT:
            k = (next(_fresh_ids) - 1) % 99 + 1
            kwargs.setdefault("fleet_id", f"s{TEST_SLOT}f{k}")
            kwargs.setdefault("network", f"10.{210 + TEST_SLOT}.{k}.0/24")
        else:
            k = (next(_fresh_ids) - 1) % 99 + 1
            kwargs.setdefault("fleet_id", f"pf{k}")
            kwargs.setdefault("network", f"10.203.{100 + k}.0/24")
        fleet = Fleet(hosts, **kwargs)
        fleets.append(fleet)
        fleet.up()
        return fleet

    try:
        yield make
    finally:
        for fleet in fleets:
            fleet.down()


WHEEL_CACHE = Path("/var/cache/plantsweep-test-wheels")


@pytest.fixture(scope="session")
def wheel_dir() -> Path:
    """yara-python wheels for the plant's interpreters (3.8, 3.11), fetched once and kept."""
    from orchestrator.payload import download_wheels

    got = download_wheels(WHEEL_CACHE, ["3.8", "3.11"], ["linux_x86_64"])
    missing = [w for w in got if w.path is None]
    assert not missing, f"yara-python wheels could not be fetched: {missing}"
    return WHEEL_CACHE


# Not the shared cache of Linux wheels: other tests pick a cp38 wheel from it by name.
WINDOWS_WHEELS = WHEEL_CACHE.parent / (WHEEL_CACHE.name + "-windows")


@pytest.fixture(scope="session")
def win_wheels() -> Path:
    """The real yara-python wheels for CPython 3.8 on win_amd64 and win32, fetched once."""
    from orchestrator.payload import download_wheels

    got = download_wheels(WINDOWS_WHEELS, ["3.8"], ["win_amd64", "win32"])
    assert all(g.path is not None for g in got), [g.error for g in got]
    return WINDOWS_WHEELS


# -- the central store, on SQLite and on a real PostgreSQL --------------------------------------
# Every test that takes `store_url` (or `store`) runs twice: on a fresh SQLite file and on a
# fresh database of a private PostgreSQL server (tests/harness/postgres.py; Debian's package,
# installed by scripts/setup.sh). One server per test session; one database per test.

_pg_server: Any = None


def _postgres() -> Any:
    global _pg_server
    if _pg_server is None:
        from tests.harness.postgres import PostgresServer

        _pg_server = PostgresServer().start()
    return _pg_server


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _pg_server is not None:
        _pg_server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.sqlite'}"
        return
    import secrets

    server = _postgres()
    name = "t_" + secrets.token_hex(6)
    url = server.create_database(name)
    try:
        yield url
    finally:
        server.drop_database(name)


@pytest.fixture
def store(store_url: str) -> Iterator[Any]:
    from orchestrator.store import open_store

    opened = open_store(store_url)
    try:
        yield opened
    finally:
        opened.dispose()
