"""The contract between the WinRM transport and the engine that answers commands.

The transport (``server.py``) decodes WS-Management requests; for every Command it calls an
:data:`Engine` with the command, its arguments, the stdin the client sent and the host's
configuration, and streams the returned :class:`CommandOutput` back to the client.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from lab.winrm_emulator.config import HostConfig


@dataclass(frozen=True)
class CommandOutput:
    """What one command wrote and how it ended, as a Windows process would report it."""

    stdout: bytes
    stderr: bytes
    exit_code: int


Engine = Callable[[str, list[str], bytes, HostConfig], CommandOutput]
"""``engine(command, arguments, stdin, host) -> CommandOutput``.

May block for seconds (network probes); the server runs it off the request thread.
"""
