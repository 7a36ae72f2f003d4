"""ConvertTo-Json as Windows PowerShell 5.1 writes it.

5.1 serialises with .NET's JavaScriptSerializer (``\\/Date(ms)\\/`` dates, ``<>'&`` escaped
as ``\\u003c`` and friends, doubles without a trailing ``.0``) and then re-indents the
compact text: every bracket opens a level indented four columns past the bracket itself,
``:`` is followed by two spaces, and lines end in CRLF.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "<": "\\u003c",
    ">": "\\u003e",
    "'": "\\u0027",
    "&": "\\u0026",
}


@dataclass(frozen=True)
class PsDate:
    """A .NET DateTime value; serialises as ``"\\/Date(<ms since epoch>)\\/"``."""

    moment: datetime

    def milliseconds(self) -> int:
        """Return the instant as milliseconds since 1970-01-01 UTC."""
        return round(self.moment.timestamp() * 1000)


def _string(text: str) -> str:
    out = []
    for char in text:
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif ord(char) < 0x20:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def _number(value: float) -> str:
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value).replace("e", "E")


def compact(value: object) -> str:
    """Return ``value`` as JavaScriptSerializer's compact JSON text."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _number(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, PsDate):
        return f'"\\/Date({value.milliseconds()})\\/"'
    if isinstance(value, Mapping):
        items = (f"{_string(str(k))}:{compact(v)}" for k, v in value.items())
        return "{" + ",".join(items) + "}"
    if isinstance(value, Sequence):
        return "[" + ",".join(compact(v) for v in value) + "]"
    raise TypeError(f"cannot serialise {type(value).__name__}")


def reindent(text: str) -> str:
    """Return compact JSON ``text`` laid out the way 5.1's ConvertTo-Json does."""
    out: list[str] = []
    column = 0  # length of the line being written
    levels: list[int] = []  # column of each open bracket
    in_string = False
    escaped = False

    def emit(piece: str) -> None:
        nonlocal column
        out.append(piece)
        column = column + len(piece) if "\n" not in piece else len(piece.rsplit("\n", 1)[1])

    for char in text:
        if in_string:
            emit(char)
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
            emit(char)
        elif char in "{[":
            levels.append(column)
            emit(char)
            emit("\r\n" + " " * (levels[-1] + 4))
        elif char in "}]":
            emit("\r\n" + " " * levels.pop())
            emit(char)
        elif char == ",":
            emit(",\r\n" + " " * (levels[-1] + 4))
        elif char == ":":
            emit(":  ")
        else:
            emit(char)
    return "".join(out)


def convert_to_json(value: object) -> str:
    """Return what ``$value | ConvertTo-Json`` prints in Windows PowerShell 5.1 (no newline).

    A list stands for a pipeline of several objects; callers pass a single object bare and
    skip the call for an empty pipeline, as 5.1 does.
    """
    return reindent(compact(value))
