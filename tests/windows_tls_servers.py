"""Tiny real network peers on 127.0.0.1 for the Windows probe's network tests.

A TLS server with a three-level chain, a Basic-auth CONNECT proxy that relays to it, and a
"black hole" listener whose full accept queue makes connects time out. Everything runs in
daemon threads of the test process and stops when its context manager exits.
"""

from __future__ import annotations

import base64
import datetime
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class ServerChain:
    """PEM files a TLS server presents: ``chain`` holds leaf then issuing CA; ``root`` apart."""

    chain: Path
    key: Path
    root: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _certificate(
    subject: str,
    issuer: str,
    key: ec.EllipticCurvePrivateKey,
    signer: ec.EllipticCurvePrivateKey,
    ca: bool,
    names: list[str],
    valid: tuple[datetime.datetime, datetime.datetime] | None,
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    not_before, not_after = valid or (
        now - datetime.timedelta(minutes=5),
        now + datetime.timedelta(days=1),
    )
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if names:
        sans: list[x509.GeneralName] = [x509.DNSName(n) for n in names]
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(signer, hashes.SHA256())


def make_chain(
    directory: Path,
    root_cn: str,
    issuing_cn: str,
    names: list[str],
    valid: tuple[datetime.datetime, datetime.datetime] | None = None,
) -> ServerChain:
    """Write a root CA, an issuing CA and a leaf for ``names``; return the server's files.

    ``valid`` is the certificates' (not before, not after); by default from five minutes ago
    for one day.
    """
    directory.mkdir(parents=True, exist_ok=True)
    root_key, issuing_key, leaf_key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
    root = _certificate(root_cn, root_cn, root_key, root_key, True, [], valid)
    issuing = _certificate(issuing_cn, root_cn, issuing_key, root_key, True, [], valid)
    leaf = _certificate(names[0], issuing_cn, leaf_key, issuing_key, False, names, valid)
    pem = serialization.Encoding.PEM
    files = ServerChain(directory / "chain.pem", directory / "key.pem", directory / "root.pem")
    files.chain.write_bytes(leaf.public_bytes(pem) + issuing.public_bytes(pem))
    files.root.write_bytes(root.public_bytes(pem))
    files.key.write_bytes(
        leaf_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return files


def _listener() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((LOOPBACK, 0))
    sock.listen(16)
    sock.settimeout(0.2)
    return sock


def _serve(sock: socket.socket, stop: threading.Event, handle: object) -> None:
    while not stop.is_set():
        try:
            conn, _ = sock.accept()
        except OSError:
            continue
        conn.settimeout(5)
        threading.Thread(target=handle, args=(conn,), daemon=True).start()  # type: ignore[arg-type]


@contextmanager
def _serving(handle: Callable[[socket.socket], None]) -> Iterator[int]:
    """Accept connections on a loopback port in a thread, each given to ``handle``; yield the
    port, and stop and close everything when the block ends."""
    sock, stop = _listener(), threading.Event()
    thread = threading.Thread(target=_serve, args=(sock, stop, handle), daemon=True)
    thread.start()
    try:
        yield sock.getsockname()[1]
    finally:
        stop.set()
        thread.join()
        sock.close()


@contextmanager
def tls_server(files: ServerChain) -> Iterator[int]:
    """Run a TLS server presenting ``files``; yield its port."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(files.chain, files.key)

    def handle(conn: socket.socket) -> None:
        with suppress(OSError), context.wrap_socket(conn, server_side=True) as tls:
            tls.recv(1)

    with _serving(handle) as port:
        yield port


@contextmanager
def connect_proxy(
    upstream_port: int, user: str, password: str, *, open_proxy: bool = False
) -> Iterator[int]:
    """Run a CONNECT proxy demanding Basic credentials that relays to ``upstream_port``
    (``open_proxy``: one that asks for none)."""
    expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

    def relay(src: socket.socket, dst: socket.socket) -> None:
        with suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
        with suppress(OSError):
            dst.shutdown(socket.SHUT_WR)

    def handle(conn: socket.socket) -> None:
        with conn:
            head = b""
            while b"\r\n\r\n" not in head and len(head) < 8192:
                chunk = conn.recv(1024)
                if not chunk:
                    return
                head += chunk
            headers = head.decode("latin-1").split("\r\n")
            given = [
                h.split(":", 1)[1].strip()
                for h in headers
                if ":" in h and h.lower().startswith("proxy-authorization")
            ]
            if not open_proxy and given != [expected]:
                conn.sendall(
                    b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                    b'Proxy-Authenticate: Basic realm="lab"\r\n\r\n'
                )
                return
            with socket.create_connection((LOOPBACK, upstream_port), timeout=5) as up:
                conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                back = threading.Thread(target=relay, args=(up, conn), daemon=True)
                back.start()
                relay(conn, up)
                back.join(5)

    with _serving(handle) as port:
        yield port


@contextmanager
def black_hole(address: str = LOOPBACK, port: int = 0) -> Iterator[int]:
    """Yield a port on ``address`` whose accept queue is full, so new connects time out."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((address, port))
    sock.listen(0)
    port = sock.getsockname()[1]
    fillers = []
    try:
        for _ in range(3):
            filler = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            filler.setblocking(False)
            with suppress(BlockingIOError):
                filler.connect((address, port))
            fillers.append(filler)
        yield port
    finally:
        for filler in fillers:
            filler.close()
        sock.close()


def closed_port() -> int:
    """Return a loopback port with nothing listening (connects are refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])
