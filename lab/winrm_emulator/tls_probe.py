"""The network part of the Windows probe, performed for real from the emulator's namespace.

For each endpoint the emulator does what the probe script does on Windows: a TCP connect
bounded by the connect timeout (directly to the endpoint's address, or to the agent's
proxy followed by an HTTP CONNECT), then a TLS 1.2 handshake with SNI that accepts any
certificate and records the chain the server sent, leaf first. All endpoints are probed
concurrently, so blocked endpoints cost one timeout in total.

What the emulator does not model: Windows' certificate store. ``Chain`` is what the server
sent (leaf first), ``BuiltChain`` repeats it (no local chain building), ``ChainStatus`` is
empty and ``PolicyErrors`` reports only a name mismatch. What it does model: a host whose
SCHANNEL TLS 1.2 client is disabled (``Enabled=0``) cannot offer TLS 1.2, so the probe's
Tls12-only handshake fails on the client side before a byte is sent, as SChannel's
SEC_E_ALGORITHM_MISMATCH does (OpenSSL here would ignore the registry).
"""

from __future__ import annotations

import base64
import errno
import socket
import ssl
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from cryptography import x509

_DER = 2  # _ssl.ENCODING_DER
# The Win32Exception text .NET shows when SChannel has no protocol in common (0x80090331).
NO_COMMON_ALGORITHM = (
    "The client and server cannot communicate, because they do not possess a common algorithm"
)


@dataclass(frozen=True)
class ProxyTarget:
    """The proxy a probe goes through: where it listens and what it is told."""

    host: str
    port: int
    user: str
    secret: str  # empty when the probe does not know the password


@dataclass(frozen=True)
class Endpoint:
    """One endpoint to probe: its role, name and the address the lab resolves it to."""

    role: str
    name: str
    address: str | None


def _socket_status(exc: OSError) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "refused"
    if isinstance(exc, TimeoutError | socket.timeout):
        return "timeout"
    if exc.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
        return "unreachable"
    return "error"


def _socket_detail(exc: OSError, address: str, port: int) -> str:
    """Return the text .NET's SocketException would carry for the same failure."""
    status = _socket_status(exc)
    if status == "refused":
        return (
            "No connection could be made because the target machine actively refused it "
            f"{address}:{port}"
        )
    if status == "unreachable":
        return f"A socket operation was attempted to an unreachable host {address}:{port}"
    return str(exc.strerror or exc)


def _read_status_line(sock: socket.socket) -> str:
    head = b""
    while len(head) < 8192 and not head.endswith(b"\r\n\r\n"):
        chunk = sock.recv(1)
        if not chunk:
            break
        head += chunk
    return head.decode("latin-1").split("\r\n", 1)[0]


def _chain(tls: ssl.SSLSocket) -> list[str]:
    # Python 3.11 has no public API for the received chain; the private one is reliable
    # there and falls back to the leaf alone if it ever disappears.
    sslobj: Any = getattr(tls, "_sslobj", None)
    getter = getattr(sslobj, "get_unverified_chain", None)
    if getter is not None:
        certificates = getter() or []
        return [base64.b64encode(c.public_bytes(_DER)).decode("ascii") for c in certificates]
    leaf = tls.getpeercert(binary_form=True)
    return [base64.b64encode(leaf).decode("ascii")] if leaf else []


def _name_mismatch(leaf_der: bytes, name: str) -> bool:
    """Return True when the leaf's DNS names do not cover ``name`` (one-label wildcards)."""
    leaf = x509.load_der_x509_certificate(leaf_der)
    try:
        names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        patterns = names.get_values_for_type(x509.DNSName)
    except x509.ExtensionNotFound:
        patterns = []
    host = name.lower().rstrip(".")
    for pattern in (p.lower() for p in patterns):
        if pattern == host:
            return False
        if pattern.startswith("*.") and host.split(".", 1)[-1] == pattern[2:] and "." in host:
            return False
    return True


