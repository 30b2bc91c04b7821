"""The SOAP faults this server returns, shaped like the ones Windows WinRM sends.

Sources, per fault (codes are the HRESULTs of the Windows SDK header wsmerror.h, read from
tpn/winsdk-10 Include/10.0.16299.0/um/wsmerror.h; the header's comments also give the SOAP
code/subcode each one maps to):

* w:TimedOut, 2150858793 (0x80338029 ERROR_WSMAN_OPERATION_TIMEDOUT): MS-WSMV 3.1.4.14 says a
  Receive with no output before wsman:OperationTimeout "MUST return a WSManFault with the Code
  attribute equal to 2150858793"; the XML layout and wording come from a capture of Windows
  Server 2022 in jborean93/pypsrp tests (s:Receiver / w:TimedOut / Machine=...).
* w:QuotaLimit, 2150859173 (0x803381A5 ERROR_WSMAN_QUOTA_MAX_SHELLS): MS-WSMV 3.1.4.5.2.1 (Create
  returns wsman:QuotaLimit when MaxShellsPerUser is violated); the exact Windows text ("This user
  is allowed a maximum number of N concurrent shells, which has been exceeded...") and layout
  (s:Sender, Reason = wsmerror.h text, f:Message = text with N) come from captures quoted in
  zenoss/txwinrm and hashicorp/vagrant#7489.
* MSFT_WmiError 2150859174 (0x803381A6 ERROR_WSMAN_QUOTA_MAX_OPERATIONS): MS-WSMV 3.1.4.11 (Command
  increments MaxConcurrentOperationsPerUser, wsman:QuotaLimit past it) and footnote <118>
  (Windows does not decrement it on Signal Terminate for cmd shells, ansible/ansible#83656). The
  s:Receiver / w:InternalError / p:MSFT_WmiError layout is the one pywinrm 0.5 parses into
  WSManFaultError.wmierror_code (its tests, pypsrp's tests, Ansible's winrm.py rely on it).
* w:InvalidSelectors, 2150858843 (0x8033805B ERROR_WSMAN_UNEXPECTED_SELECTORS) for an unknown
  ShellId: layout, FaultDetail/UnexpectedSelectors and the "shell was not found on the server"
  message from a captured Windows fault in pypsrp's tests and Microsoft's Exchange docs.
* w:InvalidParameter, code 87 with a "Shell cmd plugin" f:ProviderFault for an unknown CommandId:
  layout from a captured Windows Server 2016 fault in pypsrp's tests (which request produced
  that capture is not stated: an assumption, see README notes in __init__).
* MaxProcessesPerShell: no captured fault was found. Windows enforces it with a job object, so
  CreateProcess fails with ERROR_NOT_ENOUGH_QUOTA (1816) inside winrscmd.dll; we return that as
  a provider fault of the same layout as the code-87 one (an assumption).
* w:SchemaValidationError, 2150858817 (0x80338041): malformed requests (capture in pypsrp tests).
* a:ActionNotSupported 2150858771, w:EncodingLimit 2150858805 (MaxEnvelopeSize < 8192, MS-WSMV
  3.1.4.1.7), a:DestinationUnreachable 2150858752 (unknown resource URI): wsmerror.h mapping.

A request larger than MaxEnvelopeSizekb is not a SOAP fault: MS-WSMV 3.1.4.1.20 says HTTP 413
without processing the message (ansible.windows#391/#620 show pywinrm getting "Code 413").
"""

from __future__ import annotations

from dataclasses import dataclass
from xml.sax.saxutils import escape, quoteattr

from .soap import NS, response

TIMED_OUT = 2150858793
QUOTA_MAX_SHELLS = 2150859173
QUOTA_MAX_OPERATIONS = 2150859174
UNEXPECTED_SELECTORS = 2150858843
SCHEMA_VALIDATION_ERROR = 2150858817
ACTION_NOT_SUPPORTED = 2150858771
ENCODING_LIMIT = 2150858805
RESOURCE_NOT_FOUND = 2150858752
WIN32_INVALID_PARAMETER = 87
WIN32_NOT_ENOUGH_QUOTA = 1816
WIN32_DIRECTORY_INVALID = 267

FAULT_ACTION = "http://schemas.dmtf.org/wbem/wsman/1/wsman/fault"
SHELL_PLUGIN = ("Shell cmd plugin", r"%systemroot%\system32\winrscmd.dll")


