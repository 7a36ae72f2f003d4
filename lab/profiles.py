"""Load and validate the lab's host profiles (``lab/profiles/*.yaml``).

A profile file holds only what makes its host differ from a healthy one; the healthy values
come from ``_defaults.yaml`` (a ``common`` block plus one block per platform). Loading merges
the two and checks every key and value, so a typo in a profile stops the lab with one line
that names the file and the key instead of producing a host that silently looks healthy.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from lab.openssl_standin import CLI_VERSIONS

PROFILES_DIR = Path(__file__).resolve().parent / "profiles"
DEFAULTS_FILE = "_defaults.yaml"

PLATFORMS = ("linux", "windows")
NETWORK_MODES = ("direct", "intercepted", "blocked", "proxy-auth", "proxy-open")
SSH_SESSIONS = ("normal", "hang", "close-mid-probe", "flood")
SSH_LOGIN_USERS = ("root", "hrwother")
WORKER_USERS = ("nxautomation", "omsagent", "hrwother", "root")
SERVICE_STATUSES = ("Running", "Stopped", "StartPending", "StopPending", "Paused")
SERVICE_START_TYPES = ("Automatic", "Manual", "Disabled")
# The suite's catalogue, read as data (the lab never imports the product): a profile may name
# any scenario it lists, image checks included, and nothing else.
GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
CATALOGUE = Path(__file__).resolve().parents[1] / "hrw_preflight" / "verdicts" / "catalogue.yaml"
AGENT_LAYOUTS = ("article", "3x")
MOF_ENCODINGS = ("utf-16-le", "utf-8")

# Keys every profile of a platform has once defaults are merged in. Identity keys (name,
# platform) come from the file itself and are never defaulted.
COMMON_KEYS = (
    "description",
    "expect_failing",
    "cpus",
    "memory_mb",
    "memory_available_mb",
    "update_management",
    "user_worker",
    "network",
    "other_workspaces",
)
PLATFORM_KEYS: dict[str, tuple[str, ...]] = {
    "linux": (
        "load",
        "agent_running",
        "user_worker_running",
        "worker_user",
        "omsagent_user",
        "openssl_cli",
        "omsconfig_class_missing",
        "omsconfig_log_mode",
        "ssh_login_user",
        "ssh_session",
        "agent_layout",
        "mof_encoding",
        "manager_version",
        "manager_count",
        "cert_rotated",
        "omsconf_inconsistent",
        "agent_installed",
        "extension",
        "place",
        "imds_identity",
        "himds_running",
        "remnants",
    ),
    "windows": (
        "cpu_load_percent",
        "healthservice",
        "events",
        "winrm_hang_after_connect",
        "win_extension",
        "place",
        "imds_identity",
        "himds_running",
        "remnants",
        "worker_credential",
        "winrm_trickle",
    ),
}
EVENT_KEYS = ("log", "id", "provider", "level", "minutes_ago", "message")
# format_error: the event's message cannot be formatted on the host (its provider's message
# file lacks it); the value is the text EventLogRecord.FormatDescription() fails with.
OPTIONAL_EVENT_KEYS = ("format_error",)


class ProfileError(ValueError):
    """A profile or the defaults file is malformed; the message is one line saying what to fix."""


@dataclass(frozen=True)
class Profile:
    """One resolved profile: every key of its platform set, defaults merged in."""

    name: str
    platform: str
    values: Mapping[str, Any]

    def as_dict(self) -> dict[str, Any]:
        """Return the full profile as a plain dict (name and platform first), e.g. for JSON."""
        return {"name": self.name, "platform": self.platform, **_deep_copy(self.values)}

    def __getitem__(self, key: str) -> Any:
        return self.values[key]


@dataclass(frozen=True)
class ProfileSet:
    """All profiles of a directory plus the fleet order from the defaults file."""

    profiles: Mapping[str, Profile]
    fleet_order: tuple[str, ...]

    def ordered(self) -> list[Profile]:
        """Return the profiles in fleet order (the order that fixes host addresses)."""
        return [self.profiles[name] for name in self.fleet_order]


def _deep_copy(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _deep_copy(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_deep_copy(v) for v in value]
    return value


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise ProfileError(f"{path}:{where} is not valid YAML; fix its syntax") from None
    except OSError as exc:
        raise ProfileError(f"{path}: cannot read ({exc.strerror})") from None
    if not isinstance(data, dict):
        raise ProfileError(f"{path}: must be a YAML mapping of key: value")
    return data


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _check(ok: bool, where: str, key: str, value: Any, wanted: str) -> None:
    if not ok:
        raise ProfileError(f"{where}: {key}={value!r} is invalid; use {wanted}")


def _validate_healthservice(where: str, value: Any) -> None:
    _check(isinstance(value, dict), where, "healthservice", value, "a mapping")
    unknown = sorted(set(value) - {"exists", "status", "start_type"})
    if unknown:
        raise ProfileError(
            f"{where}: unknown key healthservice.{unknown[0]}; use exists, status, start_type"
        )
    for key in ("exists", "status", "start_type"):
        if key not in value:
            raise ProfileError(f"{where}: healthservice.{key} is missing")
    _check(
        isinstance(value["exists"], bool),
        where,
        "healthservice.exists",
        value["exists"],
        "true or false",
    )
    _check(
        value["status"] in SERVICE_STATUSES,
        where,
        "healthservice.status",
        value["status"],
        " | ".join(SERVICE_STATUSES),
    )
    _check(
        value["start_type"] in SERVICE_START_TYPES,
        where,
        "healthservice.start_type",
        value["start_type"],
        " | ".join(SERVICE_START_TYPES),
    )


def _validate_events(where: str, value: Any) -> None:
    _check(isinstance(value, list), where, "events", value, "a list of events")
    for i, event in enumerate(value):
        label = f"events[{i}]"
        _check(isinstance(event, dict), where, label, event, f"a mapping with {EVENT_KEYS}")
        unknown = sorted(set(event) - set(EVENT_KEYS) - set(OPTIONAL_EVENT_KEYS))
        if unknown:
            raise ProfileError(
                f"{where}: unknown key {label}.{unknown[0]}; use "
                f"{', '.join(EVENT_KEYS + OPTIONAL_EVENT_KEYS)}"
            )
        if "format_error" in event:
            _check(
                isinstance(event["format_error"], str) and bool(event["format_error"].strip()),
                where,
                f"{label}.format_error",
                event["format_error"],
                "the text FormatDescription() fails with, a non-empty string",
            )
        missing = [k for k in EVENT_KEYS if k not in event]
        if missing:
            raise ProfileError(f"{where}: {label}.{missing[0]} is missing")
        for key in ("log", "provider", "message"):
            _check(
                isinstance(event[key], str) and bool(event[key].strip()),
                where,
                f"{label}.{key}",
                event[key],
                "a non-empty string",
            )
        _check(
            _is_int(event["id"]) and event["id"] > 0,
            where,
            f"{label}.id",
            event["id"],
            "a positive integer",
        )
        _check(
            _is_int(event["level"]) and 1 <= event["level"] <= 5,
            where,
            f"{label}.level",
            event["level"],
            "1 (critical) .. 5 (verbose)",
        )
        _check(
            _is_number(event["minutes_ago"]) and event["minutes_ago"] >= 0,
            where,
            f"{label}.minutes_ago",
            event["minutes_ago"],
            "a number >= 0",
        )


Validator = Callable[[str, Any], None]


PLACES = ("azure-vm", "arc", "none")
IMDS_IDENTITIES = ("system", "none")
REMNANT_KINDS = ("agent", "extension")
EXTENSION_KEYS = {
    "handler_state": ("Enabled", "Installed", "NotInstalled", "FailedUpgrade"),
    "status": ("success", "error", "transitioning", "warning"),
    "hwd_active": ("active", "inactive", "failed"),
    "hwd_enabled": ("enabled", "disabled"),
}


def _validate_choices(where: str, name: str, value: Any, keys: dict[str, tuple[str, ...]]) -> None:
    """Raise ProfileError unless ``value`` is null or a mapping of exactly ``keys``, each set to
    one of its allowed words; the extension blocks of both platforms take this shape."""
    if value is None:
        return
    wanted = ", ".join(f"{k}: {' | '.join(v)}" for k, v in keys.items())
    _check(isinstance(value, dict), where, name, value, f"null or a mapping of {wanted}")
    for key in value:
        if key not in keys:
            raise ProfileError(f"{where}: unknown key {name}.{key}; use {wanted}")
    for key, allowed in keys.items():
        _check(
            value.get(key) in allowed, where, f"{name}.{key}", value.get(key), " | ".join(allowed)
        )


def _validate_extension(where: str, value: Any) -> None:
    """The hybrid worker extension of a Linux host: null (not installed) or a mapping of
    handler_state, status, hwd_active and hwd_enabled."""
    _validate_choices(where, "extension", value, EXTENSION_KEYS)


WIN_EXTENSION_KEYS = {
    "status": ("success", "error", "transitioning", "warning"),
    "service": ("Running", "Stopped"),
    "start_mode": ("Auto", "Manual", "Disabled"),
}
CREDENTIAL_GRANTS = ("direct", "group", "none")


def _validate_win_extension(where: str, value: Any) -> None:
    """The HybridWorkerForWindows extension of a Windows host: null (not installed) or a
    mapping of its newest status, HybridWorkerService's State and its StartMode."""
    _validate_choices(where, "win_extension", value, WIN_EXTENSION_KEYS)


