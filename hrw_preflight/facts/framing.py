"""Splitting a probe's output into the marked blocks it printed.

Both probes frame each part of their output with marker lines so that one remote command can
carry many facts; this module finds the blocks and their end status.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_FILE = re.compile(
    r"^@@HRW-FILE (?P<path>[^\n]+)\n(?P<body>.*?)\n@@HRW-FILE-END (?P=path) rc=(?P<rc>\S+)$",
    re.M | re.S,
)
_BLOCK = re.compile(
    r"^@@HRW-BEGIN (?P<name>\S+)\n(?P<body>.*?)^@@HRW-END (?P=name) rc=(?P<rc>\S+)$", re.M | re.S
)


@dataclass(frozen=True)
class Block:
    """One framed part of probe output: its text and the status printed after it."""

    name: str
    body: str
    rc: str

    @property
    def raw(self) -> str:
        """Return the block as it appeared in the output, for evidence."""
        return f"{self.body.rstrip()}\n(status {self.rc})"


def file_blocks(output: str) -> dict[str, Block]:
    """Return the ``@@HRW-FILE`` blocks by path: rc is ``0``, ``missing``, ``denied`` or an
    exit status."""
    return {m["path"]: Block(m["path"], m["body"], m["rc"]) for m in _FILE.finditer(output)}


def named_blocks(output: str) -> dict[str, Block]:
    """Return the ``@@HRW-BEGIN``/``@@HRW-END`` blocks by name."""
    return {m["name"]: Block(m["name"], m["body"], m["rc"]) for m in _BLOCK.finditer(output)}