@dataclass
class WSManFault(Exception):
    """A SOAP 1.2 fault with Windows' WSManFault (or MSFT_WmiError) detail."""

    code: str  # s:Sender or s:Receiver
    subcode: str  # e.g. w:TimedOut
    reason: str
    wsman_code: int
    message: str
    fault_detail: str | None = None  # a w:FaultDetail URI
    provider: tuple[str, str] | None = None  # f:ProviderFault provider/path
    wmi_error: bool = False  # MSFT_WmiError detail instead of f:WSManFault

    def __str__(self) -> str:
        return f"{self.subcode} ({self.wsman_code}): {self.message}"

    def to_xml(self, relates_to: str | None, machine: str) -> str:
        fault = (
            f"<s:Fault><s:Code><s:Value>{self.code}</s:Value>"
            f"<s:Subcode><s:Value>{self.subcode}</s:Value></s:Subcode></s:Code>"
            f'<s:Reason><s:Text xml:lang="en-US">{escape(self.reason)} </s:Text></s:Reason>'
            f"<s:Detail>{self._detail(machine)}</s:Detail></s:Fault>"
        )
        return response(FAULT_ACTION, relates_to, fault)

    def _detail(self, machine: str) -> str:
        if self.wmi_error:
            return _wmi_error_detail(self.wsman_code, self.message)
        detail = ""
        if self.fault_detail:
            detail += f"<w:FaultDetail>{self.fault_detail}</w:FaultDetail>"
        text = escape(self.message) + " "
        if self.provider:
            name, path = self.provider
            text = (
                f"<f:ProviderFault provider={quoteattr(name)} path={quoteattr(path)}>"
                f"{text}</f:ProviderFault>"
            )
        return (
            f'{detail}<f:WSManFault xmlns:f="{NS["f"]}" Code="{self.wsman_code}" '
            f"Machine={quoteattr(machine)}><f:Message>{text}</f:Message></f:WSManFault>"
        )


def _wmi_error_detail(error_code: int, message: str) -> str:
    # Field set and values of the MSFT_WmiError instance in pypsrp's captured quota fault.
    p = "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/MSFT_WmiError"
    msg = escape(message) + " "
    return (
        f'<p:MSFT_WmiError b:IsCIM_Error="true" xmlns:xsi="http://www.w3.org/2001/XMLSchema-'
        f'instance" xmlns:b="http://schemas.dmtf.org/wbem/wsman/1/cimbinding.xsd" '
        f'xmlns:p="{p}" xmlns:cim="http://schemas.dmtf.org/wbem/wscim/1/common" '
        f'xsi:type="p:MSFT_WmiError_Type">'
        '<p:CIMStatusCode xsi:type="cim:cimUnsignedInt">27</p:CIMStatusCode>'
        '<p:CIMStatusCodeDescription xsi:type="cim:cimString" xsi:nil="true"/>'
        '<p:ErrorSource xsi:type="cim:cimString" xsi:nil="true"/>'
        '<p:ErrorSourceFormat xsi:type="cim:cimUnsignedShort">0</p:ErrorSourceFormat>'
        '<p:ErrorType xsi:type="cim:cimUnsignedShort">0</p:ErrorType>'
        f'<p:Message xsi:type="cim:cimString">{msg}</p:Message>'
        f'<p:MessageID xsi:type="cim:cimString">HRESULT 0x{error_code:08x}</p:MessageID>'
        '<p:OtherErrorSourceFormat xsi:type="cim:cimString" xsi:nil="true"/>'
        '<p:OtherErrorType xsi:type="cim:cimString" xsi:nil="true"/>'
        '<p:OwningEntity xsi:type="cim:cimString" xsi:nil="true"/>'
        '<p:PerceivedSeverity xsi:type="cim:cimUnsignedShort">0</p:PerceivedSeverity>'
        '<p:ProbableCause xsi:type="cim:cimUnsignedShort">0</p:ProbableCause>'
        '<p:ProbableCauseDescription xsi:type="cim:cimString" xsi:nil="true"/>'
        '<p:error_Category xsi:type="cim:cimUnsignedInt">30</p:error_Category>'
        f'<p:error_Code xsi:type="cim:cimUnsignedInt">{error_code}</p:error_Code>'
        '<p:error_Type xsi:type="cim:cimString">HRESULT</p:error_Type>'
        f'<p:error_WindowsErrorMessage xsi:type="cim:cimString">{msg}'
        "</p:error_WindowsErrorMessage></p:MSFT_WmiError>"
    )