def _validate_credential(where: str, value: Any) -> None:
    """The custom Hybrid Worker credential of an Arc-enabled Windows host: null, or its
    account and how it holds Read on Tokens and Read & Execute on the plugin folder."""
    if value is None:
        return
    wanted = f"account: DOMAIN\\user, tokens/folder: {' | '.join(CREDENTIAL_GRANTS)}"
    _check(isinstance(value, dict), where, "worker_credential", value, f"null or {{{wanted}}}")
    for key in value:
        if key not in ("account", "tokens", "folder"):
            raise ProfileError(f"{where}: unknown key worker_credential.{key}; use {wanted}")
    account = value.get("account")
    _check(
        isinstance(account, str) and bool(account),
        where,
        "worker_credential.account",
        account,
        "an account name",
    )
    for key in ("tokens", "folder"):
        _check(
            value.get(key) in CREDENTIAL_GRANTS,
            where,
            f"worker_credential.{key}",
            value.get(key),
            " | ".join(CREDENTIAL_GRANTS),
        )


def _simple(key: str, test: Callable[[Any], bool], wanted: str) -> Validator:
    def validate(where: str, value: Any) -> None:
        _check(test(value), where, key, value, wanted)

    return validate


@cache
def catalogue_ids() -> tuple[str, ...]:
    """Return the scenario ids of the suite's catalogue, in its order (why: a profile's
    ``expect_failing`` must name real scenarios, whichever letter their id has)."""
    data = yaml.safe_load(CATALOGUE.read_text(encoding="utf-8"))
    return tuple(str(s["id"]) for s in data["scenarios"])


