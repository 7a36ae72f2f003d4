"""WS-Management SOAP: reading the requests a WinRM client sends and writing the answers.

Only the Windows Remote Shell subset is covered (Create, Command, Send, Receive, Signal,
Delete), in the shapes Windows' WinRM service uses, which is what pywinrm parses.
"""

from __future__ import annotations

import base64
import re
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass
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
SHELL_URI = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell"
CMD_RESOURCE_URI = SHELL_URI + "/cmd"
ACTION_CREATE = "http://schemas.xmlsoap.org/ws/2004/09/transfer/Create"
ACTION_DELETE = "http://schemas.xmlsoap.org/ws/2004/09/transfer/Delete"
ACTION_COMMAND = SHELL_URI + "/Command"
ACTION_SEND = SHELL_URI + "/Send"
ACTION_RECEIVE = SHELL_URI + "/Receive"
ACTION_SIGNAL = SHELL_URI + "/Signal"
STATE_DONE = SHELL_URI + "/CommandState/Done"
STATE_RUNNING = SHELL_URI + "/CommandState/Running"
ANONYMOUS = "http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous"
FAULT_ACTION = "http://schemas.dmtf.org/wbem/wsman/1/wsman/fault"

# WSManFault codes Windows reports (HRESULTs of the WinRM service, as unsigned decimals).
CODE_INVALID_ACTION = 2150858753
CODE_TIMED_OUT = 2150858793
CODE_FILE_NOT_FOUND = 2147942402  # HRESULT_FROM_WIN32(ERROR_FILE_NOT_FOUND)
CODE_SHELL_NOT_FOUND = 2150858843
CODE_BAD_MESSAGE = 2150858817

_DURATION = re.compile(r"^P(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$")


class BadRequest(Exception):
    """The body is not a WS-Management envelope this service can read."""


@dataclass(eq=False)
class WSManFault(Exception):
    """A SOAP fault to send back with HTTP 500, as WinRM does for a failed operation."""

    subcode: str
    code: int
    reason: str
    sender: bool = True


@dataclass(frozen=True)
class WSManRequest:
    """The parts of one WS-Management request that the shell service needs."""

    action: str
    resource_uri: str
    message_id: str
    shell_id: str | None
    operation_timeout_s: float
    max_envelope_size: int
    options: dict[str, str]
    body: ET.Element


def parse_duration(text: str) -> float:
    """Return the seconds in an xs:duration such as ``PT20S`` or ``PT60.000S``."""
    match = _DURATION.match(text.strip())
    if match is None:
        raise BadRequest(f"bad xs:duration {text!r}")
    hours, minutes, seconds = match.groups()
    return int(hours or 0) * 3600 + int(minutes or 0) * 60 + float(seconds or 0)


def _text(parent: ET.Element, path: str) -> str | None:
    node = parent.find(path, NS)
    return None if node is None or node.text is None else node.text.strip()


def parse_request(body: bytes) -> WSManRequest:
    """Return the :class:`WSManRequest` in a SOAP envelope; :class:`BadRequest` if unreadable."""
    try:
        root = ET.fromstring(body)
    except ET.ParseError as exc:
        raise BadRequest(f"body is not XML ({exc})") from None
    header = root.find("s:Header", NS)
    soap_body = root.find("s:Body", NS)
    if root.tag != f"{{{NS['s']}}}Envelope" or header is None or soap_body is None:
        raise BadRequest("body is not a SOAP 1.2 envelope")
    action = _text(header, "a:Action")
    message_id = _text(header, "a:MessageID")
    if not action or not message_id:
        raise BadRequest("envelope lacks Action or MessageID")
    shell_id = None
    for selector in header.findall("w:SelectorSet/w:Selector", NS):
        if selector.get("Name") == "ShellId" and selector.text:
            shell_id = selector.text.strip()
    options = {
        option.get("Name", ""): (option.text or "").strip()
        for option in header.findall("w:OptionSet/w:Option", NS)
    }
    timeout_text = _text(header, "w:OperationTimeout")
    size_text = _text(header, "w:MaxEnvelopeSize")
    return WSManRequest(
        action=action,
        resource_uri=_text(header, "w:ResourceURI") or "",
        message_id=message_id,
        shell_id=shell_id,
        operation_timeout_s=parse_duration(timeout_text) if timeout_text else 60.0,
        max_envelope_size=int(size_text) if size_text and size_text.isdigit() else 153600,
        options=options,
        body=soap_body,
    )


def command_line(request: WSManRequest) -> tuple[str, list[str]]:
    """Return the command and its argument elements from a Command request body."""
    line = request.body.find("rsp:CommandLine", NS)
    if line is None:
        raise BadRequest("Command request has no CommandLine")
    command = _text(line, "rsp:Command")
    if not command:
        raise BadRequest("CommandLine has no Command")
    arguments = [node.text or "" for node in line.findall("rsp:Arguments", NS)]
    return command, arguments