_TIMEOUT_TEXT = (
    "The WS-Management service cannot complete the operation within the time specified in "
    "OperationTimeout. "
)


def operation_timed_out() -> WSManFault:
    return WSManFault("s:Receiver", "w:TimedOut", _TIMEOUT_TEXT, TIMED_OUT, _TIMEOUT_TEXT)


def max_shells(limit: int) -> WSManFault:
    return WSManFault(
        "s:Sender",
        "w:QuotaLimit",
        "The WS-Management service cannot process the request. The maximum number of "
        "concurrent shells for this user has been exceeded. Close existing shells or raise "
        "the quota for this user.",
        QUOTA_MAX_SHELLS,
        f"The WS-Management service cannot process the request. This user is allowed a "
        f"maximum number of {limit} concurrent shells, which has been exceeded. Close existing "
        f"shells or raise the quota for this user.",
    )


def max_operations(limit: int) -> WSManFault:
    text = (
        f"The WS-Management service cannot process the request. This user is allowed a maximum "
        f"number of {limit} concurrent operations, which has been exceeded. Close existing "
        f"operations for this user, or raise the quota for this user."
    )
    return WSManFault(
        "s:Receiver", "w:InternalError", text, QUOTA_MAX_OPERATIONS, text, wmi_error=True
    )


def shell_not_found(shell_id: str) -> WSManFault:
    return WSManFault(
        "s:Sender",
        "w:InvalidSelectors",
        "The WS-Management service cannot process the request because the request contained "
        "invalid selectors for the resource.",
        UNEXPECTED_SELECTORS,
        f"The request for the Windows Remote Shell with ShellId {shell_id} failed because the "
        f"shell was not found on the server. Possible causes are: the specified ShellId is "
        f"incorrect or the shell no longer exists on the server. Provide the correct ShellId "
        f"or create a new shell and retry the operation.",
        fault_detail="http://schemas.dmtf.org/wbem/wsman/1/wsman/faultDetail/UnexpectedSelectors",
    )


def shell_plugin_error(win32_code: int, message: str, subcode: str) -> WSManFault:
    return WSManFault(
        "s:Sender" if subcode == "w:InvalidParameter" else "s:Receiver",
        subcode,
        message,
        win32_code,
        message,
        fault_detail=(
            "http://schemas.dmtf.org/wbem/wsman/1/wsman/faultDetail/InvalidValue"
            if subcode == "w:InvalidParameter"
            else None
        ),
        provider=SHELL_PLUGIN,
    )


def invalid_parameter() -> WSManFault:
    """Code 87 from the shell plugin: an unknown CommandId or signal code."""
    return shell_plugin_error(
        WIN32_INVALID_PARAMETER, "The parameter is incorrect.", "w:InvalidParameter"
    )


def max_processes() -> WSManFault:
    return shell_plugin_error(
        WIN32_NOT_ENOUGH_QUOTA,
        "Not enough quota is available to process this command.",
        "w:InternalError",
    )


def invalid_directory() -> WSManFault:
    return shell_plugin_error(
        WIN32_DIRECTORY_INVALID, "The directory name is invalid.", "w:InternalError"
    )


def schema_validation(detail: str) -> WSManFault:
    return WSManFault(
        "s:Sender",
        "w:SchemaValidationError",
        "The SOAP XML in the message does not match the corresponding XML schema definition. "
        "Change the XML and retry.",
        SCHEMA_VALIDATION_ERROR,
        f"The Windows Remote Shell cannot process the request. {detail}",
    )


def action_not_supported(action: str) -> WSManFault:
    text = "The WS-Management service does not support the action specified in the request."
    return WSManFault(
        "s:Sender", "a:ActionNotSupported", text, ACTION_NOT_SUPPORTED, f"{text} ({action})"
    )


def encoding_limit() -> WSManFault:
    text = (
        "The WS-Management service cannot process the request because the encoding of the "
        "request exceeds an internal encoding limit. Reconfigure the client to send messages "
        "which fit the encoding limits of the service."
    )
    return WSManFault("s:Sender", "w:EncodingLimit", text, ENCODING_LIMIT, text)


def resource_not_found(resource_uri: str) -> WSManFault:
    text = (
        "The WS-Management service cannot process the request. The service cannot find the "
        "resource identified by the resource URI and selectors."
    )
    return WSManFault(
        "s:Sender", "a:DestinationUnreachable", text, RESOURCE_NOT_FOUND, f"{text} {resource_uri}"
    )