def _validate_expect_failing(where: str, value: Any) -> None:
    _check(isinstance(value, list), where, "expect_failing", value, "a list like [HRW-L01]")
    for item in value:
        _check(
            isinstance(item, str) and item in catalogue_ids(),
            where,
            "expect_failing",
            item,
            f"scenario ids of the catalogue ({CATALOGUE.name}: {', '.join(catalogue_ids())})",
        )


VALIDATORS: dict[str, Validator] = {
    "description": _simple("description", lambda v: isinstance(v, str), "a string"),
    "expect_failing": _validate_expect_failing,
    "cpus": _simple("cpus", lambda v: _is_int(v) and v in (1, 2), "1 or 2"),
    "memory_mb": _simple(
        "memory_mb",
        lambda v: _is_int(v) and 256 <= v <= 1048576,
        "an integer number of MB between 256 and 1048576",
    ),
    "memory_available_mb": _simple(
        "memory_available_mb", lambda v: _is_int(v) and v >= 0, "an integer number of MB >= 0"
    ),
    "update_management": _simple(
        "update_management", lambda v: isinstance(v, bool), "true or false"
    ),
    "user_worker": _simple("user_worker", lambda v: isinstance(v, bool), "true or false"),
    "network": _simple("network", lambda v: v in NETWORK_MODES, " | ".join(NETWORK_MODES)),
    "other_workspaces": _simple(
        "other_workspaces",
        lambda v: isinstance(v, list) and all(isinstance(w, str) and GUID.match(w) for w in v),
        "a list of workspace ids (GUIDs) the agent also reports to",
    ),
    "load": _simple("load", lambda v: _is_number(v) and 0 <= v <= 64, "a number 0 .. 64"),
    "agent_running": _simple("agent_running", lambda v: isinstance(v, bool), "true or false"),
    "user_worker_running": _simple(
        "user_worker_running", lambda v: isinstance(v, bool), "true or false"
    ),
    "worker_user": _simple("worker_user", lambda v: v in WORKER_USERS, " | ".join(WORKER_USERS)),
    "openssl_cli": _simple("openssl_cli", lambda v: v in CLI_VERSIONS, " | ".join(CLI_VERSIONS)),
    "omsagent_user": _simple(
        "omsagent_user", lambda v: v in WORKER_USERS, " | ".join(WORKER_USERS)
    ),
    "omsconfig_class_missing": _simple(
        "omsconfig_class_missing", lambda v: isinstance(v, bool), "true or false"
    ),
    "omsconfig_log_mode": _simple(
        "omsconfig_log_mode",
        lambda v: _is_int(v) and 0 <= v <= 0o777,
        "a file mode such as 0644 (octal, as YAML reads a leading 0)",
    ),
    "ssh_login_user": _simple(
        "ssh_login_user", lambda v: v in SSH_LOGIN_USERS, " | ".join(SSH_LOGIN_USERS)
    ),
    "ssh_session": _simple("ssh_session", lambda v: v in SSH_SESSIONS, " | ".join(SSH_SESSIONS)),
    "agent_installed": _simple("agent_installed", lambda v: isinstance(v, bool), "true or false"),
    "extension": _validate_extension,
    "place": _simple("place", lambda v: v in PLACES, " | ".join(PLACES)),
    "imds_identity": _simple(
        "imds_identity", lambda v: v in IMDS_IDENTITIES, " | ".join(IMDS_IDENTITIES)
    ),
    "himds_running": _simple("himds_running", lambda v: isinstance(v, bool), "true or false"),
    "remnants": _simple(
        "remnants",
        lambda v: isinstance(v, list) and all(r in REMNANT_KINDS for r in v),
        f"a list of {' | '.join(REMNANT_KINDS)}",
    ),
    "winrm_hang_after_connect": _simple(
        "winrm_hang_after_connect", lambda v: isinstance(v, bool), "true or false"
    ),
    "win_extension": _validate_win_extension,
    "worker_credential": _validate_credential,
    "winrm_trickle": _simple("winrm_trickle", lambda v: isinstance(v, bool), "true or false"),
    "cpu_load_percent": _simple(
        "cpu_load_percent", lambda v: _is_number(v) and 0 <= v <= 100, "a number 0 .. 100"
    ),
    "agent_layout": _simple(
        "agent_layout", lambda v: v in AGENT_LAYOUTS, " | ".join(AGENT_LAYOUTS)
    ),
    "mof_encoding": _simple(
        "mof_encoding", lambda v: v in MOF_ENCODINGS, " | ".join(MOF_ENCODINGS)
    ),
    "manager_version": _simple(
        "manager_version",
        lambda v: v is None or (isinstance(v, str) and bool(re.fullmatch(r"\d+(\.\d+)+", v))),
        "null (the module's version) or a quoted version such as '1.4'",
    ),
    "manager_count": _simple("manager_count", lambda v: v in (1, 2), "1 or 2"),
    "cert_rotated": _simple("cert_rotated", lambda v: isinstance(v, bool), "true or false"),
    "omsconf_inconsistent": _simple(
        "omsconf_inconsistent", lambda v: isinstance(v, bool), "true or false"
    ),
    "healthservice": _validate_healthservice,
    "events": _validate_events,
}


