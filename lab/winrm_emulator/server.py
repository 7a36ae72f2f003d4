"""The WinRM listeners of one emulated Windows host: HTTP 5985 and HTTPS 5986 on ``/wsman``.

Authentication follows a default Windows WinRM service: Negotiate (NTLM) on both ports with
message encryption required on HTTP (``AllowUnencrypted=false``), Basic accepted over HTTPS
only. NTLM authenticates a TCP connection, so its context lives on the connection's handler;
shells live on the server and outlast connections. Every connection runs on its own thread.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hmac
import importlib
import logging
import socket
import ssl
import threading
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast

from lab.winrm_emulator import wsman
from lab.winrm_emulator.config import HostConfig
from lab.winrm_emulator.engine_api import CommandOutput, Engine, ProcessInput
from lab.winrm_emulator.ntlm_session import (
    CREDENTIALS,
    ENCRYPTED_CONTENT_TYPE,
    AuthenticationFailed,
    EncryptionError,
    NtlmAcceptor,
    tls_channel_bindings,
)
from lab.winrm_emulator.shells import Shell, ShellTable, StdinClosed

log = logging.getLogger("lab.winrm_emulator")

SOAP_CONTENT_TYPE = "application/soap+xml;charset=UTF-8"
HANDSHAKE_TIMEOUT_S = 15.0
# HTTP.sys keeps idle connections far shorter; a long idle time keeps a client's NTLM-sealed
# session usable between the widely spaced commands of a test run.
IDLE_TIMEOUT_S = 900.0
RECEIVE_WAIT_CAP_S = 120.0
ENVELOPE_OVERHEAD = 4096
# Commands cmd.exe runs itself (no .exe of that name exists), so they fail to start when the
# client asks WinRS to skip cmd.exe (WINRS_SKIP_CMD_SHELL=TRUE).
CMD_BUILTINS = frozenset(
    ("echo", "dir", "set", "ver", "type", "cd", "copy", "del", "mkdir", "rmdir", "vol", "path")
)


class ServerStats:
    """Counters of what the server saw, for tests and the log (never any secret)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()

    def add(self, event: str) -> None:
        """Count one ``event``."""
        with self._lock:
            self._counts[event] += 1

    def get(self, event: str) -> int:
        """Return how often ``event`` happened."""
        with self._lock:
            return self._counts[event]


DEFAULT_ENGINE = "lab.winrm_emulator.engine:run_command"


def load_engine(spec: str = DEFAULT_ENGINE) -> Engine:
    """Return the engine function named ``module:function``.

    By default it is the one that answers like the host's PowerShell would; it is imported on
    demand so the transport (and its tests) work without that module.
    """
    module_name, _, function_name = spec.partition(":")
    module = importlib.import_module(module_name)
    engine = getattr(module, function_name or "run_command", None)
    if not callable(engine):
        raise ImportError(f"{spec} is not a callable engine")
    return cast(Engine, engine)


class WinRMServer:
    """Both listeners of one host plus the shells they share."""

    def __init__(self, host: HostConfig, engine: Engine | None = None) -> None:
        self.host = host
        self.engine: Engine = engine if engine is not None else load_engine()
        self.shells = ShellTable()
        self.stats = ServerStats()
        self.hang = bool(host.profile.get("winrm_hang_after_connect", False))
        self.trickle = bool(host.profile.get("winrm_trickle", False))
        self.stopping = threading.Event()
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.minimum_version = ssl.TLSVersion.TLSv1_2
        tls.load_cert_chain(host.tls_cert, host.tls_key)
        with open(host.tls_cert, encoding="ascii") as handle:
            cert_der = ssl.PEM_cert_to_DER_cert(handle.read())
        self._http = _Listener((host.address, host.http_port), self, None, None)
        self._https = _Listener(
            (host.address, host.https_port), self, tls, tls_channel_bindings(cert_der)
        )
        self._threads: list[threading.Thread] = []

    @property
    def http_port(self) -> int:
        """Return the bound HTTP port (useful when the config asked for port 0)."""
        return int(self._http.server_address[1])

    @property
    def https_port(self) -> int:
        """Return the bound HTTPS port."""
        return int(self._https.server_address[1])

    def start(self) -> None:
        """Register the NTLM user and serve both ports on background threads."""
        CREDENTIALS.register(self.host.username, self.host.password)
        for listener in (self._http, self._https):
            thread = threading.Thread(
                target=listener.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"winrm-{self.host.name}-{listener.server_address[1]}",
                daemon=True,
            )
            thread.start()
            self._threads.append(thread)
        log.info(
            "%s: WinRM listening on %s http=%d https=%d%s",
            self.host.name,
            self.host.address,
            self.http_port,
            self.https_port,
            " (hangs after connect)" if self.hang else "",
        )

    def stop(self) -> None:
        """Stop both listeners, drop open connections and the NTLM user."""
        self.stopping.set()
        for listener in (self._http, self._https):
            if self._threads:
                listener.shutdown()
            listener.drop_connections()
            listener.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
        if self._threads:
            CREDENTIALS.unregister(self.host.username)
        self._threads.clear()
        log.info("%s: WinRM stopped", self.host.name)

    def run_command(self, command: str, arguments: list[str], stdin: ProcessInput) -> CommandOutput:
        """Return what the engine answers for one command on this host."""
        return self.engine(command, arguments, stdin, self.host)

    def __enter__(self) -> WinRMServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def create_server(host: HostConfig, engine: Engine | None = None) -> WinRMServer:
    """Return a (not yet started) :class:`WinRMServer` for ``host`` answering with ``engine``."""
    return WinRMServer(host, engine)


