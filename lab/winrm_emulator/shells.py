"""Remote shells and the commands running in them, kept across requests.

A client opens a shell once and runs many commands in it; each command collects its stdin,
runs the engine once (on its own thread, since an engine may probe the network for seconds)
and hands out its output in pieces no larger than the client's envelope allows.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from lab.winrm_emulator.engine_api import CommandOutput

log = logging.getLogger(__name__)

Runner = Callable[[str, list[str], bytes], CommandOutput]


class StdinClosed(Exception):
    """Stdin was sent to a command whose stdin had already ended."""


@dataclass(frozen=True)
class OutputChunk:
    """A piece of a command's output for one Receive; ``exit_code`` set on the last piece."""

    stdout: bytes
    stderr: bytes
    exit_code: int | None


@dataclass
class Command:
    """One command in a shell: its stdin, its run, and how much output has been handed out."""

    command_id: str
    command: str
    arguments: list[str]
    _runner: Runner
    _stdin: bytearray = field(default_factory=bytearray)
    _stdin_closed: bool = False
    _started: bool = False
    _done: threading.Event = field(default_factory=threading.Event)
    _output: CommandOutput | None = None
    _stdout_sent: int = 0
    _stderr_sent: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add_stdin(self, data: bytes, end: bool) -> None:
        """Append stdin; with ``end`` the stream closes and the command starts."""
        with self._lock:
            if self._stdin_closed or self._started:
                raise StdinClosed(self.command_id)
            self._stdin += data
            self._stdin_closed = end
        if end:
            self.start()

    def start(self) -> None:
        """Run the command on a worker thread unless it already runs."""
        with self._lock:
            if self._started:
                return
            self._started = True
            stdin = bytes(self._stdin)
        threading.Thread(
            target=self._run, args=(stdin,), name=f"winrm-cmd-{self.command_id[:8]}", daemon=True
        ).start()

    def _run(self, stdin: bytes) -> None:
        try:
            output = self._runner(self.command, self.arguments, stdin)
        except Exception:
            # A broken engine must not hang the client: report it like a crashed process.
            log.exception("engine failed on command %s", self.command_id)
            output = CommandOutput(b"", b"emulator engine failed\r\n", 1)
        self._output = output
        self._done.set()

    def wait(self, timeout_s: float) -> bool:
        """Start the command if needed and wait up to ``timeout_s``; return True once done."""
        self.start()
        return self._done.wait(timeout_s)

    def next_chunk(self, max_bytes: int) -> OutputChunk:
        """Return the next piece of output of a finished command, at most ``max_bytes`` long."""
        output = self._output
        if output is None:
            raise RuntimeError("next_chunk called before the command finished")
        with self._lock:
            stdout = output.stdout[self._stdout_sent : self._stdout_sent + max_bytes]
            self._stdout_sent += len(stdout)
            stderr = output.stderr[self._stderr_sent : self._stderr_sent + max_bytes - len(stdout)]
            self._stderr_sent += len(stderr)
            finished = self._stdout_sent >= len(output.stdout) and self._stderr_sent >= len(
                output.stderr
            )
        return OutputChunk(stdout, stderr, output.exit_code if finished else None)


@dataclass
class Shell:
    """One remote shell: the commands started in it, by CommandId."""

    shell_id: str
    owner: str
    commands: dict[str, Command] = field(default_factory=dict)


class ShellTable:
    """All open shells of one server, shared by every connection's thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._shells: dict[str, Shell] = {}
        self.created = 0
        self.deleted = 0
        self.commands_started = 0

    def create(self, owner: str) -> Shell:
        """Open and return a new shell with a fresh upper-case GUID, as WinRM names them."""
        shell = Shell(str(uuid.uuid4()).upper(), owner)
        with self._lock:
            self._shells[shell.shell_id] = shell
            self.created += 1
        return shell

    def get(self, shell_id: str | None) -> Shell | None:
        """Return the open shell ``shell_id`` or None."""
        with self._lock:
            return self._shells.get(shell_id or "")

    def delete(self, shell_id: str | None) -> bool:
        """Close shell ``shell_id``; return False if there was none."""
        with self._lock:
            removed = self._shells.pop(shell_id or "", None)
            if removed is not None:
                self.deleted += 1
            return removed is not None

    def add_command(
        self, shell: Shell, command: str, arguments: list[str], runner: Runner
    ) -> Command:
        """Register and return a new command in ``shell`` (not started yet)."""
        entry = Command(str(uuid.uuid4()).upper(), command, arguments, runner)
        with self._lock:
            shell.commands[entry.command_id] = entry
            self.commands_started += 1
        return entry

    @property
    def open_count(self) -> int:
        """Return how many shells are open now."""
        with self._lock:
            return len(self._shells)
