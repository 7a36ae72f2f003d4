"""Remote shells and the commands running in them, kept across requests.

A client opens a shell once (with its code page, WINRS_CODEPAGE) and runs many commands in
it. As WinRS does, a command's process starts when the Command request arrives, on its own
thread; stdin sent later reaches it through a pipe it reads from, blocking until the client
ends the stream. With WINRS_CONSOLEMODE_STDIN=TRUE stdin is a console instead of a pipe, so
the process reads lines through .NET Framework's 256-character console buffer (at most 254
characters a line, as Console.ReadLine's documentation says); Ansible's WinRM plugin and this
suite's backend send FALSE when they stream stdin. Output is handed out in pieces no larger
than the client's envelope allows.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from lab.winrm_emulator.engine_api import CommandOutput

log = logging.getLogger(__name__)

Runner = Callable[[str, list[str], "StdinPipe"], CommandOutput]
# .NET Framework reads console input through a 256-character buffer: 254 characters a line.
CONSOLE_LINE_LIMIT = 254


class StdinClosed(Exception):
    """Stdin was sent to a command whose stdin had already ended."""


@dataclass(frozen=True)
class OutputChunk:
    """A piece of a command's output for one Receive; ``exit_code`` set on the last piece."""

    stdout: bytes
    stderr: bytes
    exit_code: int | None


class StdinPipe:
    """A command's stdin as its process reads it: filled by Send requests, ended by the client."""

    def __init__(self, codepage: int, console_mode: bool) -> None:
        self.codepage = codepage
        self.console_mode = console_mode
        self._data = bytearray()
        self._ended = False
        self._sent = False
        self._receiving = False
        self._change = threading.Condition()

    def write(self, data: bytes, end: bool) -> None:
        """Append what a Send request carried; ``end`` closes the stream."""
        with self._change:
            if self._ended:
                raise StdinClosed("stdin already ended")
            self._data += data
            self._sent = True
            self._ended = end
            self._change.notify_all()

    def note_receive(self) -> None:
        """Record that the client asked for output (see :meth:`read_stdin_if_sent`)."""
        with self._change:
            self._receiving = True
            self._change.notify_all()

    def read_stdin(self) -> bytes:
        """Return all of stdin once the client ended it (lines cut as a console cuts them).

        Blocks like a real process reading its stdin: forever if the client never ends it.
        """
        with self._change:
            self._change.wait_for(lambda: self._ended)
            data = bytes(self._data)
        return self._as_read(data)

    def read_stdin_if_sent(self) -> bytes:
        """Return stdin, or nothing when the client asks for output without sending any.

        For test doubles that echo whatever they are given: pywinrm sends all input before
        its first Receive, so this is deterministic, where a real process would block.
        """
        with self._change:
            self._change.wait_for(lambda: self._ended or (self._receiving and not self._sent))
            data = bytes(self._data)
        return self._as_read(data)

    def _as_read(self, data: bytes) -> bytes:
        if not self.console_mode:
            return data
        return b"\n".join(_console_line(line) for line in data.split(b"\n"))


def _console_line(line: bytes) -> bytes:
    ending = b"\r" if line.endswith(b"\r") else b""
    return line[: len(line) - len(ending)][:CONSOLE_LINE_LIMIT] + ending


@dataclass
class Command:
    """One command in a shell: its process (started at once), stdin and output handed out."""

    command_id: str
    command: str
    arguments: list[str]
    _runner: Runner
    stdin: StdinPipe
    _started: bool = False
    _done: threading.Event = field(default_factory=threading.Event)
    _output: CommandOutput | None = None
    _stdout_sent: int = 0
    _stderr_sent: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add_stdin(self, data: bytes, end: bool) -> None:
        """Pass stdin on to the running process; ``end`` closes the stream."""
        try:
            self.stdin.write(data, end)
        except StdinClosed:
            raise StdinClosed(self.command_id) from None

    def start(self) -> None:
        """Start the process on a worker thread unless it already runs."""
        with self._lock:
            if self._started:
                return
            self._started = True
        threading.Thread(
            target=self._run, name=f"winrm-cmd-{self.command_id[:8]}", daemon=True
        ).start()

    def _run(self) -> None:
        try:
            output = self._runner(self.command, self.arguments, self.stdin)
        except Exception:
            # A broken engine must not hang the client: report it like a crashed process.
            log.exception("engine failed on command %s", self.command_id)
            output = CommandOutput(b"", b"emulator engine failed\r\n", 1)
        self._output = output
        self._done.set()

    @property
    def finished(self) -> bool:
        """Return True once the process has ended."""
        return self._done.is_set()

    def wait(self, timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` for the process to end; return True once it has."""
        self.stdin.note_receive()
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
    codepage: int = 437
    commands: dict[str, Command] = field(default_factory=dict)


class ShellTable:
    """All open shells of one server, shared by every connection's thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._shells: dict[str, Shell] = {}
        self.created = 0
        self.deleted = 0
        self.commands_started = 0

    def create(self, owner: str, codepage: int = 437) -> Shell:
        """Open and return a new shell with a fresh upper-case GUID, as WinRM names them."""
        shell = Shell(str(uuid.uuid4()).upper(), owner, codepage)
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
        self,
        shell: Shell,
        command: str,
        arguments: list[str],
        runner: Runner,
        console_mode_stdin: bool = True,
    ) -> Command:
        """Register, start and return a new command in ``shell``."""
        pipe = StdinPipe(shell.codepage, console_mode_stdin)
        entry = Command(str(uuid.uuid4()).upper(), command, arguments, runner, pipe)
        entry.start()
        with self._lock:
            shell.commands[entry.command_id] = entry
            self.commands_started += 1
        return entry

    @property
    def open_count(self) -> int:
        """Return how many shells are open now."""
        with self._lock:
            return len(self._shells)