class _Listener(ThreadingHTTPServer):
    """One port; wraps connections in TLS on their own thread and tracks them for shutdown."""

    daemon_threads = True
    block_on_close = False

    def __init__(
        self,
        address: tuple[str, int],
        app: WinRMServer,
        tls: ssl.SSLContext | None,
        channel_bindings: Any,
    ) -> None:
        self.app = app
        self.tls = tls
        self.channel_bindings = channel_bindings
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _WSManHandler)

    @property
    def scheme(self) -> str:
        """Return ``https`` or ``http``."""
        return "https" if self.tls is not None else "http"

    def finish_request(self, request: Any, client_address: Any) -> None:
        """Do the TLS handshake here, on the connection's thread, then serve it."""
        conn: socket.socket = request
        # Headers and body go out in separate writes; without this, Nagle's algorithm and
        # the client's delayed ACK add ~40 ms to every answer.
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.tls is not None:
            try:
                conn = self.tls.wrap_socket(
                    request, server_side=True, do_handshake_on_connect=False
                )
                conn.settimeout(HANDSHAKE_TIMEOUT_S)
                conn.do_handshake()
            except (OSError, ssl.SSLError) as exc:
                log.info(
                    "%s: TLS handshake with %s failed: %s",
                    self.app.host.name,
                    client_address[0],
                    exc,
                )
                conn.close()
                return
        with self._connections_lock:
            self._connections.add(conn)
        try:
            _WSManHandler(conn, client_address, self)
        finally:
            with self._connections_lock:
                self._connections.discard(conn)
            if conn is not request:
                conn.close()

    def drop_connections(self) -> None:
        """Shut down every open connection so their threads end."""
        with self._connections_lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


