"""tests/winrm_server: the WS-Management test server driven by the real pywinrm client.

Every test talks to WinRMServer over loopback with winrm.protocol.Protocol (pywinrm 0.5.0),
so the SOAP messages, NTLM handshake, MS-WSMV message sealing, TLS and faults are the ones a
Windows host would see and send. Not like Windows (see tests/winrm_server/__init__.py): no
Kerberos/CredSSP/certificate auth, no shell idle or memory quotas, /bin/sh instead of cmd.exe.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
import xmltodict
from winrm.exceptions import (
    InvalidCredentialsError,
    WinRMOperationTimeoutError,
    WinRMTransportError,
    WSManFaultError,
)
from winrm.protocol import Protocol

from tests.harness.proc import alive
from tests.winrm_server import (
    DEFAULT_PASSWORD,
    DEFAULT_USER,
    QUOTA_MAX_OPERATIONS,
    QUOTA_MAX_SHELLS,
    TIMED_OUT,
    UNEXPECTED_SELECTORS,
    CertAuthority,
    ServerCert,
    WinRMServer,
    make_test_ca,
)

ROOT = Path(__file__).resolve().parents[1]
USER = "PLANT\\scanner"
PASSWORD = "Sc4nner-pw"
SHELL_NS = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell"


@pytest.fixture
def make_server() -> Iterator[Callable[..., WinRMServer]]:
    started: list[WinRMServer] = []

    def make(**kwargs: object) -> WinRMServer:
        kwargs.setdefault("users", {USER: PASSWORD, "other": "0ther-pw"})
        server = WinRMServer("127.0.0.1", 0, **kwargs).start()  # type: ignore[arg-type]
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    base = tmp_path_factory.mktemp("winrm-pki")
    ca = make_test_ca(base / "ca")
    other_ca = make_test_ca(base / "other-ca", name="some other CA")
    return {
        "ca": ca,
        "loopback": ca.issue("127.0.0.1", base),
        "other_name": ca.issue("winrm.plant.invalid", base),
        "untrusted": other_ca.issue("127.0.0.1", base / "other"),
    }


def client(server: WinRMServer, **kwargs: object) -> Protocol:
    kwargs.setdefault("transport", "ntlm")
    kwargs.setdefault("username", USER)
    kwargs.setdefault("password", PASSWORD)
    kwargs.setdefault("operation_timeout_sec", 2)
    kwargs.setdefault("read_timeout_sec", 6)
    kwargs.setdefault("proxy", None)  # never an environment proxy for loopback
    kwargs.setdefault("ca_trust_path", None)  # nor REQUESTS_CA_BUNDLE
    return Protocol(server.endpoint, **kwargs)  # type: ignore[arg-type]


def wait_gone(pid: int, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive(pid):
            return True
        time.sleep(0.05)
    return False


def first_line(p: Protocol, shell_id: str, command_id: str) -> str:
    """Poll until the command printed one line (e.g. its pid)."""
    out = b""
    deadline = time.monotonic() + 10
    while b"\n" not in out and time.monotonic() < deadline:
        with contextlib.suppress(WinRMOperationTimeoutError):
            out += p.get_command_output_raw(shell_id, command_id)[0]
    return out.split(b"\n", 1)[0].decode()


# -- shells and commands --------------------------------------------------------------------


def test_script_sent_through_stdin_runs_in_the_shells_directory_and_environment(
    make_server, tmp_path
):
    server = make_server()
    p = client(server)
    shell_id = p.open_shell(working_directory=str(tmp_path), env_vars={"PLANT_VAR": "v 1"})
    assert re.fullmatch(r"[0-9A-F]{8}(-[0-9A-F]{4}){3}-[0-9A-F]{12}", shell_id)
    command_id = p.run_command(shell_id, "/bin/sh")  # the script goes in on stdin
    script = b'pwd; echo "$PLANT_VAR"; echo oops >&2; exit 3\n'
    p.send_command_input(shell_id, command_id, script, end=True)
    out, err, code = p.get_command_output(shell_id, command_id)
    p.cleanup_command(shell_id, command_id)
    p.close_shell(shell_id)
    assert (out, err, code) == (f"{tmp_path}\nv 1\n".encode(), b"oops\n", 3)


def test_stdin_chunks_reach_the_command_and_stderr_and_exit_code_come_back(make_server):
    server = make_server()
    p = client(server)
    shell_id = p.open_shell()
    command_id = p.run_command(shell_id, "/bin/sh", ["-c", "'cat; echo err >&2; exit 3'"])
    p.send_command_input(shell_id, command_id, b"first\n", end=False)
    p.send_command_input(shell_id, command_id, b"\x00second\xff", end=True)
    out, err, code = p.get_command_output(shell_id, command_id)
    p.close_shell(shell_id)
    assert out == b"first\n\x00second\xff"
    assert err == b"err\n"
    assert code == 3


def test_one_shell_serves_several_commands_and_the_counters_show_it(make_server):
    server = make_server()
    p = client(server)
    shell_id = p.open_shell()
    outputs = []
    for word in ("a", "b", "c"):
        command_id = p.run_command(shell_id, "echo", [word])
        outputs.append(p.get_command_output(shell_id, command_id)[0])
        p.cleanup_command(shell_id, command_id)
    assert server.open_shells == 1
    p.close_shell(shell_id)
    assert outputs == [b"a\n", b"b\n", b"c\n"]
    counts = server.action_counts
    assert counts["Create"] == 1 and counts["Command"] == 3 and counts["Signal"] == 3
    assert counts["Delete"] == 1 and server.open_shells == 0


def test_a_long_command_takes_several_receive_long_polls(make_server):
    server = make_server()
    p = client(server, operation_timeout_sec=1, read_timeout_sec=4)
    shell_id = p.open_shell()
    command_id = p.run_command(shell_id, "sleep 2.5; echo finished")
    started = time.monotonic()
    with pytest.raises(WinRMOperationTimeoutError):  # Windows' w:TimedOut fault, code 2150858793
        p.get_command_output_raw(shell_id, command_id)
    assert time.monotonic() - started >= 0.9  # it waited OperationTimeout (PT1S)
    out, err, code = p.get_command_output(shell_id, command_id)  # pywinrm retries time-outs
    p.close_shell(shell_id)
    assert (out, err, code) == (b"finished\n", b"", 0)
    assert server.fault_counts[TIMED_OUT] >= 2
    assert server.action_counts["Receive"] >= 3


def test_receive_splits_big_output_to_fit_the_clients_max_envelope_size(make_server):
    server = make_server()
    p = client(server)
    shell_id = p.open_shell()
    command_id = p.run_command(shell_id, "head -c 400000 /dev/zero")
    out, _, code = p.get_command_output(shell_id, command_id)
    p.close_shell(shell_id)
    assert (len(out), code) == (400000, 0)
    # pywinrm announces MaxEnvelopeSize 153600: about 113 KB of output per ReceiveResponse.
    assert server.action_counts["Receive"] >= 4


def test_signal_terminate_kills_a_running_command(make_server):
    server = make_server()
    p = client(server)
    shell_id = p.open_shell()
    command_id = p.run_command(shell_id, "echo $$; exec sleep 60")
    pid = int(first_line(p, shell_id, command_id))
    assert alive(pid)
    p.cleanup_command(shell_id, command_id)  # Signal .../signal/terminate
    assert wait_gone(pid)
    with pytest.raises(WSManFaultError) as fault:  # the command's state is gone too
        p.get_command_output_raw(shell_id, command_id)
    assert fault.value.wsman_fault_code == 87
    p.close_shell(shell_id)


def test_signal_ctrl_c_interrupts_the_command(make_server):
    server = make_server()
    p = client(server)
    shell_id = p.open_shell()
    command_id = p.run_command(shell_id, "echo ready; exec sleep 60")
    assert first_line(p, shell_id, command_id) == "ready"
    # pywinrm has no call for ctrl_c: build the Signal as it builds its terminate one.
    req = {
        "env:Envelope": p.build_wsman_header(
            resource_uri=f"{SHELL_NS}/cmd", action=f"{SHELL_NS}/Signal", shell_id=shell_id
        )
    }
    signal = req["env:Envelope"].setdefault("env:Body", {}).setdefault("rsp:Signal", {})
    signal["@CommandId"] = command_id
    signal["rsp:Code"] = f"{SHELL_NS}/signal/ctrl_c"
    started = time.monotonic()
    p.send_message(xmltodict.unparse(req))
    _, _, code = p.get_command_output(shell_id, command_id)
    p.close_shell(shell_id)
    assert code == 130  # 128 + SIGINT
    assert time.monotonic() - started < 5


def test_close_shell_kills_the_commands_whole_process_tree(make_server):
    server = make_server()
    p = client(server)
    shell_id = p.open_shell()
    command_id = p.run_command(shell_id, "sleep 60 & echo $!; wait")
    child = int(first_line(p, shell_id, command_id))
    [parent] = server.process_ids()
    assert alive(child) and alive(parent)
    p.close_shell(shell_id)  # Windows closes the shell's job object: everything in it dies
    assert wait_gone(child) and wait_gone(parent)
    assert server.open_shells == 0


def test_unknown_shell_id_gets_the_invalid_selectors_fault(make_server):
    server = make_server()
    p = client(server)
    with pytest.raises(WSManFaultError) as fault:
        p.run_command("0A7F2C55-0000-4000-8000-000000000000", "echo")
    assert fault.value.wsman_fault_code == UNEXPECTED_SELECTORS
    assert fault.value.fault_subcode == "w:InvalidSelectors"
    assert "shell was not found on the server" in fault.value.response


def test_stop_kills_running_commands_and_closes_the_listener(make_server):
    server = make_server()
    p = client(server)
    shell_id = p.open_shell()
    command_id = p.run_command(shell_id, "echo $$; exec sleep 60")
    pid = int(first_line(p, shell_id, command_id))
    server.stop()
    assert wait_gone(pid)
    with pytest.raises(requests.exceptions.ConnectionError):
        client(server).open_shell()


# -- authentication and encryption ----------------------------------------------------------


def test_ntlm_over_http_seals_every_message(make_server):
    server = make_server(auth=("ntlm",))
    p = client(server, message_encryption="auto")
    shell_id = p.open_shell()
    command_id = p.run_command(shell_id, "echo", ["sealed"])
    out = p.get_command_output(shell_id, command_id)[0]
    p.close_shell(shell_id)
    assert out == b"sealed\n"
    assert server.sealed_requests == sum(server.action_counts.values()) > 0


def test_unencrypted_ntlm_over_http_is_refused_unless_allowed(make_server):
    strict = make_server(auth=("ntlm",))
    with pytest.raises(InvalidCredentialsError):
        client(strict, message_encryption="never").open_shell()
    assert strict.action_counts == {}
    lax = make_server(auth=("ntlm",), allow_unencrypted=True)
    p = client(lax, message_encryption="never")
    p.close_shell(p.open_shell())
    assert lax.sealed_requests == 0 and lax.action_counts["Create"] == 1


def test_basic_over_plain_http_is_refused_unless_allowed(make_server):
    strict = make_server()
    with pytest.raises(InvalidCredentialsError):
        client(strict, transport="basic").open_shell()
    lax = make_server(allow_unencrypted=True)
    p = client(lax, transport="basic")
    p.close_shell(p.open_shell())
    assert lax.action_counts["Delete"] == 1


@pytest.mark.parametrize("transport", ["basic", "ntlm"])
def test_https_with_the_server_certificate_validated_against_the_test_ca(
    make_server, pki, transport
):
    cert: ServerCert = pki["loopback"]  # type: ignore[assignment]
    ca: CertAuthority = pki["ca"]  # type: ignore[assignment]
    server = make_server(certfile=cert.cert_path, keyfile=cert.key_path)
    assert server.endpoint.startswith("https://127.0.0.1:")
    p = client(
        server,
        transport=transport,
        server_cert_validation="validate",
        ca_trust_path=str(ca.cert_path),
    )
    shell_id = p.open_shell()
    command_id = p.run_command(shell_id, "echo", ["tls"])
    out = p.get_command_output(shell_id, command_id)[0]
    p.close_shell(shell_id)
    assert out == b"tls\n"
    assert server.sealed_requests == 0  # TLS protects it: no message-level sealing


@pytest.mark.parametrize("which", ["other_name", "untrusted"])
def test_https_certificate_for_another_name_or_ca_is_rejected(make_server, pki, which):
    cert: ServerCert = pki[which]  # type: ignore[assignment]
    ca: CertAuthority = pki["ca"]  # type: ignore[assignment]
    server = make_server(certfile=cert.cert_path, keyfile=cert.key_path)
    p = client(
        server,
        transport="basic",
        server_cert_validation="validate",
        ca_trust_path=str(ca.cert_path),
    )
    with pytest.raises(requests.exceptions.SSLError) as err:
        p.open_shell()
    expected = "match" if which == "other_name" else "certificate verify failed"
    assert expected in str(err.value)
    assert server.action_counts == {}


@pytest.mark.parametrize("transport", ["ntlm", "basic"])
def test_wrong_password_raises_invalid_credentials(make_server, pki, transport):
    cert: ServerCert = pki["loopback"]  # type: ignore[assignment]
    ca: CertAuthority = pki["ca"]  # type: ignore[assignment]
    tls = transport == "basic"  # Basic only over HTTPS, NTLM over plain HTTP
    server = make_server(**({"certfile": cert.cert_path, "keyfile": cert.key_path} if tls else {}))
    extra = {"ca_trust_path": str(ca.cert_path)} if tls else {}
    with pytest.raises(InvalidCredentialsError):
        client(server, transport=transport, password="not-the-password", **extra).open_shell()
    assert server.action_counts == {}
    p = client(server, transport=transport, **extra)  # the right one still works
    p.close_shell(p.open_shell())


# -- quotas and limits ----------------------------------------------------------------------


def test_max_shells_per_user_quota(make_server):
    server = make_server(max_shells_per_user=2)
    p = client(server)
    first, _second = p.open_shell(), p.open_shell()
    with pytest.raises(WSManFaultError) as fault:
        p.open_shell()
    assert fault.value.wsman_fault_code == QUOTA_MAX_SHELLS
    assert fault.value.fault_subcode == "w:QuotaLimit"
    assert "maximum number of 2 concurrent shells" in fault.value.response
    other = client(server, username="other", password="0ther-pw")
    other.close_shell(other.open_shell())  # the quota is per user
    p.close_shell(first, close_session=False)
    p.close_shell(p.open_shell())  # a closed shell frees its place


def test_max_processes_per_shell_quota(make_server):
    server = make_server(max_processes_per_shell=1)
    p = client(server)
    shell_id = p.open_shell()
    busy = p.run_command(shell_id, "sleep 60")
    with pytest.raises(WSManFaultError) as fault:
        p.run_command(shell_id, "echo", ["no room"])
    assert fault.value.wsman_fault_code == 1816  # ERROR_NOT_ENOUGH_QUOTA from the shell plugin
    p.cleanup_command(shell_id, busy)
    command_id = p.run_command(shell_id, "echo", ["room"])
    assert p.get_command_output(shell_id, command_id)[0] == b"room\n"
    p.close_shell(shell_id)


def test_operations_quota_is_only_given_back_when_the_shell_closes(make_server):
    server = make_server(max_operations_per_user=2)
    p = client(server)
    shell_id = p.open_shell()
    for _ in range(2):
        command_id = p.run_command(shell_id, "true")
        p.get_command_output(shell_id, command_id)
        p.cleanup_command(shell_id, command_id)  # Terminate: not decremented (MS-WSMV <118>)
    with pytest.raises(WSManFaultError) as fault:
        p.run_command(shell_id, "true")
    assert fault.value.wmierror_code == QUOTA_MAX_OPERATIONS
    p.close_shell(shell_id, close_session=False)
    shell_id = p.open_shell()  # what Ansible's winrm plugin does on 0x803381A6
    command_id = p.run_command(shell_id, "true")
    assert p.get_command_output(shell_id, command_id)[2] == 0
    p.close_shell(shell_id)


def test_request_bigger_than_max_envelope_size_gets_http_413(make_server, pki):
    # Over HTTPS like the field reports (ansible.windows#391, #620). Over sealed HTTP the
    # skipped message would also put the NTLM sealing sequence out of step.
    cert: ServerCert = pki["loopback"]  # type: ignore[assignment]
    ca: CertAuthority = pki["ca"]  # type: ignore[assignment]
    server = make_server(max_envelope_size_kb=64, certfile=cert.cert_path, keyfile=cert.key_path)
    p = client(server, transport="basic", ca_trust_path=str(ca.cert_path))
    shell_id = p.open_shell()
    command_id = p.run_command(shell_id, "cat")
    with pytest.raises(WinRMTransportError) as err:
        p.send_command_input(shell_id, command_id, b"x" * 100_000, end=True)
    assert err.value.code == 413
    assert server.action_counts.get("Send", 0) == 0  # never processed
    p.send_command_input(shell_id, command_id, b"small", end=True)  # connection still usable
    assert p.get_command_output(shell_id, command_id)[0] == b"small"
    p.close_shell(shell_id)


# -- test switches ---------------------------------------------------------------------------


def test_fail_mid_command_drops_the_connection(make_server):
    server = make_server()
    p = client(server)
    shell_id = p.open_shell()
    command_id = p.run_command(shell_id, "sleep 30")
    server.fail_mid_command = True
    with pytest.raises(requests.exceptions.ConnectionError):
        p.get_command_output(shell_id, command_id)
    assert server.dropped_connections >= 1
    server.fail_mid_command = False


def test_runs_as_a_module_and_prints_its_endpoint():
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.winrm_server", "--port", "0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.search(r"listening on (http://127\.0\.0\.1:\d+/wsman)", line)
        assert match, line
        p = Protocol(
            match.group(1),
            transport="ntlm",
            username=DEFAULT_USER,
            password=DEFAULT_PASSWORD,
            operation_timeout_sec=2,
            read_timeout_sec=6,
            proxy=None,
            ca_trust_path=None,
        )
        p.close_shell(p.open_shell())
    finally:
        proc.terminate()
        code = proc.wait(timeout=10)
    assert code == 0
