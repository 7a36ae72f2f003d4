"""The lab's stand-in for Azure: one TLS server answering for every endpoint name.

Runs in namespace ``hrw-azure`` on 10.213.0.2:443 and presents a leaf whose SANs cover
``*.agentsvc.azure-automation.net``, ``*.azure-automation.net``,
``*.oms.opinsights.azure.com`` and ``*.ods.opinsights.azure.com``, sending the leaf and the
``Lab Azure TLS Issuing CA`` so that clients trusting the lab root can verify the chain.
Every HTTP request gets a small fixed response; the handshake is what the checks care about.

Run: ``python -m lab.azure_endpoint --chain CHAIN.pem --key KEY.pem --listen ADDR:PORT``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import ssl
import sys

LOG = logging.getLogger("lab.azure_endpoint")
READ_TIMEOUT = 10.0
BODY = b'{"status":"ok","service":"hrw-lab-azure"}\n'


def server_context(chain: str, key: str) -> ssl.SSLContext:
    """Return a TLS server context presenting ``chain`` (leaf first) with ``key``."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(chain, key)
    return context


def http_response(status: str, body: bytes) -> bytes:
    """Return a complete HTTP/1.1 response that closes the connection."""
    head = (
        f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Answer one request on an established TLS connection, then close it."""
    peer = writer.get_extra_info("peername")
    try:
        request = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), READ_TIMEOUT)
        first = request.split(b"\r\n", 1)[0].decode("latin-1", "replace")
        LOG.info("%s %s", peer, first)
        writer.write(http_response("200 OK", BODY))
        await writer.drain()
    except (
        TimeoutError,
        asyncio.IncompleteReadError,
        asyncio.LimitOverrunError,
        ConnectionError,
        ssl.SSLError,
    ):
        LOG.info("%s closed without a request", peer)
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            await writer.wait_closed()


async def serve(host: str, port: int, context: ssl.SSLContext) -> None:
    """Serve TLS on host:port until cancelled."""
    server = await asyncio.start_server(handle, host, port, ssl=context, ssl_handshake_timeout=10.0)
    LOG.info("listening on %s:%d", host, port)
    async with server:
        await server.serve_forever()


def parse_listen(value: str) -> tuple[str, int]:
    """Return (address, port) from ``ADDR:PORT``; raise ValueError with a clear message."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"--listen {value!r}: use ADDRESS:PORT, e.g. 10.213.0.2:443")
    return host, int(port)


def main(argv: list[str] | None = None) -> int:
    """Run the endpoint; return an exit status (2 for bad arguments or unusable files)."""
    parser = argparse.ArgumentParser(prog="python -m lab.azure_endpoint", description=__doc__)
    parser.add_argument("--chain", required=True, help="PEM: leaf then issuing CA")
    parser.add_argument("--key", required=True, help="PEM private key of the leaf")
    parser.add_argument("--listen", default="10.213.0.2:443")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s: %(message)s"
    )
    try:
        host, port = parse_listen(args.listen)
        context = server_context(args.chain, args.key)
    except (ValueError, OSError, ssl.SSLError) as exc:
        print(f"azure-endpoint: {exc}", file=sys.stderr)
        return 2
    try:
        asyncio.run(serve(host, port, context))
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
