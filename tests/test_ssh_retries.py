"""Connect retries: a handshake cut short is retried with backoff; a silent host is not.

Real TCP servers on loopback stand in for a misbehaving sshd (one that drops connections, as
sshd does under a connection burst beyond MaxStartups, and one that never sends a banner)."""

from __future__ import annotations

import socket
import threading

import paramiko
import pytest

from orchestrator.connections import SSHConnection, SSHOptions, Target, Timeouts
from orchestrator.connections.ssh import CONNECT_RETRIES, is_transient
from orchestrator.errors import HostUnreachable


class Listener:
    """Accepts connections on 127.0.0.1 and either closes them at once or holds them open."""

    def __init__(self, close: bool):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self.held: list[socket.socket] = []
        self.close = close
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            if self.close:
                conn.close()
            else:
                self.held.append(conn)

    def stop(self) -> None:
        self.sock.close()
        for conn in self.held:
            conn.close()


def _connect(port: int) -> SSHConnection:
    target = Target(name="flaky", address="127.0.0.1", port=port, user="root")
    return SSHConnection(target, SSHOptions(banner_timeout=1), Timeouts(connect=1))


def test_a_dropped_handshake_is_retried_then_reported():
    server = Listener(close=True)
    try:
        with pytest.raises(HostUnreachable, match=f"after {CONNECT_RETRIES + 1} attempts"):
            _connect(server.port).open()
        assert server.accepted == CONNECT_RETRIES + 1
    finally:
        server.stop()


def test_a_silent_host_is_not_retried():
    server = Listener(close=False)
    try:
        with pytest.raises(HostUnreachable, match="no SSH banner"):
            _connect(server.port).open()
        assert server.accepted == 1
    finally:
        server.stop()


def _raised(message: str, cause: BaseException | None) -> Exception:
    try:
        try:
            if cause is not None:
                raise cause
            raise RuntimeError("no cause")
        except BaseException:
            raise paramiko.SSHException(message)  # noqa: B904 (paramiko's own way)
    except paramiko.SSHException as exc:
        return exc


def test_transient_classification():
    assert is_transient(_raised("Error reading SSH protocol banner", EOFError()))
    assert is_transient(_raised("Error reading SSH protocol banner", ConnectionResetError()))
    assert not is_transient(_raised("Error reading SSH protocol banner", TimeoutError()))
    assert not is_transient(_raised("Authentication failed.", None))
