"""PowerShell CLIXML on standard error, read into text.

When powershell.exe runs with redirected output (as under WinRM) it writes its error,
warning and progress streams to stderr as ``#< CLIXML`` followed by an ``<Objs>`` document.
Text nodes escape characters as ``_xHHHH_`` (``_x000D__x000A_`` is CRLF).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

HEADER = "#< CLIXML"
NAMESPACE = "http://schemas.microsoft.com/powershell/2004/04"
_ESCAPED = re.compile(r"_x([0-9A-Fa-f]{4})_")


def unescape(text: str) -> str:
    """Return ``text`` with CLIXML ``_xHHHH_`` escapes turned back into characters."""
    return _ESCAPED.sub(lambda m: chr(int(m.group(1), 16)), text)


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
