"""WinRM inventory variables (Ansible's names), remote file commands and SMB path mapping."""

from __future__ import annotations

import base64
import hashlib
import subprocess

import pytest

from orchestrator.connections import Timeouts, remote_files
from orchestrator.connections.winrm import WinRMConnection
from orchestrator.errors import InventoryError
from orchestrator.targets import target_for


def winrm_target(**hostvars):
    return target_for(
        "hmi-01", {"ansible_connection": "winrm", "ansible_host": "10.0.0.5", **hostvars}
    )


def test_safe_defaults():
    target = winrm_target()
    s = target.winrm
    assert s is not None
    assert (s.scheme, s.port, s.transport, s.server_cert_validation) == (
        "https",
        5986,
        "ntlm",
        "validate",
    )
    assert s.endpoint("10.0.0.5") == "https://10.0.0.5:5986/wsman"
    assert (s.smb, s.smb_share, s.smb_encrypt, s.shell_type) == (True, "ADMIN$", "auto", "cmd")


def test_ansible_names_are_read():
    s = winrm_target(
        ansible_port=5985,
        ansible_winrm_transport="kerberos",
        ansible_winrm_server_cert_validation="ignore",
        ansible_winrm_operation_timeout_sec=5,
        ansible_winrm_read_timeout_sec=9,
        ansible_winrm_path="/custom",
        ansible_shell_type="powershell",
        plantsweep_smb="no",
    ).winrm
    assert s is not None
    assert s.endpoint("h") == "http://h:5985/custom" and s.transport == "kerberos"
    assert (s.operation_timeout_sec, s.read_timeout_sec, s.shell_type, s.smb) == (
        5,
        9,
        "powershell",
        False,
    )


@pytest.mark.parametrize(
    "hostvars, message",
    [
        ({"ansible_port": 5985, "ansible_winrm_transport": "basic"}, "plain HTTP"),
        ({"ansible_winrm_scheme": "http", "ansible_winrm_message_encryption": "never"}, "plain"),
        ({"ansible_winrm_transport": "telnet"}, "ansible_winrm_transport must be one of"),
        (
            {"ansible_winrm_operation_timeout_sec": 30, "ansible_winrm_read_timeout_sec": 30},
            "must exceed",
        ),
        ({"plantsweep_smb_port": "many"}, "whole number"),
    ],
)
def test_unsafe_or_wrong_settings_are_refused(hostvars, message):
    with pytest.raises(InventoryError, match=message):
        winrm_target(**hostvars)


def test_share_paths_stay_inside_the_share():
    conn = WinRMConnection(winrm_target(), winrm_target().winrm, Timeouts())
    assert (
        conn.share_path("C:\\Windows\\Temp\\plantsweep-ab\\scanner.pyz")
        == "\\\\10.0.0.5\\ADMIN$\\Temp\\plantsweep-ab\\scanner.pyz"
    )
    assert conn.share_path("c:\\windows\\temp\\x") == "\\\\10.0.0.5\\ADMIN$\\temp\\x"
    assert conn.share_path("D:\\Data\\x") is None
    assert conn.share_path("C:\\Windows\\Temp\\..\\..\\x") is None
    sh = winrm_target(ansible_shell_type="sh", plantsweep_smb_share_path="/srv/admin")
    conn = WinRMConnection(sh, sh.winrm, Timeouts())
    assert conn.share_path("/srv/admin/Temp/f") == "\\\\10.0.0.5\\ADMIN$\\Temp\\f"
    assert conn.share_path("/etc/passwd") is None