@dataclass(frozen=True)
class StdinChunk:
    """One Send request's stdin data."""

    command_id: str
    data: bytes
    end: bool


def stdin_chunks(request: WSManRequest) -> list[StdinChunk]:
    """Return the stdin streams of a Send request, base64-decoded."""
    chunks = []
    for stream in request.body.findall("rsp:Send/rsp:Stream", NS):
        if stream.get("Name") != "stdin":
            continue
        try:
            data = base64.b64decode(stream.text or "", validate=True)
        except ValueError:
            raise BadRequest("stdin stream is not base64") from None
        chunks.append(
            StdinChunk(stream.get("CommandId", ""), data, stream.get("End", "").lower() == "true")
        )
    if not chunks:
        raise BadRequest("Send request has no stdin stream")
    return chunks


def receive_command_id(request: WSManRequest) -> str:
    """Return the CommandId a Receive request asks output for."""
    stream = request.body.find("rsp:Receive/rsp:DesiredStream", NS)
    if stream is None or not stream.get("CommandId"):
        raise BadRequest("Receive request names no CommandId")
    return stream.get("CommandId", "")


def signal_command_id(request: WSManRequest) -> str:
    """Return the CommandId a Signal request is aimed at."""
    signal = request.body.find("rsp:Signal", NS)
    if signal is None or not signal.get("CommandId"):
        raise BadRequest("Signal request names no CommandId")
    return signal.get("CommandId", "")


def _envelope(action: str, relates_to: str, body: str) -> bytes:
    namespaces = " ".join(f"xmlns:{prefix}={quoteattr(uri)}" for prefix, uri in NS.items())
    return (
        f'<s:Envelope xml:lang="en-US" {namespaces}>'
        "<s:Header>"
        f"<a:Action>{escape(action)}</a:Action>"
        f"<a:MessageID>uuid:{str(uuid.uuid4()).upper()}</a:MessageID>"
        f"<a:To>{ANONYMOUS}</a:To>"
        f"<a:RelatesTo>{escape(relates_to)}</a:RelatesTo>"
        "</s:Header>"
        f"<s:Body>{body}</s:Body>"
        "</s:Envelope>"
    ).encode()


def create_response(request: WSManRequest, shell_id: str, address: str, owner: str) -> bytes:
    """Return the CreateResponse announcing a new shell."""
    body = (
        "<x:ResourceCreated>"
        f"<a:Address>{escape(address)}</a:Address>"
        "<a:ReferenceParameters>"
        f"<w:ResourceURI>{CMD_RESOURCE_URI}</w:ResourceURI>"
        f'<w:SelectorSet><w:Selector Name="ShellId">{shell_id}</w:Selector></w:SelectorSet>'
        "</a:ReferenceParameters>"
        "</x:ResourceCreated>"
        "<rsp:Shell>"
        f"<rsp:ShellId>{shell_id}</rsp:ShellId>"
        f"<rsp:ResourceUri>{CMD_RESOURCE_URI}</rsp:ResourceUri>"
        f"<rsp:Owner>{escape(owner)}</rsp:Owner>"
        "<rsp:IdleTimeOut>PT7200.000S</rsp:IdleTimeOut>"
        "<rsp:InputStreams>stdin</rsp:InputStreams>"
        "<rsp:OutputStreams>stdout stderr</rsp:OutputStreams>"
        "</rsp:Shell>"
    )
    return _envelope(ACTION_CREATE + "Response", request.message_id, body)


def command_response(request: WSManRequest, command_id: str) -> bytes:
    """Return the CommandResponse carrying the new CommandId."""
    body = f"<rsp:CommandResponse><rsp:CommandId>{command_id}</rsp:CommandId></rsp:CommandResponse>"
    return _envelope(ACTION_COMMAND + "Response", request.message_id, body)


def send_response(request: WSManRequest) -> bytes:
    """Return the (empty) SendResponse."""
    return _envelope(ACTION_SEND + "Response", request.message_id, "<rsp:SendResponse/>")


def signal_response(request: WSManRequest) -> bytes:
    """Return the (empty) SignalResponse."""
    return _envelope(ACTION_SIGNAL + "Response", request.message_id, "<rsp:SignalResponse/>")


def delete_response(request: WSManRequest) -> bytes:
    """Return the DeleteResponse, whose body is empty."""
    return _envelope(ACTION_DELETE + "Response", request.message_id, "")


