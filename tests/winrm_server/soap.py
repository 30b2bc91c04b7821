"""SOAP envelopes of the Windows Remote Shell: reading requests, writing responses.

Taken from:
* pywinrm 0.5.0 winrm/protocol.py (what the real client sends: wsa:Action, wsa:MessageID,
  w:ResourceURI, w:SelectorSet/w:Selector Name="ShellId", w:OptionSet, w:OperationTimeout
  "PT<n>S", w:MaxEnvelopeSize 153600, and the bodies rsp:Shell, rsp:CommandLine, rsp:Send,
  rsp:Receive, rsp:Signal) and winrm/tests/conftest.py (responses recorded from Windows: the
  s:/a:/x:/w:/rsp:/p: prefixes, x:ResourceCreated with the ShellId selector, rsp:CommandResponse,
  rsp:ReceiveResponse with base64 rsp:Stream, End="true" and rsp:CommandState/rsp:ExitCode,
  an empty rsp:SignalResponse, an empty DeleteResponse body).
* MS-WSMV 3.1.4.5.2 (CreateResponse also carries an rsp:Shell describing the shell),
  3.1.4.1.6 (wsman:OperationTimeout is an xs:duration) and 2.2.4.10 (MaxTimeoutms 60000).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from xml.etree import ElementTree
from xml.sax.saxutils import escape, quoteattr

NS = {
    "s": "http://www.w3.org/2003/05/soap-envelope",
    "a": "http://schemas.xmlsoap.org/ws/2004/08/addressing",
    "x": "http://schemas.xmlsoap.org/ws/2004/09/transfer",
    "w": "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd",
    "p": "http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd",
    "rsp": "http://schemas.microsoft.com/wbem/wsman/1/windows/shell",
    "f": "http://schemas.microsoft.com/wbem/wsman/1/wsmanfault",
}
SHELL_URI = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd"
DEFAULT_OPERATION_TIMEOUT = 60.0  # MaxTimeoutms default, used when a request names none

_DURATION = re.compile(
    r"^P(?:(?P<d>\d+(?:\.\d+)?)D)?"
    r"(?:T(?:(?P<h>\d+(?:\.\d+)?)H)?(?:(?P<m>\d+(?:\.\d+)?)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?$"
)


class MalformedRequest(ValueError):
    """The body is not a WS-Management request this server can read."""


@dataclass
class Request:
    action: str
    resource_uri: str
    message_id: str | None
    selectors: dict[str, str]
    options: dict[str, str]
    operation_timeout: float
    max_envelope_size: int | None
    body: ElementTree.Element

    @property
    def action_name(self) -> str:
        """The last segment of the action URI: Create, Command, Receive, ..."""
        return self.action.rstrip("/").rsplit("/", 1)[-1]


def parse_duration(text: str) -> float:
    match = _DURATION.match(text.strip())
    if not match or not any(match.groupdict().values()):
        raise MalformedRequest(f"bad xs:duration {text!r}")
    parts = {k: float(v) if v else 0.0 for k, v in match.groupdict().items()}
    return parts["d"] * 86400 + parts["h"] * 3600 + parts["m"] * 60 + parts["s"]


def _text(root: ElementTree.Element, path: str) -> str | None:
    node = root.find(path, NS)
    return node.text.strip() if node is not None and node.text else None


def parse_request(data: bytes) -> Request:
    try:
        root = ElementTree.fromstring(data)
    except ElementTree.ParseError as exc:
        raise MalformedRequest(f"the request is not well-formed XML ({exc})") from exc
    header = root.find("s:Header", NS)
    body = root.find("s:Body", NS)
    if root.tag != f"{{{NS['s']}}}Envelope" or header is None or body is None:
        raise MalformedRequest("the request is not a SOAP 1.2 envelope")
    action = _text(header, "a:Action")
    if not action:
        raise MalformedRequest("the request has no wsa:Action header")
    selectors = {
        node.get("Name", ""): (node.text or "").strip()
        for node in header.findall("w:SelectorSet/w:Selector", NS)
    }
    options = {
        node.get("Name", ""): (node.text or "").strip()
        for node in header.findall("w:OptionSet/w:Option", NS)
    }
    timeout_text = _text(header, "w:OperationTimeout")
    size_text = _text(header, "w:MaxEnvelopeSize")
    try:
        max_size = int(size_text) if size_text else None
    except ValueError as exc:
        raise MalformedRequest(f"bad w:MaxEnvelopeSize {size_text!r}") from exc
    return Request(
        action=action,
        resource_uri=_text(header, "w:ResourceURI") or "",
        message_id=_text(header, "a:MessageID"),
        selectors=selectors,
        options=options,
        operation_timeout=(
            parse_duration(timeout_text) if timeout_text else DEFAULT_OPERATION_TIMEOUT
        ),
        max_envelope_size=max_size,
        body=body,
    )


def envelope_open() -> str:
    names = " ".join(f'xmlns:{prefix}="{uri}"' for prefix, uri in NS.items() if prefix != "f")
    return f'<s:Envelope xml:lang="en-US" {names}>'


def response(action: str, relates_to: str | None, body: str) -> str:
    """A response envelope; `action` is the response action URI."""
    related = f"<a:RelatesTo>{escape(relates_to)}</a:RelatesTo>" if relates_to else ""
    header = (
        f"<s:Header><a:Action>{action}</a:Action>"
        f"<a:MessageID>uuid:{str(uuid.uuid4()).upper()}</a:MessageID>"
        f"<a:To>{NS['a']}/role/anonymous</a:To>{related}</s:Header>"
    )
    return f"{envelope_open()}{header}<s:Body>{body}</s:Body></s:Envelope>"


def attr(value: str) -> str:
    return quoteattr(value)