def test_posix_file_commands_round_trip(tmp_path):
    files = remote_files.PosixFiles()
    data = bytes(range(256)) * 1000
    target = tmp_path / "it's here"
    subprocess.run(["/bin/sh", "-c", files.receive(str(target))], input=data, check=True)
    assert target.read_bytes() == data
    # noclobber: an existing file (or a planted symlink) is never written through.
    again = subprocess.run(["/bin/sh", "-c", files.receive(str(target))], input=b"x")
    assert again.returncode != 0 and target.read_bytes() == data
    out = subprocess.run(["/bin/sh", "-c", files.send(str(target))], capture_output=True).stdout
    assert out == data
    digest = subprocess.run(["/bin/sh", "-c", files.sha256(str(target))], capture_output=True)
    assert remote_files.parse_sha256(digest.stdout) == hashlib.sha256(data).hexdigest()


def test_windows_encoding_gives_whole_base64_lines_and_decodes_split_anywhere():
    files = remote_files.WindowsFiles()
    data = bytes(range(256)) * 700
    chunks = [data[i : i + 72_000] for i in range(0, len(data), 72_000)]
    encoded = b"".join(files.encode(c) for c in chunks)
    lines = encoded.split(b"\r\n")[:-1]
    # Each line decodes alone: any line is a whole base64 group.
    assert b"".join(base64.b64decode(line) for line in lines) == data
    decoder = files.decoder()
    out = b"".join(decoder.feed(encoded[i : i + 1000]) for i in range(0, len(encoded), 1000))
    assert out + decoder.end() == data


def test_windows_commands_are_cmd_lines_with_findstr_and_certutil_and_quoted_paths():
    files = remote_files.WindowsFiles()
    path = "C:\\Windows\\Temp\\it's & (x)\\f.zip"
    receive, send = files.receive(path), files.send(path)
    for command in (receive, send):
        assert "powershell" not in command.lower()
        assert f'"{path}.b64"' in command and command.endswith("& exit 0")
        assert len(command) < 8191  # cmd.exe's command-line limit
        # an IF takes the rest of the line: each one is last in its parentheses
        assert command.count("if ") == command.count("(if ") + command.count("|| if ")
    assert f'findstr "^" > "{path}.b64"' in receive
    assert f'certutil -decode "{path}.b64" "{path}"' in receive and " -f " not in receive
    assert f'type nul > "{path}"' in receive  # an empty file
    assert f'certutil -encode "{path}" "{path}.b64"' in send and f'type "{path}.b64"' in send
    for bad in ('C:\\T\\"x', "C:\\T\\%TEMP%", "C:\\T\\a\r\nb"):
        with pytest.raises(ValueError):
            files.receive(bad)


def test_windows_decoder_skips_certutils_header_lines_split_anywhere():
    data = bytes(range(256)) * 50
    text = base64.b64encode(data)
    body = b"".join(text[i : i + 64] + b"\r\n" for i in range(0, len(text), 64))
    out = b"-----BEGIN CERTIFICATE-----\r\n" + body + b"-----END CERTIFICATE-----\r\n"
    for size in (1, 7, 65, 1000):
        decoder = remote_files.WindowsFiles().decoder()
        got = b"".join(decoder.feed(out[i : i + size]) for i in range(0, len(out), size))
        assert got + decoder.end() == data


def test_windows_hashes_come_from_certutil_in_both_of_its_formats():
    files = remote_files.WindowsFiles()
    assert files.sha256("C:\\T\\f.zip") == 'certutil -hashfile "C:\\T\\f.zip" SHA256'
    with pytest.raises(ValueError):
        files.sha256("C:\\T\\%PATH%.zip")  # cmd would expand it
    digest = hashlib.sha256(b"x").hexdigest()
    named_by_hash = "C:\\T\\" + hashlib.sha256(b"y").hexdigest()  # a file named by a digest
    spaced = " ".join(digest[i : i + 2] for i in range(0, 64, 2))  # Windows 7 / 2008 R2
    for line in (spaced, digest.upper()):
        out = f"SHA256 hash of file {named_by_hash}:\r\n{line}\r\nCertUtil: -hashfile command "
        out += "completed successfully.\r\n"
        assert files.parse_sha256(out.encode()) == digest
    assert files.parse_sha256(b"CertUtil: -hashfile command FAILED: 0x80070002\r\n") is None
