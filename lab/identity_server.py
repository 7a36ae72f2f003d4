"""The identity endpoints of one lab host, over real HTTP inside the host's own namespace.

- IMDS on ``169.254.169.254:80`` (an address the host's init puts on its own loopback, so
  nothing leaves the namespace): ``GET /metadata/identity/oauth2/token`` with the header
  ``Metadata: true`` answers 200 with a token for a host whose VM has a system-assigned
  identity, and 400 ``Identity not found`` for one that has none (what IMDS answers then).
  Without the header it answers 400, as IMDS does.
- The Arc agent's himds on ``127.0.0.1:40342``: the same request, unauthenticated, gets 401
  with ``Www-Authenticate: Basic realm=<key file>`` (the challenge Arc documents).

Run: ``python -m lab.identity_server [--imds ADDR:PORT --identity system|none --token-file F]
[--arc ADDR:PORT --realm PATH]``. A test double: it shares no code with the suite.
"""

from __future__ import annotations

import argparse
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

TOKEN_PATH = "/metadata/identity/oauth2/token"


def _error(description: str) -> dict[str, str]:
    return {"error": "invalid_request", "error_description": description}


def _handler(mode: str, token: str, realm: str) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "hrw-lab-identity"

        def log_message(self, format: str, *args: object) -> None:
            return  # quiet: the lab's logs stay small

        def _send(self, status: int, body: dict[str, str], extra: dict[str, str]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            for key, value in extra.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if urlsplit(self.path).path != TOKEN_PATH:
                self._send(404, {"error": "not_found"}, {})
            elif self.headers.get("Metadata", "").lower() != "true":
                self._send(
                    400,
                    {
                        "error": "invalid_request",
                        "error_description": "Required metadata header not specified",
                    },
                    {},
                )
            elif mode == "arc":
                self._send(
                    401, {"error": "unauthorized"}, {"Www-Authenticate": f"Basic realm={realm}"}
                )
            elif mode == "system":
                body = {
                    "access_token": token,
                    "expires_in": "86399",
                    "resource": "https://management.azure.com/",
                    "token_type": "Bearer",
                }
                self._send(200, body, {})
            else:
                self._send(
                    400, {"error": "invalid_request", "error_description": "Identity not found"}, {}
                )

    return Handler


def _listen(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    return host, int(port)


def main(argv: list[str] | None = None) -> int:
    """Serve the endpoints named on the command line until killed."""
    parser = argparse.ArgumentParser(prog="python -m lab.identity_server", description=__doc__)
    parser.add_argument("--imds", help="ADDR:PORT of IMDS")
    parser.add_argument("--identity", choices=("system", "none"), default="system")
    parser.add_argument("--token-file", help="file holding the token IMDS hands out")
    parser.add_argument("--arc", help="ADDR:PORT of himds")
    parser.add_argument("--realm", default="/var/opt/azcmagent/tokens/lab.key")
    args = parser.parse_args(argv)
    token = ""
    if args.token_file:
        with open(args.token_file, encoding="utf-8") as handle:
            token = handle.read().strip()
    servers = []
    if args.imds:
        servers.append(ThreadingHTTPServer(_listen(args.imds), _handler(args.identity, token, "")))
    if args.arc:
        servers.append(ThreadingHTTPServer(_listen(args.arc), _handler("arc", "", args.realm)))
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in servers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
