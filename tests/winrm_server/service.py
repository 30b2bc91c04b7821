"""The Windows Remote Shell operations: Create, Command, Send, Receive, Signal, Delete.

Each handler follows the MS-WSMV section named in its docstring; the message shapes are the
ones pywinrm 0.5.0 (winrm/protocol.py) sends and parses. MS-WSMV 3.1.4.1.7: the client's
wsman:MaxEnvelopeSize bounds the *response*, so Receive hands out at most as much output as
fits in min(client value, MaxEnvelopeSizekb); a value under 8192 octets is a w:EncodingLimit
fault.
"""

from __future__ import annotations

import base64
import binascii
import threading
from collections import Counter
from xml.sax.saxutils import escape

from . import faults
from .shells import Shell, ShellTable
from .soap import NS, SHELL_URI, Request, attr, response

SHELL_NS = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell"
TRANSFER = "http://schemas.xmlsoap.org/ws/2004/09/transfer"
DONE = f"{SHELL_NS}/CommandState/Done"
RUNNING = f"{SHELL_NS}/CommandState/Running"
SIGNAL_TERMINATE = f"{SHELL_NS}/signal/terminate"
SIGNAL_CTRL_C = f"{SHELL_NS}/signal/ctrl_c"
SIGNAL_CTRL_BREAK = f"{SHELL_NS}/signal/ctrl_break"
MIN_ENVELOPE = 8192
ENVELOPE_OVERHEAD = 2048  # room for the SOAP around the base64 streams


