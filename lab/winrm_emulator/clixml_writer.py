"""The emulator's own writer of PowerShell's CLIXML error stream.

Written apart from the product's CLIXML reader on purpose: if the emulator borrowed the
product's codec, a test that reads emulator output with the product would only show that the
codec agrees with itself. This follows what Windows PowerShell 5.1 writes to stderr under
WinRM: a ``#< CLIXML`` line, then one ``<Objs>`` document in which every error line is an
``<S S="Error">`` string ending in CRLF, with control characters (and any underscore that
starts something that looks like an escape) written as ``_xHHHH_``.
"""

from __future__ import annotations

_NS = "http://schemas.microsoft.com/powershell/2004/04"
_XML_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
_HEX = set("0123456789abcdefABCDEF")


def _looks_like_escape(text: str, at: int) -> bool:
    """Return True when ``text[at:]`` starts with ``_xHHHH_`` (which PowerShell escapes)."""
    chunk = text[at : at + 7]
    return len(chunk) == 7 and chunk[1] == "x" and chunk[6] == "_" and set(chunk[2:6]) <= _HEX


def _ps_string(text: str) -> str:
    """Return ``text`` as PowerShell serialises a string's characters inside CLIXML."""
    pieces: list[str] = []
    for at, char in enumerate(text):
        if char == "_" and _looks_like_escape(text, at):
            pieces.append("_x005F_")
        elif ord(char) < 0x20:
            pieces.append(f"_x{ord(char):04X}_")
        else:
            pieces.append(_XML_ENTITIES.get(char, char))
    return "".join(pieces)


def error_stream(lines: list[str]) -> bytes:
    """Return the stderr bytes powershell.exe writes for an error shown as ``lines``."""
    records = "".join('<S S="Error">' + _ps_string(line + "\r\n") + "</S>" for line in lines)
    return (
        '#< CLIXML\r\n<Objs Version="1.1.0.1" xmlns="' + _NS + '">' + records + "</Objs>"
    ).encode()
