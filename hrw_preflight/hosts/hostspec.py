"""Targets from testinfra-style host specs (``--hosts`` values).

Understood forms, with testinfra's query options::

    ssh://ops@10.0.0.5            ssh://[fe80::1]:2222?sudo=true&ssh_config=~/.ssh/config
    paramiko://root@worker2:2222  local://
    winrm://svc@win1:5986         winrm://svc@win1?no_ssl=true&no_verify_ssl=true
    worker3                       (no scheme: paramiko, as in testinfra)

Options: ``sudo``, ``sudo_user``, ``ssh_config``, ``ssh_identity_file``, ``timeout`` for
SSH-like connections; ``no_ssl`` (plain HTTP), ``no_verify_ssl`` (no certificate
validation), ``timeout`` and this project's ``transport`` and ``ca_trust_path`` for winrm.
A password written in a spec (``winrm://svc:pw@win1``) is accepted but never shown; see
:mod:`hrw_preflight.hosts.targets` for the environment variables that avoid it.
"""

from __future__ import annotations

import os
import re
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass

from hrw_preflight.hosts.errors import ConfigError
from hrw_preflight.hosts.targets import (
    WINRM_TRANSPORTS,
    Connection,
    HostDefaults,
    Secret,
    Target,
    WinrmTransport,
    default_winrm_port,
    require_winrm_credentials,
    winrm_password_from_env,
)

_SCHEMES: dict[str, Connection] = {
    "ssh": "ssh",
    "paramiko": "paramiko",
    "local": "local",
    "winrm": "winrm",
}
_SSH_OPTIONS = frozenset({"sudo", "sudo_user", "ssh_config", "ssh_identity_file", "timeout"})
_LOCAL_OPTIONS = frozenset({"sudo", "sudo_user"})
_WINRM_OPTIONS = frozenset({"no_ssl", "no_verify_ssl", "timeout", "transport", "ca_trust_path"})
_TRUE = frozenset({"true", "yes", "1", "on"})
_FALSE = frozenset({"false", "no", "0", "off"})


@dataclass(frozen=True)
class _Netloc:
    """The parts of ``user:password@host:port``."""

    host: str
    port: int | None
    user: str | None
    password: str | None


_SCHEME = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://")
_HOST_PORT = re.compile(r"^[^:@/?]+:\d+(?:\?.*)?$")


def split_hosts(hosts: Iterable[str]) -> list[str]:
    """Return the individual entries of ``--hosts`` values, split on commas like testinfra.

    A comma inside an inline password (``winrm://svc:pa,ss@win1``) is kept: a piece that
    ends inside ``user:password`` (no '@' yet) is joined with the next piece when that one
    has no scheme and holds the '@'. Raises ConfigError, quoting no part of the value, when
    the comma cannot be placed (``...host:1234,user@...`` could be a port or a password).
    """
    entries: list[str] = []
    for value in hosts:
        current: str | None = None
        for piece in value.split(","):
            if current is not None and _continues_password(current, piece):
                if _HOST_PORT.match(_SCHEME.sub("", current.strip())):
                    raise ConfigError(
                        "--hosts: a ',' follows host:port and the next entry has no scheme, so "
                        "it could be part of a password: give every entry its scheme "
                        "(ssh://, winrm://) or put the password in the environment "
                        "(HRW_WINRM_PASSWORD_<HOST>)"
                    )
                current += "," + piece
                continue
            if current is not None and current.strip():
                entries.append(current.strip())
            current = piece
        if current is not None and current.strip():
            entries.append(current.strip())
    return entries


def _continues_password(current: str, piece: str) -> bool:
    """Return whether ``piece`` may continue an inline password that ``current`` began."""
    head = _SCHEME.sub("", current.strip())
    return "@" not in head and ":" in head and not _SCHEME.match(piece.strip()) and "@" in piece


def targets_from_hostspecs(hosts: list[str], defaults: HostDefaults) -> list[Target]:
    """Return one :class:`Target` per host spec in ``hosts`` (comma lists are split).

    ``defaults`` (the CLI's ``--ssh-config``, ``--ssh-identity-file``, ``--sudo``) apply to
    SSH-like and local targets whose spec does not set the option itself.
    """
    return [_target_from_spec(spec, defaults) for spec in split_hosts(hosts)]


