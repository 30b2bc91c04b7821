r"""A small cmd.exe for the WinRM test server's `cmd` shell mode (there is no Windows here).

WinRS runs every command line as `cmd.exe /c <command line>`; in `cmd` mode the test server
runs it as

    python -m tests.winrm_server.cmd_shell "<command line>"

one process per command, so the server's process-group kill, terminate and ctrl_c keep
working. The emulated subset is what the controller's Windows dialect uses, with the
behaviour and output formats of Windows 7 SP1 (outputs in UTF-8, the controller opens its
shells with codepage 65001, and CRLF line ends):

Line processing, in cmd's order
    1. `cmd /c` quote rule: a line that starts with `"` loses that quote and the last `"` of
       the line, unless it has exactly two quotes around an existing executable's path with
       whitespace in it and none of & < > ( ) @ ^ | (so `"C:\x\python.exe" -c "..."` fails on
       Windows as it does here; `cd /d "..." && "...\python.exe" ...` does not).
    2. %NAME% expansion from the environment, names case-insensitive, once for the whole line
       (as cmd reads a line before it runs any of it); an undefined name stays literal, as
       with `cmd /c`; %NAME:~n,m% and %NAME:a=b% work; dynamic %CD%, %ERRORLEVEL% (always 0:
       the line is expanded before it runs), %RANDOM%, %CMDEXTVERSION%.
    3. Parsing: `"..."` (inside, & | < > ^ are literal), `^` escapes outside quotes;
       `&` < `||` < `&&` in precedence (so `a & b || exit 99 & c` is a & (b || exit 99) & c);
       `( ... )` blocks; redirections anywhere in a command: `>f`, `>>f`, `<f`, `N>f`,
       `N>&M`, with `nul`; an IF's command is everything after its condition, `&` included
       (`if exist x echo a & echo b` runs neither echo when x is missing).
    4. The whole line is parsed before anything runs; a syntax error runs nothing.

Built-ins (and the ERRORLEVEL each leaves, after dbenham's list of which ones clear it)
    echo TEXT | echo. | echo    TEXT verbatim after the one separator, trailing spaces too;
                                "ECHO is on." alone; errorlevel untouched
    ver                         "\r\nMicrosoft Windows [Version 6.1.7601]\r\n" (version:
                                WINRM_TEST_WINVER); errorlevel 0
    cd | chdir [/d] [PATH]      changes the directory for the rest of the line; no PATH: prints
                                it; "The system cannot find the path specified." errorlevel 1
    md | mkdir PATH...          with intermediate folders; "A subdirectory or file PATH
                                already exists." errorlevel 1
    rd | rmdir [/s] [/q] PATH   /s removes the tree without following symlinks (a link is
                                removed, not its target); missing: "The system cannot find
                                the file specified." errorlevel 2 (3 if its folder is missing);
                                a file: "The directory name is invalid." 267; not empty: "The
                                directory is not empty." 145; what a /s cannot remove is named
                                ("PATH - Access is denied.") and fails || without setting the
                                errorlevel, as on Windows; the current directory is "in use"
    dir /b [/a[[:]d|-d]] [/o[:n]] [PATH...]
                                bare names in NTFS order (upper-cased UTF-16 compare), hidden
                                ones too; nothing there or missing: "File Not Found" 1;
                                missing folder on the way: "The system cannot find the path
                                specified." 1; wildcards * ? in the last part
    type FILE | type nul        the file's bytes as they are; missing: "The system cannot find
                                the file specified." 1 (a folder: "Access is denied." 1);
                                errorlevel untouched on success
    del | erase [/f] [/q] FILE...   removes files; missing: "Could Not Find C:\FULL\PATH",
                                which neither sets the errorlevel nor fails || (as on
                                Windows); its folder missing: "The system cannot find the path
                                specified." 1; folders and wildcards are not emulated (prompts)
    if [/i] [not] exist PATH | errorlevel N | defined NAME | A==B | A equ/neq B  COMMAND
    exit [/b] [N]               ends the line with N (the errorlevel without N)

Programs
    reg query KEY [/v NAME | /ve] [/s]   HKLM HKCU HKCR HKU HKCC (or the long names); the
        registry is the folder tree <C:>\.emulated\registry\HKEY_LOCAL_MACHINE\... (subkeys
        are folders, values files "TYPE\nDATA"); output as reg.exe (Wine's tests, checked on
        Windows): "\r\n", then the key's full name with its values "    NAME    TYPE    DATA"
        and a blank line when it has values, then each subkey's full name; missing:
        "ERROR: The system was unable to find the specified registry key or value." 1
    schtasks /query /fo csv [/nh]        the lines of <C:>\.emulated\schtasks.csv; without it:
        "INFO: There are no scheduled tasks presently available at your access level." 0
    certutil -hashfile PATH [ALG]        Windows 7 format (hex bytes with spaces); MD5 SHA1
        (default) SHA256 SHA384 SHA512; failures print "CertUtil: -hashfile command FAILED:
        0x80070002 (WIN32: 2 ERROR_FILE_NOT_FOUND)" and the message, and exit with the HRESULT
        as cmd's signed ERRORLEVEL (-2147024894; the Linux exit status is its low byte, 2).
        An empty file fails as on Windows 7 (certutil maps the file): 0x800703ee
        (WIN32: 1006 ERROR_FILE_INVALID).
    certutil -encode IN OUT / -decode IN OUT
        -encode writes OUT as "-----BEGIN CERTIFICATE-----", base64 in 64-character lines,
        "-----END CERTIFICATE-----", all with CRLF; -decode takes that or bare base64 (any
        line length, whitespace ignored); both print "Input Length = N", "Output Length = M",
        "CertUtil: -VERB command completed successfully." and refuse an existing OUT (no -f):
        "CertUtil: -VERB command FAILED: 0x80070050 (WIN32: 80 ERROR_FILE_EXISTS)", "CertUtil:
        The file exists."; IN missing: 0x80070002 as -hashfile; IN empty: 0x800703ee as
        -hashfile (the same mapped read, assumed); bad base64: 0x8007000d (WIN32: 13
        ERROR_INVALID_DATA) "The data is invalid."; exit codes as -hashfile.
    findstr "^" [FILE]                   every line of FILE, or of stdin, as it is (CR kept;
        one file: no name prefix); 0 if it printed a line, 1 if none (empty input); a last
        line without LF gets CRLF when read from stdin (dbenham's FINDSTR notes, not checked
        here), not from a file; a stdin line longer than 8191 bytes is not emulated (Windows
        splits or hangs, by version); missing FILE: "FINDSTR: Cannot open NAME" 1; any other
        search string or option: not emulated.
    ...\python.exe ARGS                  a quoted or plain path ending in \python.exe (or
        \python): if that file exists, WINRM_TEST_PYTHON (default /usr/bin/python3) runs in
        the current directory with ARGS split as the Microsoft C runtime of python.exe splits
        them (2008+ rules: backslashes are literal except before a quote, 2n+1 of them before
        a quote give n and a literal quote, `""` inside quotes is a quote and stays quoted;
        CommandLineToArgvW differs only there: it leaves the quotes). It is a child in the
        same process group, stdin/stdout/stderr are passed through, its exit code is the
        errorlevel.
    anything else                        "'NAME' is not recognized as an internal or external
        command,\r\noperable program or batch file." 9009 (its folder missing: "The system
        cannot find the path specified." 3)
    Other built-ins (set, copy, for, call, start, ...), pipes, `else` and the
    rest of the tools print "cmd_shell: not emulated: ..." and exit 255.

Paths: `C:\a\b` (any case, \ or /) is <WINRM_TEST_DRIVE_C>/a/b, `\a` is on C:, anything
else is relative to the current directory; each part is matched case-insensitively as
NTFS does, `..` is resolved on the text as Win32 does, and trailing dots and spaces of the
last part are dropped. Other drives and UNC paths do not exist.

Exit codes: cmd's ERRORLEVEL is a signed 32-bit number (9009, -2147024894) that a Linux exit
status cannot carry; the process exits with its low byte and, when WINRM_TEST_EXIT_FD names
an inherited file descriptor, also writes the full number there (process.py reads it and
reports it as the WinRM ExitCode). Ctrl-C (SIGINT) ends a running python.exe, then this
process dies of the same signal, so the server reports 128 + 2 as in `sh` mode.

Environment: the server's, with WINRM_TEST_DRIVE_C (required), WINRM_TEST_PYTHON and
WINRM_TEST_WINVER; the harness adds USERPROFILE, SystemRoot, TEMP, ... (winrm_host.py).
"""