def probe_endpoint(
    endpoint: Endpoint,
    port: int,
    proxy: ProxyTarget | None,
    timeout_ms: int,
    deadline: float,
    tls12_disabled: bool = False,
) -> dict[str, Any]:
    """Return the probe's result object for one endpoint (the script's field names).

    ``deadline`` (a ``time.monotonic`` value) bounds the TCP connect; the CONNECT exchange
    and the handshake each get the connect timeout, as the script's stream timeouts do.
    """
    result: dict[str, Any] = {
        "Host": endpoint.name,
        "Role": endpoint.role,
        "ViaProxy": f"{proxy.host}:{proxy.port}" if proxy else None,
        "Tcp": "error",
        "Tls": "not-attempted",
        "Detail": "",
        "PolicyErrors": "",
        "Chain": [],
        "ChainSource": "none",
        "BuiltChain": [],
        "ChainStatus": [],
    }
    target = (proxy.host, proxy.port) if proxy else (endpoint.address, port)
    if target[0] is None:
        result["Tcp"] = "unresolved"
        result["Detail"] = "No such host is known"
        return result
    address, target_port = str(target[0]), int(target[1])
    left = max(0.001, deadline - time.monotonic())
    try:
        sock = socket.create_connection((address, target_port), timeout=left)
    except OSError as exc:
        result["Tcp"] = _socket_status(exc)
        if result["Tcp"] == "timeout":
            result["Detail"] = f"no TCP connection within {timeout_ms} ms"
        else:
            result["Detail"] = _socket_detail(exc, address, target_port)
        return result
    with sock:
        sock.settimeout(timeout_ms / 1000)
        if proxy is not None:
            request = f"CONNECT {endpoint.name}:443 HTTP/1.1\r\nHost: {endpoint.name}:443\r\n"
            if proxy.user and proxy.secret:
                token = base64.b64encode(f"{proxy.user}:{proxy.secret}".encode()).decode()
                request += f"Proxy-Authorization: Basic {token}\r\n"
            try:
                sock.sendall((request + "\r\n").encode("ascii"))
                status = _read_status_line(sock)
            except OSError as exc:
                result["Tcp"] = "timeout"
                result["Detail"] = f"proxy did not answer CONNECT: {exc}"
                return result
            if not (status.startswith(("HTTP/1.0 200", "HTTP/1.1 200"))):
                result["Tcp"] = "proxy-refused"
                result["Detail"] = f"proxy answered CONNECT with: {status}"
                return result
        result["Tcp"] = "ok"
        if tls12_disabled:
            result["Tls"] = "failed"
            result["Detail"] = f"TLS handshake failed: {NO_COMMON_ALGORITHM}"
            return result
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE  # record the chain; the suite judges it
        context.minimum_version = context.maximum_version = ssl.TLSVersion.TLSv1_2
        try:
            with context.wrap_socket(sock, server_hostname=endpoint.name) as tls:
                sent = _chain(tls)
            result["Chain"] = sent
            result["ChainSource"] = "sent" if len(sent) > 1 else ("leaf-only" if sent else "none")
            result["BuiltChain"] = list(sent)
            mismatch = bool(sent) and _name_mismatch(base64.b64decode(sent[0]), endpoint.name)
            result["PolicyErrors"] = "RemoteCertificateNameMismatch" if mismatch else "None"
            result["Tls"] = "ok"
            result["Detail"] = "TLS handshake completed"
        except (OSError, ssl.SSLError) as exc:
            result["Tls"] = "failed"
            result["Detail"] = f"TLS handshake failed: {exc}"
    return result


def probe_all(
    endpoints: list[Endpoint],
    port: int,
    proxy: ProxyTarget | None,
    timeout_ms: int,
    tls12_disabled: bool = False,
) -> list[dict[str, Any]]:
    """Return the results for all endpoints, in order, probed concurrently."""
    if not endpoints:
        return []
    deadline = time.monotonic() + timeout_ms / 1000
    with ThreadPoolExecutor(max_workers=len(endpoints)) as pool:
        futures = [
            pool.submit(probe_endpoint, endpoint, port, proxy, timeout_ms, deadline, tls12_disabled)
            for endpoint in endpoints
        ]
        return [future.result() for future in futures]