def _allowed_keys(platform: str) -> tuple[str, ...]:
    return COMMON_KEYS + PLATFORM_KEYS[platform]


def _resolve(where: str, raw: dict[str, Any], defaults: Mapping[str, Any]) -> Profile:
    for key in ("name", "platform"):
        if key not in raw:
            raise ProfileError(f"{where}: {key} is missing")
    name, platform = raw["name"], raw["platform"]
    _check(platform in PLATFORMS, where, "platform", platform, " | ".join(PLATFORMS))
    stem = Path(where).stem
    if name != stem:
        raise ProfileError(f"{where}: name={name!r} must equal the file name {stem!r}")
    allowed = _allowed_keys(platform)
    for key in raw:
        if key in ("name", "platform"):
            continue
        if key not in allowed:
            other = [p for p in PLATFORMS if key in PLATFORM_KEYS[p]]
            hint = f" (it is {other[0]}-only)" if other else ""
            raise ProfileError(f"{where}: unknown key {key!r} for a {platform} profile{hint}")
    merged = {key: _deep_copy(raw[key] if key in raw else defaults[key]) for key in allowed}
    for key in allowed:
        VALIDATORS[key](where, merged[key])
    if merged["memory_available_mb"] > merged["memory_mb"]:
        raise ProfileError(
            f"{where}: memory_available_mb={merged['memory_available_mb']} exceeds "
            f"memory_mb={merged['memory_mb']}; lower it"
        )
    return Profile(name=name, platform=platform, values=merged)


