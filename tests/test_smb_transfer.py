r"""SMB file transfer (orchestrator/connections/smb.py) against a real Samba smbd in its own
network namespace (tests/harness/samba.py): transfers, chunk sizes, signing, encryption,
classified errors, path checks and cleanup, each checked on the host's filesystem too.

Needs root and Debian's samba (scripts/setup.sh installs it); without smbd the tests fail.
"""

from __future__ import annotations

import hashlib
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import smbclient
from smbprotocol.connection import SecurityMode
from smbprotocol.open import Open

from orchestrator.connections.smb import (
    UAC_HINT,
    SMBAccessDenied,
    SMBError,
    SMBLogonFailure,
    SMBNotFound,
    SMBPathRefused,
    SMBSecurityUnavailable,
    SMBShareNotFound,
    SMBTimeout,
    SMBTransfer,
    SMBUnavailable,
    SMBVerifyFailed,
)
from orchestrator.errors import HostError, HostUnreachable
from tests.harness.samba import ADMIN_SHARE, C_SHARE, DATA_SHARE, SambaHost, smbd_available

# Own fleet id and /24 per PLANTSWEEP_TEST_SLOT (10.206.N.0/24 is used only by these tests),
# so parallel sessions on one machine do not collide.
TEST_SLOT = int(os.environ.get("PLANTSWEEP_TEST_SLOT", "0") or 0)
SMB_NETWORK = f"10.206.{TEST_SLOT}.0/24"
SMB_FLEET_ID = f"smb{TEST_SLOT}"
MiB = 1024 * 1024


@pytest.fixture(scope="module")
def samba_host() -> Iterator[SambaHost]:
    if os.environ.get("PLANTSWEEP_NO_PLANT") == "1":
        pytest.skip("PLANTSWEEP_NO_PLANT=1: simulated plant disabled")
    if os.geteuid() != 0:
        pytest.fail("the Samba test host needs root (network namespaces)")
    if not smbd_available():
        pytest.fail("/usr/sbin/smbd or smbpasswd missing: install samba (scripts/setup.sh does)")
    with SambaHost(fleet_id=SMB_FLEET_ID, network=SMB_NETWORK, encrypt="desired") as host:
        yield host


@pytest.fixture
def win(samba_host: SambaHost) -> Iterator[SambaHost]:
    """The shared Samba host, put back to its default state after each test."""
    yield samba_host
    samba_host.unblock_port()
    samba_host.resume_smbd()
    if (samba_host.encrypt, samba_host.signing) != ("desired", "mandatory"):
        samba_host.reconfigure(encrypt="desired", signing="mandatory")
    samba_host.start_smbd()


@pytest.fixture
def connect(win: SambaHost) -> Iterator[Callable[..., SMBTransfer]]:
    opened: list[SMBTransfer] = []

    def make(**kw: Any) -> SMBTransfer:
        kw.setdefault("connect_timeout", 3.0)
        kw.setdefault("timeout", 10.0)
        t = SMBTransfer(
            win.address,
            kw.pop("username", win.user),
            kw.pop("password", win.password),
            host="win-host-01",
            **kw,
        )
        opened.append(t)
        t.open()
        return t

    yield make
    for t in opened:
        t.close()


def run_dir(t: SMBTransfer) -> tuple[str, str]:
    """A fresh ADMIN$\\Temp\\<run> (UNC) and its in-share relative path."""
    name = f"run-{uuid.uuid4().hex[:8]}"
    t.makedirs(t.unc("Temp", name))
    return t.unc("Temp", name), f"Temp/{name}"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(MiB):
            h.update(block)
    return h.hexdigest()