class _WSManHandler(BaseHTTPRequestHandler):
    """Serves the requests of one TCP connection in order."""

    protocol_version = "HTTP/1.1"
    server_version = "Microsoft-HTTPAPI/2.0"
    sys_version = ""
    timeout = IDLE_TIMEOUT_S
    server: _Listener

    def setup(self) -> None:
        super().setup()
        self.ntlm: NtlmAcceptor | None = None
        self.ntlm_user: str | None = None

    @property
    def app(self) -> WinRMServer:
        return self.server.app

    def handle(self) -> None:
        if self.app.hang:
            # Accept (and, on HTTPS, finish TLS) but never answer: a wedged WinRM service.
            self.app.stats.add("hung_connection")
            self.app.stopping.wait()
            return
        super().handle()

    def log_message(self, format: str, *args: Any) -> None:
        # The base class logs the request line only; headers (Authorization) never reach it.
        log.debug("%s: %s %s", self.app.host.name, self.client_address[0], format % args)

    def _trickle(self) -> None:
        """Answer with headers promising a large body, then send it one byte a second until
        the emulator stops: a service that is alive but never finishes an answer."""
        self.app.stats.add("trickled_connection")
        self.wfile.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/soap+xml;charset=UTF-8\r\n"
            b"Content-Length: 1000000\r\n\r\n"
        )
        self.wfile.flush()
        while not self.app.stopping.wait(1.0):
            try:
                self.wfile.write(b" ")
                self.wfile.flush()
            except OSError:
                break
        self.close_connection = True

    def do_GET(self) -> None:
        self._send(405, b"", None)

    def do_POST(self) -> None:
        length_text = self.headers.get("Content-Length", "0")
        if not length_text.isdigit():
            self._send(411, b"", None)
            self.close_connection = True
            return
        body = self.rfile.read(int(length_text))
        if self.app.trickle:
            self._trickle()
            return
        if self.path.split("?", 1)[0].lower() != "/wsman":
            self._send(404, b"", None)
            return
        user = self._authenticate()
        if user is None:
            return
        content_type = self.headers.get("Content-Type", "")
        if not body:
            # pywinrm's first, empty POST: it only completes the NTLM handshake.
            self._send(200, b"", None)
            return
        encrypted = content_type.lower().startswith("multipart/encrypted")
        if encrypted:
            if self.ntlm is None or not self.ntlm.complete:
                self.app.stats.add("encrypted_without_session")
                self._reject_auth("encrypted body without an NTLM session")
                return
            try:
                soap = self.ntlm.unseal(body)
            except EncryptionError as exc:
                self.app.stats.add("bad_encryption")
                log.warning("%s: dropping connection: %s", self.app.host.name, exc)
                self._send(400, b"", None)
                self.close_connection = True
                return
            self.app.stats.add("encrypted_request")
        elif self.server.tls is None:
            # AllowUnencrypted=false: plain SOAP over HTTP is refused like bad credentials.
            self.app.stats.add("unencrypted_rejected")
            self.ntlm = None
            self._reject_auth("unencrypted message over HTTP")
            return
        else:
            soap = body
            self.app.stats.add("plain_request")
        status, answer = self._dispatch(soap, user)
        if encrypted and self.ntlm is not None:
            self._send(status, self.ntlm.seal(answer), ENCRYPTED_CONTENT_TYPE)
        else:
            self._send(status, answer, SOAP_CONTENT_TYPE)

    # --- authentication -------------------------------------------------------------------

    def _authenticate(self) -> str | None:
        """Return the authenticated user, or None after answering 401 (or a challenge)."""
        header = self.headers.get("Authorization")
        if header is None:
            if self.ntlm is not None and self.ntlm.complete and self.ntlm_user is not None:
                return self.ntlm_user
            self._reject_auth(None)
            return None
        scheme, _, token_text = header.strip().partition(" ")
        scheme = scheme.lower()
        try:
            token = base64.b64decode(token_text.strip(), validate=True)
        except (binascii.Error, ValueError):
            self._reject_auth("undecodable Authorization token")
            return None
        if scheme in ("negotiate", "ntlm"):
            return self._step_ntlm(scheme, token)
        if scheme == "basic":
            return self._check_basic(token)
        self._reject_auth(f"unsupported auth scheme {scheme}")
        return None

    def _step_ntlm(self, scheme: str, token: bytes) -> str | None:
        if self.ntlm is None or self.ntlm.complete:
            self.ntlm = NtlmAcceptor(self.app.host.username, self.server.channel_bindings)
            self.ntlm_user = None
        try:
            answer = self.ntlm.step(token)
        except AuthenticationFailed as exc:
            self.ntlm = None
            self.app.stats.add("auth_failed")
            self._reject_auth(f"NTLM authentication failed ({exc})")
            return None
        if not self.ntlm.complete:
            challenge = base64.b64encode(answer or b"").decode("ascii")
            scheme_name = "Negotiate" if scheme == "negotiate" else "NTLM"
            self._send(401, b"", None, [("WWW-Authenticate", f"{scheme_name} {challenge}")])
            return None
        self.ntlm_user = self.app.host.username
        self.app.stats.add("ntlm_authenticated")
        return self.ntlm_user

    def _check_basic(self, token: bytes) -> str | None:
        if self.server.tls is None:
            # Basic sends the password in clear; WinRM refuses it without TLS.
            self.app.stats.add("basic_over_http_rejected")
            self._reject_auth("Basic over HTTP")
            return None
        user, sep, password = token.decode("utf-8", "replace").partition(":")
        user = user.rsplit("\\", 1)[-1]
        expected = self.app.host
        if (
            sep
            and user.lower() == expected.username.lower()
            and hmac.compare_digest(password.encode(), expected.password.encode())
        ):
            self.app.stats.add("basic_authenticated")
            return expected.username
        self.app.stats.add("auth_failed")
        self._reject_auth("Basic credentials rejected")
        return None

    def _reject_auth(self, reason: str | None) -> None:
        if reason is not None:
            log.info("%s: 401 to %s: %s", self.app.host.name, self.client_address[0], reason)
        offers = [("WWW-Authenticate", "Negotiate")]
        if self.server.tls is not None:
            offers.append(("WWW-Authenticate", 'Basic realm="WSMAN"'))
        self._send(401, b"", None, offers)

    # --- WS-Management ---------------------------------------------------------------------

    def _dispatch(self, soap: bytes, user: str) -> tuple[int, bytes]:
        """Return the HTTP status and SOAP answer for one decoded request."""
        relates_to = "uuid:00000000-0000-0000-0000-000000000000"
        try:
            request = wsman.parse_request(soap)
            relates_to = request.message_id
            answer = self._operate(request, user)
            self.app.stats.add(f"action:{request.action.rsplit('/', 1)[-1]}")
            return 200, answer
        except wsman.BadRequest as exc:
            fault = wsman.bad_message(str(exc))
        except wsman.WSManFault as exc:
            fault = exc
        self.app.stats.add(f"fault:{fault.subcode}")
        return 500, wsman.fault_response(relates_to, fault, self.app.host.name)

    def _operate(self, request: wsman.WSManRequest, user: str) -> bytes:
        shells = self.app.shells
        action = request.action
        if action == wsman.ACTION_CREATE:
            if request.resource_uri != wsman.CMD_RESOURCE_URI:
                raise wsman.action_not_supported(action)
            shell = shells.create(user, wsman.shell_codepage(request))
            address = f"{self.server.scheme}://{self.app.host.address}:{self.server.server_address[1]}/wsman"
            log.info("%s: shell %s created for %s", self.app.host.name, shell.shell_id, user)
            return wsman.create_response(request, shell.shell_id, address, user)
        handlers: dict[str, Callable[[wsman.WSManRequest], bytes]] = {
            wsman.ACTION_DELETE: self._delete,
            wsman.ACTION_COMMAND: self._command,
            wsman.ACTION_SEND: self._send_input,
            wsman.ACTION_RECEIVE: self._receive,
            wsman.ACTION_SIGNAL: self._signal,
        }
        handler = handlers.get(action)
        if handler is None:
            raise wsman.action_not_supported(action)
        return handler(request)

    def _shell(self, request: wsman.WSManRequest) -> Shell:
        shell = self.app.shells.get(request.shell_id)
        if shell is None:
            raise wsman.shell_not_found(request.shell_id)
        return shell

    def _delete(self, request: wsman.WSManRequest) -> bytes:
        if not self.app.shells.delete(request.shell_id):
            raise wsman.shell_not_found(request.shell_id)
        log.info("%s: shell %s deleted", self.app.host.name, request.shell_id)
        return wsman.delete_response(request)

    def _command(self, request: wsman.WSManRequest) -> bytes:
        shell = self._shell(request)
        command, arguments = wsman.command_line(request)
        if wsman.flag(request, "WINRS_SKIP_CMD_SHELL", default=False):
            # No cmd.exe: the first word must be a program CreateProcess can find.
            program = command.split()[0].lower() if command.split() else ""
            if program in CMD_BUILTINS:
                raise wsman.file_not_found()
        console = wsman.flag(request, "WINRS_CONSOLEMODE_STDIN", default=True)
        self.app.stats.add(f"stdin:{'console' if console else 'pipe'}")
        entry = self.app.shells.add_command(
            shell, command, arguments, self.app.run_command, console_mode_stdin=console
        )
        # The command line may carry encoded scripts; its length is enough for the log.
        log.info(
            "%s: command %s (%d chars) in shell %s",
            self.app.host.name,
            entry.command_id,
            len(command) + sum(len(a) + 1 for a in arguments),
            shell.shell_id,
        )
        return wsman.command_response(request, entry.command_id)

    def _send_input(self, request: wsman.WSManRequest) -> bytes:
        shell = self._shell(request)
        for chunk in wsman.stdin_chunks(request):
            entry = shell.commands.get(chunk.command_id)
            if entry is None:
                raise wsman.command_not_found(chunk.command_id)
            try:
                entry.add_stdin(chunk.data, chunk.end)
            except StdinClosed:
                raise wsman.bad_message("stdin of the command is already closed") from None
        return wsman.send_response(request)

    def _receive(self, request: wsman.WSManRequest) -> bytes:
        shell = self._shell(request)
        command_id = wsman.receive_command_id(request)
        entry = shell.commands.get(command_id)
        if entry is None:
            raise wsman.command_not_found(command_id)
        if not entry.wait(min(request.operation_timeout_s, RECEIVE_WAIT_CAP_S)):
            raise wsman.operation_timed_out()
        max_bytes = max(1024, (request.max_envelope_size - ENVELOPE_OVERHEAD) * 3 // 4)
        chunk = entry.next_chunk(max_bytes)
        streams = [("stdout", chunk.stdout), ("stderr", chunk.stderr)]
        return wsman.receive_response(
            request, command_id, [(n, d) for n, d in streams if d], chunk.exit_code
        )

    def _signal(self, request: wsman.WSManRequest) -> bytes:
        shell = self._shell(request)
        command_id = wsman.signal_command_id(request)
        if shell.commands.pop(command_id, None) is None:
            raise wsman.command_not_found(command_id)
        return wsman.signal_response(request)

    # --- HTTP ------------------------------------------------------------------------------

    def _send(
        self,
        status: int,
        body: bytes,
        content_type: str | None,
        extra_headers: list[tuple[str, str]] | None = None,
    ) -> None:
        self.send_response(status)
        for name, value in extra_headers or []:
            self.send_header(name, value)
        if content_type is not None:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)
