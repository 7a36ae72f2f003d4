"""A testinfra backend that runs commands on Windows over WinRM, one shell per host.

testinfra's own ``winrm://`` backend hard-codes NTLM and opens and deletes a shell for every
command. This one is built from explicit :class:`WinRMSettings`, opens one WinRM shell on
first use, runs every command of the run in it, and deletes it on :meth:`WinRMBackend.close`.
Commands may be given standard input (the Windows probe sends its script that way).

Every failure surfaces as :class:`WinRMError`, whose message names the host and the cause
(refused, timeout, TLS verification, rejected credentials, WinRM fault, no answer) and never
contains the password.
"""

from __future__ import annotations

import logging
import math
import os
import re
import subprocess
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Literal

import requests
import winrm.exceptions
import winrm.protocol
import winrm.transport
from testinfra.backend import base

from hrw_preflight.hosts.bounds import DEFAULT_MAX_OUTPUT_BYTES, DeadlinePassed, within_deadline
from hrw_preflight.hosts.errors import ConfigError

log = logging.getLogger(__name__)

Scheme = Literal["https", "http"]
Transport = Literal["ntlm", "kerberos", "credssp", "basic"]
CertValidation = Literal["validate", "ignore"]
Cause = Literal[
    "refused",
    "timeout",
    "connection",
    "tls",
    "auth",
    "fault",
    "read-timeout",
    "command-timeout",
    "too-large",
    "http",
    "winrm",
]

_SCHEMES = ("https", "http")
_TRANSPORTS = ("ntlm", "kerberos", "credssp", "basic")
_VALIDATIONS = ("validate", "ignore")
# UTF-8, so non-ASCII output survives; pywinrm's default is the OEM code page 437.
_CODEPAGE_UTF8 = 65001
# Stdin goes in pieces well below the smallest MaxEnvelopeSize a Windows host accepts.
_STDIN_CHUNK = 64 * 1024
_SHELL_NOT_FOUND = 2150858843
# pywinrm's session set-up asks requests for the environment's proxy settings, which
# requests answers by writing and deleting os.environ["no_proxy"]: from several threads at
# once that raises KeyError. One session is built at a time (see _quiet_session).
_SESSION_BUILD = threading.Lock()
_SAFE_ARG = re.compile(r"^[\w@%+=:,./\\-]+$", re.ASCII)


