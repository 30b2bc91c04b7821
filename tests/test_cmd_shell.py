r"""tests/winrm_server/cmd_shell.py: the cmd.exe emulator of the WinRM test server's cmd mode.

Each command line runs as the server runs it (process.command_argv: `python -m
tests.winrm_server.cmd_shell "<line>"`, its own process group, the exit-code pipe) on a
temporary C: drive laid out by the harness (prepare_windows_drive: profile, Windows\Temp,
the emulated registry and task list). Then the same through the real WinRM server with
pywinrm, and through a simulated Windows host (Samba + WinRMOnHost(shell="cmd")).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from winrm.protocol import Protocol

from orchestrator.connections import remote_files
from tests.harness.samba import C_DRIVE, SambaHost, smbd_available
from tests.harness.winrm_host import (
    TASKS_SEED,
    WinRMOnHost,
    prepare_windows_drive,
    windows_environment,
)
from tests.winrm_server import WinRMServer
from tests.winrm_server.process import command_argv

sys.path.insert(0, str(Path(__file__).resolve().parent))
from conftest import TEST_SLOT  # noqa: E402

USER = "scanner"
PASSWORD = "Sc4nner-pw"
NOT_RECOGNIZED = (
    "is not recognized as an internal or external command,\r\noperable program or batch file.\r\n"
)
PATH_NOT_FOUND = b"The system cannot find the path specified.\r\n"
NETWORK = f"10.209.{TEST_SLOT}.0/24"  # used only by this module


@dataclass
class Ran:
    out: bytes
    err: bytes
    code: int  # cmd's ERRORLEVEL, from the exit-code pipe
    status: int  # the Linux exit status (its low byte, or -signal)


@pytest.fixture
def drive(tmp_path: Path) -> Path:
    c = tmp_path / "C"
    prepare_windows_drive(c, USER)
    return c


def base_env(drive: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(windows_environment(USER, "PLANTWIN01", str(drive)))
    env["WINRM_TEST_PYTHON"] = sys.executable
    env.update(extra)
    return env


def start(
    drive: Path, line: str, cwd: Path | None = None, **env: str
) -> tuple[subprocess.Popen[bytes], int]:
    read_end, write_end = os.pipe()
    argv, full_env = command_argv("cmd", line, base_env(drive, **env), write_end)
    proc = subprocess.Popen(
        argv,
        cwd=cwd or drive / "Users" / USER,
        env=full_env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        pass_fds=(write_end,),
        start_new_session=True,
    )
    os.close(write_end)
    return proc, read_end


def run(drive: Path, line: str, stdin: bytes = b"", cwd: Path | None = None, **env: str) -> Ran:
    proc, read_end = start(drive, line, cwd, **env)
    out, err = proc.communicate(stdin, timeout=60)
    with os.fdopen(read_end, "rb") as pipe:
        reported = pipe.read()
    return Ran(out, err, int(reported) if reported else -999, proc.returncode)


def c(drive: Path, *parts: str) -> Path:
    return drive.joinpath(*parts)


# -- echo, ver, operators, quoting, variables ----------------------------------------------


def test_echo_prints_its_text_verbatim_with_crlf(drive):
    ran = run(drive, "echo hello  & echo.& echo  two& echo")
    assert ran.out == b"hello  \r\n\r\n two\r\nECHO is on.\r\n"
    assert (ran.err, ran.code, ran.status) == (b"", 0, 0)
    escaped = run(drive, 'echo a^&b "c & d | e > f" ^> g ^^')
    assert escaped.out == b'a&b "c & d | e > f" > g ^\r\n'


def test_ver_prints_windows_7_sp1_or_the_configured_version(drive):
    assert run(drive, "ver").out == b"\r\nMicrosoft Windows [Version 6.1.7601]\r\n"
    assert run(drive, "ver", WINRM_TEST_WINVER="10.0.17763").out == (
        b"\r\nMicrosoft Windows [Version 10.0.17763]\r\n"
    )


def test_operators_have_cmds_precedence(drive):
    # & is lowest: a & (b || exit 99) & c
    failed = run(drive, 'echo a & dir /b "C:\\missing" 2>nul || exit 99 & echo c')
    assert (failed.out, failed.code) == (b"a \r\n", 99)
    passed = run(drive, "echo a & echo b || exit 99 & echo c")
    assert (passed.out, passed.code) == (b"a \r\nb \r\nc\r\n", 0)
    # && binds tighter than ||: x || (y && z)
    assert run(drive, "echo x|| echo y&& echo z").out == b"x\r\n"
    # (dir && echo yes) || echo no
    assert run(drive, "dir /b C:\\missing 2>nul && echo yes|| echo no").out == b"no\r\n"


def test_double_quotes_keep_operators_literal(drive):
    ran = run(drive, 'mkdir "C:\\Windows\\Temp\\x & y" && dir /b "C:\\Windows\\Temp"')
    assert (ran.out, ran.code) == (b"x & y\r\n", 0)
    assert c(drive, "Windows", "Temp", "x & y").is_dir()


def test_percent_variables_expand_once_and_undefined_ones_stay(drive):
    ran = run(
        drive,
        "echo [%FOO%] [%foo%] [%UNDEFINED_X%] [100%%] [%FOO:~1%] [%FOO:a=A%] [%USERPROFILE%]",
        FOO="bar",
    )
    assert ran.out == b"[bar] [bar] [%UNDEFINED_X%] [100%%] [ar] [bAr] [C:\\Users\\scanner]\r\n"
    # The whole line is expanded before it runs; echo leaves the errorlevel as it is.
    late = run(drive, "dir /b C:\\missing 2>nul & echo %ERRORLEVEL%")
    assert (late.out, late.code) == (b"0\r\n", 1)


def test_syntax_errors_run_nothing_and_unemulated_syntax_says_so(drive):
    ran = run(drive, "mkdir C:\\Windows\\Temp\\made && && echo b")
    assert (ran.out, ran.err, ran.code) == (b"", b"&& was unexpected at this time.\r\n", 255)
    assert not c(drive, "Windows", "Temp", "made").exists()
    piped = run(drive, "echo a | more")
    assert piped.code == 255 and b"not emulated: pipes" in piped.err


# -- exit codes ------------------------------------------------------------------------------


def test_exit_and_errorlevel_style_exit_codes(drive):
    assert run(drive, "exit 7").code == 7
    early = run(drive, "exit /b 5 & echo not reached")
    assert (early.out, early.code, early.status) == (b"", 5, 5)
    unknown = run(drive, "nonexistent_tool /x")
    assert unknown.err == ("'nonexistent_tool' " + NOT_RECOGNIZED).encode()
    assert (unknown.code, unknown.status) == (9009, 9009 & 0xFF)
    # `exit` without a number keeps the errorlevel; echo does not clear it, ver does.
    assert run(drive, "nonexistent_tool 2>nul & echo x & exit").code == 9009
    assert run(drive, "nonexistent_tool 2>nul & ver & exit").code == 0


# -- cd, mkdir, rmdir, if, dir ---------------------------------------------------------------


def test_cd_changes_the_directory_for_the_rest_of_the_line(drive):
    assert run(drive, "cd").out == b"C:\\Users\\scanner\r\n"  # the profile, as WinRS starts
    ran = run(drive, 'cd /d "c:\\WINDOWS\\temp" && cd && mkdir sub && cd sub && cd')
    assert ran.out == b"C:\\Windows\\Temp\r\nC:\\Windows\\Temp\\sub\r\n"
    assert c(drive, "Windows", "Temp", "sub").is_dir()
    missing = run(drive, 'cd /d "C:\\nope" && echo no')
    assert (missing.out, missing.err, missing.code) == (b"", PATH_NOT_FOUND, 1)


def test_mkdir_makes_intermediate_folders_and_refuses_an_existing_one(drive):
    ran = run(drive, 'mkdir "C:\\Windows\\Temp\\a\\b\\c"')
    assert (ran.out, ran.err, ran.code) == (b"", b"", 0)
    assert c(drive, "Windows", "Temp", "a", "b", "c").is_dir()
    again = run(drive, 'md "C:\\Windows\\Temp\\a\\b\\c"')
    assert again.err == b"A subdirectory or file C:\\Windows\\Temp\\a\\b\\c already exists.\r\n"
    assert again.code == 1


def test_rmdir_removes_the_tree_but_not_what_its_symlinks_point_to(drive, tmp_path):
    outside = tmp_path / "outside"
    (outside / "keep").mkdir(parents=True)
    (outside / "keep" / "precious.txt").write_text("x")
    tree = c(drive, "Windows", "Temp", "t")
    (tree / "sub" / "deeper").mkdir(parents=True)
    (tree / "sub" / "deeper" / "f.bin").write_bytes(b"1")
    (tree / "file.txt").write_text("y")
    (tree / "sub" / "dirlink").symlink_to(outside / "keep")
    (tree / "filelink").symlink_to(outside / "keep" / "precious.txt")
    ran = run(drive, 'rmdir /s /q "C:\\Windows\\Temp\\t"')
    assert (ran.out, ran.err, ran.code) == (b"", b"", 0)
    assert not tree.exists()
    assert (outside / "keep" / "precious.txt").read_text() == "x"
    missing = run(drive, 'rd /s /q "C:\\Windows\\Temp\\t"')
    assert (missing.err, missing.code) == (b"The system cannot find the file specified.\r\n", 2)


def test_rmdir_without_s_and_of_the_current_directory_fail_as_on_windows(drive):
    full = c(drive, "Windows", "Temp", "full")
    (full / "inner").mkdir(parents=True)
    ran = run(drive, 'rmdir "C:\\Windows\\Temp\\full"')
    assert (ran.err, ran.code) == (b"The directory is not empty.\r\n", 145)
    # cmd's own current directory stays (in use); || sees the failure, the errorlevel not.
    busy = run(
        drive,
        'cd /d "C:\\Windows\\Temp\\full" && rmdir /s /q "C:\\Windows\\Temp\\full" || echo failed',
    )
    assert busy.err == (
        b"The process cannot access the file because it is being used by another process.\r\n"
    )
    assert (busy.out, busy.code) == (b"failed\r\n", 0)
    assert full.is_dir() and not (full / "inner").exists()


def test_if_exist_and_if_not_exist_take_the_rest_of_the_line(drive):
    assert run(drive, 'if exist "C:\\Windows" echo yes').out == b"yes\r\n"
    assert run(drive, "if exist c:\\windows\\TEMP\\ echo folder").out == b"folder\r\n"
    assert run(drive, 'if not exist "C:\\nope" echo a & echo b').out == b"a \r\nb\r\n"
    # The & belongs to the IF: with the condition false, neither echo runs.
    skipped = run(drive, 'if exist "C:\\nope" echo a & echo b')
    assert (skipped.out, skipped.code) == (b"", 0)
    # A block ends the IF's command.
    assert run(drive, '(if exist "C:\\nope" echo a) & echo b').out == b"b\r\n"


def test_dir_lists_bare_names_in_ntfs_order(drive):
    folder = c(drive, "Windows", "Temp", "d")
    folder.mkdir()
    for name in ("b.txt", "A.txt", "_x", "C", ".hidden", "\u00c4"):
        (folder / name).write_text("")
    (folder / "sub").mkdir()
    ran = run(drive, 'dir /b /a "C:\\Windows\\Temp\\d"')
    # Upper-cased code units: "_" (0x5F) sorts after "C", unlike a lower-case sort.
    expected = ".hidden\r\nA.txt\r\nb.txt\r\nC\r\nsub\r\n_x\r\n\u00c4\r\n"
    assert (ran.out, ran.code) == (expected.encode(), 0)
    assert run(drive, 'dir /b /ad "C:\\Windows\\Temp\\d"').out == b"sub\r\n"
    assert run(drive, 'dir /b /a "C:\\Windows\\Temp\\d\\*.TXT"').out == b"A.txt\r\nb.txt\r\n"
    (folder / "empty").mkdir()
    empty = run(drive, 'dir /b /a "C:\\Windows\\Temp\\d\\empty"')
    assert (empty.out, empty.err, empty.code) == (b"", b"File Not Found\r\n", 1)
    missing = run(drive, 'dir /b /a "C:\\Windows\\Temp\\nope"')
    assert (missing.err, missing.code) == (b"File Not Found\r\n", 1)
    deeper = run(drive, 'dir /b /a "C:\\nope\\nope"')
    assert (deeper.err, deeper.code) == (PATH_NOT_FOUND, 1)


# -- reg, schtasks, certutil ---------------------------------------------------------------


def test_reg_query_prints_values_then_subkeys_like_reg_exe(drive):
    run_key = run(drive, "reg query HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Run")
    assert run_key.out == (
        b"\r\nHKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Run\r\n"
        b'    VMware User Process    REG_SZ    "C:\\Program Files\\VMware\\VMware Tools\\'
        b'vmtoolsd.exe" -n vmusr\r\n\r\n'
    )
    assert run_key.code == 0
    # Only subkeys: no header line; the typed part of the name is echoed as typed.
    services = run(drive, "reg query hklm\\system\\currentcontrolset\\services")
    assert services.out == (
        b"\r\n"
        b"HKEY_LOCAL_MACHINE\\system\\currentcontrolset\\services\\Dhcp\r\n"
        b"HKEY_LOCAL_MACHINE\\system\\currentcontrolset\\services\\Dnscache\r\n"
        b"HKEY_LOCAL_MACHINE\\system\\currentcontrolset\\services\\W32Time\r\n"
    )
    key = "HKEY_LOCAL_MACHINE/SYSTEM/CurrentControlSet/Services/Dhcp/Parameters"
    c(drive, ".emulated", "registry", *key.split("/")).mkdir()
    both = run(drive, "reg query HKEY_LOCAL_MACHINE\\SYSTEM\\CurrentControlSet\\Services\\Dhcp")
    name = b"HKEY_LOCAL_MACHINE\\SYSTEM\\CurrentControlSet\\Services\\Dhcp"
    assert both.out == (
        b"\r\n" + name + b"\r\n"
        b"    DisplayName    REG_SZ    DHCP Client\r\n"
        b"    Start    REG_DWORD    0x2\r\n\r\n" + name + b"\\Parameters\r\n"
    )
    value = run(drive, "reg query HKLM\\SYSTEM\\CurrentControlSet\\Services\\W32Time /v start")
    assert value.out == (
        b"\r\nHKEY_LOCAL_MACHINE\\SYSTEM\\CurrentControlSet\\Services\\W32Time\r\n"
        b"    Start    REG_DWORD    0x3\r\n\r\n"
    )
    missing = run(drive, "reg query HKCU\\Software\\Nope")
    assert missing.err == (
        b"ERROR: The system was unable to find the specified registry key or value.\r\n"
    )
    assert (missing.out, missing.code) == (b"", 1)


def test_schtasks_prints_the_task_list_or_the_info_line(drive):
    ran = run(drive, "schtasks /query /fo csv /nh")
    assert (ran.out, ran.code) == (TASKS_SEED.encode(), 0)
    with_header = run(drive, "schtasks /Query /FO CSV")
    assert with_header.out.startswith(b'"TaskName","Next Run Time","Status"\r\n"\\Microsoft')
    c(drive, ".emulated", "schtasks.csv").unlink()
    none = run(drive, "schtasks /query /fo csv /nh")
    assert none.out == (
        b"INFO: There are no scheduled tasks presently available at your access level.\r\n"
    )
    assert none.code == 0


def test_certutil_hashfile_in_the_windows_7_format(drive):
    data = b"plant data\n" * 100
    c(drive, "Windows", "Temp", "f.bin").write_bytes(data)
    ran = run(drive, 'certutil -hashfile "C:\\Windows\\Temp\\f.bin" SHA256')
    spaced = " ".join(f"{b:02x}" for b in hashlib.sha256(data).digest())
    assert (
        ran.out
        == (
            f"SHA256 hash of file C:\\Windows\\Temp\\f.bin:\r\n{spaced}\r\n"
            "CertUtil: -hashfile command completed successfully.\r\n"
        ).encode()
    )
    assert ran.code == 0
    missing = run(drive, 'certutil -hashfile "C:\\Windows\\Temp\\nope.bin" SHA256')
    assert missing.out == (
        b"CertUtil: -hashfile command FAILED: 0x80070002 (WIN32: 2 ERROR_FILE_NOT_FOUND)\r\n"
        b"CertUtil: The system cannot find the file specified.\r\n"
    )
    assert (missing.code, missing.status) == (-2147024894, 2)  # the HRESULT; its low byte
    c(drive, "Windows", "Temp", "empty.bin").write_bytes(b"")
    empty = run(drive, 'certutil -hashfile "C:\\Windows\\Temp\\empty.bin" SHA256')
    assert empty.out.startswith(b"CertUtil: -hashfile command FAILED: 0x800703ee (WIN32: 1006")
    assert empty.code == -2147023890


def test_certutil_encode_writes_certificate_lines_and_decode_reads_them_or_bare_base64(drive):
    temp = c(drive, "Windows", "Temp")
    data = bytes(range(256)) * 3
    (temp / "f.bin").write_bytes(data)
    ran = run(drive, 'certutil -encode "C:\\Windows\\Temp\\f.bin" "C:\\Windows\\Temp\\f.b64"')
    assert ran.code == 0, ran
    encoded = (temp / "f.b64").read_bytes()
    text = base64.b64encode(data)
    lines = [text[i : i + 64] for i in range(0, len(text), 64)]
    body = b"".join(line + b"\r\n" for line in lines)
    assert encoded == b"-----BEGIN CERTIFICATE-----\r\n" + body + b"-----END CERTIFICATE-----\r\n"
    assert (
        ran.out
        == (
            f"Input Length = {len(data)}\r\nOutput Length = {len(encoded)}\r\n"
            "CertUtil: -encode command completed successfully.\r\n"
        ).encode()
    )
    back = run(drive, "certutil -decode C:\\Windows\\Temp\\f.b64 C:\\Windows\\Temp\\g.bin")
    assert back.code == 0 and (temp / "g.bin").read_bytes() == data
    assert back.out.endswith(b"CertUtil: -decode command completed successfully.\r\n")
    (temp / "bare.b64").write_bytes(base64.encodebytes(data).replace(b"\n", b"\r\n"))
    assert (
        run(drive, "certutil -decode C:\\Windows\\Temp\\bare.b64 C:\\Windows\\Temp\\h.bin").code
        == 0
    )
    assert (temp / "h.bin").read_bytes() == data


def test_certutil_encode_and_decode_refuse_an_existing_output_and_bad_input(drive):
    temp = c(drive, "Windows", "Temp")
    (temp / "in.b64").write_bytes(base64.b64encode(b"new") + b"\r\n")
    (temp / "out.bin").write_bytes(b"old")
    exists = run(drive, "certutil -decode C:\\Windows\\Temp\\in.b64 C:\\Windows\\Temp\\out.bin")
    assert exists.out == (
        b"CertUtil: -decode command FAILED: 0x80070050 (WIN32: 80 ERROR_FILE_EXISTS)\r\n"
        b"CertUtil: The file exists.\r\n"
    )
    assert (exists.code, exists.status) == (-2147024816, 0x50)
    assert (temp / "out.bin").read_bytes() == b"old"
    (temp / "link.bin").symlink_to(temp / "planted-target")  # dangling: still not followed
    linked = run(drive, "certutil -decode C:\\Windows\\Temp\\in.b64 C:\\Windows\\Temp\\link.bin")
    assert linked.code == -2147024816 and not (temp / "planted-target").exists()
    again = run(drive, "certutil -encode C:\\Windows\\Temp\\out.bin C:\\Windows\\Temp\\in.b64")
    assert again.out.startswith(b"CertUtil: -encode command FAILED: 0x80070050 (WIN32: 80 ")
    (temp / "bad.b64").write_bytes(b"not base64!\r\n")
    bad = run(drive, "certutil -decode C:\\Windows\\Temp\\bad.b64 C:\\Windows\\Temp\\x.bin")
    assert bad.out.startswith(b"CertUtil: -decode command FAILED: 0x8007000d (WIN32: 13 ")
    assert bad.code == -2147024883 and not (temp / "x.bin").exists()
    (temp / "empty.b64").write_bytes(b"")
    empty = run(drive, "certutil -decode C:\\Windows\\Temp\\empty.b64 C:\\Windows\\Temp\\x.bin")
    assert empty.code == -2147023890 and not (temp / "x.bin").exists()
    missing = run(drive, "certutil -encode C:\\Windows\\Temp\\nope C:\\Windows\\Temp\\x.b64")
    assert missing.code == -2147024894 and not (temp / "x.b64").exists()


def test_findstr_caret_prints_every_line_of_stdin_or_a_file(drive):
    temp = c(drive, "Windows", "Temp")
    lines = b"one\r\n\r\ntwo\nlast"
    ran = run(drive, 'findstr "^" > C:\\Windows\\Temp\\out.txt', stdin=lines)
    assert ran.code == 0 and (temp / "out.txt").read_bytes() == lines + b"\r\n"  # CRLF added
    (temp / "in.txt").write_bytes(lines)
    from_file = run(drive, 'findstr "^" C:\\Windows\\Temp\\in.txt')
    assert (from_file.code, from_file.out) == (0, lines)
    empty = run(drive, 'findstr "^" > C:\\Windows\\Temp\\empty.txt')
    assert empty.code == 1 and (temp / "empty.txt").read_bytes() == b""
    assert run(drive, 'findstr "^" C:\\Windows\\Temp\\empty.txt').code == 1
    missing = run(drive, 'findstr "^" C:\\Windows\\Temp\\nope.txt')
    assert (
        missing.code == 1 and missing.err == b"FINDSTR: Cannot open C:\\Windows\\Temp\\nope.txt\r\n"
    )
    too_long = run(drive, 'findstr "^"', stdin=b"x" * 9000 + b"\r\n")
    assert too_long.code == 255 and b"not emulated" in too_long.err
    assert run(drive, 'findstr /v "^"').code == 255


def test_type_and_del(drive):
    temp = c(drive, "Windows", "Temp")
    (temp / "f.bin").write_bytes(b"\x00bytes\r\nas they are\n")
    assert run(drive, "type C:\\Windows\\Temp\\f.bin").out == b"\x00bytes\r\nas they are\n"
    missing = run(drive, 'type "C:\\Windows\\Temp\\nope" || exit 7')
    assert (missing.code, missing.err) == (7, b"The system cannot find the file specified.\r\n")
    assert run(drive, 'type nul > "C:\\Windows\\Temp\\new"').code == 0
    assert (temp / "new").read_bytes() == b""
    assert run(drive, 'del "C:\\Windows\\Temp\\f.bin" && exit 3').code == 3
    assert not (temp / "f.bin").exists()
    gone = run(drive, 'del "C:\\Windows\\Temp\\f.bin" || exit 7')  # || does not fire
    assert gone.code == 0 and gone.err == b"Could Not Find C:\\Windows\\Temp\\f.bin\r\n"
    assert run(drive, 'del "C:\\Windows\\Nope\\f.bin" || exit 7').code == 7
    assert run(drive, "del C:\\Windows\\Temp\\*.bin").code == 255  # it would ask


def test_the_windows_file_commands_round_trip_through_the_emulator(drive):
    files = remote_files.WindowsFiles()
    temp = c(drive, "Windows", "Temp", "plantsweep-x y&z")
    temp.mkdir()
    target = "C:\\Windows\\Temp\\plantsweep-x y&z\\kit.zip"
    data = os.urandom(200_000)
    stdin = b"".join(files.encode(data[i : i + 72_000]) for i in range(0, len(data), 72_000))
    ran = run(drive, files.receive(target), stdin=stdin)
    assert ran.code == 0, ran
    assert sorted(os.listdir(temp)) == ["kit.zip"] and (temp / "kit.zip").read_bytes() == data
    # Never overwritten: the file stays, and the .b64 file is not left behind.
    again = run(drive, files.receive(target), stdin=files.encode(b"other"))
    assert again.code == 80 and b"already exists" in again.err
    assert (temp / "kit.zip").read_bytes() == data and sorted(os.listdir(temp)) == ["kit.zip"]
    sent = run(drive, files.send(target))
    assert sent.code == 0, sent
    decoder = files.decoder()
    out = b"".join(decoder.feed(sent.out[i : i + 1001]) for i in range(0, len(sent.out), 1001))
    assert out + decoder.end() == data and sorted(os.listdir(temp)) == ["kit.zip"]
    # An empty file.
    empty = "C:\\Windows\\Temp\\plantsweep-x y&z\\empty"
    assert run(drive, files.receive(empty)).code == 0
    assert (temp / "empty").read_bytes() == b"" and not (temp / "empty.b64").exists()
    # Failures: bad data, a missing file to send; nothing left behind.
    bad = run(drive, files.receive(target + ".2"), stdin=b"!!!!\r\n")
    assert bad.code == 1 and b"ERROR_INVALID_DATA" in bad.err
    missing = run(drive, files.send(target + ".nope"))
    assert missing.code == 1 and missing.out == b"" and b"ERROR_FILE_NOT_FOUND" in missing.err
    assert sorted(os.listdir(temp)) == ["empty", "kit.zip"]
    nofolder = run(drive, files.receive("C:\\Windows\\Temp\\nope\\f"), stdin=b"AAAA\r\n")
    assert nofolder.code == 1


# -- redirections -----------------------------------------------------------------------------


def test_redirections_to_nul_files_and_the_other_stream(drive):
    assert run(drive, "echo hidden>nul & 1>nul echo hidden too & echo shown").out == b"shown\r\n"
    quiet = run(drive, 'dir /b "C:\\nope" 2>nul')
    assert (quiet.out, quiet.err, quiet.code) == (b"", b"", 1)
    both = run(drive, 'dir /b "C:\\nope" >nul 2>&1')
    assert (both.out, both.err) == (b"", b"")
    swapped = run(drive, 'dir /b "C:\\nope" 2>&1')
    assert (swapped.out, swapped.err) == (b"File Not Found\r\n", b"")
    # The space before & is echo's, even with the redirection in between.
    run(drive, 'echo x> "C:\\Windows\\Temp\\f.txt" & echo y>>C:\\Windows\\Temp\\f.txt')
    assert c(drive, "Windows", "Temp", "f.txt").read_bytes() == b"x \r\ny\r\n"
    failed = run(drive, "echo x >C:\\nope\\f.txt || echo failed")
    assert (failed.out, failed.err) == (b"failed\r\n", PATH_NOT_FOUND)


# -- python.exe ----------------------------------------------------------------------------


@pytest.fixture
def python_exe(drive: Path) -> str:
    (drive / "Python38").mkdir()
    (drive / "Python38" / "python.exe").write_bytes(b"MZ")  # only its existence counts
    return "C:\\Python38\\python.exe"


def test_python_exe_runs_python_with_windows_argv_rules_in_the_current_dir(drive, python_exe):
    code = "import json,os,sys;print(json.dumps([sys.argv[1:],os.getcwd()]))"
    line = (
        f'cd /d "C:\\Windows\\Temp" && {python_exe} -c "{code}" '
        '"arg with spaces" "say \\"hi\\"" a\\b\\ "x""y" \\\\"d e" %FOO%'
    )
    ran = run(drive, line, FOO="foo")
    argv, cwd = json.loads(ran.out)
    assert argv == ["arg with spaces", 'say "hi"', "a\\b\\", 'x"y', "\\d e", "foo"]
    assert cwd == str(drive / "Windows" / "Temp")
    assert (ran.err, ran.code) == (b"", 0)


def test_python_exe_gets_stdin_and_gives_its_exit_code_in_the_same_process_group(drive, python_exe):
    piped = run(
        drive,
        f'{python_exe} -c "import sys;d=sys.stdin.read();sys.stdout.write(d.upper());'
        'sys.exit(len(d))"',
        stdin=b"abc",
    )
    assert (piped.out, piped.code) == (b"ABC", 3)
    ran = run(
        drive,
        f'{python_exe} -c "import os;print(os.getpgid(0)==os.getpgid(os.getppid()),'
        "os.environ.get('PYTHONPATH'),os.environ['USERPROFILE'])\"",
    )
    # One process group with the emulator; the repo on PYTHONPATH was only for the emulator.
    assert ran.out == b"True None C:\\Users\\scanner\n"
    redirected = run(
        drive, f"{python_exe} -c \"import sys;print('o');print('e',file=sys.stderr)\" 1>nul"
    )
    assert (redirected.out, redirected.err) == (b"", b"e\n")


def test_ctrl_c_ends_python_and_the_emulator_with_sigint(drive, python_exe):
    proc, read_end = start(
        drive, f"{python_exe} -c \"import time;print('ready',flush=True);time.sleep(30)\""
    )
    os.close(read_end)
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], 10)
    assert ready and proc.stdout.readline() == b"ready\n"
    started = time.monotonic()
    os.killpg(proc.pid, signal.SIGINT)
    assert proc.wait(timeout=10) == -signal.SIGINT  # the server reports 128 + 2
    assert time.monotonic() - started < 5
    proc.communicate()


def test_missing_python_exe_and_the_cmd_c_quote_rule(drive, python_exe):
    gone = run(drive, "C:\\Windows\\python.exe -V")
    assert gone.err == ("'C:\\Windows\\python.exe' " + NOT_RECOGNIZED).encode()
    assert gone.code == 9009
    no_folder = run(drive, "C:\\Python27\\python.exe -V")
    assert (no_folder.err, no_folder.code) == (PATH_NOT_FOUND, 3)
    # cmd /c strips the first and the last quote of a line that starts with one...
    stripped = run(drive, f'"{python_exe}" -c "print(1)"')
    assert stripped.err == (f"'{python_exe}\" -c \"print(1)' " + NOT_RECOGNIZED).encode()
    # ...so the line gets a pair of its own,
    assert run(drive, f'""{python_exe}" -c "print(1)""').out == b"1\n"
    # unless it has exactly two, around an existing program's path with a space in it.
    (drive / "Program Files" / "Py").mkdir(parents=True)
    (drive / "Program Files" / "Py" / "python.exe").write_bytes(b"MZ")
    kept = run(drive, '"C:\\Program Files\\Py\\python.exe" -c print(42)')
    assert (kept.out, kept.code) == (b"42\n", 0)


# -- through the WinRM server ------------------------------------------------------------------


@pytest.fixture
def make_server(drive: Path) -> Iterator[Callable[..., WinRMServer]]:
    started: list[WinRMServer] = []

    def make(**kwargs: object) -> WinRMServer:
        kwargs.setdefault("users", {USER: PASSWORD})
        server = WinRMServer(
            "127.0.0.1",
            0,
            shell="cmd",
            drive_c=drive,
            environment={
                **windows_environment(USER, "PLANTWIN01", str(drive)),
                "WINRM_TEST_PYTHON": sys.executable,
            },
            **kwargs,  # type: ignore[arg-type]
        ).start()
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


def client(endpoint: str, user: str = USER, password: str = PASSWORD) -> Protocol:
    return Protocol(
        endpoint,
        transport="ntlm",
        username=user,
        password=password,
        operation_timeout_sec=2,
        read_timeout_sec=6,
        proxy=None,
        ca_trust_path=None,
    )


def run_over_winrm(p: Protocol, shell_id: str, line: str) -> tuple[bytes, bytes, int]:
    command_id = p.run_command(shell_id, line)
    result = p.get_command_output(shell_id, command_id)
    p.cleanup_command(shell_id, command_id)
    return result


def test_the_winrm_server_in_cmd_mode_runs_command_lines_through_the_emulator(make_server, drive):
    p = client(make_server().endpoint)
    shell_id = p.open_shell(codepage=65001)
    line = 'mkdir "C:\\Windows\\Temp\\x" && dir /b /a "C:\\Windows\\Temp"'
    assert run_over_winrm(p, shell_id, line) == (b"x\r\n", b"", 0)
    assert run_over_winrm(p, shell_id, line) == (
        b"",
        b"A subdirectory or file C:\\Windows\\Temp\\x already exists.\r\n",
        1,
    )
    assert c(drive, "Windows", "Temp", "x").is_dir()
    # The shell starts in the profile; the full ERRORLEVEL is the WinRM exit code.
    assert run_over_winrm(p, shell_id, "cd") == (b"C:\\Users\\scanner\r\n", b"", 0)
    assert run_over_winrm(p, shell_id, "nonexistent_tool 2>nul")[2] == 9009
    assert run_over_winrm(p, shell_id, "certutil -hashfile C:\\nope.bin")[2] == -2147024894
    p.close_shell(shell_id)
    windows_dir = p.open_shell(working_directory="C:\\Windows", codepage=65001)
    assert run_over_winrm(p, windows_dir, "cd") == (b"C:\\Windows\r\n", b"", 0)
    p.close_shell(windows_dir)


# -- through a simulated Windows host -----------------------------------------------------------


def test_a_simulated_windows_host_runs_cmd_as_its_account(tmp_path):
    if os.environ.get("PLANTSWEEP_NO_PLANT") == "1":
        pytest.skip("PLANTSWEEP_NO_PLANT=1: no simulated plant")
    assert smbd_available(), "Debian's samba is missing: run scripts/setup.sh"
    with (
        SambaHost(fleet_id=f"cs{TEST_SLOT}", network=NETWORK, encrypt="desired") as smb,
        WinRMOnHost(smb, shell="cmd") as winrm,
    ):
        drive = smb.host.path(C_DRIVE)
        (drive / "Python38").mkdir()
        (drive / "Python38" / "python.exe").write_bytes(b"MZ")
        p = client(winrm.endpoint, smb.user, smb.password)
        shell_id = p.open_shell(codepage=65001)
        out, err, code = run_over_winrm(
            p,
            shell_id,
            "echo %USERPROFILE% %COMPUTERNAME% %PROCESSOR_ARCHITECTURE%& ver& "
            "reg query HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Run& "
            'schtasks /query /fo csv /nh& mkdir "%TEMP%\\probe" && dir /b /a "%TEMP%"& '
            'C:\\Python38\\python.exe -c "import os;'
            "print(os.getuid(),os.environ.get('PYTHONPATH'))\"",
        )
        p.close_shell(shell_id)
        uid = (drive / "Users" / smb.user).stat().st_uid
        assert (err, code) == (b"", 0)
        assert out.decode() == (
            f"C:\\Users\\{smb.user} WIN-HOST-01 AMD64\r\n"
            "\r\nMicrosoft Windows [Version 6.1.7601]\r\n"
            "\r\nHKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Run\r\n"
            '    VMware User Process    REG_SZ    "C:\\Program Files\\VMware\\VMware Tools\\'
            'vmtoolsd.exe" -n vmusr\r\n\r\n' + TASKS_SEED + "probe\r\n"
            f"{uid} None\n"
        )
        made = drive / "Users" / smb.user / "AppData" / "Local" / "Temp" / "probe"
        assert made.stat().st_uid == uid != 0  # created by the account, not root
        assert (drive / ".emulated" / "registry").stat().st_uid == uid