def _platform_defaults(path: Path, data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    result: dict[str, dict[str, Any]] = {}
    for platform in PLATFORMS:
        block = data.get(platform)
        if not isinstance(block, dict):
            raise ProfileError(f"{path}: needs a mapping '{platform}:' of healthy defaults")
        missing = [k for k in _allowed_keys(platform) if k not in block]
        if missing:
            raise ProfileError(f"{path}: {platform}.{missing[0]} has no default; add it")
        unknown = sorted(set(block) - set(_allowed_keys(platform)))
        if unknown:
            raise ProfileError(f"{path}: unknown key {platform}.{unknown[0]}")
        result[platform] = block
    return result


def load_profiles(directory: Path = PROFILES_DIR, defaults_dir: Path | None = None) -> ProfileSet:
    """Return every profile in ``directory`` resolved against its defaults, in fleet order.

    Profiles listed in the defaults' ``fleet`` come first in that order; any other profile
    files follow in name order, so a new profile joins the fleet without editing the list.
    ``defaults_dir`` (default: ``directory``) holds ``_defaults.yaml``; when it differs from
    ``directory`` (the extra profiles of ``lab/profiles/extra/``) its ``fleet`` list is not
    used, as it names the default fleet's profiles.
    Raises ProfileError (one line) on the first problem found.
    """
    defaults_path = (defaults_dir or directory) / DEFAULTS_FILE
    defaults_data = _read_yaml(defaults_path)
    platform_defaults = _platform_defaults(defaults_path, defaults_data)
    fleet = defaults_data.get("fleet", []) if defaults_dir in (None, directory) else []
    if not isinstance(fleet, list) or not all(isinstance(n, str) for n in fleet):
        raise ProfileError(f"{defaults_path}: fleet must be a list of profile names")
    profiles: dict[str, Profile] = {}
    for path in sorted(directory.glob("*.yaml")):
        if path.name.startswith("_"):
            continue
        raw = _read_yaml(path)
        platform = raw.get("platform")
        defaults = platform_defaults.get(platform, {}) if isinstance(platform, str) else {}
        profiles[path.stem] = _resolve(str(path), raw, defaults)
    unknown = [n for n in fleet if n not in profiles]
    if unknown:
        raise ProfileError(f"{defaults_path}: fleet names {unknown[0]!r}, which has no profile")
    order = tuple(fleet) + tuple(sorted(n for n in profiles if n not in fleet))
    if not order:
        raise ProfileError(f"{directory}: holds no profiles")
    return ProfileSet(profiles=profiles, fleet_order=order)