def receive_response(
    request: WSManRequest,
    command_id: str,
    streams: Iterable[tuple[str, bytes]],
    exit_code: int | None,
) -> bytes:
    """Return a ReceiveResponse with ``streams`` and the command's state.

    ``exit_code`` None means the command is still running (more output will follow);
    otherwise the streams are closed with End="true" and the state is Done.
    """
    parts = []
    for name, data in streams:
        encoded = base64.b64encode(data).decode("ascii")
        parts.append(f'<rsp:Stream Name="{name}" CommandId="{command_id}">{encoded}</rsp:Stream>')
    if exit_code is None:
        state = f'<rsp:CommandState CommandId="{command_id}" State="{STATE_RUNNING}"/>'
    else:
        parts.extend(
            f'<rsp:Stream Name="{name}" CommandId="{command_id}" End="true"></rsp:Stream>'
            for name in ("stdout", "stderr")
        )
        state = (
            f'<rsp:CommandState CommandId="{command_id}" State="{STATE_DONE}">'
            f"<rsp:ExitCode>{exit_code}</rsp:ExitCode></rsp:CommandState>"
        )
    body = f"<rsp:ReceiveResponse>{''.join(parts)}{state}</rsp:ReceiveResponse>"
    return _envelope(ACTION_RECEIVE + "Response", request.message_id, body)


def fault_response(relates_to: str, fault: WSManFault, machine: str) -> bytes:
    """Return the SOAP fault envelope for ``fault``, to be sent with HTTP 500."""
    role = "s:Sender" if fault.sender else "s:Receiver"
    body = (
        "<s:Fault>"
        f"<s:Code><s:Value>{role}</s:Value>"
        f"<s:Subcode><s:Value>{escape(fault.subcode)}</s:Value></s:Subcode></s:Code>"
        f'<s:Reason><s:Text xml:lang="en-US">{escape(fault.reason)}</s:Text></s:Reason>'
        "<s:Detail>"
        f"<f:WSManFault Code={quoteattr(str(fault.code))} Machine={quoteattr(machine)}>"
        f"<f:Message>{escape(fault.reason)}</f:Message></f:WSManFault>"
        "</s:Detail>"
        "</s:Fault>"
    )
    return _envelope(FAULT_ACTION, relates_to, body)


def shell_not_found(shell_id: str | None) -> WSManFault:
    """Return the fault WinRM sends for a ShellId it does not hold."""
    return WSManFault(
        "w:InvalidSelectors",
        CODE_SHELL_NOT_FOUND,
        f"The request for the Windows Remote Shell with ShellId {shell_id} failed because the "
        "shell was not found on the server. Possible causes are: the specified ShellId is "
        "incorrect or the shell no longer exists on the server. Provide the correct ShellId or "
        "create a new shell and retry the operation. ",
    )


def command_not_found(command_id: str) -> WSManFault:
    """Return the fault for a CommandId the shell does not hold."""
    return WSManFault(
        "w:InvalidSelectors",
        CODE_SHELL_NOT_FOUND,
        f"The request for the Windows Remote Shell command with CommandId {command_id} failed "
        "because the command was not found in the shell. ",
    )


def action_not_supported(action: str) -> WSManFault:
    """Return the fault for an Action URI the shell service does not implement."""
    return WSManFault(
        "a:ActionNotSupported",
        CODE_INVALID_ACTION,
        f"The WS-Management service cannot process the request. The WS-Addressing action URI "
        f"{action} is invalid. ",
    )


def bad_message(detail: str) -> WSManFault:
    """Return the fault for a request the service cannot read."""
    return WSManFault(
        "w:SchemaValidationError",
        CODE_BAD_MESSAGE,
        f"The WS-Management service cannot process the request because the XML is invalid: "
        f"{detail}. ",
    )


def operation_timed_out() -> WSManFault:
    """Return the fault a long-polling Receive ends with when no output came in time."""
    return WSManFault(
        "w:TimedOut",
        CODE_TIMED_OUT,
        "The WS-Management service cannot complete the operation within the time specified in "
        "OperationTimeout. ",
        sender=False,
    )


# Code pages a WinRS shell may be opened with here, and the Python codec for each.
CODEPAGES = {437: "cp437", 850: "cp850", 1252: "cp1252", 65001: "utf-8"}


def shell_codepage(request: WSManRequest) -> int:
    """Return the WINRS_CODEPAGE of a Create request (437, the OEM code page, if absent)."""
    text = request.options.get("WINRS_CODEPAGE", "437")
    if not text.isdigit() or int(text) not in CODEPAGES:
        raise bad_message(f"WINRS_CODEPAGE {text!r} is not a code page this host has")
    return int(text)


def flag(request: WSManRequest, name: str, default: bool) -> bool:
    """Return a TRUE/FALSE option of the request, ``default`` when it is absent."""
    value = request.options.get(name)
    if value is None:
        return default
    if value.upper() not in ("TRUE", "FALSE"):
        raise bad_message(f"option {name} must be TRUE or FALSE, not {value!r}")
    return value.upper() == "TRUE"


def file_not_found() -> WSManFault:
    """Return the fault for a command whose program CreateProcess cannot find."""
    return WSManFault(
        "w:InternalError", CODE_FILE_NOT_FOUND, "The system cannot find the file specified. "
    )