from __future__ import annotations

import base64
import contextlib
import errno
import fnmatch
import hashlib
import os
import random
import re
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

CRLF = "\r\n"
DEFAULT_WINVER = "6.1.7601"  # Windows 7 SP1 / Server 2008 R2 SP1
DEFAULT_PYTHON = "/usr/bin/python3"
UNSUPPORTED_RC = 255
NOT_RECOGNIZED_RC = 9009
EXIT_FD_VAR = "WINRM_TEST_EXIT_FD"
# PYTHONPATH entries only this module needs (process.py adds the repository to start it, the
# harness its venv): the commands it runs, and %PYTHONPATH%, do not see them.
HIDDEN_PYTHONPATH_VAR = "WINRM_TEST_HIDE_PYTHONPATH"
EMULATED_DIR = ".emulated"  # under C:\, hidden from `dir`

PATH_NOT_FOUND = "The system cannot find the path specified."
FILE_NOT_FOUND = "The system cannot find the file specified."
ACCESS_DENIED = "Access is denied."
NAME_INVALID = "The directory name is invalid."
NOT_EMPTY = "The directory is not empty."
IN_USE = "The process cannot access the file because it is being used by another process."
BAD_SYNTAX = "The syntax of the command is incorrect."
BAD_NAME = "The filename, directory name, or volume label syntax is incorrect."
REG_NOT_FOUND = "ERROR: The system was unable to find the specified registry key or value."
NO_TASKS = "INFO: There are no scheduled tasks presently available at your access level."
TASKS_HEADER = '"TaskName","Next Run Time","Status"'

WHITESPACE = " \t"
DELIMITERS = " \t,;="
# What may follow a built-in's name directly ("echo.", "cd\", "dir/b").
NAME_ENDS = "./\\:[]+("

REG_ROOTS = {
    "HKLM": "HKEY_LOCAL_MACHINE",
    "HKCU": "HKEY_CURRENT_USER",
    "HKCR": "HKEY_CLASSES_ROOT",
    "HKU": "HKEY_USERS",
    "HKCC": "HKEY_CURRENT_CONFIG",
}
HASHES = {"MD5": "md5", "SHA1": "sha1", "SHA256": "sha256", "SHA384": "sha384", "SHA512": "sha512"}
_OTHER_BUILTINS = """ASSOC BREAK CALL CLS COLOR COPY DATE DPATH ENDLOCAL FOR FTYPE GOTO
KEYS MKLINK MOVE PATH PAUSE POPD PROMPT PUSHD REM REN RENAME SET SETLOCAL SHIFT START TIME TITLE
VERIFY VOL"""
NOT_EMULATED_BUILTINS = frozenset(_OTHER_BUILTINS.split())
REG_OPERATIONS = frozenset(
    ("add", "delete", "copy", "save", "restore", "load", "unload", "compare", "export", "import")
)


class CmdSyntaxError(Exception):
    """cmd refuses the line before running any of it (errorlevel 255)."""


class NotEmulated(Exception):
    """Valid cmd this emulator does not do: say so loudly instead of guessing."""


class ExitLine(Exception):
    def __init__(self, code: int):
        super().__init__(code)
        self.code = code


# -- the parsed line -------------------------------------------------------------------------


@dataclass
class Redirect:
    handle: int
    op: str  # ">", ">>", "<", ">&" (target is a handle number)
    target: str


@dataclass
class Simple:
    text: str  # escapes resolved, quotes kept, redirections taken out
    redirects: list[Redirect] = field(default_factory=list)


@dataclass
class Block:
    body: Node
    redirects: list[Redirect] = field(default_factory=list)


@dataclass
class If:
    negate: bool
    ignore_case: bool
    kind: str  # exist, errorlevel, defined, compare
    args: list[str]
    body: Node


@dataclass
class Binary:
    op: str  # "&", "||", "&&"
    left: Node
    right: Node


Node = Simple | Block | If | Binary


# -- phase 0 and 1: the /c quote rule, %VAR% -------------------------------------------------


def strip_c_quotes(line: str, is_executable: Callable[[str], bool]) -> str:
    """What `cmd /c` does with the quotes of its command line (cmd /? documents it)."""
    text = line.lstrip(WHITESPACE)
    if not text.startswith('"'):
        return line
    quotes = [i for i, c in enumerate(text) if c == '"']
    if len(quotes) == 2:
        inner = text[1 : quotes[1]]
        if (
            not any(c in inner for c in "&<>()@^|")
            and any(c in inner for c in WHITESPACE)
            and is_executable(inner)
        ):
            return text
    if len(quotes) == 1:
        return text[1:]
    last = quotes[-1]
    return text[1:last] + text[last + 1 :]


def expand_variables(line: str, lookup: Callable[[str], str | None]) -> str:
    """cmd's command-line percent expansion: defined %NAME% replaced, the rest kept as is."""
    out: list[str] = []
    i, n = 0, len(line)
    while i < n:
        c = line[i]
        if c != "%":
            out.append(c)
            i += 1
            continue
        j = line.find("%", i + 1)
        if j < 0:
            out.append(line[i:])
            break
        value = _expand_one(line[i + 1 : j], lookup)
        if value is None:
            out.append("%" + line[i + 1 : j])
            i = j  # the closing % may open the next name
        else:
            out.append(value)
            i = j + 1
    return "".join(out)


def _expand_one(spec: str, lookup: Callable[[str], str | None]) -> str | None:
    if not spec:
        return None
    name, colon, modifier = spec.partition(":")
    value = lookup(name if colon else spec)
    if value is None or not colon:
        return value
    if modifier.startswith("~"):
        start_text, comma, length_text = modifier[1:].partition(",")
        try:
            start = int(start_text or "0")
            length = int(length_text) if comma else None
        except ValueError:
            return None
        size = len(value)
        start = max(0, size + start) if start < 0 else min(start, size)
        if length is None:
            return value[start:]
        end = start + length if length >= 0 else size + length
        return value[start : max(start, min(end, size))]
    old, equals, new = modifier.partition("=")
    if not equals or not old:
        return None
    if old.startswith("*"):
        found = value.lower().find(old[1:].lower())
        return value if found < 0 else new + value[found + len(old) - 1 :]
    return re.sub(re.escape(old), lambda _m: new, value, flags=re.IGNORECASE)


# -- phase 2: parsing ------------------------------------------------------------------------