def _target_from_spec(spec: str, defaults: HostDefaults) -> Target:
    """Return the target for one host spec; ConfigError names the spec when it is wrong."""
    shown = _without_password(spec)
    found = _SCHEME.match(spec)
    if found is not None:
        scheme, rest = found["scheme"], spec[found.end() :]
        connection = _SCHEMES.get(scheme.lower())
        if connection is None:
            raise ConfigError(
                f"--hosts '{shown}': unknown scheme '{scheme}': use ssh://, paramiko://, "
                "local://, winrm:// or ansible://PATTERN"
            )
    else:
        connection, rest = "paramiko", spec
    netloc_text, query_text = _split_query(rest)
    options = _parse_query(query_text, connection, shown)
    source = f"--hosts {shown}"

    if connection == "local":
        if netloc_text:
            raise ConfigError(f"--hosts '{shown}': local:// takes no host: write local://")
        return Target(
            name="local",
            platform="linux",
            connection="local",
            address="localhost",
            sudo=_flag(options, "sudo", shown, defaults.sudo),
            sudo_user=options.get("sudo_user"),
            source=source,
        )

    netloc = _parse_netloc(netloc_text, shown)
    password = Secret(netloc.password) if netloc.password else None
    timeout = _positive_int(options["timeout"], "timeout", shown) if "timeout" in options else None

    if connection == "winrm":
        scheme = "http" if _flag(options, "no_ssl", shown, False) else "https"
        transport = options.get("transport", "ntlm").lower()
        if transport not in WINRM_TRANSPORTS:
            raise ConfigError(
                f"--hosts '{shown}': transport '{transport}' is not supported: "
                f"use one of {', '.join(WINRM_TRANSPORTS)}"
            )
        winrm_transport: WinrmTransport = transport  # type: ignore[assignment]
        password = password or winrm_password_from_env(netloc.host)
        require_winrm_credentials(
            netloc.host,
            winrm_transport,
            netloc.user,
            password,
            f"write the user in the spec (winrm://USER@{netloc.host})",
        )
        return Target(
            name=netloc.host,
            platform="windows",
            connection="winrm",
            address=netloc.host,
            port=netloc.port if netloc.port is not None else default_winrm_port(scheme),
            user=netloc.user,
            password=password,
            timeout=timeout,
            winrm_scheme="http" if scheme == "http" else "https",
            winrm_transport=winrm_transport,
            winrm_cert_validation=(
                "ignore" if _flag(options, "no_verify_ssl", shown, False) else "validate"
            ),
            winrm_ca_trust_path=_path(options.get("ca_trust_path")),
            source=source,
        )

    return Target(
        name=netloc.host,
        platform="linux",
        connection=connection,
        address=netloc.host,
        port=netloc.port,
        user=netloc.user,
        password=password,
        identity_file=_path(options.get("ssh_identity_file")) or defaults.ssh_identity_file,
        ssh_config=_path(options.get("ssh_config")) or defaults.ssh_config,
        timeout=timeout,
        sudo=_flag(options, "sudo", shown, defaults.sudo),
        sudo_user=options.get("sudo_user"),
        source=source,
    )


def _parse_netloc(text: str, shown: str) -> _Netloc:
    """Return the parts of ``[user[:password]@]host[:port]`` (IPv6 hosts in brackets)."""
    user: str | None = None
    password: str | None = None
    hostport = text
    if "@" in text:
        userinfo, _, hostport = text.rpartition("@")
        user, sep, pw = userinfo.partition(":")
        password = urllib.parse.unquote(pw) if sep else None
        user = urllib.parse.unquote(user) or None
    port_text: str | None = None
    if hostport.startswith("["):
        host, sep, after = hostport[1:].partition("]")
        if not sep or (after and not after.startswith(":")):
            raise ConfigError(f"--hosts '{shown}': unclosed IPv6 bracket: write [addr]:port")
        port_text = after[1:] if after else None
    elif hostport.count(":") > 1:
        raise ConfigError(f"--hosts '{shown}': put an IPv6 address in brackets: [addr]:port")
    else:
        host, sep, port_text_raw = hostport.partition(":")
        port_text = port_text_raw if sep else None
    host = urllib.parse.unquote(host).strip()
    if not host:
        raise ConfigError(f"--hosts '{shown}': the host is empty: write scheme://[user@]host")
    port = None
    if port_text is not None:
        if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
            raise ConfigError(f"--hosts '{shown}': bad port '{port_text}': use 1-65535")
        port = int(port_text)
    return _Netloc(host=host, port=port, user=user, password=password)


def _parse_query(query: str, connection: Connection, shown: str) -> dict[str, str]:
    """Return the spec's query options, refusing any the connection does not understand."""
    allowed = {
        "winrm": _WINRM_OPTIONS,
        "local": _LOCAL_OPTIONS,
    }.get(connection, _SSH_OPTIONS)
    parsed = urllib.parse.parse_qs(query, keep_blank_values=True) if query else {}
    for key in parsed:
        if key not in allowed:
            raise ConfigError(
                f"--hosts '{shown}': option '{key}' does not apply to {connection}://: "
                f"use {', '.join(sorted(allowed))}"
            )
    return {key: values[-1] for key, values in parsed.items()}


def _flag(options: dict[str, str], key: str, shown: str, default: bool) -> bool:
    """Return the boolean option ``key`` (true/false, yes/no, 1/0), or ``default``."""
    if key not in options:
        return default
    value = options[key].lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigError(f"--hosts '{shown}': {key}='{options[key]}': use true or false")


def _positive_int(value: str, key: str, shown: str) -> int:
    """Return ``value`` as a positive integer, or raise ConfigError naming the option."""
    if not value.isdigit() or int(value) == 0:
        raise ConfigError(f"--hosts '{shown}': {key}='{value}': use a whole number of seconds")
    return int(value)


def _path(value: str | None) -> str | None:
    """Return ``value`` with ``~`` expanded, as testinfra does for path options."""
    return os.path.expanduser(value) if value else None


def _split_query(rest: str) -> tuple[str, str]:
    """Return (``[user[:password]@]host[:port]``, query) of a spec without its scheme.

    The userinfo ends at the last '@' (a password may hold '?', '#', '/' or '@'), and the
    query starts at the first '?' after it; an '@' in an option's value is written %40.
    """
    userinfo, at, after = rest.rpartition("@")
    hostport, _, query = after.partition("?")
    return (f"{userinfo}@{hostport}" if at else hostport), query


def _without_password(spec: str) -> str:
    """Return ``spec`` with any inline password replaced by ``***``, for messages."""
    found = _SCHEME.match(spec)
    head, rest = (spec[: found.end()], spec[found.end() :]) if found else ("", spec)
    netloc, query = _split_query(rest)
    if "@" in netloc:
        userinfo, _, hostport = netloc.rpartition("@")
        user, colon, _ = userinfo.partition(":")
        netloc = f"{user}:***@{hostport}" if colon else f"{user}@{hostport}"
    return f"{head}{netloc}{'?' if query else ''}{query}"
