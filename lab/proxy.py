"""The lab's TLS-intercepting HTTP CONNECT proxy (namespace ``hrw-proxy``, 10.213.0.3:3128).

It behaves like a corporate inspection proxy: it demands Basic proxy credentials (407
without them), accepts ``CONNECT`` only to Azure endpoint names (502 for anything else),
then terminates TLS toward the client with a certificate it forges for the requested name
(SNI, or the CONNECT host without SNI), issued by its own CA named
``Microsoft Azure RSA TLS Issuing CA 03``, and opens its own TLS connection to the lab's
Azure endpoint. A check that trusts CA names rather than thumbprints would be fooled.

Two more listeners of the same process play proxies that do not inspect TLS (they relay the
tunnel's bytes untouched): one that demands the same credentials (``passthrough_auth_port``,
3129) and one that asks for none (``passthrough_open_port``, 3130), for the profiles of
workers behind an ordinary authenticating or open proxy.

Run: ``python -m lab.proxy --config proxy.json`` (mode 600: it holds the password).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import contextlib
import hmac
import json
import logging
import ssl
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509

from lab.pki import cert_pem, key_pem, load_key, make_leaf, rsa_key

LOG = logging.getLogger("lab.proxy")
HEAD_LIMIT = 16384
IO_TIMEOUT = 15.0
UPSTREAM_CONNECT_TIMEOUT = 5.0


@dataclass(frozen=True)
class ProxyConfig:
    """The proxy's settings, read from its JSON config file."""

    listen_host: str
    listen_port: int
    username: str
    password: str
    ca_cert: Path
    ca_key: Path
    upstream_address: str
    upstream_ca: Path
    intercept_suffixes: tuple[str, ...]
    passthrough_auth_port: int | None = None
    passthrough_open_port: int | None = None


def load_config(path: Path) -> ProxyConfig:
    """Return the config in ``path``; raise ValueError naming the missing or bad key."""
    raw: Any = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: must hold a JSON object")
    keys = (
        "listen_host",
        "listen_port",
        "username",
        "password",
        "ca_cert",
        "ca_key",
        "upstream_address",
        "upstream_ca",
        "intercept_suffixes",
    )
    missing = [k for k in keys if k not in raw]
    if missing:
        raise ValueError(f"{path}: missing key {missing[0]!r}")
    return ProxyConfig(
        listen_host=str(raw["listen_host"]),
        listen_port=int(raw["listen_port"]),
        username=str(raw["username"]),
        password=str(raw["password"]),
        ca_cert=Path(raw["ca_cert"]),
        ca_key=Path(raw["ca_key"]),
        upstream_address=str(raw["upstream_address"]),
        upstream_ca=Path(raw["upstream_ca"]),
        intercept_suffixes=tuple(str(s) for s in raw["intercept_suffixes"]),
        passthrough_auth_port=_optional_port(raw.get("passthrough_auth_port")),
        passthrough_open_port=_optional_port(raw.get("passthrough_open_port")),
    )


def _optional_port(value: Any) -> int | None:
    """Return an optional listening port of the config (None when absent)."""
    return None if value is None else int(value)


def credentials_ok(header_value: str | None, username: str, password: str) -> bool:
    """Return whether a Proxy-Authorization header carries exactly the proxy's credentials."""
    if not header_value:
        return False
    scheme, _, token = header_value.strip().partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        decoded = base64.b64decode(token.strip(), validate=True)
    except (binascii.Error, ValueError):
        return False
    expected = f"{username}:{password}".encode()
    return hmac.compare_digest(decoded, expected)


def parse_head(head: bytes) -> tuple[str, str, dict[str, str]]:
    """Return (method, target, headers with lower-case names) of an HTTP request head."""
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split()
    if len(parts) != 3:
        raise ValueError("malformed request line")
    headers = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return parts[0].upper(), parts[1], headers


def split_target(target: str) -> tuple[str, int]:
    """Return (host, port) of a CONNECT target ``host:port``; ValueError if malformed."""
    host, sep, port = target.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise ValueError(f"bad CONNECT target {target!r}")
    return host.strip("[]").lower(), int(port)


def simple_response(status: str, extra: str = "") -> bytes:
    """Return a short HTTP/1.1 proxy error response that closes the connection."""
    body = f"{status}\n".encode()
    return (
        f"HTTP/1.1 {status}\r\n{extra}Content-Type: text/plain\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode() + body


class Interceptor:
    """Forges per-name server certificates under the proxy CA and caches their contexts."""

    def __init__(self, config: ProxyConfig, workdir: Path) -> None:
        self.config = config
        self.workdir = workdir
        self.ca_cert = x509.load_pem_x509_certificate(config.ca_cert.read_bytes())
        self.ca_key = load_key(config.ca_key)
        self.leaf_key = rsa_key()
        self.key_file = workdir / "forged.key"
        self.key_file.write_bytes(key_pem(self.leaf_key))
        self.key_file.chmod(0o600)
        self.contexts: dict[str, ssl.SSLContext] = {}
        self.upstream = ssl.create_default_context(cafile=str(config.upstream_ca))

    def context_for(self, name: str) -> ssl.SSLContext:
        """Return a server context presenting a forged leaf for ``name`` plus the proxy CA."""
        name = name.lower()
        if name not in self.contexts:
            leaf = make_leaf([name], [], self.leaf_key, (self.ca_cert, self.ca_key))
            chain = self.workdir / f"{name}.pem"
            chain.write_bytes(cert_pem(leaf) + cert_pem(self.ca_cert))
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.minimum_version = ssl.TLSVersion.TLSv1_2
            context.load_cert_chain(str(chain), str(self.key_file))
            context.sni_callback = self._on_sni
            self.contexts[name] = context
        return self.contexts[name]

    def _on_sni(self, sslobj: Any, server_name: str | None, _ctx: ssl.SSLContext) -> None:
        if server_name and self.allowed(server_name):
            sslobj.context = self.context_for(server_name)

    def allowed(self, host: str) -> bool:
        """Return whether ``host`` is an Azure name the proxy forwards to the lab endpoint."""
        return any(host.lower().endswith(s) for s in self.config.intercept_suffixes)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, ssl.SSLError, OSError):
        pass
    finally:
        writer.close()


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(ConnectionError, ssl.SSLError, OSError):
        await writer.wait_closed()