class Parser:
    def __init__(self, text: str):
        self.s = text
        self.i = 0
        self.depth = 0

    def parse(self) -> Node | None:
        node = self.sequence()
        if self.i < len(self.s):  # a ")" that closes nothing at depth 0 cannot stop us
            raise CmdSyntaxError(f"{self.s[self.i]} was unexpected at this time.")
        return node

    # precedence, lowest first: &  ||  &&  |
    def sequence(self) -> Node | None:
        left = self.either()
        while self.operator() == "&":
            if left is None:
                raise CmdSyntaxError("& was unexpected at this time.")
            self.i += 1
            right = self.either()
            if right is not None:
                left = Binary("&", left, right)
        return left

    def either(self) -> Node | None:
        left = self.both()
        while self.operator() == "||":
            self.i += 2
            right = self.both()
            if left is None or right is None:
                raise CmdSyntaxError("|| was unexpected at this time.")
            left = Binary("||", left, right)
        return left

    def both(self) -> Node | None:
        left = self.command()
        while self.operator() == "&&":
            self.i += 2
            right = self.command()
            if left is None or right is None:
                raise CmdSyntaxError("&& was unexpected at this time.")
            left = Binary("&&", left, right)
        return left

    def operator(self) -> str | None:
        s, i = self.s, self.i
        if i >= len(s):
            return None
        if s.startswith("&&", i):
            return "&&"
        if s.startswith("||", i):
            return "||"
        if s[i] == "|":
            raise NotEmulated("pipes (|)")
        if s[i] == "&":
            return "&"
        return None

    def skip(self, chars: str = WHITESPACE) -> None:
        while self.i < len(self.s) and self.s[self.i] in chars:
            self.i += 1

    def command(self) -> Node | None:
        self.skip(DELIMITERS + "@")
        s = self.s
        if self.i >= len(s) or s[self.i] in "&|" or (s[self.i] == ")" and self.depth):
            return None
        if s[self.i] == "(":
            return self.block()
        if s[self.i : self.i + 2].lower() == "if" and s[self.i + 2 : self.i + 3] in (" ", "\t"):
            self.i += 2
            return self.if_command()
        return self.simple()

    def block(self) -> Block:
        self.i += 1
        self.depth += 1
        body = self.sequence()
        if self.i >= len(self.s) or self.s[self.i] != ")":
            raise CmdSyntaxError(BAD_SYNTAX)
        self.i += 1
        self.depth -= 1
        if body is None:
            raise CmdSyntaxError(") was unexpected at this time.")
        rest = self.simple()
        if rest.text.strip(WHITESPACE):
            word = rest.text.split()[0]
            if word.lower() == "else":
                raise NotEmulated("if ... else")
            raise CmdSyntaxError(f"{word} was unexpected at this time.")
        return Block(body, rest.redirects)

    def if_command(self) -> If:
        self.skip()
        ignore_case = negate = False
        if self.peek_word().lower() == "/i":
            ignore_case = True
            self.i += 2
            self.skip()
        if self.peek_word().lower() == "not":
            negate = True
            self.i += 3
            self.skip()
        word = self.peek_word().lower()
        if word in ("exist", "errorlevel", "defined"):
            self.i += len(word)
            self.skip()
            args = [self.token()]
            kind = word
        else:
            left = self.token(stop="=")
            self.skip()
            op_word = self.peek_word().lower()
            if self.s.startswith("==", self.i):
                self.i += 2
                while self.s.startswith("=", self.i):
                    self.i += 1
                op = "=="
            elif op_word in ("equ", "neq"):
                self.i += 3
                op = op_word
            elif op_word in ("lss", "leq", "gtr", "geq"):
                raise NotEmulated(f"if ... {op_word}")
            else:
                raise CmdSyntaxError(f"{op_word or 'if'} was unexpected at this time.")
            self.skip()
            args = [left, op, self.token()]
            kind = "compare"
        if not args[0] or (kind == "compare" and not args[2]):
            raise CmdSyntaxError(BAD_SYNTAX)
        self.skip()
        body = self.sequence()  # everything after the condition, & included
        if body is None:
            raise CmdSyntaxError(BAD_SYNTAX)
        return If(negate, ignore_case, kind, args, body)

    def peek_word(self) -> str:
        j = self.i
        while j < len(self.s) and self.s[j] not in WHITESPACE + '"&|<>()=':
            j += 1
        return self.s[self.i : j]

    def token(self, stop: str = "") -> str:
        """One argument of IF: quotes kept, ^ resolved, up to unquoted whitespace."""
        out: list[str] = []
        quoted = False
        s = self.s
        while self.i < len(s):
            c = s[self.i]
            if quoted:
                out.append(c)
                quoted = c != '"'
            elif c == '"':
                out.append(c)
                quoted = True
            elif c == "^":
                if self.i + 1 < len(s):
                    out.append(s[self.i + 1])
                    self.i += 1
            elif c in WHITESPACE + "&|<>" + stop or (c == ")" and self.depth):
                break
            else:
                out.append(c)
            self.i += 1
        return "".join(out)

    def simple(self) -> Simple:
        s, n = self.s, len(self.s)
        buf: list[str] = []
        plain: list[bool] = []  # buf[k] came from an unquoted, unescaped character
        redirects: list[Redirect] = []
        quoted = False
        while self.i < n:
            c = s[self.i]
            if quoted:
                buf.append(c)
                plain.append(False)
                quoted = c != '"'
                self.i += 1
            elif c == '"':
                buf.append(c)
                plain.append(False)
                quoted = True
                self.i += 1
            elif c == "^":
                if self.i + 1 < n:
                    buf.append(s[self.i + 1])
                    plain.append(False)
                self.i += 2
            elif c in "&|" or (c == ")" and self.depth):
                break
            elif c in "<>":
                handle = 0 if c == "<" else 1
                if (
                    buf
                    and buf[-1].isdigit()
                    and plain[-1]
                    and (len(buf) == 1 or buf[-2] in DELIMITERS)
                ):
                    handle = int(buf.pop())
                    plain.pop()
                redirects.append(self.redirection(c, handle))
            else:
                buf.append(c)
                plain.append(True)
                self.i += 1
        return Simple("".join(buf), redirects)

    def redirection(self, c: str, handle: int) -> Redirect:
        s = self.s
        self.i += 1
        op = c
        if c == ">" and s.startswith(">", self.i):
            op = ">>"
            self.i += 1
        if s.startswith("&", self.i):
            self.i += 1
            digit = s[self.i : self.i + 1]
            if not digit.isdigit():
                raise CmdSyntaxError(f"{digit or 'newline'} was unexpected at this time.")
            self.i += 1
            return Redirect(handle, ">&" if c == ">" else "<&", digit)
        self.skip()
        target = self.token()
        if not target:
            raise CmdSyntaxError(BAD_SYNTAX)
        return Redirect(handle, op, target)


# -- argument helpers ------------------------------------------------------------------------


def split_words(text: str, delimiters: str = WHITESPACE) -> list[str]:
    """cmd's own argument split for built-ins: quotes keep delimiters, and are kept."""
    words: list[str] = []
    current: list[str] = []
    quoted = False
    for c in text:
        if c == '"':
            quoted = not quoted
            current.append(c)
        elif c in delimiters and not quoted:
            if current:
                words.append("".join(current))
                current = []
        else:
            current.append(c)
    if current:
        words.append("".join(current))
    return words


def unquote(word: str) -> str:
    return word.replace('"', "")


def split_switches(text: str) -> list[str]:
    """Built-in arguments with run-together switches apart: "/s/q" is "/s" and "/q"."""
    words: list[str] = []
    for word in split_words(text, DELIMITERS):
        if word.startswith("/"):
            words += ["/" + part for part in word.split("/") if part]
        else:
            words.append(word)
    return words