@dataclass(frozen=True, kw_only=True)
class WinRMSettings:
    """How to reach one Windows host over WinRM.

    ``read_timeout_s`` bounds the wait for any HTTP answer and must exceed
    ``operation_timeout_s``, the time the server may hold a Receive open (WinRM's
    OperationTimeout); ``command_timeout_s`` bounds one whole command (with connecting, on
    the clock); ``max_output_bytes`` bounds what one command may print.
    """

    host: str
    port: int
    user: str
    password: str = field(repr=False)
    scheme: Scheme = "https"
    transport: Transport = "ntlm"
    server_cert_validation: CertValidation = "validate"
    ca_trust_path: str | None = None
    connect_timeout_s: float = 10.0
    read_timeout_s: float = 30.0
    operation_timeout_s: float = 20.0
    command_timeout_s: float = 300.0
    max_output_bytes: int = DEFAULT_MAX_OUTPUT_BYTES

    def __post_init__(self) -> None:
        where = f"winrm settings for {self.host!r}"
        if not self.host:
            raise ConfigError("winrm settings: host is empty; give a host name or address")
        if isinstance(self.port, bool) or not isinstance(self.port, int):
            raise ConfigError(f"{where}: port must be an integer, not {self.port!r}")
        if not 0 < self.port < 65536:
            raise ConfigError(f"{where}: port {self.port} is outside 1..65535")
        if not self.user:
            raise ConfigError(f"{where}: user is empty; set the WinRM user name")
        if self.scheme not in _SCHEMES:
            raise ConfigError(f"{where}: scheme {self.scheme!r} unknown; use https or http")
        if self.transport not in _TRANSPORTS:
            raise ConfigError(
                f"{where}: transport {self.transport!r} unknown; use {', '.join(_TRANSPORTS)}"
            )
        if self.transport == "basic" and self.scheme != "https":
            raise ConfigError(
                f"{where}: basic auth sends the password in clear; use scheme https with it"
            )
        if self.server_cert_validation not in _VALIDATIONS:
            raise ConfigError(
                f"{where}: server_cert_validation {self.server_cert_validation!r} unknown; "
                "use validate or ignore"
            )
        if self.ca_trust_path is not None and not os.path.exists(self.ca_trust_path):
            raise ConfigError(f"{where}: ca_trust_path {self.ca_trust_path} does not exist")
        for name in ("connect_timeout_s", "read_timeout_s", "operation_timeout_s"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{where}: {name} must be positive")
        if self.read_timeout_s <= self.operation_timeout_s:
            raise ConfigError(
                f"{where}: read_timeout_s ({self.read_timeout_s}) must exceed "
                f"operation_timeout_s ({self.operation_timeout_s})"
            )

    @property
    def endpoint(self) -> str:
        """Return the WS-Management URL, e.g. ``https://win1:5986/wsman``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}/wsman"


def missing_transport_support(transport: str) -> str | None:
    """Return what to install when pywinrm cannot speak ``transport`` here, else None.

    Why: without it pywinrm fails only when the first command is sent, which used to read as
    the host being unreachable; the operator must hear it before the run, in one line.
    """
    available = {
        "kerberos": winrm.transport.HAVE_KERBEROS,
        "credssp": winrm.transport.HAVE_CREDSSP,
    }
    if available.get(transport, True):
        return None
    return (
        f"WinRM transport {transport} needs pywinrm's {transport} support, which is not "
        f"installed: run .venv/bin/pip install -e '.[{transport}]'"
    )


def _kerberos_reason(causes: list[BaseException]) -> str | None:
    """Return why a Kerberos login could not even be tried (no or expired ticket), or None."""
    for exc in causes:
        name = type(exc).__name__
        if name in ("GSSError", "SpnegoError", "KerberosExchangeError") or "Kerberos" in str(exc):
            return f"{name}: {str(exc).splitlines()[0] if str(exc) else 'no detail'}"
    return None


class WinRMError(Exception):
    """A WinRM operation failed; ``cause`` says which way, the message says what to check."""

    def __init__(self, host: str, cause: Cause, message: str) -> None:
        super().__init__(" ".join(message.split()))
        self.host = host
        self.cause: Cause = cause


def _root_causes(exc: BaseException) -> list[BaseException]:
    """Return ``exc`` and every exception chained below it (urllib3 nests them deeply)."""
    seen: list[BaseException] = []
    stack: list[BaseException] = [exc]
    while stack:
        current = stack.pop()
        if any(current is s for s in seen):
            continue
        seen.append(current)
        stack.extend(arg for arg in current.args if isinstance(arg, BaseException))
        for linked in (current.__cause__, current.__context__, getattr(current, "reason", None)):
            if isinstance(linked, BaseException):
                stack.append(linked)
    return seen


def _tls_reason(exc: BaseException) -> str:
    text = " ".join(str(e) for e in _root_causes(exc))
    match = re.search(r"certificate verify failed: ([^()]+?)(?: \(_ssl|\)|$)", text)
    if match:
        return match.group(1).strip()
    match = re.search(r"[Hh]ostname mismatch[^'\")]*", text)
    return match.group(0).strip() if match else "handshake failed"


class WinRMBackend(base.BaseBackend):  # type: ignore[misc]
    """Runs commands in one reused WinRM shell on one Windows host."""

    NAME = "winrm"

    def __init__(self, settings: WinRMSettings, *args: Any, **kwargs: Any) -> None:
        self.settings = settings
        self.commands_run = 0
        self._lock = threading.Lock()
        self._abandoned = False  # a command outlived its deadline; its thread is left behind
        self._protocol: winrm.protocol.Protocol | None = None
        self._shell_id: str | None = None
        super().__init__(settings.host, *args, **kwargs)

    def __repr__(self) -> str:
        return f"WinRMBackend({self.settings!r})"

    @property
    def where(self) -> str:
        """Return ``host:port`` as messages name the target."""
        return f"{self.settings.host}:{self.settings.port}"

    @property
    def shell_id(self) -> str | None:
        """Return the open shell's id, or None before the first command and after close."""
        return self._shell_id

    # testinfra asks the remote Python for its encoding; a Windows host has none to ask.
    def get_encoding(self) -> str:
        """Return the encoding of command output: UTF-8, the code page the shell is opened with."""
        return "utf-8"

    @staticmethod
    def quote(command: str, *args: str) -> str:
        """Return ``command`` with ``args`` substituted, quoted as the Windows C runtime parses.

        Why: testinfra passes arguments through ``%s`` placeholders; on Windows they must
        follow CommandLineToArgvW rules, not POSIX shell quoting.
        """
        if not args:
            return command
        quoted = tuple(a if _SAFE_ARG.match(a) else subprocess.list2cmdline([a]) for a in args)
        return command % quoted

    def run(
        self, command: str, *args: str, stdin: bytes | None = None, **kwargs: Any
    ) -> base.CommandResult:
        """Run one command line in the host's shell and return its output and exit code.

        ``stdin``, if given, is sent to the command and its input closed afterwards.
        Raises :class:`WinRMError` when the host cannot be reached or WinRM fails.
        """
        line = self.get_command(command, *args)
        if self._abandoned:
            raise WinRMError(
                self.settings.host, "command-timeout", f"{self.where}: an earlier command hung"
            )
        limit = self.settings.connect_timeout_s + self.settings.command_timeout_s
        try:
            stdout, stderr, rc = within_deadline(
                lambda: self._run_locked(line, stdin), limit, self.settings.host
            )
        except DeadlinePassed:
            # The thread stays blocked on a host that answers (slowly) but never finishes;
            # it is left behind and the shell is not used again.
            self._abandoned = True
            raise WinRMError(
                self.settings.host,
                "command-timeout",
                f"{self.where}: command did not finish within {limit:g}s (connect and "
                "command timeouts; the host kept the connection open without finishing)",
            ) from None
        return self.result(rc, self.encode(line), stdout, stderr)

    def _run_locked(self, line: str, stdin: bytes | None) -> tuple[bytes, bytes, int]:
        with self._lock:
            try:
                protocol, shell_id = self._open()
                stdout, stderr, rc = self._execute(protocol, shell_id, line, stdin)
            except WinRMError:
                self._discard()
                raise
            except Exception as exc:
                error = self._translate(exc)
                if error.cause != "fault" or self._is_shell_gone(exc):
                    self._discard()
                raise error from None
            self.commands_run += 1
        return stdout, stderr, rc

    def close(self) -> None:
        """Delete the shell (if one is open) and drop the connection; never raises, and
        never waits for a command that outlived its deadline."""
        if self._abandoned:
            return
        with self._lock:
            protocol, shell_id = self._protocol, self._shell_id
            if protocol is not None and shell_id is not None:
                try:
                    protocol.close_shell(shell_id)
                except Exception as exc:
                    log.info("%s: could not delete shell: %s", self.where, self._translate(exc))
            self._discard()

    def _open(self) -> tuple[winrm.protocol.Protocol, str]:
        if self._protocol is not None and self._shell_id is not None:
            return self._protocol, self._shell_id
        s = self.settings
        operation = max(1, math.ceil(s.operation_timeout_s))
        read = max(operation + 1, math.ceil(s.read_timeout_s))
        protocol = winrm.protocol.Protocol(
            s.endpoint,
            transport=s.transport,
            username=s.user,
            password=s.password,
            server_cert_validation=s.server_cert_validation,
            # None means "system CAs only"; pywinrm's annotation omits it, its code allows it.
            ca_trust_path=s.ca_trust_path,  # type: ignore[arg-type]
            read_timeout_sec=read,
            operation_timeout_sec=operation,
            proxy=None,
        )
        # pywinrm passes one number to requests; a (connect, read) pair lets a dead host fail
        # fast without cutting short the long-polling Receive.
        timeouts = (s.connect_timeout_s, s.read_timeout_s)
        protocol.transport.read_timeout_sec = timeouts  # type: ignore[assignment]
        _quiet_session(protocol.transport)
        self._protocol = protocol
        self._shell_id = protocol.open_shell(codepage=_CODEPAGE_UTF8, noprofile=True)
        log.debug("%s: opened WinRM shell %s", self.where, self._shell_id)
        return protocol, self._shell_id

    def _execute(
        self,
        protocol: winrm.protocol.Protocol,
        shell_id: str,
        line: str,
        stdin: bytes | None,
    ) -> tuple[bytes, bytes, int]:
        # Streamed stdin goes through a pipe, not a console (as Ansible's WinRM plugin does):
        # a console would feed it as typed lines, each cut by the console's line buffer.
        command_id = protocol.run_command(shell_id, line, console_mode_stdin=stdin is None)
        if stdin is not None:
            pieces = [stdin[i : i + _STDIN_CHUNK] for i in range(0, len(stdin), _STDIN_CHUNK)]
            for index, piece in enumerate(pieces or [b""]):
                last = index == max(len(pieces), 1) - 1
                protocol.send_command_input(shell_id, command_id, piece, end=last)
        deadline = time.monotonic() + self.settings.command_timeout_s
        stdout: list[bytes] = []
        stderr: list[bytes] = []
        total = 0
        while True:
            try:
                out, err, rc, done = protocol.get_command_output_raw(shell_id, command_id)
            except winrm.exceptions.WinRMOperationTimeoutError:
                out, err, rc, done = b"", b"", -1, False
            stdout.append(out)
            stderr.append(err)
            total += len(out) + len(err)
            if total > self.settings.max_output_bytes:
                limit = self.settings.max_output_bytes
                raise WinRMError(
                    self.settings.host,
                    "too-large",
                    f"{self.where}: the host printed more than {limit / 1024 / 1024:g} MB for "
                    "one command, so it was stopped and nothing it printed was judged "
                    "(--hrw-max-output-mb)",
                )
            if done:
                break
            if time.monotonic() > deadline:
                raise WinRMError(
                    self.settings.host,
                    "command-timeout",
                    f"{self.where}: command did not finish within "
                    f"{self.settings.command_timeout_s:g}s",
                )
        protocol.cleanup_command(shell_id, command_id)
        return b"".join(stdout), b"".join(stderr), int(rc)

    def _discard(self) -> None:
        protocol, self._protocol, self._shell_id = self._protocol, None, None
        if protocol is not None:
            try:
                protocol.transport.close_session()
            except Exception as exc:  # closing a dead session may fail any which way
                log.debug("%s: closing session: %s", self.where, type(exc).__name__)

    @staticmethod
    def _is_shell_gone(exc: BaseException) -> bool:
        return getattr(exc, "wsman_fault_code", None) == _SHELL_NOT_FOUND

    def _translate(self, exc: BaseException) -> WinRMError:
        """Return the :class:`WinRMError` that explains ``exc`` without any secret."""
        s = self.settings
        cause: Cause
        kerberos = _kerberos_reason(_root_causes(exc)) if s.transport == "kerberos" else None
        if kerberos is not None:
            cause = "auth"
            text = (
                f"{self.where}: Kerberos login as {s.user or 'the default principal'} failed "
                f"({kerberos}); the kerberos transport uses the controller's ticket, never a "
                f"password: run kinit {s.user or '<user>@<REALM>'} first, or use ntlm"
            )
        elif isinstance(exc, winrm.exceptions.InvalidCredentialsError):
            cause = "auth"
            text = (
                f"{self.where}: the credentials of user {s.user!r} were rejected (HTTP 401, "
                f"{s.transport} over {s.scheme}); check the user name and password"
            )
        elif isinstance(exc, winrm.exceptions.WSManFaultError):
            cause = "fault"
            code = exc.wsman_fault_code if exc.wsman_fault_code is not None else exc.code
            text = f"{self.where}: WinRM fault {code} ({exc.fault_subcode}): {exc.reason}"
        elif isinstance(exc, winrm.exceptions.WinRMTransportError):
            cause = "http"
            text = f"{self.where}: WinRM answered HTTP {exc.code}"
        elif isinstance(exc, requests.exceptions.SSLError):
            cause = "tls"
            text = (
                f"{self.where}: TLS verification failed ({_tls_reason(exc)}); trust the issuing "
                "CA with ca_trust_path or connect by the name in the certificate"
            )
        elif isinstance(exc, requests.exceptions.ConnectTimeout):
            cause = "timeout"
            text = f"{self.where}: connection timed out after {s.connect_timeout_s:g}s"
        elif isinstance(exc, requests.exceptions.ReadTimeout):
            cause = "read-timeout"
            text = f"{self.where}: connected but WinRM sent no answer within {s.read_timeout_s:g}s"
        elif isinstance(exc, requests.exceptions.ConnectionError):
            causes = _root_causes(exc)
            if any(isinstance(c, ConnectionRefusedError) for c in causes):
                cause = "refused"
                text = f"{self.where}: connection refused; is WinRM listening on that port?"
            else:
                cause = "connection"
                innermost = causes[-1]
                text = f"{self.where}: connection failed ({type(innermost).__name__})"
        elif isinstance(exc, winrm.exceptions.WinRMError):
            cause = "winrm"
            text = f"{self.where}: {exc}"
        else:
            cause = "winrm"
            text = f"{self.where}: {type(exc).__name__}: {exc}"
        if s.password:
            text = text.replace(s.password, "***")
        return WinRMError(s.host, cause, text)


def _quiet_session(transport: winrm.transport.Transport) -> requests.Session:
    """Build ``transport``'s requests session now, once, and return it with ``trust_env`` off.

    Why: with ``trust_env`` on, requests consults the environment for every request it sends
    (proxies through ``os.environ["no_proxy"]``, which it sets and then deletes, and
    ``~/.netrc``); the probe threads of a fleet run race on os.environ and a Windows host
    fails with ``KeyError: 'no_proxy'``. The WinRM connection takes no proxy and its trust
    comes from the host's own settings, so the environment has nothing to give it. Building
    the session still reads the environment once, so builds take turns; message encryption
    (over HTTP its set-up is a round trip to the host) is set up after, outside the lock, so
    a slow host cannot hold up the others.
    """
    wanted = transport.message_encryption
    with _SESSION_BUILD:
        transport.message_encryption = "never"
        try:
            session = transport.build_session()
        finally:
            transport.message_encryption = wanted
    session.trust_env = False
    if _encrypts(transport, session):
        transport.setup_encryption(session)
    return session


def _encrypts(transport: winrm.transport.Transport, session: requests.Session) -> bool:
    """Return whether pywinrm would wrap this session's messages in the auth's encryption:
    always when asked to, and on "auto" over plain HTTP, where the auth supports it (NTLM
    and CredSSP here; Kerberos is refused earlier where it is not installed)."""
    mode = transport.message_encryption
    available = transport.auth_method == "credssp" or hasattr(session.auth, "session_security")
    if mode == "always" and not available:
        raise winrm.exceptions.WinRMError(
            f"message encryption is required but {transport.auth_method} cannot provide it"
        )
    plain_http = not transport.endpoint.lower().startswith("https")
    return available and (mode == "always" or (mode == "auto" and plain_http))
