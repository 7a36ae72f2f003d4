"""The per-host configuration file the lab launcher writes for one emulated Windows host.

The file is JSON (mode 600, it holds the WinRM password). :func:`load` turns it into a
:class:`HostConfig` or raises :class:`ConfigError` with one line saying what to fix.
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ENDPOINT_ROLES = ("agentsvc", "jrds", "oms", "ods")


class ConfigError(ValueError):
    """The host configuration file is missing, unreadable or malformed."""


@dataclass(frozen=True)
class HostConfig:
    """Everything the emulator knows about the host it pretends to be."""

    name: str
    address: str
    http_port: int
    https_port: int
    tls_cert: str
    tls_key: str
    username: str
    password: str = field(repr=False)
    workspace_id: str
    endpoints: dict[str, str]
    resolve: dict[str, str]
    proxy: str | None = field(repr=False)
    profile: dict[str, Any]
    # The extension's AutomationAccountURL (the fleet's account for the host), and the token
    # the host's IMDS hands out (the probe must print only that one came back).
    account_url: str | None = None
    imds_token: str = field(default="", repr=False)
    # Where to record what PowerShell's script block and module logging would (optional).
    script_log: str | None = None


def _require(raw: dict[str, Any], key: str, kind: type, path: Path) -> Any:
    if key not in raw:
        raise ConfigError(f"{path}: missing key {key!r}")
    value = raw[key]
    # bool is an int subclass; a port of `true` is a mistake, not 1.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        # Name the type, never the value: the value may be the password.
        raise ConfigError(
            f"{path}: key {key!r} must be a {kind.__name__}, not {type(value).__name__}"
        )
    return value


def _string_map(raw: dict[str, Any], key: str, path: Path) -> dict[str, str]:
    value = _require(raw, key, dict, path)
    for k, v in value.items():
        if not isinstance(v, str):
            raise ConfigError(f"{path}: {key}.{k} must be a string, not {type(v).__name__}")
    return dict(value)


def parse(raw: Any, path: Path) -> HostConfig:
    """Return the :class:`HostConfig` held in the decoded JSON ``raw`` read from ``path``.

    Exists separately from :func:`load` so tests and the launcher can build configs in memory.
    """
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: top level must be a JSON object")
    ports = {}
    for key in ("http_port", "https_port"):
        port = _require(raw, key, int, path)
        if not 0 <= port <= 65535:
            raise ConfigError(f"{path}: {key} must be 0..65535, got {port}")
        ports[key] = port
    endpoints = _string_map(raw, "endpoints", path)
    missing = [role for role in ENDPOINT_ROLES if role not in endpoints]
    if missing:
        raise ConfigError(f"{path}: endpoints lacks {', '.join(missing)}")
    proxy = raw.get("proxy")
    if proxy is not None and not isinstance(proxy, str):
        raise ConfigError(f"{path}: key 'proxy' must be null or a URL string")
    return HostConfig(
        name=_require(raw, "name", str, path),
        address=_require(raw, "address", str, path),
        http_port=ports["http_port"],
        https_port=ports["https_port"],
        tls_cert=_require(raw, "tls_cert", str, path),
        tls_key=_require(raw, "tls_key", str, path),
        username=_require(raw, "username", str, path),
        password=_require(raw, "password", str, path),
        workspace_id=_require(raw, "workspace_id", str, path),
        endpoints=endpoints,
        resolve=_string_map(raw, "resolve", path),
        proxy=proxy,
        profile=_require(raw, "profile", dict, path),
        account_url=_optional_string(raw, "account_url", path),
        imds_token=_optional_string(raw, "imds_token", path) or "",
        script_log=str(raw["script_log"]) if raw.get("script_log") else None,
    )


def _optional_string(raw: dict[str, Any], key: str, path: Path) -> str | None:
    value = raw.get(key)
    if value is not None and not isinstance(value, str):
        raise ConfigError(f"{path}: key {key!r} must be null or a string")
    return value


def load(path: str | os.PathLike[str]) -> HostConfig:
    """Read and validate the host configuration file at ``path``.

    Refuses a file that others can read, since it holds the WinRM password.
    """
    file = Path(path)
    try:
        mode = file.stat().st_mode
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read host config ({exc.strerror})") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(f"{file}: mode {stat.S_IMODE(mode):o} is too open, chmod 600 it")
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{file}: not valid JSON (line {exc.lineno}: {exc.msg})") from None
    return parse(raw, file)