class ProxyServer:
    """The CONNECT handler: authenticate, check the name, intercept TLS, relay.

    ``require_auth`` False: an open proxy; ``intercept`` False: the tunnel's bytes are relayed
    untouched, so the client sees the Azure endpoint's own chain.
    """

    def __init__(
        self,
        config: ProxyConfig,
        interceptor: Interceptor,
        *,
        require_auth: bool = True,
        intercept: bool = True,
    ) -> None:
        self.config = config
        self.interceptor = interceptor
        self.require_auth = require_auth
        self.intercept = intercept

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Serve one client connection."""
        peer = writer.get_extra_info("peername")
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), IO_TIMEOUT)
            method, target, headers = parse_head(head[:HEAD_LIMIT])
        except (
            TimeoutError,
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
            ValueError,
            ConnectionError,
        ):
            await _close(writer)
            return
        status = await self._tunnel(reader, writer, method, target, headers)
        LOG.info("%s %s %s -> %s", peer, method, target, status)

    async def _tunnel(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        method: str,
        target: str,
        headers: dict[str, str],
    ) -> str:
        cfg = self.config
        given = headers.get("proxy-authorization")
        if self.require_auth and not credentials_ok(given, cfg.username, cfg.password):
            writer.write(
                simple_response(
                    "407 Proxy Authentication Required",
                    'Proxy-Authenticate: Basic realm="hrw-lab-proxy"\r\n',
                )
            )
            await _close(writer)
            return "407"
        if method != "CONNECT":
            writer.write(simple_response("405 Method Not Allowed", "Allow: CONNECT\r\n"))
            await _close(writer)
            return "405"
        try:
            host, port = split_target(target)
        except ValueError:
            writer.write(simple_response("400 Bad Request"))
            await _close(writer)
            return "400"
        if not self.interceptor.allowed(host):
            writer.write(simple_response("502 Bad Gateway"))
            await _close(writer)
            return "502 (name not allowed)"
        try:
            up_reader, up_writer = await asyncio.wait_for(
                asyncio.open_connection(cfg.upstream_address, port), UPSTREAM_CONNECT_TIMEOUT
            )
        except (TimeoutError, OSError):
            writer.write(simple_response("502 Bad Gateway"))
            await _close(writer)
            return "502 (upstream unreachable)"
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        if not self.intercept:
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
            return "200, passed through"
        try:
            await writer.drain()
            await writer.start_tls(
                self.interceptor.context_for(host), ssl_handshake_timeout=IO_TIMEOUT
            )
            ssl_object = writer.get_extra_info("ssl_object")
            sni = getattr(ssl_object, "server_hostname", None) or host
            await up_writer.start_tls(
                self.interceptor.upstream, server_hostname=sni, ssl_handshake_timeout=IO_TIMEOUT
            )
        except (ssl.SSLError, ConnectionError, OSError, TimeoutError) as exc:
            await _close(writer)
            await _close(up_writer)
            return f"200, TLS failed: {exc.__class__.__name__}"
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        return "200, intercepted"


async def serve(config: ProxyConfig, interceptor: Interceptor) -> None:
    """Run the proxy's listeners until cancelled.

    The pass-through listeners start first: the lab waits for the main port, so once it
    answers they all do.
    """
    kinds = [
        (config.passthrough_auth_port, {"require_auth": True, "intercept": False}),
        (config.passthrough_open_port, {"require_auth": False, "intercept": False}),
        (config.listen_port, {"require_auth": True, "intercept": True}),
    ]
    servers = []
    for port, mode in kinds:
        if port is None:
            continue
        proxy = ProxyServer(config, interceptor, **mode)
        servers.append(
            await asyncio.start_server(proxy.handle, config.listen_host, port, limit=HEAD_LIMIT)
        )
        LOG.info("listening on %s:%d (%s)", config.listen_host, port, mode)
    await asyncio.gather(*(server.serve_forever() for server in servers))


def main(argv: list[str] | None = None) -> int:
    """Run the proxy; return an exit status (2 for an unusable config)."""
    parser = argparse.ArgumentParser(prog="python -m lab.proxy", description=__doc__)
    parser.add_argument("--config", required=True, type=Path)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s: %(message)s"
    )
    try:
        config = load_config(args.config)
    except (OSError, ValueError) as exc:
        print(f"proxy: {exc}", file=sys.stderr)
        return 2
    # Forged certificates live beside the config, inside .lab/, so lab-down removes them.
    workdir = args.config.resolve().parent / "proxy-forged"
    try:
        workdir.mkdir(mode=0o700, exist_ok=True)
        interceptor = Interceptor(config, workdir)
    except (OSError, ValueError, ssl.SSLError) as exc:
        print(f"proxy: {exc}", file=sys.stderr)
        return 2
    try:
        asyncio.run(serve(config, interceptor))
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