def wait_no_sessions(win: SambaHost, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while smbstatus(win) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert smbstatus(win) == []


def smbstatus(win: SambaHost) -> list[str]:
    """Session lines of smbstatus on the host: user, protocol, encryption, signing."""
    out = win.host.exec(["smbstatus", "-s", str(win.config), "-b"]).stdout.decode()
    return [line for line in out.splitlines() if win.address.rsplit(".", 1)[0] in line]


# -- transfers ------------------------------------------------------------------------


def test_put_get_small_file(win: SambaHost, connect: Callable[..., SMBTransfer], tmp_path: Path):
    data = b"plantsweep scanner bundle\n" * 100 + bytes(range(256))
    src = tmp_path / "small.bin"
    src.write_bytes(data)
    t = connect()
    remote, rel = run_dir(t)

    sha = t.put(src, remote + "\\small.bin")

    assert sha == hashlib.sha256(data).hexdigest()
    assert (win.share_dir(ADMIN_SHARE) / rel / "small.bin").read_bytes() == data
    assert t.last is not None and t.last.verified and t.last.size == len(data)
    back = tmp_path / "back" / "small.bin"
    back.parent.mkdir()
    assert t.get(remote + "\\small.bin", back) == sha
    assert back.read_bytes() == data
    assert os.listdir(back.parent) == ["small.bin"]  # no temp file left beside it

    empty = tmp_path / "empty.bin"
    empty.write_bytes(b"")
    assert t.put(empty, remote + "\\empty.bin") == hashlib.sha256(b"").hexdigest()
    assert (win.share_dir(ADMIN_SHARE) / rel / "empty.bin").stat().st_size == 0
    assert t.get(remote + "\\empty.bin", back) == hashlib.sha256(b"").hexdigest()
    assert back.read_bytes() == b""


def test_put_get_50mb_in_negotiated_chunks(
    win: SambaHost,
    connect: Callable[..., SMBTransfer],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
):
    src = tmp_path / "big.bin"
    src.write_bytes(os.urandom(50 * MiB))
    expected = sha256_file(src)
    t = connect()
    remote, rel = run_dir(t)
    # Spy on every SMB WRITE/READ request smbprotocol builds, independently of our counters.
    writes: list[int] = []
    reads: list[int] = []
    real_write, real_read = Open.write, Open.read

    def spy_write(self: Open, data: bytes, *a: Any, **kw: Any) -> Any:
        writes.append(len(data))
        return real_write(self, data, *a, **kw)

    def spy_read(self: Open, offset: int, length: int, *a: Any, **kw: Any) -> Any:
        reads.append(length)
        return real_read(self, offset, length, *a, **kw)

    monkeypatch.setattr(Open, "write", spy_write)
    monkeypatch.setattr(Open, "read", spy_read)

    sha = t.put(src, remote + "\\big.bin", verify=False)

    assert sha == expected
    assert sha256_file(win.share_dir(ADMIN_SHARE) / rel / "big.bin") == expected
    assert t.max_write_size > 64 * 1024  # Samba offers 8 MiB
    assert sum(writes) == 50 * MiB
    assert max(writes) == t.max_write_size
    assert all(n == t.max_write_size for n in writes[:-1]), writes
    assert t.last is not None and t.last.requests == len(writes)
    assert t.last.largest_request == t.max_write_size

    back = tmp_path / "back.bin"
    assert t.get(remote + "\\big.bin", back) == expected
    assert sha256_file(back) == expected
    assert max(reads) == t.max_read_size > 64 * 1024
    assert t.last.largest_request == t.max_read_size


def test_put_verify_reads_back_and_detects_a_mismatch(
    win: SambaHost,
    connect: Callable[..., SMBTransfer],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
):
    src = tmp_path / "f.bin"
    src.write_bytes(b"x" * 300_000)
    t = connect()
    remote, _ = run_dir(t)
    t.put(src, remote + "\\f.bin", verify=True)
    assert t.last is not None and t.last.verified and t.last.verify_seconds > 0
    # The host's copy changes between write and read-back: the check must notice.
    real_read = SMBTransfer._read

    def tampered(self: SMBTransfer, remote: str, sink: Any) -> Any:
        (
            win.share_dir(ADMIN_SHARE) / remote.split("ADMIN$\\", 1)[1].replace("\\", "/")
        ).write_bytes(b"tampered")
        return real_read(self, remote, sink)

    monkeypatch.setattr(SMBTransfer, "_read", tampered)
    with pytest.raises(SMBVerifyFailed, match="differs"):
        t.put(src, remote + "\\f.bin", verify=True)


def test_get_missing_file_leaves_local_file_untouched(
    connect: Callable[..., SMBTransfer], tmp_path: Path
):
    t = connect()
    remote, _ = run_dir(t)
    local = tmp_path / "result.json"
    local.write_text("old")
    with pytest.raises(SMBNotFound, match="no such file"):
        t.get(remote + "\\result.json", local)
    assert local.read_text() == "old"
    assert os.listdir(tmp_path) == ["result.json"]


def test_put_missing_local_file_creates_nothing(
    win: SambaHost, connect: Callable[..., SMBTransfer], tmp_path: Path
):
    t = connect()
    remote, rel = run_dir(t)
    with pytest.raises(SMBError, match="cannot read"):
        t.put(tmp_path / "absent.bin", remote + "\\absent.bin")
    assert os.listdir(win.share_dir(ADMIN_SHARE) / rel) == []


# -- signing and encryption -------------------------------------------------------------


def test_auto_uses_encryption_when_offered(win: SambaHost, connect: Callable[..., SMBTransfer]):
    t = connect(encrypt="auto")  # server: smb encrypt = desired
    assert t.encrypted and t.signed
    assert t.cipher is not None and t.cipher.startswith("AES-")
    assert t.describe().startswith("SMB 3.1.1, encrypted AES-")
    lines = smbstatus(win)
    assert len(lines) == 1 and t.cipher in lines[0], lines


def test_encryption_required_works_and_is_reported(
    win: SambaHost, connect: Callable[..., SMBTransfer], tmp_path: Path
):
    win.set_encrypt("required")
    t = connect(encrypt="required")
    assert t.encrypted and t.cipher is not None
    src = tmp_path / "a.bin"
    src.write_bytes(os.urandom(3 * MiB))
    remote, rel = run_dir(t)
    assert t.put(src, remote + "\\a.bin") == sha256_file(src)
    assert (win.share_dir(ADMIN_SHARE) / rel / "a.bin").read_bytes() == src.read_bytes()
    assert any(t.cipher in line for line in smbstatus(win))
    # "off" only means "do not ask": a server that requires encryption still gets it.
    t2 = connect(encrypt="off")
    assert t2.encrypted


def test_encryption_required_but_not_offered(win: SambaHost, connect: Callable[..., SMBTransfer]):
    win.set_encrypt("off")
    with pytest.raises(SMBSecurityUnavailable, match="encryption is required") as exc:
        connect(encrypt="required")
    assert exc.value.feature == "encryption"
    t = connect(encrypt="auto")  # falls back to signing only, and says so
    assert not t.encrypted and t.signed
    assert t.describe() == "SMB 3.1.1, signed"


def test_signing_is_required_by_us_and_checked_on_the_wire(
    win: SambaHost, connect: Callable[..., SMBTransfer]
):
    # A server that signs only when the client asks, and does not encrypt.
    win.reconfigure(encrypt="off", signing="auto")
    control = smbclient.register_session(
        win.address, win.user, win.password, connection_cache={}, require_signing=False
    )
    try:
        lines = smbstatus(win)
        assert len(lines) == 1 and lines[0].split()[-1] == "-", lines  # unsigned
    finally:
        control.connection.disconnect()
    wait_no_sessions(win)

    t = connect(encrypt="auto")
    assert t._conn().client_security_mode == SecurityMode.SMB2_NEGOTIATE_SIGNING_REQUIRED
    assert t.signed and not t.encrypted and t.describe() == "SMB 3.1.1, signed"
    lines = smbstatus(win)
    assert len(lines) == 1 and "GMAC" in lines[0].split()[-1], lines  # the server signs too
    t.listdir(t.unc("Temp"))
    # Sign with a wrong key: if messages were not really signed and checked, this would pass.
    t._session.signing_key = b"\0" * 16
    with pytest.raises(SMBError, match="failed its signature check"):
        t.listdir(t.unc("Temp"))
    assert not t.is_open


# -- classified errors ----------------------------------------------------------------


def test_wrong_password_is_a_logon_failure(win: SambaHost, connect: Callable[..., SMBTransfer]):
    secret = "Not-The-Password-42"
    with pytest.raises(SMBLogonFailure) as exc:
        connect(password=secret)
    err = exc.value
    assert isinstance(err, HostUnreachable) and isinstance(err, HostError)
    assert str(err) == (
        f"win-host-01: SMB logon as '{win.user}' at {win.address}:445 failed: "
        "wrong user name or password"
    )
    t = SMBTransfer(win.address, win.user, secret, host="h")
    assert secret not in repr(t) and secret not in str(vars(t).get("_kwargs", ""))


def test_unknown_share_is_share_not_found(win: SambaHost, connect: Callable[..., SMBTransfer]):
    with pytest.raises(SMBShareNotFound, match=r"\\NOSUCH: .* has no such share"):
        connect(share="NOSUCH")
    t = connect()
    with pytest.raises(SMBShareNotFound):
        t.exists(f"\\\\{win.address}\\NOSUCH2\\x")


def test_admin_share_access_denied_names_the_uac_restriction(
    win: SambaHost, connect: Callable[..., SMBTransfer]
):
    with pytest.raises(SMBAccessDenied, match="access denied for 'operator'") as exc:
        connect(username=win.other_user, password=win.other_password)
    assert "LocalAccountTokenFilterPolicy" in str(exc.value) and UAC_HINT in str(exc.value)
    # Same user, ordinary share: allowed (so the error really was about the admin share).
    t = connect(username=win.other_user, password=win.other_password, share=DATA_SHARE)
    assert isinstance(t.listdir(t.unc()), list)


def test_port_closed_is_unavailable_at_once(win: SambaHost, connect: Callable[..., SMBTransfer]):
    win.stop_smbd()
    start = time.monotonic()
    with pytest.raises(SMBUnavailable, match="connection refused") as exc:
        connect(connect_timeout=3.0)
    assert exc.value.reason == "refused"
    assert time.monotonic() - start < 1.0


def test_port_filtered_is_unavailable_within_connect_timeout(
    win: SambaHost, connect: Callable[..., SMBTransfer]
):
    win.block_port()
    start = time.monotonic()
    with pytest.raises(SMBUnavailable, match=r"no answer within 1.5s") as exc:
        connect(connect_timeout=1.5)
    elapsed = time.monotonic() - start
    assert exc.value.reason == "timeout"
    assert 1.4 < elapsed < 2.5
    with socket.create_connection((win.address, 22), timeout=2):  # only 445 is dropped
        pass


def test_hung_server_times_out_at_logon_and_mid_operation(
    win: SambaHost, connect: Callable[..., SMBTransfer]
):
    win.pause_smbd()  # TCP is accepted, nothing answers
    start = time.monotonic()
    with pytest.raises(SMBTimeout):
        connect(connect_timeout=1.5)
    assert time.monotonic() - start < 2.5
    win.resume_smbd()

    t = connect(timeout=1.5)
    win.pause_smbd()
    start = time.monotonic()
    with pytest.raises(SMBTimeout, match="did not answer within 1.5s"):
        t.listdir(t.unc("Temp"))
    assert 1.4 < time.monotonic() - start < 2.5
    assert not t.is_open


# -- paths and cleanup -----------------------------------------------------------------


def test_paths_escaping_the_share_are_refused(
    win: SambaHost, connect: Callable[..., SMBTransfer], tmp_path: Path
):
    src = tmp_path / "x.txt"
    src.write_text("x")
    t = connect()
    a = win.address
    for bad in (
        f"\\\\{a}\\ADMIN$\\..\\C$\\escape.txt",
        f"\\\\{a}\\ADMIN$\\Temp\\..\\..\\escape.txt",
        f"//{a}/ADMIN$/Temp/../../escape.txt",
        "\\\\other-host\\ADMIN$\\Temp\\x.txt",
        "ADMIN$\\Temp\\x.txt",
        f"\\\\{a}\\ADMIN$\\Temp\\x.txt:stream",
    ):
        with pytest.raises(SMBPathRefused):
            t.put(src, bad)
    with pytest.raises(SMBPathRefused, match="whole share"):
        t.rmtree(t.unc())
    assert not (win.share_dir(C_SHARE) / "escape.txt").exists()
    assert not (win.share_dir(ADMIN_SHARE).parent.parent / "escape.txt").exists()


def test_remove_and_rmtree_leave_nothing_behind(
    win: SambaHost, connect: Callable[..., SMBTransfer], tmp_path: Path
):
    src = tmp_path / "p.bin"
    src.write_bytes(os.urandom(200_000))
    t = connect()
    remote, rel = run_dir(t)
    on_host = win.share_dir(ADMIN_SHARE) / rel
    t.makedirs(remote + "\\rules\\yara")
    for name in ("a.bin", "rules\\b.bin", "rules\\yara\\c.bin"):
        t.put(src, f"{remote}\\{name}", verify=False)
    assert t.listdir(remote) == ["a.bin", "rules"]
    assert (on_host / "rules" / "yara" / "c.bin").read_bytes() == src.read_bytes()

    t.remove(remote + "\\a.bin")
    assert not (on_host / "a.bin").exists() and not t.exists(remote + "\\a.bin")
    with pytest.raises(SMBNotFound):
        t.remove(remote + "\\a.bin")
    t.remove(remote + "\\a.bin", missing_ok=True)

    t.rmtree(remote)
    assert not on_host.exists()
    assert not t.exists(remote)
    t.rmtree(remote)  # already gone: fine
    assert rel.split("/")[1] not in os.listdir(win.share_dir(ADMIN_SHARE) / "Temp")


# -- sessions -----------------------------------------------------------------------


def test_parallel_transfers_are_served_by_separate_smbd_processes(
    win: SambaHost, connect: Callable[..., SMBTransfer]
):
    # With one shared client GUID, Samba hands the second connection to the first one's
    # smbd (multichannel connection passing); a connect racing that process's exit hung.
    connect()
    connect(username=win.other_user, password=win.other_password, share=DATA_SHARE)
    pids = {line.split()[0] for line in smbstatus(win)}
    assert len(smbstatus(win)) == 2
    assert len(pids) == 2, smbstatus(win)


def test_parallel_transfers_use_private_caches_and_close_logs_off(win: SambaHost, tmp_path: Path):
    src = tmp_path / "s.bin"
    src.write_bytes(os.urandom(2 * MiB))
    errors: list[BaseException] = []
    transfers: list[SMBTransfer] = []

    def one(user: str, password: str, share: str) -> None:
        try:
            t = SMBTransfer(win.address, user, password, host="win-host-01", share=share)
            transfers.append(t)
            with t:
                name = f"par-{user}-{uuid.uuid4().hex[:6]}.bin"
                sha = t.put(src, t.unc(name) if share == DATA_SHARE else t.unc("Temp", name))
                assert sha == sha256_file(src)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the main thread
            errors.append(exc)

    threads = [
        threading.Thread(target=one, args=(win.user, win.password, ADMIN_SHARE)),
        threading.Thread(target=one, args=(win.other_user, win.other_password, DATA_SHARE)),
        threading.Thread(target=one, args=(win.user, win.password, DATA_SHARE)),
    ]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    assert not any(th.is_alive() for th in threads)
    assert not errors, errors
    assert smbclient._pool._SMB_CONNECTIONS == {}  # the process-global cache stayed unused
    assert all(not t.is_open for t in transfers)
    wait_no_sessions(win)  # every session was logged off and disconnected
