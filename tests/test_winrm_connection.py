"""orchestrator/connections/winrm.py against the WS-Management test server (tests/winrm_server),
with the real pywinrm client underneath: one shell per session, stdin, timeouts, Ctrl-C,
transfers through the shell with their SHA-256 check, and a clear error for each failure.

The test server runs commands with /bin/sh, so these hosts use ansible_shell_type: sh.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
import time
from pathlib import Path

import pytest

from orchestrator.connections import Timeouts, make_connection
from orchestrator.connections.target import SSHOptions
from orchestrator.connections.winrm import WinRMConnection
from orchestrator.errors import HostUnreachable, StepFailed
from orchestrator.targets import target_for
from tests.winrm_server import WinRMServer, make_test_ca

USER, PASSWORD = "PLANT\\scanner", "Plant-Sweep-1"


def connect(server: WinRMServer, **hostvars) -> WinRMConnection:
    hostvars = {
        "ansible_connection": "winrm",
        "ansible_host": "127.0.0.1",
        "ansible_port": server.port,
        "ansible_user": USER,
        "ansible_password": PASSWORD,
        "ansible_shell_type": "sh",
        "ansible_winrm_operation_timeout_sec": 1,
        "ansible_winrm_read_timeout_sec": 5,
        "plantsweep_smb": False,
        **hostvars,
    }
    if not server.tls:
        hostvars.setdefault("ansible_winrm_scheme", "http")
    target = target_for("win-test", hostvars)
    conn = make_connection(target, SSHOptions(), Timeouts(connect=5))
    assert isinstance(conn, WinRMConnection)
    return conn


@pytest.fixture
def server():
    with WinRMServer(users={USER: PASSWORD}) as srv:
        yield srv


def test_one_shell_for_many_commands_with_stdin_and_exit_codes(server):
    with connect(server) as conn:
        first = conn.run("echo out; echo err >&2; exit 3", timeout=10)
        assert (first.rc, first.stdout, first.stderr) == (3, b"out\n", b"err\n")
        script = b"x" * 300_000  # far beyond cmd.exe's 8,191-character command line
        echoed = conn.run("wc -c", timeout=10, stdin=script)
        assert echoed.ok and echoed.stdout.strip() == b"300000"
        for _ in range(3):
            assert conn.run("true", timeout=10).ok
    counts = server.action_counts
    assert counts["Create"] == 1 and counts["Delete"] == 1  # one shell, closed at the end
    assert counts["Command"] == 5 and server.sealed_requests > 0  # NTLM-encrypted over HTTP
    assert conn.transfer == "winrm" and "plantsweep_smb: false" in (conn.transfer_note or "")


def test_a_command_that_outlives_its_timeout_is_stopped(server):
    with connect(server) as conn:
        started = time.monotonic()
        with pytest.raises(StepFailed, match="timed out after 2s"):
            conn.run("sleep 30", timeout=2)
        assert time.monotonic() - started < 6
        deadline = time.monotonic() + 5
        while server.process_ids() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert server.process_ids() == []  # the terminate Signal ended it
        assert conn.run("echo still usable", timeout=10).stdout == b"still usable\n"


def test_ctrl_c_cancels_a_running_command(server):
    cancel = threading.Event()
    threading.Timer(1.0, cancel.set).start()
    with connect(server) as conn, pytest.raises(StepFailed, match="cancelled"):
        conn.run("sleep 30", timeout=60, cancel=cancel)


def test_files_through_the_shell_are_hash_checked_both_ways(server, tmp_path):
    data = os.urandom(3 * 1024 * 1024 + 17)
    local = tmp_path / "kit.zip"
    local.write_bytes(data)
    remote = str(tmp_path / "remote" / "kit.zip")
    (tmp_path / "remote").mkdir()
    with connect(server) as conn:
        conn.put(local, remote, timeout=60)
        assert Path(remote).read_bytes() == data
        back = tmp_path / "back" / "kit.zip"
        conn.get(remote, back, timeout=60)
        assert back.read_bytes() == data
        # A file that already exists is never written through (noclobber on the host).
        with pytest.raises(StepFailed, match="copy of kit.zip to .* failed"):
            conn.put(local, remote, timeout=60)
    # 100,000-byte pieces: one Send per piece, plus the final empty one.
    assert server.action_counts["Send"] >= len(data) // 100_000 + 1


def test_a_host_side_hash_mismatch_is_an_error(server, tmp_path, monkeypatch):
    local = tmp_path / "f"
    local.write_bytes(b"payload")
    with connect(server) as conn:
        # The host "receives" other bytes than were sent: the SHA-256 check must catch it.
        monkeypatch.setattr(conn.files, "receive", lambda path: f"printf other > '{path}'")
        with pytest.raises(StepFailed, match="SHA-256 on the host differs"):
            conn.put(local, str(tmp_path / "r"), timeout=30)


def test_wrong_password_is_a_clear_authentication_error(server):
    conn = connect(server, ansible_password="wrong")
    with pytest.raises(HostUnreachable, match="WinRM authentication failed: wrong user"):
        conn.open()


def test_nothing_listening_says_so():
    with WinRMServer(users={USER: PASSWORD}) as srv:
        conn = connect(srv)
    with pytest.raises(HostUnreachable, match="cannot reach WinRM at http://127.0.0.1:.*enabled"):
        conn.open()


def test_https_with_the_right_ca_works_and_a_wrong_name_is_refused(tmp_path):
    ca = make_test_ca(tmp_path / "ca")
    good = ca.issue("127.0.0.1", tmp_path / "good")
    with WinRMServer(users={USER: PASSWORD}, certfile=good.cert_path, keyfile=good.key_path) as srv:
        with connect(srv, ansible_winrm_ca_trust_path=str(ca.cert_path)) as conn:
            assert conn.run("echo tls", timeout=10).stdout == b"tls\n"
        # Without our CA the certificate is not trusted.
        with pytest.raises(HostUnreachable, match="TLS certificate check of https://"):
            connect(srv).open()
    other = ca.issue("hmi-99.plant.example", tmp_path / "other")
    with (
        WinRMServer(
            users={USER: PASSWORD}, certfile=other.cert_path, keyfile=other.key_path
        ) as srv,
        pytest.raises(HostUnreachable, match="certificate must name the host"),
    ):
        connect(srv, ansible_winrm_ca_trust_path=str(ca.cert_path)).open()


def test_a_server_that_goes_away_mid_command_is_a_step_error(server):
    with connect(server) as conn:
        threading.Timer(1.0, lambda: setattr(server, "fail_mid_command", True)).start()
        with pytest.raises(StepFailed, match="cannot reach WinRM|stopped answering"):
            conn.run("sleep 20", timeout=30)


def test_too_many_shells_names_the_quota():
    with (
        WinRMServer(users={USER: PASSWORD}, max_shells_per_user=1) as srv,
        connect(srv),
        pytest.raises(HostUnreachable, match="MaxShellsPerUser"),
    ):
        connect(srv).open()


def test_put_digest_matches_local_file(server, tmp_path):
    local = tmp_path / "scanner.pyz"
    local.write_bytes(b"abc" * 1000)
    with connect(server) as conn:
        conn.put(local, str(tmp_path / "copy"), timeout=30)
        result = conn.run(f"sha256sum {tmp_path / 'copy'}", timeout=10)
    assert result.stdout.split()[0].decode() == hashlib.sha256(local.read_bytes()).hexdigest()


def _tls_peer(tmp_path: Path, behaviour: str) -> tuple[int, threading.Thread]:
    """A loopback peer for one HTTPS request: "untrusted" completes the handshake with a
    certificate of another CA; "hangs-up" accepts the TCP connection and closes it at once, as
    a WinRM service going away mid-session does."""
    import socket
    import ssl

    from tests.siem_servers.certs import make_pki

    pki = make_pki(tmp_path / "pki", "not the host's CA")
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            if behaviour == "untrusted":
                context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
                context.load_cert_chain(pki.cert, pki.key)
                with contextlib.suppress(OSError):
                    context.wrap_socket(conn, server_side=True).close()
        listener.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return listener.getsockname()[1], thread


@pytest.mark.parametrize(("behaviour", "rejected"), [("untrusted", True), ("hangs-up", False)])
def test_only_a_rejected_certificate_is_called_a_certificate_problem(tmp_path, behaviour, rejected):
    import requests

    from orchestrator.connections.winrm import certificate_rejected

    port, thread = _tls_peer(tmp_path, behaviour)
    with pytest.raises(requests.exceptions.ConnectionError) as caught:
        requests.get(f"https://127.0.0.1:{port}/wsman", timeout=5)
    thread.join(5)
    assert certificate_rejected(caught.value) is rejected
