"""The agent's proxy setting, ``[http(s)://][user:password@]host[:port]``, read as the agent
reads it.

The OMS agent for Linux parses ``proxy.conf`` (OMS-Agent-for-Linux, ``oms_configuration.rb``
``parse_proxy_config``) by removing a leading ``http://`` or ``https://`` from each line,
refusing any other lower-case ``scheme://``, then matching
``^(?:(?<user>[^:]+):(?<pass>[^@]+)@)?(?<addr>[^:@]+)(?::(?<port>\\d+))?$`` where ``^`` and
``$`` are line anchors (Ruby). So the user has no ``:``, the password is anything but ``@``
(``#``, ``/``, ``?``, ``:``, spaces and quotes included) and the port is optional. A URL
parser reads such a line differently (``#`` starts a fragment), which is why this module
exists; ``hrw_proxy`` inventory values are read the same way.

Errors say where the value came from and what is wrong, never any part of it: a malformed
line may hold a password anywhere.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

MASK = "***"

_AGENT = re.compile(
    r"(?:(?P<user>[^:\n]+):(?P<password>[^@\n]+)@)?(?P<addr>[^:@\n]+)(?::(?P<port>\d+))?"
)
_HTTP_PREFIX = re.compile(r"^(https?://)?", re.M)
_OTHER_SCHEME = re.compile(r"^[a-z]+://", re.M)
# What a resolvable proxy host looks like; the agent's pattern alone would take any text
# without ':' or '@' (spaces, "$(...)"), which no resolver would find.
_HOST = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*")


class ProxyFormatError(ValueError):
    """A proxy setting the agent would not accept; the message holds none of its text."""


@dataclass(frozen=True)
class AgentProxy:
    """A parsed proxy setting. ``password`` never shows in repr or :meth:`masked_url`."""

    scheme: str  # as written ("http" when none was)
    host: str
    port: int | None
    user: str | None = None
    password: str | None = field(default=None, repr=False)

    @property
    def has_credentials(self) -> bool:
        """Return True when the setting carries a user and password."""
        return self.user is not None

    def masked_url(self) -> str:
        """Return the setting as ``scheme://[user:***@]host[:port]``, safe to show."""
        userinfo = f"{self.user}:{MASK}@" if self.user is not None else ""
        port = f":{self.port}" if self.port is not None else ""
        return f"{self.scheme}://{userinfo}{self.host}{port}"


def parse_agent_proxy(text: str, source: str) -> AgentProxy | None:
    """Return the proxy in ``text`` as the agent reads it, or None when ``text`` is empty.

    ``source`` names where the text came from (a file path, an inventory variable) for the
    error. Raises ProxyFormatError for what the agent would refuse, saying what is wrong
    without any part of the text.
    """
    if not text.strip():
        return None
    schemes = {m.group(1) for m in _HTTP_PREFIX.finditer(text) if m.group(1)}
    stripped = _HTTP_PREFIX.sub("", text)
    if _OTHER_SCHEME.search(stripped):
        raise ProxyFormatError(
            f"{source}: the proxy's scheme is not http:// or https:// (the agent refuses "
            "any other): write [http://][user:password@]host:port"
        )
    # Ruby's match finds the first line that matches as a whole (its ^ and $ are per line).
    for line in stripped.split("\n"):
        found = _AGENT.fullmatch(line)
        if found is not None:
            break
    else:
        raise ProxyFormatError(f"{source}: {_what_is_wrong(stripped)}")
    if not _HOST.fullmatch(found["addr"]):
        raise ProxyFormatError(
            f"{source}: the proxy host is not a host name or IPv4 address (letters, digits, "
            "'-', '.', '_'): write [http://][user:password@]host:port"
        )
    port = found["port"]
    scheme = "https" if "https://" in schemes and "http://" not in schemes else "http"
    return AgentProxy(
        scheme=scheme,
        host=found["addr"],
        port=int(port) if port is not None else None,
        user=found["user"],
        password=found["password"],
    )


def _what_is_wrong(text: str) -> str:
    """Return why no line of ``text`` is ``[user:password@]host[:port]``, in words that
    quote none of it."""
    line = text.split("\n", 1)[0].rstrip("\r")
    hint = "write [http://][user:password@]host:port"
    if "\r" in text:
        return f"a carriage return (Windows line end) makes it unreadable to the agent: {hint}"
    if line.count("@") > 1:
        return f"more than one '@': the password may not contain '@' (the agent's rule): {hint}"
    userinfo, at, hostport = line.rpartition("@")
    if at and ":" not in userinfo:
        return f"the credentials before '@' have no ':' between user and password: {hint}"
    if at and (userinfo.startswith(":") or userinfo.endswith(":")):
        return f"the user or the password before '@' is empty: {hint}"
    if not hostport:
        return f"no host: {hint}"
    host, colon, port = hostport.partition(":")
    if colon and not port.isdigit():
        return f"the port after the host is not a number: {hint}"
    if not host:
        return f"no host: {hint}"
    return f"it is not [user:password@]host[:port]: {hint}"


def proxy_password(text: str | None) -> str | None:
    """Return the password of a proxy setting, or None (no setting, no password, malformed).

    For registering with a redactor: never raises, so a malformed value still has its
    password, if one can be made out, masked (the part between the first ':' and the last
    '@').
    """
    if not text:
        return None
    try:
        parsed = parse_agent_proxy(text, "proxy")
    except ProxyFormatError:
        stripped = _HTTP_PREFIX.sub("", text).strip()
        userinfo, at, _ = stripped.rpartition("@")
        _, colon, password = userinfo.partition(":")
        return password if at and colon and password else None
    return parsed.password if parsed else None