def split_crt_args(text: str) -> list[str]:
    """argv as the Microsoft C runtime (2008 and later, the UCRT of python.exe) splits a
    command line after the program name."""
    args: list[str] = []
    i, n = 0, len(text)
    while True:
        while i < n and text[i] in WHITESPACE:
            i += 1
        if i >= n:
            return args
        arg: list[str] = []
        quoted = False
        while i < n:
            c = text[i]
            if c in WHITESPACE and not quoted:
                break
            if c == "\\":
                j = i
                while j < n and text[j] == "\\":
                    j += 1
                count = j - i
                if j < n and text[j] == '"':
                    arg.append("\\" * (count // 2))
                    if count % 2:
                        arg.append('"')
                        j += 1
                else:
                    arg.append("\\" * count)
                i = j
                continue
            if c == '"':
                if quoted and i + 1 < n and text[i + 1] == '"':
                    arg.append('"')  # "" inside quotes: a quote, still quoted
                    i += 2
                    continue
                quoted = not quoted
                i += 1
                continue
            arg.append(c)
            i += 1
        args.append("".join(arg))


def ntfs_key(name: str) -> tuple[tuple[int, ...], str]:
    """NTFS orders a folder by the upper-cased UTF-16 code units of the names."""
    units: list[int] = []
    for ch in name:
        up = ch.upper()
        code = ord(up if len(up) == 1 else ch)
        if code > 0xFFFF:
            code -= 0x10000
            units += [0xD800 + (code >> 10), 0xDC00 + (code & 0x3FF)]
        else:
            units.append(code)
    return tuple(units), name


def _has_wildcard(text: str) -> bool:
    return "*" in text or "?" in text


# -- paths -----------------------------------------------------------------------------------


class Drive:
    """C:\\ as a Linux folder."""

    def __init__(self, root: str):
        self.root = os.path.realpath(root)

    def inside(self, linux: str) -> bool:
        return linux == self.root or linux.startswith(self.root.rstrip("/") + "/")

    def to_windows(self, linux: str) -> str:
        if not self.inside(linux):
            return linux
        rel = os.path.relpath(linux, self.root)
        return "C:\\" if rel == "." else "C:\\" + rel.replace("/", "\\")

    def _base(self, cwd: str) -> tuple[str, list[str]]:
        if self.inside(cwd):
            rel = os.path.relpath(cwd, self.root)
            return self.root, [] if rel == "." else rel.split("/")
        return "/", [p for p in cwd.split("/") if p]

    def resolve(self, path: str, cwd: str) -> str | None:
        """The Linux path of a Windows path; None: another drive or a UNC path."""
        p = unquote(path).replace("/", "\\")
        if not p:
            return None
        drive = re.match(r"^([A-Za-z]):", p)
        if drive:
            if drive.group(1).upper() != "C":
                return None
            rest = p[2:]
            if rest.startswith("\\"):
                base, parts = self.root, []
            else:
                base, parts = self._base(cwd)
                if base != self.root:
                    base, parts = self.root, []
        elif p.startswith("\\\\"):
            return None
        elif p.startswith("\\"):
            base, parts, rest = self.root, [], p
        else:
            base, parts = self._base(cwd)
            rest = p
        segments = [s for s in rest.split("\\") if s]
        for k, seg in enumerate(segments):
            if seg == ".":
                continue
            if seg == "..":
                if parts:
                    parts.pop()
                continue
            if k == len(segments) - 1 and not rest.endswith("\\"):
                seg = seg.rstrip(" .") or seg  # Win32 drops trailing dots and spaces
            elif seg.endswith(".") and not seg.endswith(".."):
                seg = seg[:-1]
            parts.append(seg)
        return self._match(base, parts)

    @staticmethod
    def _match(base: str, parts: list[str]) -> str:
        """Each existing part in the case it has on disk (NTFS is case-insensitive)."""
        current = base
        for k, part in enumerate(parts):
            candidate = os.path.join(current, part)
            if not os.path.lexists(candidate):
                try:
                    names = sorted(os.listdir(current))
                except OSError:
                    names = []
                same = [n for n in names if n.upper() == part.upper()]
                if not same:
                    return os.path.join(current, *parts[k:])
                candidate = os.path.join(current, same[0])
            current = candidate
        return current


def windows_to_linux(path: str, drive_c: str, cwd: str | None = None) -> str | None:
    """For the server: a shell's Windows WorkingDirectory as a Linux folder."""
    drive = Drive(drive_c)
    return drive.resolve(path, cwd or drive.root)


# -- running ---------------------------------------------------------------------------------


@dataclass
class Streams:
    stdin: int = 0
    stdout: int = 1
    stderr: int = 2


def write(fd: int, text: str) -> None:
    write_bytes(fd, text.encode("utf-8", "surrogateescape"))


def write_bytes(fd: int, data: bytes) -> None:
    with contextlib.suppress(BrokenPipeError, OSError):
        while data:
            data = data[os.write(fd, data) :]


class CmdShell:
    def __init__(
        self,
        env: dict[str, str],
        cwd: str,
        drive_c: str,
        python: str = DEFAULT_PYTHON,
        winver: str = DEFAULT_WINVER,
    ):
        self.env = env
        self.drive = Drive(drive_c)
        self.cwd = os.path.realpath(cwd)
        self.python = python
        self.winver = winver
        self.errorlevel = 0

    @classmethod
    def from_environ(cls) -> CmdShell:
        env = dict(os.environ)
        env.pop(EXIT_FD_VAR, None)
        hidden = env.pop(HIDDEN_PYTHONPATH_VAR, None)
        if hidden is not None:
            drop = set(hidden.split(os.pathsep))
            kept = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p and p not in drop]
            if kept:
                env["PYTHONPATH"] = os.pathsep.join(kept)
            else:
                env.pop("PYTHONPATH", None)
        drive_c = env.get("WINRM_TEST_DRIVE_C")
        if not drive_c:
            raise NotEmulated("WINRM_TEST_DRIVE_C is not set: no C: drive")
        return cls(
            env,
            os.getcwd(),
            drive_c,
            env.get("WINRM_TEST_PYTHON") or DEFAULT_PYTHON,
            env.get("WINRM_TEST_WINVER") or DEFAULT_WINVER,
        )

    # -- the line --------------------------------------------------------------------------

    def run_line(self, line: str, streams: Streams | None = None) -> int:
        io = streams or Streams()
        try:
            text = strip_c_quotes(line, self._is_executable)
            text = expand_variables(text, self._variable)
            node = Parser(text).parse()
        except CmdSyntaxError as exc:
            write(io.stderr, f"{exc}{CRLF}")
            return UNSUPPORTED_RC
        except NotEmulated as exc:
            write(io.stderr, f"cmd_shell: not emulated: {exc}{CRLF}")
            return UNSUPPORTED_RC
        if node is None:
            return self.errorlevel
        try:
            self.execute(node, io)
        except ExitLine as exc:
            return exc.code
        except CmdSyntaxError as exc:
            write(io.stderr, f"{exc}{CRLF}")
            return UNSUPPORTED_RC
        except NotEmulated as exc:
            write(io.stderr, f"cmd_shell: not emulated: {exc}{CRLF}")
            return UNSUPPORTED_RC
        return self.errorlevel

    def _variable(self, name: str) -> str | None:
        upper = name.upper()
        for key, value in self.env.items():
            if key.upper() == upper:
                return value
        dynamic = {
            "CD": lambda: self.drive.to_windows(self.cwd),
            "ERRORLEVEL": lambda: str(self.errorlevel),
            "RANDOM": lambda: str(random.randint(0, 32767)),
            "CMDEXTVERSION": lambda: "2",
        }.get(upper)
        return dynamic() if dynamic else None

    def _is_executable(self, text: str) -> bool:
        path = self.drive.resolve(text, self.cwd)
        if path is None:
            return False
        return any(os.path.isfile(path + ext) for ext in ("", ".exe", ".com", ".bat", ".cmd"))

    def execute(self, node: Node, io: Streams) -> bool:
        """Run a node; True if it succeeded (what && and || look at)."""
        if isinstance(node, Binary):
            ok = self.execute(node.left, io)
            if node.op == "&" or (node.op == "&&") == ok:
                return self.execute(node.right, io)
            return ok
        if isinstance(node, If):
            if self.condition(node):
                return self.execute(node.body, io)
            return True
        with self.redirected(node.redirects, io) as inner:
            if inner is None:
                return False
            if isinstance(node, Block):
                return self.execute(node.body, inner)
            return self.simple(node.text, inner)

    @contextlib.contextmanager
    def redirected(self, redirects: list[Redirect], io: Streams) -> Iterator[Streams | None]:
        fds = {0: io.stdin, 1: io.stdout, 2: io.stderr}
        opened: list[int] = []
        try:
            for r in redirects:
                if r.op in (">&", "<&"):
                    fds[r.handle] = fds.get(int(r.target), int(r.target))
                    continue
                fd = self._open(r, fds[2])
                if fd is None:  # cmd runs nothing; the errorlevel stays, || sees a failure
                    yield None
                    return
                opened.append(fd)
                fds[r.handle] = fd
            yield Streams(fds[0], fds[1], fds[2])
        finally:
            for fd in opened:
                os.close(fd)

    def _open(self, r: Redirect, stderr: int) -> int | None:
        name = unquote(r.target)
        if name.rstrip(":").upper() == "NUL" or name.upper().endswith("\\NUL"):
            return os.open(os.devnull, os.O_RDWR)
        path = self.drive.resolve(name, self.cwd)
        if r.op == "<":
            flags = os.O_RDONLY
        else:
            flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if r.op == ">>" else os.O_TRUNC)
        try:
            if path is None:
                raise FileNotFoundError(errno.ENOENT, name)
            if os.path.isdir(path):
                raise PermissionError(errno.EACCES, name)
            return os.open(path, flags, 0o666)
        except FileNotFoundError:
            parent_ok = path is not None and os.path.isdir(os.path.dirname(path))
            write(stderr, (FILE_NOT_FOUND if parent_ok else PATH_NOT_FOUND) + CRLF)
        except OSError:
            write(stderr, ACCESS_DENIED + CRLF)
        return None

    def condition(self, node: If) -> bool:
        if node.kind == "exist":
            result = self._exists(node.args[0])
        elif node.kind == "errorlevel":
            try:
                result = self.errorlevel >= int(unquote(node.args[0]))
            except ValueError as exc:
                raise CmdSyntaxError(BAD_SYNTAX) from exc
        elif node.kind == "defined":
            result = any(key.upper() == node.args[0].upper() for key in self.env)
        else:
            left, op, right = node.args
            if node.ignore_case:
                left, right = left.lower(), right.lower()
            result = (left == right) == (op != "neq")
        return result != node.negate

    def _exists(self, word: str) -> bool:
        text = unquote(word).replace("/", "\\")
        if text.upper().endswith("\\NUL"):
            parent = self.drive.resolve(text[:-4] or "\\", self.cwd)
            return parent is not None and os.path.isdir(parent)
        head, _, last = text.rpartition("\\")
        if _has_wildcard(last):
            folder = self.drive.resolve(head + "\\" if head else ".", self.cwd)
            return bool(folder and self._glob(folder, last))
        path = self.drive.resolve(text, self.cwd)
        if path is None:
            return False
        if text.endswith("\\"):
            return os.path.isdir(path)
        return os.path.lexists(path)

    @staticmethod
    def _glob(folder: str, pattern: str) -> list[str]:
        try:
            names = os.listdir(folder)
        except OSError:
            return []
        up = pattern.upper()
        return [n for n in names if fnmatch.fnmatchcase(n.upper(), up)]

    # -- one command -----------------------------------------------------------------------

    def simple(self, text: str, io: Streams) -> bool:
        text = text.lstrip(DELIMITERS + "@")
        if not text:
            return True
        word = split_words(text, DELIMITERS)[0]
        name, rest = word.upper(), text[len(word) :]
        builtin = name if name in BUILTINS or name in NOT_EMULATED_BUILTINS else None
        if builtin is None:
            for known in sorted(BUILTINS, key=len, reverse=True):
                if name.startswith(known) and name[len(known)] in NAME_ENDS:
                    builtin, rest = known, text[len(known) :]
                    break
        if builtin in NOT_EMULATED_BUILTINS:
            raise NotEmulated(f"the {builtin.lower()} command")
        if builtin is not None:
            return BUILTINS[builtin](self, rest, io)
        return self.program(word, rest, io)

    def fail(self, io: Streams, message: str, errorlevel: int | None) -> bool:
        write(io.stderr, message + CRLF)
        if errorlevel is not None:
            self.errorlevel = errorlevel
        return False

    def echo(self, rest: str, io: Streams) -> bool:
        if not rest:
            write(io.stdout, "ECHO is on." + CRLF)
            return True
        separator, body = rest[0], rest[1:]
        if separator in DELIMITERS:
            if not body.strip(WHITESPACE):
                write(io.stdout, "ECHO is on." + CRLF)
            elif body.strip(WHITESPACE).lower() not in ("on", "off"):
                write(io.stdout, body + CRLF)
        else:
            write(io.stdout, body + CRLF)
        return True

    def ver(self, rest: str, io: Streams) -> bool:
        write(io.stdout, f"{CRLF}Microsoft Windows [Version {self.winver}]{CRLF}")
        self.errorlevel = 0
        return True

    def cd(self, rest: str, io: Streams) -> bool:
        text = rest.lstrip(DELIMITERS).rstrip(WHITESPACE)
        if re.match(r"^/d(?=$|[\s\"])", text, re.IGNORECASE):
            text = text[2:].strip(DELIMITERS)
        if not text:
            write(io.stdout, self.drive.to_windows(self.cwd) + CRLF)
            self.errorlevel = 0
            return True
        path = self.drive.resolve(unquote(text).rstrip(WHITESPACE), self.cwd)
        if path is None or not os.path.exists(path):
            return self.fail(io, PATH_NOT_FOUND, 1)
        if not os.path.isdir(path):
            return self.fail(io, NAME_INVALID, 1)
        if not os.access(path, os.X_OK):
            return self.fail(io, ACCESS_DENIED, 1)
        self.cwd = os.path.realpath(path)
        self.errorlevel = 0
        return True

    def mkdir(self, rest: str, io: Streams) -> bool:
        words = [unquote(w) for w in split_words(rest, DELIMITERS)]
        if not words:
            return self.fail(io, BAD_SYNTAX, 1)
        ok = True
        for word in words:
            path = self.drive.resolve(word, self.cwd)
            name = word.replace("/", "\\").rstrip("\\").rsplit("\\", 1)[-1]
            if any(c in name for c in "*?<>|:") and not re.fullmatch(r"[A-Za-z]:", name):
                ok = self.fail(io, BAD_NAME, None)
            elif path is None:
                ok = self.fail(io, PATH_NOT_FOUND, None)
            elif os.path.lexists(path):
                ok = self.fail(io, f"A subdirectory or file {word} already exists.", None)
            else:
                try:
                    os.makedirs(path)
                except (FileExistsError, NotADirectoryError):
                    ok = self.fail(io, PATH_NOT_FOUND, None)
                except OSError:
                    ok = self.fail(io, ACCESS_DENIED, None)
        self.errorlevel = 0 if ok else 1
        return ok

    def rmdir(self, rest: str, io: Streams) -> bool:
        words = split_switches(rest)
        switches = {w.lower() for w in words if w.startswith("/")}
        paths = [unquote(w) for w in words if not w.startswith("/")]
        if not paths or switches - {"/s", "/q"}:
            return self.fail(io, BAD_SYNTAX, 1 if not paths else None)
        ok = True
        for word in paths:
            ok = self._rmdir_one(word, "/s" in switches, "/q" in switches, io) and ok
        return ok

    def _rmdir_one(self, word: str, tree: bool, quiet: bool, io: Streams) -> bool:
        path = self.drive.resolve(word, self.cwd)
        if path is None or not os.path.lexists(path):
            parent_ok = path is not None and os.path.isdir(os.path.dirname(path))
            return self.fail(
                io, FILE_NOT_FOUND if parent_ok else PATH_NOT_FOUND, 2 + (not parent_ok)
            )
        if os.path.islink(path) and not os.path.isfile(path):
            try:
                os.unlink(path)  # a directory link goes, not what it points to
            except OSError:
                return self.fail(io, ACCESS_DENIED, 5)
            return True
        if not os.path.isdir(path):
            return self.fail(io, NAME_INVALID, 267)
        if not tree:
            if self._holds_cwd(path):
                return self.fail(io, IN_USE, 32)
            try:
                os.rmdir(path)
            except OSError as exc:
                if exc.errno in (errno.ENOTEMPTY, errno.EEXIST):
                    return self.fail(io, NOT_EMPTY, 145)
                return self.fail(io, ACCESS_DENIED, 5)
            return True
        if not quiet:
            write(io.stdout, f"{word}, Are you sure (Y/N)? ")
            answer = _read_line(io.stdin)
            if not answer.strip().upper().startswith("Y"):
                return True
        errors = self._remove_tree(path)
        for where, message in errors:
            if where == path:
                write(io.stderr, message + CRLF)
            else:
                write(io.stderr, f"{self.drive.to_windows(where)} - {message}{CRLF}")
        return not errors  # errorlevel untouched: only || sees it

    def _holds_cwd(self, path: str) -> bool:
        return self.cwd == path or self.cwd.startswith(path.rstrip("/") + "/")

    def _remove_tree(self, path: str) -> list[tuple[str, str]]:
        errors: list[tuple[str, str]] = []
        try:
            entries = list(os.scandir(path))
        except OSError:
            return [(path, ACCESS_DENIED)]
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                errors += self._remove_tree(entry.path)
                continue
            try:
                os.unlink(entry.path)
            except OSError:
                errors.append((entry.path, ACCESS_DENIED))
        if self._holds_cwd(path):  # cmd's own current directory cannot go
            if self.cwd == path:
                errors.append((path, IN_USE))
            return errors
        try:
            os.rmdir(path)
        except OSError as exc:
            if not errors or exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                errors.append((path, ACCESS_DENIED))
        return errors

    def dir(self, rest: str, io: Streams) -> bool:
        words = split_switches(rest)
        bare = False
        kinds = "all"
        for w in (w.lower() for w in words if w.startswith("/")):
            if w == "/b":
                bare = True
            elif w.startswith("/a"):
                attrs = w[2:].lstrip(":")
                if attrs not in ("", "d", "-d", "-h", "-s"):
                    raise NotEmulated(f"dir {w}")
                kinds = {"d": "dirs", "-d": "files"}.get(attrs, "all")
            elif w.startswith("/o"):
                if w[2:].lstrip(":") not in ("", "n"):
                    raise NotEmulated(f"dir {w}")
            else:
                raise NotEmulated(f"dir {w}")
        if not bare:
            raise NotEmulated("dir without /b")
        paths = [unquote(w) for w in words if not w.startswith("/")] or ["."]
        listed: list[str] = []
        ok = True
        for word in paths:
            names = self._dir_names(word, kinds, io)
            if names is None:
                ok = False
            else:
                listed += names
        if not ok or not listed:
            if ok:
                write(io.stderr, "File Not Found" + CRLF)
            self.errorlevel = 1
            return False
        write(io.stdout, "".join(n + CRLF for n in listed))
        self.errorlevel = 0
        return True

    def _dir_names(self, word: str, kinds: str, io: Streams) -> list[str] | None:
        text = word.replace("/", "\\")
        head, _, last = text.rpartition("\\")
        pattern = "*"
        path = self.drive.resolve(text, self.cwd)
        if _has_wildcard(last):
            pattern = last
            path = self.drive.resolve(
                head + "\\" if head or text.startswith("\\") else ".", self.cwd
            )
        if path is None or not os.path.isdir(os.path.dirname(path) or "/"):
            write(io.stderr, PATH_NOT_FOUND + CRLF)
            return None
        if os.path.isdir(path):
            try:
                names = os.listdir(path)
            except OSError:
                write(io.stderr, ACCESS_DENIED + CRLF)
                return None
            if path == self.drive.root:
                names = [n for n in names if n != EMULATED_DIR]
            folder = path
        elif os.path.lexists(path) and not _has_wildcard(last):
            folder, names = os.path.dirname(path), [os.path.basename(path)]
        else:
            write(io.stderr, "File Not Found" + CRLF)
            return None
        up = pattern.upper()
        chosen = []
        for n in names:
            if not fnmatch.fnmatchcase(n.upper(), up):
                continue
            is_dir = os.path.isdir(os.path.join(folder, n))
            if kinds == "all" or (kinds == "dirs") == is_dir:
                chosen.append(n)
        return sorted(chosen, key=ntfs_key)

    def type(self, rest: str, io: Streams) -> bool:
        words = split_words(rest, DELIMITERS)
        if not words:
            return self.fail(io, BAD_SYNTAX, 1)
        if len(words) > 1 or _has_wildcard(words[0]):
            raise NotEmulated("type of several files (it prints their names)")
        name = unquote(words[0])
        if name.rstrip(":").upper() == "NUL":
            return True
        path = self.drive.resolve(name, self.cwd)
        if path is None or not os.path.lexists(path):
            parent_ok = path is not None and os.path.isdir(os.path.dirname(path))
            return self.fail(io, FILE_NOT_FOUND if parent_ok else PATH_NOT_FOUND, 1)
        try:
            if os.path.isdir(path):
                raise PermissionError(errno.EACCES, path)
            with open(path, "rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    write_bytes(io.stdout, chunk)
        except OSError:
            return self.fail(io, ACCESS_DENIED, 1)
        return True

    def delete(self, rest: str, io: Streams) -> bool:
        words = split_switches(rest)
        switches = {w.lower() for w in words if w.startswith("/")}
        names = [unquote(w) for w in words if not w.startswith("/")]
        if switches - {"/f", "/q"}:
            raise NotEmulated(f"del {' '.join(sorted(switches - {'/f', '/q'}))}")
        if not names:
            return self.fail(io, BAD_SYNTAX, 1)
        ok = True
        for name in names:
            path = self.drive.resolve(name, self.cwd)
            if _has_wildcard(name) or (path is not None and os.path.isdir(path)):
                raise NotEmulated("del of a folder or a wildcard (it asks)")
            if path is None or not os.path.isdir(os.path.dirname(path)):
                ok = self.fail(io, PATH_NOT_FOUND, 1)
            elif not os.path.lexists(path):
                write(io.stderr, f"Could Not Find {self.drive.to_windows(path)}{CRLF}")
            else:
                try:
                    os.unlink(path)
                except OSError:
                    write(io.stderr, f"{self.drive.to_windows(path)}{CRLF}{ACCESS_DENIED}{CRLF}")
        return ok

    def exit(self, rest: str, io: Streams) -> bool:
        words = split_words(rest, DELIMITERS)
        if words and words[0].lower() == "/b":
            words = words[1:]
        if not words:
            raise ExitLine(self.errorlevel)
        found = re.match(r"^[+-]?\d+", words[0])
        raise ExitLine(int(found.group(0)) if found else 0)

    # -- programs --------------------------------------------------------------------------

    def program(self, word: str, rest: str, io: Streams) -> bool:
        path_text = unquote(word).replace("/", "\\")
        folder_text, _, base = path_text.rpartition("\\")
        has_folder = bool(folder_text) or ":" in path_text
        tool = base.lower()[:-4] if base.lower().endswith(".exe") else base.lower()
        system32 = self.env.get("SystemRoot", "C:\\Windows") + "\\System32"
        if tool in TOOLS and (
            not has_folder
            or self.drive.resolve(folder_text + "\\", self.cwd)
            == self.drive.resolve(system32, self.cwd)
        ):
            return self._finish(TOOLS[tool](self, split_crt_args(rest), io))
        if has_folder:
            path = self.drive.resolve(path_text, self.cwd)
            if path is None or not os.path.isdir(os.path.dirname(path)):
                return self.fail(io, PATH_NOT_FOUND, 3)
            if tool == "python":
                for candidate in (path, path + ".exe"):
                    if candidate.lower().endswith("python.exe") and os.path.isfile(candidate):
                        return self._finish(self.run_python(split_crt_args(rest), io))
        message = (
            f"'{word}' is not recognized as an internal or external command,{CRLF}"
            "operable program or batch file."
        )
        return self.fail(io, message, NOT_RECOGNIZED_RC)

    def _finish(self, code: int) -> bool:
        self.errorlevel = code
        return code == 0

    def run_python(self, argv: list[str], io: Streams) -> int:
        previous = signal.signal(signal.SIGINT, lambda *_: None)  # Ctrl-C is the child's
        try:
            proc = subprocess.Popen(
                [self.python, *argv],
                cwd=self.cwd,
                env=self.env,
                stdin=io.stdin,
                stdout=io.stdout,
                stderr=io.stderr,
            )
            code = proc.wait()
        finally:
            signal.signal(signal.SIGINT, previous)
        if code < 0:  # killed: die the same way, so the server sees the same signal
            signal.signal(-code, signal.SIG_DFL)
            os.kill(os.getpid(), -code)
            return 128 - code
        return code

    def reg(self, argv: list[str], io: Streams) -> int:
        if not argv or argv[0].lower() != "query":
            if argv and argv[0].lower() in REG_OPERATIONS | {"flags"}:
                raise NotEmulated(f"reg {argv[0].lower()}")
            write(io.stderr, f'ERROR: Invalid syntax.{CRLF}Type "REG /?" for usage.{CRLF}')
            return 1
        usage = f'ERROR: Invalid syntax.{CRLF}Type "REG QUERY /?" for usage.{CRLF}'
        if len(argv) < 2:
            write(io.stderr, usage)
            return 1
        value_name: str | None = None
        default_value = recurse = False
        k = 2
        while k < len(argv):
            option = argv[k].lower()
            if option in ("/v", "-v") and k + 1 < len(argv) and value_name is None:
                value_name = argv[k + 1]
                k += 1
            elif option in ("/ve", "-ve") and not default_value:
                default_value = True
            elif option in ("/s", "-s") and not recurse:
                recurse = True
            elif option in ("/reg:32", "/reg:64", "-reg:32", "-reg:64"):
                pass
            elif option[:1] in "/-" and option[1:] in ("f", "k", "d", "c", "e", "t", "z", "se"):
                raise NotEmulated(f"reg query {argv[k]}")
            else:
                write(io.stderr, usage)
                return 1
            k += 1
        if value_name is not None and default_value:
            write(io.stderr, usage)
            return 1
        root_text, _, sub = argv[1].partition("\\")
        if argv[1].startswith("\\\\"):
            raise NotEmulated("reg query of another machine")
        root = REG_ROOTS.get(root_text.upper(), root_text.upper())
        if root not in REG_ROOTS.values():
            write(io.stderr, f'ERROR: Invalid key name.{CRLF}Type "REG QUERY /?" for usage.{CRLF}')
            return 1
        sub = sub.rstrip("\\")
        key_name = root + ("\\" + sub if sub else "")
        parts = [p for p in sub.split("\\") if p]
        folder = Drive._match(os.path.join(self.drive.root, EMULATED_DIR, "registry", root), parts)
        if not os.path.isdir(folder):
            write(io.stderr, REG_NOT_FOUND + CRLF)
            return 1
        out: list[str] = [CRLF]
        if value_name is not None or default_value:
            wanted = "(Default)" if default_value else value_name or "(Default)"
            found = self._reg_query_value(folder, key_name, wanted, recurse, out)
            if recurse:
                out.append(f"End of search: {found} match(es) found.{CRLF}")
            elif not found:
                write(io.stderr, REG_NOT_FOUND + CRLF)
                return 1
        else:
            self._reg_query_all(folder, key_name, recurse, False, out)
        write(io.stdout, "".join(out))
        return 0

    @staticmethod
    def _reg_entries(folder: str) -> tuple[list[str], list[str]]:
        names = sorted(os.listdir(folder), key=ntfs_key)
        subkeys = [n for n in names if os.path.isdir(os.path.join(folder, n))]
        values = [n for n in names if os.path.isfile(os.path.join(folder, n))]
        return subkeys, values

    @staticmethod
    def _reg_value(folder: str, name: str) -> str:
        with open(os.path.join(folder, name), encoding="utf-8", errors="surrogateescape") as fh:
            content = fh.read()
        kind, _, data = content.partition("\n")
        kind = kind.strip() or "REG_SZ"
        data = data[:-1] if data.endswith("\n") else data
        data = data[:-1] if data.endswith("\r") else data
        if kind in ("REG_DWORD", "REG_QWORD", "REG_DWORD_BIG_ENDIAN"):
            with contextlib.suppress(ValueError):
                data = f"0x{int(data.strip(), 0):x}"
        elif kind == "REG_MULTI_SZ":
            data = "\\0".join(data.splitlines())
        elif kind in ("REG_BINARY", "REG_NONE"):
            data = "".join(data.split()).upper()
        return f"    {name}    {kind}    {data}{CRLF}"

    def _reg_query_all(
        self, folder: str, key_name: str, recurse: bool, recursing: bool, out: list[str]
    ) -> None:
        subkeys, values = self._reg_entries(folder)
        if values or recursing:
            out.append(key_name + CRLF)
        out += [self._reg_value(folder, v) for v in values]
        if values or recursing:
            out.append(CRLF)
        for sub in subkeys:
            if recurse:
                self._reg_query_all(
                    os.path.join(folder, sub), f"{key_name}\\{sub}", True, True, out
                )
            else:
                out.append(f"{key_name}\\{sub}{CRLF}")

    def _reg_query_value(
        self, folder: str, key_name: str, wanted: str, recurse: bool, out: list[str]
    ) -> int:
        subkeys, values = self._reg_entries(folder)
        found = 0
        match = next((v for v in values if v.upper() == wanted.upper()), None)
        if match is not None:
            out += [key_name + CRLF, self._reg_value(folder, match), CRLF]
            found = 1
        if recurse:
            for sub in subkeys:
                found += self._reg_query_value(
                    os.path.join(folder, sub), f"{key_name}\\{sub}", wanted, True, out
                )
        return found

    def schtasks(self, argv: list[str], io: Streams) -> int:
        words = [a.lower().replace("-", "/", 1) if a[:1] == "-" else a.lower() for a in argv]
        query = header = True
        fmt = None
        k = 0
        while k < len(words):
            w = words[k]
            if w == "/query" and k == 0:
                query = True
            elif w == "/fo" and k + 1 < len(words):
                fmt = words[k + 1]
                k += 1
            elif w == "/nh":
                header = False
            elif w in ("/v", "/s", "/u", "/p", "/tn", "/xml", "/hresult", "/?") or (
                k == 0 and w.startswith("/")
            ):
                raise NotEmulated(f"schtasks {argv[k]}")
            else:
                write(
                    io.stderr,
                    f"ERROR: Invalid argument/option - '{argv[k]}'.{CRLF}"
                    f'Type "SCHTASKS /QUERY /?" for usage.{CRLF}',
                )
                return 1
            k += 1
        if not query or fmt != "csv":
            raise NotEmulated(f"schtasks /query /fo {fmt or 'table'}")
        path = os.path.join(self.drive.root, EMULATED_DIR, "schtasks.csv")
        try:
            with open(path, encoding="utf-8", errors="surrogateescape") as fh:
                rows = [line for line in fh.read().splitlines() if line.strip()]
        except FileNotFoundError:
            rows = []
        if not rows:
            write(io.stdout, NO_TASKS + CRLF)
            return 0
        write(io.stdout, "".join(r + CRLF for r in ([TASKS_HEADER] if header else []) + rows))
        return 0

    def _certutil_failed(
        self, io: Streams, verb: str, hresult: int, symbol: str, message: str
    ) -> int:
        detail = (
            f"WIN32: {hresult & 0xFFFF} {symbol}"
            if hresult >> 16 == 0x8007
            else f"{hresult - (1 << 32)} {symbol}"
        )
        write(
            io.stdout,
            f"CertUtil: {verb} command FAILED: 0x{hresult:08x} ({detail}){CRLF}"
            f"CertUtil: {message}{CRLF}",
        )
        return hresult - (1 << 32)  # the HRESULT, as cmd's signed ERRORLEVEL

    def _certutil_input(self, io: Streams, verb: str, name: str) -> bytes | int:
        """The bytes of an input file, or certutil's exit code for why not."""
        path = self.drive.resolve(name, self.cwd)
        if path is None or not os.path.isdir(os.path.dirname(path)):
            return self._certutil_failed(
                io, verb, 0x80070003, "ERROR_PATH_NOT_FOUND", PATH_NOT_FOUND
            )
        if not os.path.exists(path):
            return self._certutil_failed(
                io, verb, 0x80070002, "ERROR_FILE_NOT_FOUND", FILE_NOT_FOUND
            )
        try:
            if os.path.isdir(path):
                raise PermissionError(errno.EACCES, path)
            with open(path, "rb") as fh:
                data = fh.read()
        except OSError:
            return self._certutil_failed(io, verb, 0x80070005, "ERROR_ACCESS_DENIED", ACCESS_DENIED)
        if not data:  # certutil maps the file: an empty one cannot be (Windows 7)
            return self._certutil_failed(
                io,
                verb,
                0x800703EE,
                "ERROR_FILE_INVALID",
                "The volume for a file has been externally altered so that the opened file is "
                "no longer valid.",
            )
        return data

    def _certutil_output(self, io: Streams, verb: str, name: str, data: bytes) -> int:
        path = self.drive.resolve(name, self.cwd)
        if path is None or not os.path.isdir(os.path.dirname(path)):
            return self._certutil_failed(
                io, verb, 0x80070003, "ERROR_PATH_NOT_FOUND", PATH_NOT_FOUND
            )
        try:
            # CREATE_NEW: an existing file, a link too, is refused (without -f).
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            return self._certutil_failed(
                io, verb, 0x80070050, "ERROR_FILE_EXISTS", "The file exists."
            )
        except OSError:
            return self._certutil_failed(io, verb, 0x80070005, "ERROR_ACCESS_DENIED", ACCESS_DENIED)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        return 0

    def _certutil_convert(self, argv: list[str], io: Streams) -> int:
        verb = "-" + argv[0][1:].lower()
        if len(argv) != 3:
            raise NotEmulated(f"certutil {verb} with {len(argv) - 1} arguments")
        data = self._certutil_input(io, verb, argv[1])
        if isinstance(data, int):
            return data
        if verb == "-encode":
            text = base64.b64encode(data)
            lines = [text[i : i + 64] for i in range(0, len(text), 64)]
            out = b"".join(
                line + b"\r\n"
                for line in [b"-----BEGIN CERTIFICATE-----", *lines, b"-----END CERTIFICATE-----"]
            )
        else:
            body = data.splitlines()
            begin = next((k for k, x in enumerate(body) if x.startswith(b"-----BEGIN ")), None)
            if begin is not None:
                end = next(
                    (k for k, x in enumerate(body) if k > begin and x.startswith(b"-----END ")),
                    len(body),
                )
                body = body[begin + 1 : end]
            try:
                out = base64.b64decode(b"".join(b"".join(body).split()), validate=True)
            except ValueError:
                out = b""
            if not out:
                return self._certutil_failed(
                    io, verb, 0x8007000D, "ERROR_INVALID_DATA", "The data is invalid."
                )
        code = self._certutil_output(io, verb, argv[2], out)
        if code == 0:
            write(
                io.stdout,
                f"Input Length = {len(data)}{CRLF}Output Length = {len(out)}{CRLF}"
                f"CertUtil: {verb} command completed successfully.{CRLF}",
            )
        return code

    def certutil(self, argv: list[str], io: Streams) -> int:
        verb = argv[0].lower() if argv else ""
        if verb in ("-encode", "/encode", "-decode", "/decode"):
            return self._certutil_convert(argv, io)
        if verb not in ("-hashfile", "/hashfile"):
            raise NotEmulated(f"certutil {argv[0] if argv else ''}".strip())
        if len(argv) not in (2, 3):
            raise NotEmulated("certutil -hashfile with " + str(len(argv) - 1) + " arguments")
        name = argv[1]
        algorithm = argv[2].upper() if len(argv) == 3 else "SHA1"
        if algorithm not in HASHES:
            return self._certutil_failed(
                io, "-hashfile", 0x80090008, "NTE_BAD_ALGID", "Invalid algorithm specified."
            )
        data = self._certutil_input(io, "-hashfile", name)
        if isinstance(data, int):
            return data
        spaced = " ".join(f"{b:02x}" for b in hashlib.new(HASHES[algorithm], data).digest())
        write(
            io.stdout,
            f"{algorithm} hash of file {name}:{CRLF}{spaced}{CRLF}"
            f"CertUtil: -hashfile command completed successfully.{CRLF}",
        )
        return 0

    def findstr(self, argv: list[str], io: Streams) -> int:
        if any(a.startswith("/") for a in argv):
            raise NotEmulated("findstr options")
        if not argv or argv[0] != "^":
            raise NotEmulated('findstr with a search string other than "^"')
        if len(argv) > 2:
            raise NotEmulated("findstr in several files (it prints their names)")
        if len(argv) == 1:
            return self._findstr_lines(io.stdin, io, from_stdin=True)
        path = self.drive.resolve(argv[1], self.cwd)
        try:
            if path is None or os.path.isdir(path):
                raise FileNotFoundError(errno.ENOENT, argv[1])
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            write(io.stderr, f"FINDSTR: Cannot open {argv[1]}{CRLF}")
            return 1
        try:
            return self._findstr_lines(fd, io, from_stdin=False)
        finally:
            os.close(fd)

    @staticmethod
    def _findstr_lines(fd: int, io: Streams, from_stdin: bool) -> int:
        pending = b""
        printed = False
        while True:
            try:
                chunk = os.read(fd, 1 << 16)
            except OSError:
                chunk = b""
            if not chunk:
                break
            pending += chunk
            complete, newline, pending = pending.rpartition(b"\n")
            if newline:
                if from_stdin and max(map(len, complete.split(b"\n"))) > 8191:
                    raise NotEmulated("findstr with a stdin line longer than 8191 bytes")
                write_bytes(io.stdout, complete + b"\n")
                printed = True
            if from_stdin and len(pending) > 8191:
                raise NotEmulated("findstr with a stdin line longer than 8191 bytes")
        if pending:
            write_bytes(io.stdout, pending + (b"\r\n" if from_stdin else b""))
            printed = True
        return 0 if printed else 1


def _read_line(fd: int) -> str:
    data = b""
    with contextlib.suppress(OSError):
        while not data.endswith(b"\n"):
            chunk = os.read(fd, 1)
            if not chunk:
                break
            data += chunk
    return data.decode("utf-8", "replace")


BUILTINS: dict[str, Callable[[CmdShell, str, Streams], bool]] = {
    "ECHO": CmdShell.echo,
    "VER": CmdShell.ver,
    "CD": CmdShell.cd,
    "CHDIR": CmdShell.cd,
    "MD": CmdShell.mkdir,
    "MKDIR": CmdShell.mkdir,
    "RD": CmdShell.rmdir,
    "RMDIR": CmdShell.rmdir,
    "DIR": CmdShell.dir,
    "TYPE": CmdShell.type,
    "DEL": CmdShell.delete,
    "ERASE": CmdShell.delete,
    "EXIT": CmdShell.exit,
}
TOOLS: dict[str, Callable[[CmdShell, list[str], Streams], int]] = {
    "reg": CmdShell.reg,
    "schtasks": CmdShell.schtasks,
    "certutil": CmdShell.certutil,
    "findstr": CmdShell.findstr,
}


def report_exit(code: int) -> None:
    fd = os.environ.get(EXIT_FD_VAR)
    if fd and fd.isdigit():
        with contextlib.suppress(OSError):
            os.write(int(fd), str(code).encode("ascii"))


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # Ctrl-C ends a built-in as it ends sh
    try:
        code = CmdShell.from_environ().run_line(" ".join(args))
    except NotEmulated as exc:
        write(2, f"cmd_shell: not emulated: {exc}{CRLF}")
        code = UNSUPPORTED_RC
    report_exit(code)
    return code & 0xFF


if __name__ == "__main__":
    raise SystemExit(main())
