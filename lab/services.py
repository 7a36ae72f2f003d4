"""The lab's shared services: the Azure endpoint (``hrw-azure``) and the proxy (``hrw-proxy``)."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass

from lab.context import PROXY_USER, LabContext
from lab.fleet import (
    AZURE_ADDRESS,
    NETNS_PREFIX,
    PROXY_ADDRESS,
    PROXY_AUTH_PORT,
    PROXY_OPEN_PORT,
    PROXY_PORT,
)
from lab.netns import Namespace
from lab.paths import REPO_ROOT
from lab.pki import write_private
from lab.spawn import spawn_logged

INTERCEPT_SUFFIXES = (".azure-automation.net", ".opinsights.azure.com")


@dataclass(frozen=True)
class Service:
    """A shared service: its namespace, listening port and python module."""

    name: str
    address: str
    port: int
    module: str

    @property
    def namespace(self) -> Namespace:
        """Return the service's namespace (fixed veth names: they are not fleet hosts)."""
        return Namespace(f"{NETNS_PREFIX}{self.name}", f"hrwv-{self.name}", self.address)


AZURE = Service("azure", AZURE_ADDRESS, 443, "lab.azure_endpoint")
PROXY = Service("proxy", PROXY_ADDRESS, PROXY_PORT, "lab.proxy")
SERVICES = (AZURE, PROXY)


def _arguments(service: Service, ctx: LabContext) -> list[str]:
    if service is AZURE:
        return [
            "--chain",
            str(ctx.pki.azure_chain),
            "--key",
            str(ctx.pki.azure_key),
            "--listen",
            f"{AZURE_ADDRESS}:443",
        ]
    config = ctx.paths.state / "proxy" / "proxy.json"
    document = {
        "listen_host": PROXY_ADDRESS,
        "listen_port": PROXY_PORT,
        "username": PROXY_USER,
        "password": ctx.proxy_password,
        "ca_cert": str(ctx.pki.proxy_ca),
        "ca_key": str(ctx.pki.proxy_ca_key),
        "upstream_address": AZURE_ADDRESS,
        "upstream_ca": str(ctx.pki.azure_root),
        "intercept_suffixes": list(INTERCEPT_SUFFIXES),
        "passthrough_auth_port": PROXY_AUTH_PORT,
        "passthrough_open_port": PROXY_OPEN_PORT,
    }
    write_private(config, json.dumps(document, indent=2).encode())
    return ["--config", str(config)]


def start_service(service: Service, ctx: LabContext) -> int:
    """Start the service in its namespace; return its pid (logs go to .lab/logs/)."""
    ctx.paths.logs.mkdir(parents=True, exist_ok=True)
    argv = [
        "ip",
        "netns",
        "exec",
        service.namespace.name,
        sys.executable,
        "-m",
        service.module,
        *_arguments(service, ctx),
    ]
    return spawn_logged(argv, ctx.paths.logs / f"{service.name}.log", cwd=REPO_ROOT)
