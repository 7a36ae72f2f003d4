"""PowerShell CLIXML on standard error: read it into text, and write it (for the lab).

When powershell.exe runs with redirected output (as under WinRM) it writes its error,
warning and progress streams to stderr as ``#< CLIXML`` followed by an ``<Objs>`` document.
Text nodes escape characters as ``_xHHHH_`` (``_x000D__x000A_`` is CRLF).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from xml.sax.saxutils import escape

HEADER = "#< CLIXML"
NAMESPACE = "http://schemas.microsoft.com/powershell/2004/04"
_ESCAPED = re.compile(r"_x([0-9A-Fa-f]{4})_")


def unescape(text: str) -> str:
    """Return ``text`` with CLIXML ``_xHHHH_`` escapes turned back into characters."""
    return _ESCAPED.sub(lambda m: chr(int(m.group(1), 16)), text)


def _escape_text(text: str) -> str:
    # Underscores that could be read as an escape must themselves be escaped first.
    text = re.sub(r"_(?=x[0-9A-Fa-f]{4}_)", "_x005F_", text)
    out = []
    for char in text:
        if char in "\r\n\t" or ord(char) < 0x20:
            out.append(f"_x{ord(char):04X}_")
        else:
            out.append(char)
    return escape("".join(out))


def decode_stderr(stderr: bytes) -> str:
    """Return the readable text of a PowerShell stderr stream.

    CLIXML is reduced to its error, warning and plain string lines (progress records are
    dropped, they are noise); anything else is returned as decoded text. Exists so that a
    failed probe can say in one line what PowerShell complained about.
    """
    text = stderr.decode("utf-8", errors="replace")
    stripped = text.lstrip("\ufeff")
    if not stripped.startswith(HEADER):
        return text.strip()
    document = stripped[len(HEADER) :].strip()
    try:
        root = ET.fromstring(document)
    except ET.ParseError:
        return unescape(document).strip()
    lines: list[str] = []
    for child in root:
        if child.tag != f"{{{NAMESPACE}}}S":
            continue  # progress and other objects
        lines.append(unescape(child.text or ""))
    return "".join(lines).replace("\r\n", "\n").strip()


def encode_error_lines(lines: list[str]) -> bytes:
    """Return ``lines`` as the CLIXML error stream powershell.exe writes to stderr.

    Each line becomes one ``<S S="Error">`` element ending in an escaped CRLF, as
    Windows PowerShell 5.1 emits them.
    """
    body = "".join(f'<S S="Error">{_escape_text(line + chr(13) + chr(10))}</S>' for line in lines)
    document = f'{HEADER}\r\n<Objs Version="1.1.0.1" xmlns="{NAMESPACE}">{body}</Objs>'
    return document.encode("utf-8")
