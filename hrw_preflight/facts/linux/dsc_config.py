"""The agent's DSC configuration (Current.mof) and its certificate (oms.crt), as plain data.

Microsoft decides whether an agent-based Linux worker is healthy with the DSC resource
nxOMSAutomationWorker, whose settings live in the ``ResourceSettings`` string of its instance
in ``Current.mof`` (microsoft/PowerShell-DSC-for-Linux, nxOMSAutomationWorker.py; Microsoft's
UM_Linux_Troubleshooter_Offline.py reads it the same way). The agent writes it in UTF-16-LE or in
UTF-8, so the probe sends it as base64 and it is decoded and parsed here, on the controller.
The auto-registered worker is bound to the agent's certificate by its SHA-1 thumbprint, which
is computed here from ``oms.crt`` (a certificate is public; the key is never read).
"""

from __future__ import annotations

import base64
import binascii
import codecs
import hashlib
import json
import re
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

CURRENT_MOF = "/etc/opt/omi/conf/omsconfig/configuration/Current.mof"
OMS_CRT = "/etc/opt/microsoft/omsagent/certs/oms.crt"
RESOURCE_CLASS = "MSFT_nxOMSAutomationWorkerResource"

_INSTANCE = re.compile(
    r"instance\s+of\s+" + RESOURCE_CLASS + r"\b[^{]*\{(?P<body>.*?)\n\s*\}\s*;", re.S | re.I
)
_SETTINGS = re.compile(r'\bResourceSettings\s*=\s*"(?P<value>(?:[^"\\]|\\.)*)"\s*;', re.S)
_MOF_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "'": "'"}


class DscConfigError(ValueError):
    """Current.mof or oms.crt is there but cannot be read as what it should be."""


def decode_b64(body: str) -> bytes:
    """Return the bytes of a file the probe sent as base64 lines.

    Raises DscConfigError when the text is not base64 (output cut short or garbled).
    """
    try:
        return base64.b64decode("".join(body.split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise DscConfigError(f"the file's base64 transfer is garbled ({exc})") from None


def decode_mof(data: bytes) -> tuple[str, str]:
    """Return (text, encoding) of a Current.mof in any encoding the agent writes.

    UTF-16-LE is recognised by its byte-order mark or, without one, by the NUL high bytes
    of ASCII text (what ``file`` calls binary and Microsoft's troubleshooter then reads as
    UTF-16-LE); everything else must be UTF-8. Raises DscConfigError for bytes that are
    neither.
    """
    if data.startswith(codecs.BOM_UTF16_LE):
        encoding, payload = "utf-16-le", data[len(codecs.BOM_UTF16_LE) :]
    elif len(data) >= 2 and data[1:2] == b"\x00" and data[0:1] != b"\x00":
        encoding, payload = "utf-16-le", data
    elif data.startswith(codecs.BOM_UTF8):
        encoding, payload = "utf-8", data[len(codecs.BOM_UTF8) :]
    else:
        encoding, payload = "utf-8", data
    try:
        return payload.decode(encoding), encoding
    except UnicodeDecodeError as exc:
        raise DscConfigError(
            f"Current.mof is neither UTF-16-LE nor UTF-8 (byte {exc.start} of the {encoding} "
            "text does not decode)"
        ) from None


def _unescape_mof(value: str) -> str:
    return re.sub(r"\\(.)", lambda m: _MOF_ESCAPES.get(m.group(1), m.group(1)), value)


def _flag(solutions: Any, name: str) -> bool:
    entry = solutions.get(name) if isinstance(solutions, dict) else None
    enabled = entry.get("Enabled") if isinstance(entry, dict) else None
    if not isinstance(enabled, bool):
        raise DscConfigError(f"ResourceSettings has no boolean Solutions.{name}.Enabled")
    return enabled


def parse_resource_settings(text: str) -> dict[str, Any] | None:
    """Return the nxOMSAutomationWorker settings of a decoded Current.mof, or None when the
    file holds no instance of that resource.

    The value is ``[{"WorkspaceId", "AzureDnsAgentSvcZone", "Solutions": {"Updates":
    {"Enabled"}, "AzureAutomation": {"Enabled"}}}]`` as a MOF string (quotes escaped).
    Raises DscConfigError when the instance is there but its settings cannot be read.
    """
    instance = _INSTANCE.search(text)
    if instance is None:
        return None
    match = _SETTINGS.search(instance["body"])
    if match is None:
        raise DscConfigError(f"the {RESOURCE_CLASS} instance has no ResourceSettings string")
    try:
        settings = json.loads(_unescape_mof(match["value"]))
    except json.JSONDecodeError as exc:
        raise DscConfigError(f"ResourceSettings is not JSON ({exc.msg} at {exc.pos})") from None
    first = settings[0] if isinstance(settings, list) and settings else None
    if not isinstance(first, dict):
        raise DscConfigError("ResourceSettings is not a list of settings objects")
    workspace = first.get("WorkspaceId")
    if not isinstance(workspace, str) or not workspace:
        raise DscConfigError("ResourceSettings has no WorkspaceId")
    zone = first.get("AzureDnsAgentSvcZone")
    solutions = first.get("Solutions")
    return {
        "workspace_id": workspace,
        "azure_dns_agent_svc_zone": zone if isinstance(zone, str) else None,
        "updates_enabled": _flag(solutions, "Updates"),
        "automation_enabled": _flag(solutions, "AzureAutomation"),
    }


def read_current_mof(data: bytes | None) -> dict[str, Any]:
    """Return the ``dsc_config`` section data for Current.mof's bytes (None: the file does
    not exist). Raises DscConfigError when the file exists but cannot be read as a MOF."""
    if data is None:
        return {"path": CURRENT_MOF, "exists": False, "encoding": None, "settings": None}
    text, encoding = decode_mof(data)
    return {
        "path": CURRENT_MOF,
        "exists": True,
        "encoding": encoding,
        "settings": parse_resource_settings(text),
    }


def cert_thumbprint(data: bytes | None) -> dict[str, Any]:
    """Return the ``oms_cert`` section data: the SHA-1 thumbprint of oms.crt as the agent's
    tools print it (upper-case hex, no colons), or ``exists: False``.

    Raises DscConfigError for a file that holds no PEM certificate.
    """
    if data is None:
        return {"path": OMS_CRT, "exists": False, "sha1": None, "subject": None}
    try:
        cert = x509.load_pem_x509_certificate(data)
    except ValueError:
        raise DscConfigError(f"{OMS_CRT} holds no PEM certificate") from None
    der = cert.public_bytes(Encoding.DER)
    return {
        "path": OMS_CRT,
        "exists": True,
        "sha1": hashlib.sha1(der, usedforsecurity=False).hexdigest().upper(),
        "subject": cert.subject.rfc4514_string(),
    }
