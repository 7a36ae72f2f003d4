"""The contract between the WinRM transport and the engine that answers commands.

The transport (``server.py``) decodes WS-Management requests; for every Command it calls an
:data:`Engine` with the command, its arguments, the stdin the client sent and the host's
configuration, and streams the returned :class:`CommandOutput` back to the client.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from lab.winrm_emulator.config import HostConfig


@dataclass(frozen=True)
class CommandOutput:
    """What one command wrote and how it ended, as a Windows process would report it."""

    stdout: bytes
    stderr: bytes
    exit_code: int


class ProcessInput(Protocol):
    """A running command's standard input and console code page, as the process sees them."""

    @property
    def codepage(self) -> int:
        """Return the shell's code page (WINRS_CODEPAGE): console input and output encoding."""
        ...

    def read_stdin(self) -> bytes:
        """Return all of stdin, blocking until the client ends it (WinRS Send with End)."""
        ...


@dataclass(frozen=True)
class GivenInput:
    """Stdin known in full up front, in UTF-8 (code page 65001): for tests and recordings."""

    data: bytes
    codepage: int = 65001

    def read_stdin(self) -> bytes:
        """Return the stdin given."""
        return self.data


Engine = Callable[[str, list[str], ProcessInput, HostConfig], CommandOutput]
"""``engine(command, arguments, process_input, host) -> CommandOutput``.

Called when the Command request arrives, as WinRS starts the process then; the engine reads
stdin only if the command does, so it may block until stdin ends, and for seconds more
(network probes). The server runs it off the request thread.
"""
