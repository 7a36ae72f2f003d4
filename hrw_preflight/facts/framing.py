"""Splitting a probe's output into its sections, so that no host account can forge one.

Both probes print each section between two marker lines that start with a boundary the
controller chooses at random for each run (:func:`new_boundary`) and passes to the probe
as an argument; it is never in a file on the host. Nothing a host account writes reaches
the output as a line of its own: the Linux probe base64-encodes every section's body, and
every line the Windows probe prints is either a marker or ConvertTo-Json text (which never
starts with the boundary's letters). So a marker can only come from the probe itself, and
output whose framing is broken (a section twice, a section inside another, an end marker
that closes nothing) was tampered with: :func:`split_sections` raises :class:`Tampered`
and the probe turns every section into an error that says so.

Splitting is one pass over the lines (linear in the output's length), and the policy for
bytes that are not UTF-8 lives here too (:func:`utf8_policy`), shared by both platforms.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import Any, Protocol

from hrw_preflight.facts.model import Section

BOUNDARY_PREFIX = "HRW"
_BOUNDARY = re.compile(r"^HRW[0-9a-f]{32}$")
_UNDECODABLE = re.compile("[\udc80-\udcff]")


class CommandResult(Protocol):
    """What running one probe command returns, on either platform (testinfra's
    CommandResult fits): the exit status and the raw bytes of both streams, which the
    probes decode themselves (:func:`decode_output`)."""

    @property
    def rc(self) -> int: ...

    @property
    def stdout_bytes(self) -> bytes: ...

    @property
    def stderr_bytes(self) -> bytes: ...


class Unreadable(Exception):
    """A section's output cannot be turned into data; the message says why.

    The one exception both platforms' parsers raise for a section they cannot read; the
    probe turns it into :meth:`Section.failed` for that section alone.
    """


class Tampered(Exception):
    """The output's framing is broken in a way the probe itself never prints."""


def new_boundary() -> str:
    """Return a fresh random boundary (``HRW`` and 32 hex digits) for one probe run.

    Why random per run: a host account can write text into files the probe prints, but it
    cannot know which boundary the next run will use, so it cannot write a marker line.
    """
    return BOUNDARY_PREFIX + secrets.token_hex(16)


def check_boundary(boundary: str) -> str:
    """Return ``boundary`` if it has the shape :func:`new_boundary` makes; raise ValueError."""
    if not _BOUNDARY.match(boundary):
        raise ValueError(f"not a probe boundary: {boundary[:40]!r}")
    return boundary


@dataclass(frozen=True)
class Framed:
    """A probe's output split into sections.

    ``sections`` holds each complete section's body by name, in output order; ``cut`` names
    the section the output ended inside (cut off by a timeout, a dropped connection or the
    byte cap), or is None when every section that began also ended.
    """

    sections: dict[str, str]
    cut: str | None = None
    cut_body: str = ""


def split_sections(text: str, boundary: str) -> Framed:
    """Return the sections of ``text`` framed by ``<boundary> BEGIN <name>`` and
    ``<boundary> END <name>`` lines; raise :class:`Tampered` when the framing is broken.

    Other lines that start with the boundary (the Windows probe's ``PART`` and ``ERROR``)
    stay in their section's body for the platform's parser. Lines outside every section
    are ignored: they are not facts. One pass, so the cost is linear in the output.
    """
    check_boundary(boundary)
    begin, end = f"{boundary} BEGIN ", f"{boundary} END "
    sections: dict[str, str] = {}
    open_name: str | None = None
    lines: list[str] = []
    for line in text.split("\n"):
        line = line.removesuffix("\r")
        if line.startswith(begin):
            name = line[len(begin) :]
            if open_name is not None:
                raise Tampered(f"section '{name}' began inside section '{open_name}'")
            if name in sections:
                raise Tampered(f"section '{name}' appears twice")
            open_name, lines = name, []
        elif line.startswith(end):
            name = line[len(end) :]
            if open_name is None or name != open_name:
                raise Tampered(f"an end of section '{name}' that closes no open section")
            sections[name] = "\n".join(lines)
            open_name = None
        elif open_name is not None:
            lines.append(line)
    if open_name is not None:
        return Framed(sections, cut=open_name, cut_body="\n".join(lines))
    return Framed(sections)


def tampered_sections(names: tuple[str, ...], why: Tampered, raw: str = "") -> dict[str, Section]:
    """Return every section of ``names`` as an error saying the output was tampered with.

    Why all of them: once the framing is broken no part of the output can be trusted.
    """
    reason = (
        f"the probe output was tampered with ({why}); no section of it can be trusted, "
        "so none was judged"
    )
    return {name: Section.failed(name, reason, printable(raw[-4000:])) for name in names}


# --- bytes that are not UTF-8 -----------------------------------------------------------


def decode_output(data: bytes) -> str:
    """Return command output decoded as UTF-8, each invalid byte kept as a lone surrogate.

    Why: the policy is that output must be UTF-8 (the Linux probe runs with ``LC_ALL=C``
    and the agent writes UTF-8; the Windows probe sets UTF-8 output); a byte that is not
    cannot be judged, but one bad line must not make the whole host unreadable. Keeping the
    bytes as surrogates lets :func:`utf8_policy` fail exactly the section that held one.
    """
    return data.decode("utf-8", "surrogateescape")


def undecodable(value: Any) -> str | None:
    """Return the first byte (``0xNN``) that was not UTF-8 in ``value``, else None."""
    if isinstance(value, str):
        match = _UNDECODABLE.search(value)
        return f"0x{ord(match.group()) - 0xDC00:02x}" if match else None
    if isinstance(value, dict):
        value = [*value.keys(), *value.values()]
    if isinstance(value, list | tuple):
        for item in value:
            found = undecodable(item)
            if found:
                return found
    return None


def printable(text: str) -> str:
    """Return ``text`` with every byte that was not UTF-8 shown as U+FFFD (for evidence)."""
    return _UNDECODABLE.sub("\ufffd", text)


def utf8_policy(section: Section) -> Section:
    """Return ``section`` unchanged, or as an error naming it when its output held bytes
    that are not UTF-8 (unreadable is never healthy); the raw text shows them as U+FFFD.

    The one policy both platforms apply to every section they return.
    """
    byte = undecodable(section.raw) or undecodable(section.data) or undecodable(section.error)
    if byte is None:
        return section
    return Section.failed(
        section.name,
        f"the host's output for '{section.name}' is not valid UTF-8 (byte {byte}); "
        "it cannot be judged",
        printable(section.raw),
    )