class ShellService:
    def __init__(self, shells: ShellTable, endpoint: str, max_envelope_bytes: int):
        self.shells = shells
        self.endpoint = endpoint
        self.max_envelope_bytes = max_envelope_bytes
        self.stopping = threading.Event()
        self._counts_lock = threading.Lock()
        self.action_counts: Counter[str] = Counter()
        self.fault_counts: Counter[int] = Counter()

    def count_fault(self, fault: faults.WSManFault) -> None:
        with self._counts_lock:
            self.fault_counts[fault.wsman_code] += 1

    def handle(self, request: Request, user: str) -> str:
        """The response envelope; raises WSManFault for a fault."""
        name = request.action_name
        with self._counts_lock:
            self.action_counts[name] += 1
        if request.max_envelope_size is not None and request.max_envelope_size < MIN_ENVELOPE:
            raise faults.encoding_limit()
        if request.resource_uri != SHELL_URI:
            raise faults.resource_not_found(request.resource_uri)
        handler = {
            f"{TRANSFER}/Create": self.create,
            f"{SHELL_NS}/Command": self.command,
            f"{SHELL_NS}/Send": self.send,
            f"{SHELL_NS}/Receive": self.receive,
            f"{SHELL_NS}/Signal": self.signal,
            f"{TRANSFER}/Delete": self.delete,
        }.get(request.action)
        if handler is None:
            raise faults.action_not_supported(request.action)
        return handler(request, user)

    def _shell(self, request: Request, user: str) -> Shell:
        return self.shells.get(user, request.selectors.get("ShellId"))

    def create(self, request: Request, user: str) -> str:
        """MS-WSMV 3.1.4.5.2: rsp:Shell in, x:ResourceCreated (+ rsp:Shell) out."""
        body = request.body.find("rsp:Shell", NS)
        if body is None:
            raise faults.schema_validation("The SOAP packet does not contain an rsp:Shell.")
        env = {
            node.get("Name", ""): node.text or ""
            for node in body.findall("rsp:Environment/rsp:Variable", NS)
        }
        workdir = body.findtext("rsp:WorkingDirectory", None, NS)
        inputs = body.findtext("rsp:InputStreams", "stdin", NS) or ""
        outputs = body.findtext("rsp:OutputStreams", "stdout stderr", NS) or ""
        shell = self.shells.create(user, workdir, env, inputs, outputs)
        sid = shell.shell_id
        created = (
            f"<x:ResourceCreated><a:Address>{escape(self.endpoint)}</a:Address>"
            f"<a:ReferenceParameters><w:ResourceURI>{SHELL_URI}</w:ResourceURI>"
            f'<w:SelectorSet><w:Selector Name="ShellId">{sid}</w:Selector></w:SelectorSet>'
            "</a:ReferenceParameters></x:ResourceCreated>"
            f"<rsp:Shell><rsp:ShellId>{sid}</rsp:ShellId>"
            f"<rsp:ResourceUri>{SHELL_URI}</rsp:ResourceUri>"
            f"<rsp:Owner>{escape(user)}</rsp:Owner>"
            f"<rsp:InputStreams>{escape(inputs)}</rsp:InputStreams>"
            f"<rsp:OutputStreams>{escape(outputs)}</rsp:OutputStreams>"
            "</rsp:Shell>"
        )
        return response(f"{TRANSFER}/CreateResponse", request.message_id, created)

    def command(self, request: Request, user: str) -> str:
        """MS-WSMV 3.1.4.11: rsp:CommandLine (Command + Arguments) -> rsp:CommandId."""
        shell = self._shell(request, user)
        line = request.body.find("rsp:CommandLine", NS)
        program = line.findtext("rsp:Command", "", NS) if line is not None else ""
        if line is None or not program.strip():
            raise faults.schema_validation("The SOAP packet contains no Command element.")
        args = [(node.text or "") for node in line.findall("rsp:Arguments", NS)]
        command = self.shells.start(shell, " ".join([program.strip(), *args]).strip())
        body = (
            f"<rsp:CommandResponse><rsp:CommandId>{command.command_id}</rsp:CommandId>"
            "</rsp:CommandResponse>"
        )
        return response(f"{SHELL_NS}/CommandResponse", request.message_id, body)

    def send(self, request: Request, user: str) -> str:
        """MS-WSMV 3.1.4.13: base64 rsp:Stream Name="stdin"; End="true" closes stdin."""
        shell = self._shell(request, user)
        streams = request.body.findall("rsp:Send/rsp:Stream", NS)
        if not streams:
            raise faults.schema_validation("The SOAP packet contains no Stream element.")
        for stream in streams:
            command = self.shells.command(shell, stream.get("CommandId"))
            try:
                data = base64.b64decode((stream.text or "").strip(), validate=True)
            except (binascii.Error, ValueError) as exc:
                raise faults.schema_validation("The stdin stream is not base64.") from exc
            command.send(data, stream.get("End", "false").lower() == "true")
        return response(f"{SHELL_NS}/SendResponse", request.message_id, "<rsp:SendResponse/>")

    def receive(self, request: Request, user: str) -> str:
        """MS-WSMV 3.1.4.14: long-poll for output; w:TimedOut when OperationTimeout passes."""
        shell = self._shell(request, user)
        desired = request.body.find("rsp:Receive/rsp:DesiredStream", NS)
        if desired is None:
            raise faults.schema_validation("The SOAP packet contains no DesiredStream element.")
        command = self.shells.command(shell, desired.get("CommandId"))
        limit = min(request.max_envelope_size or self.max_envelope_bytes, self.max_envelope_bytes)
        max_bytes = max(1024, (limit - ENVELOPE_OVERHEAD) * 3 // 4)
        out = command.receive(request.operation_timeout, max_bytes, self.stopping)
        if out is None:
            raise faults.operation_timed_out()
        cid = command.command_id
        parts = [
            f"<rsp:Stream Name={attr(name)} CommandId={attr(cid)}>"
            f"{base64.b64encode(data).decode()}</rsp:Stream>"
            for name, data in out.streams
        ]
        parts += [
            f'<rsp:Stream Name={attr(name)} CommandId={attr(cid)} End="true"></rsp:Stream>'
            for name in out.ended
        ]
        if out.done:
            parts.append(
                f"<rsp:CommandState CommandId={attr(cid)} State={attr(DONE)}>"
                f"<rsp:ExitCode>{out.exit_code}</rsp:ExitCode></rsp:CommandState>"
            )
        else:
            parts.append(f"<rsp:CommandState CommandId={attr(cid)} State={attr(RUNNING)}/>")
        body = f"<rsp:ReceiveResponse>{''.join(parts)}</rsp:ReceiveResponse>"
        return response(f"{SHELL_NS}/ReceiveResponse", request.message_id, body)

    def signal(self, request: Request, user: str) -> str:
        """MS-WSMV 3.1.4.12 / 2.2.4.38: terminate ends the command and frees it; ctrl_c
        interrupts it."""
        shell = self._shell(request, user)
        node = request.body.find("rsp:Signal", NS)
        if node is None:
            raise faults.schema_validation("The SOAP packet contains no Signal element.")
        command = self.shells.command(shell, node.get("CommandId"))
        code = (node.findtext("rsp:Code", "", NS) or "").strip()
        # pywinrm sends ".../signal/terminate", the spec text ".../Terminate": both work.
        if code.lower() == SIGNAL_TERMINATE.lower():
            self.shells.forget(shell, command)
        elif code.lower() in (SIGNAL_CTRL_C.lower(), SIGNAL_CTRL_BREAK.lower()):
            command.ctrl_c()
        else:
            raise faults.invalid_parameter()
        return response(f"{SHELL_NS}/SignalResponse", request.message_id, "<rsp:SignalResponse/>")

    def delete(self, request: Request, user: str) -> str:
        """MS-WSMV 3.1.4.4.1: close the shell; its running commands are terminated."""
        self.shells.delete(user, request.selectors.get("ShellId"))
        return response(f"{TRANSFER}/DeleteResponse", request.message_id, "")
