"""What every host's setup needs to know about the lab as a whole for one start."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from lab.fleet import PROXY_ADDRESS, PROXY_AUTH_PORT, PROXY_OPEN_PORT, PROXY_PORT
from lab.paths import LabPaths
from lab.pki import PkiFiles

PROXY_USER = "hrwproxy"
WINRM_USER = "hrwadmin"


# Characters the agent's proxy.conf allows in a password that a URL parser does not (a
# fragment, a path, a query, a space, a colon, quotes): the lab's proxy password ends with
# them, so every intercepted host checks that they are read right and never shown.
PROXY_PASSWORD_HARD_PART = "#/? :'\""


def new_secret() -> str:
    """Return a fresh random password (URL-safe characters)."""
    return secrets.token_urlsafe(18)


def new_proxy_password() -> str:
    """Return a fresh random proxy password ending with :data:`PROXY_PASSWORD_HARD_PART`."""
    return new_secret() + PROXY_PASSWORD_HARD_PART


@dataclass(frozen=True)
class LabContext:
    """Shared inputs of one lab start: paths, PKI, passwords and helper binaries."""

    paths: LabPaths
    pki: PkiFiles
    proxy_password: str
    winrm_password: str
    lab_public_key: str
    sshd_uid: int
    # What the lab's IMDS hands out as the system identity's token: a credential as far as
    # the suite knows, so tests look for it in every output (it must appear in none).
    imds_token: str = ""

    @property
    def proxy_url(self) -> str:
        """Return the agent's proxy setting with the lab proxy's credentials (a secret), in
        proxy.conf's format ``http://user:password@host:port`` (the password not encoded:
        the agent reads it up to the last '@')."""
        return f"http://{PROXY_USER}:{self.proxy_password}@{PROXY_ADDRESS}:{PROXY_PORT}"

    def agent_proxy(self, network: str) -> str | None:
        """Return the proxy.conf line of a Linux host whose profile says ``network``: the
        intercepting proxy, the authenticating or the open pass-through one, or None."""
        if network == "intercepted":
            return self.proxy_url
        if network == "proxy-auth":
            return f"http://{PROXY_USER}:{self.proxy_password}@{PROXY_ADDRESS}:{PROXY_AUTH_PORT}"
        if network == "proxy-open":
            return f"http://{PROXY_ADDRESS}:{PROXY_OPEN_PORT}"
        return None
