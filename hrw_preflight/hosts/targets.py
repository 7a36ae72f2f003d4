"""Who to check: the :class:`Target` model and the ``--hosts`` entry point.

A target is one worker host and everything needed to reach it. Targets come from
testinfra-style host specs (:mod:`hrw_preflight.hosts.hostspec`) or from Ansible
inventories (:mod:`hrw_preflight.hosts.inventory`);
:func:`hrw_preflight.hosts.selection.parse_hosts_option` takes the mix that testinfra's
``--hosts`` allows.

Windows passwords never have to be typed on the command line. For a WinRM target the
password is taken from, in this order:

1. the inventory (``ansible_winrm_password``, ``ansible_winrm_pass`` or ``ansible_password``,
   templated, so ``{{ lookup('env', 'X') }}`` and vaulted values work) or, for a host spec,
   the password written inline (accepted, never shown);
2. the environment variable ``HRW_WINRM_PASSWORD_<HOST>``, where ``<HOST>`` is the target
   name upper-cased with every character other than A-Z and 0-9 replaced by ``_``
   (``win-01.corp`` -> ``HRW_WINRM_PASSWORD_WIN_01_CORP``);
3. the environment variable ``HRW_WINRM_PASSWORD``.

Kerberos needs no password (it uses the caller's ticket, from ``kinit``), but it needs pywinrm's
Kerberos support installed; every other WinRM transport needs a user and a password.
"""

from __future__ import annotations

import functools
import glob
import os
import re
import shlex
import urllib.parse
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from hrw_preflight.hosts.errors import ConfigError
from hrw_preflight.hosts.winrm_backend import missing_transport_support

Platform = Literal["linux", "windows"]

Connection = Literal["ssh", "paramiko", "local", "winrm"]
WinrmScheme = Literal["https", "http"]
WinrmTransport = Literal["ntlm", "kerberos", "credssp", "basic"]
CertValidation = Literal["validate", "ignore"]

CONNECTIONS: tuple[str, ...] = get_args(Connection)
WINRM_TRANSPORTS: tuple[str, ...] = get_args(WinrmTransport)
WINRM_SCHEMES: tuple[str, ...] = get_args(WinrmScheme)
CERT_VALIDATIONS: tuple[str, ...] = get_args(CertValidation)

WINRM_PASSWORD_ENV = "HRW_WINRM_PASSWORD"

# ssh options that make the client accept a host key it cannot check. OpenSSH reads
# "false" and "off" as "no" (readconf.c's multistate table), and its options are
# case-insensitive.
_SSH_WEAK_OPTIONS: tuple[tuple[str, re.Pattern[str], str], ...] = (
    (
        "stricthostkeychecking",
        re.compile(r"StrictHostKeyChecking\s*=?\s*\"?(no|off|false|accept-new)\b", re.IGNORECASE),
        "SSH host key checking relaxed (StrictHostKeyChecking)",
    ),
    (
        "userknownhostsfile",
        re.compile(r"UserKnownHostsFile\s*=?\s*\"?/dev/null\b", re.IGNORECASE),
        "SSH known hosts discarded (UserKnownHostsFile=/dev/null)",
    ),
)
# The files OpenSSH reads when no -F is given.
DEFAULT_SSH_CONFIGS = ("~/.ssh/config", "/etc/ssh/ssh_config")


def ssh_text_weakening(text: str) -> list[str]:
    """Return the sentences of :data:`_SSH_WEAK_OPTIONS` that ``text`` (ssh arguments or an
    ssh config file) turns on."""
    return [sentence for _, pattern, sentence in _SSH_WEAK_OPTIONS if pattern.search(text)]


def _ssh_options_named(text: str) -> set[str]:
    """Return the (lower-cased) names of the weakening-relevant options ``text`` sets."""
    return {name for name, _, _ in _SSH_WEAK_OPTIONS if re.search(name, text, re.I)}


@functools.lru_cache(maxsize=64)
def ssh_config_weakening(path: str) -> tuple[tuple[str, str], ...]:
    """Return (option name, sentence) per host-key weakening option in the ssh config file
    ``path`` (and the files its ``Include`` lines name), each sentence naming the file.

    Why: an option set in a config file weakens every connection as much as one on the
    command line, but never shows in an inventory. Options under ``Host``/``Match`` blocks
    count too: whether they apply depends on names this check does not evaluate, so it errs
    on the side of saying so. A file that cannot be read weakens nothing (ssh skips it too).
    """
    found: list[tuple[str, str]] = []
    seen: set[str] = set()
    pending = [os.path.expanduser(path)]
    while pending and len(seen) < 32:
        current = pending.pop(0)
        if current in seen:
            continue
        seen.add(current)
        try:
            with open(current, encoding="utf-8", errors="replace") as handle:
                text = handle.read(1024 * 1024)
        except OSError:
            continue
        lines = [ln.split("#", 1)[0] for ln in text.splitlines()]
        body = "\n".join(lines)
        for name, regex, sentence in _SSH_WEAK_OPTIONS:
            if regex.search(body):
                found.append((name, f"{sentence} in ssh config {current}"))
        for line in lines:
            words = line.split()
            if len(words) >= 2 and words[0].lower() == "include":
                base = os.path.dirname(current)
                for pattern in words[1:]:
                    pattern = os.path.expanduser(pattern)
                    if not os.path.isabs(pattern):
                        pattern = os.path.join(base, pattern)
                    pending.extend(sorted(glob.glob(pattern)))
    return tuple(found)


# ssh's options that take a value, and the flags (no value) that are safe for a check.
# Not allowed: -f (backgrounds), -G (prints config instead of connecting), -M/-O/-S (control
# master handling is the suite's), -N (no command), -E (writes a log file), -V, -y.
_SSH_VALUE_OPTIONS = frozenset("BbcDeFIiJLlmopQRWw")
_SSH_FLAGS = frozenset("46AaCgKkqsTtvXxY")
_SSH_LOCAL_COMMAND = re.compile(r"^\s*(LocalCommand|PermitLocalCommand)\b", re.IGNORECASE)


def split_ssh_args(text: str, where: str) -> list[str]:
    """Return ssh arguments (``ansible_ssh_common_args``) as an argument vector.

    Split once, as a POSIX shell would split the words, and never given to a shell. Raises
    ConfigError naming ``where`` for what cannot be passed safely: unbalanced quotes, a NUL,
    a word that is not an option (ssh would take it as the host or the command), an option
    the suite does not allow, or ``LocalCommand`` (runs a command on the controller).
    """
    if "\x00" in text:
        raise ConfigError(f"{where}: ssh arguments hold a NUL character: remove it")
    try:
        words = shlex.split(text, comments=False, posix=True)
    except ValueError as exc:
        raise ConfigError(
            f"{where}: ssh arguments cannot be split ({exc}): fix the quoting"
        ) from None
    argv: list[str] = []
    index = 0
    while index < len(words):
        word = words[index]
        if not word.startswith("-") or word in ("-", "--"):
            raise ConfigError(
                f"{where}: ssh argument {word!r} is not an option: only -o Option=value and "
                "ssh's flags may be given"
            )
        letters = word[1:]
        argv.append(word)
        for position, letter in enumerate(letters):
            if letter in _SSH_VALUE_OPTIONS:
                value = letters[position + 1 :]
                if not value:
                    index += 1
                    if index == len(words):
                        raise ConfigError(f"{where}: ssh option -{letter} needs a value")
                    value = words[index]
                    argv.append(value)
                if letter == "o" and _SSH_LOCAL_COMMAND.match(value):
                    raise ConfigError(
                        f"{where}: ssh option {value.split('=')[0].split()[0]} runs commands on "
                        "the controller: remove it"
                    )
                break
            if letter not in _SSH_FLAGS:
                raise ConfigError(f"{where}: ssh option -{letter} is not allowed here: remove it")
        index += 1
    return argv


class Secret:
    """A secret string that shows as ``***`` wherever it is printed.

    It exists so that a password can travel inside a :class:`Target` (whose repr ends up in
    tracebacks, pytest ids and logs) without ever being printed; only :meth:`reveal` gives
    the value, and only the code that authenticates should call it.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """Return the secret value itself, for the code that authenticates."""
        return self._value

    def __repr__(self) -> str:
        return "***"

    def __str__(self) -> str:
        return "***"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __bool__(self) -> bool:
        return bool(self._value)


@dataclass(frozen=True)
class HostDefaults:
    """Command-line options that apply to every SSH/local target unless it sets its own."""

    ssh_config: str | None = None
    ssh_identity_file: str | None = None
    sudo: bool = False


@dataclass(frozen=True)
class Target:
    """One host to check and how to reach it.

    ``overrides`` holds the inventory's ``hrw_*`` variables (``hrw_workspace_id``,
    ``hrw_endpoints``, ``hrw_proxy``, ``hrw_trusted_ca_file``, ...), which replace what
    the probe would discover. ``source`` says where the target came from, for evidence,
    and never carries a secret.
    """

    name: str
    platform: Platform
    connection: Connection
    address: str
    port: int | None = None
    user: str | None = None
    password: Secret | None = None
    identity_file: str | None = None
    ssh_config: str | None = None
    ssh_extra_args: str = ""
    timeout: int | None = None
    winrm_scheme: WinrmScheme = "https"
    winrm_transport: WinrmTransport = "ntlm"
    winrm_cert_validation: CertValidation = "validate"
    winrm_ca_trust_path: str | None = None
    sudo: bool = False
    sudo_user: str | None = None
    overrides: dict[str, Any] = field(default_factory=dict, hash=False)
    source: str = ""

    def __post_init__(self) -> None:
        where = f"host '{self.name}'"
        if not self.name or not self.address:
            raise ConfigError(f"{where} has an empty name or address: give each host a name")
        if self.connection not in CONNECTIONS:
            raise ConfigError(
                f"{where}: connection '{self.connection}' is not supported: "
                f"use one of {', '.join(CONNECTIONS)}"
            )
        if (self.connection == "winrm") != (self.platform == "windows"):
            raise ConfigError(
                f"{where}: platform '{self.platform}' cannot use connection "
                f"'{self.connection}': Windows hosts need winrm, Linux hosts ssh, paramiko or local"
            )
        if self.connection != "local" and self.address.startswith("-"):
            raise ConfigError(
                f"{where}: address '{self.address}' starts with '-', which ssh would read as "
                "an option: write the host name or IP address"
            )
        if self.connection == "ssh":
            split_ssh_args(self.ssh_extra_args, f"{where}: ansible_ssh_common_args")
        if self.port is not None and not 1 <= self.port <= 65535:
            raise ConfigError(f"{where}: port {self.port} is out of range: use 1-65535")
        if self.winrm_scheme not in WINRM_SCHEMES:
            raise ConfigError(f"{where}: WinRM scheme '{self.winrm_scheme}': use https or http")
        if self.winrm_transport not in WINRM_TRANSPORTS:
            raise ConfigError(
                f"{where}: WinRM transport '{self.winrm_transport}' is not supported: "
                f"use one of {', '.join(WINRM_TRANSPORTS)}"
            )
        if self.winrm_cert_validation not in CERT_VALIDATIONS:
            raise ConfigError(
                f"{where}: WinRM certificate validation '{self.winrm_cert_validation}': "
                "use validate or ignore"
            )
        if (
            self.connection == "winrm"
            and self.winrm_transport == "basic"
            and (self.winrm_scheme == "http")
        ):
            raise ConfigError(
                f"{where}: WinRM basic authentication over plain HTTP would send the password "
                "in clear: use https or the ntlm transport"
            )

    @property
    def trusted_ca_file(self) -> str | None:
        """Return the extra trusted CA file (``hrw_trusted_ca_file``) set for this host."""
        value = self.overrides.get("hrw_trusted_ca_file")
        return str(value) if value else None

    def hostspec(self) -> str:
        """Return the testinfra host spec for this target, never with the password.

        Options that testinfra reads from the spec's query (sudo, ssh_config,
        ssh_identity_file, timeout; no_ssl/no_verify_ssl for winrm) are included;
        ``ssh_extra_args`` cannot travel in a spec, see :meth:`testinfra_kwargs`.
        """
        if self.connection == "local":
            spec = "local://"
        else:
            netloc = _format_address(self.address)
            if self.port is not None:
                netloc += f":{self.port}"
            if self.user:
                netloc = f"{urllib.parse.quote(self.user, safe='')}@{netloc}"
            spec = f"{self.connection}://{netloc}"
        query: list[tuple[str, str]] = []
        if self.connection == "winrm":
            if self.winrm_scheme == "http":
                query.append(("no_ssl", "true"))
            if self.winrm_cert_validation == "ignore":
                query.append(("no_verify_ssl", "true"))
        else:
            if self.sudo:
                query.append(("sudo", "true"))
            if self.sudo_user:
                query.append(("sudo_user", self.sudo_user))
            if self.ssh_config and self.connection != "local":
                query.append(("ssh_config", self.ssh_config))
            if self.identity_file and self.connection != "local":
                query.append(("ssh_identity_file", self.identity_file))
        if self.timeout is not None and self.connection != "local":
            query.append(("timeout", str(self.timeout)))
        if query:
            spec += "?" + urllib.parse.urlencode(query, safe="/~")
        return spec

    def testinfra_kwargs(self) -> dict[str, Any]:
        """Return keyword arguments for ``testinfra.get_host(self.hostspec(), **kwargs)``.

        They carry what a host spec cannot (``ssh_extra_args``) and repeat the rest, so a
        backend built from them matches this target exactly.
        """
        kwargs: dict[str, Any] = {}
        if self.connection == "winrm":
            kwargs["no_ssl"] = self.winrm_scheme == "http"
            kwargs["no_verify_ssl"] = self.winrm_cert_validation == "ignore"
            return kwargs
        kwargs["sudo"] = self.sudo
        if self.sudo_user:
            kwargs["sudo_user"] = self.sudo_user
        if self.connection == "local":
            return kwargs
        if self.ssh_config:
            kwargs["ssh_config"] = self.ssh_config
        if self.identity_file:
            kwargs["ssh_identity_file"] = self.identity_file
        if self.timeout is not None:
            kwargs["timeout"] = self.timeout
        if self.connection == "ssh" and self.ssh_extra_args:
            kwargs["ssh_extra_args"] = self.ssh_extra_args
        return kwargs

    def winrm_endpoint(self) -> str:
        """Return the WS-Management URL (``https://host:5986/wsman``) of a WinRM target."""
        port = self.port if self.port is not None else default_winrm_port(self.winrm_scheme)
        return f"{self.winrm_scheme}://{_format_address(self.address)}:{port}/wsman"

    def weakened(self) -> list[str]:
        """Return one human sentence per option that weakens what the checks can prove.

        Reports show these next to the host so that a pass obtained with, say, certificate
        validation off is not mistaken for a pass under the strict defaults.
        """
        found: list[str] = []
        if self.connection == "winrm":
            if self.winrm_scheme == "http":
                found.append("WinRM over plain HTTP (the server is not authenticated)")
            if self.winrm_cert_validation == "ignore":
                found.append("WinRM certificate validation disabled")
        if self.connection == "ssh":
            found.extend(ssh_text_weakening(self.ssh_extra_args))
        if self.connection in ("ssh", "paramiko"):
            # ssh takes an option's first value, and -o comes before any config file.
            given = _ssh_options_named(self.ssh_extra_args) if self.connection == "ssh" else set()
            configs = (self.ssh_config,) if self.ssh_config else DEFAULT_SSH_CONFIGS
            for path in configs:
                found.extend(s for name, s in ssh_config_weakening(path) if name not in given)
        if self.trusted_ca_file:
            found.append(f"extra trusted CAs from {self.trusted_ca_file} widen the Azure CA list")
        return found

    def secrets(self) -> list[str]:
        """Return the secret values this target holds, for registering with a redactor."""
        return [self.password.reveal()] if self.password else []


def default_winrm_port(scheme: str) -> int:
    """Return WinRM's listener port for ``scheme``: 5985 for http, 5986 for https."""
    return 5985 if scheme == "http" else 5986


def winrm_password_env_names(name: str) -> list[str]:
    """Return the environment variables consulted for ``name``'s WinRM password, in order."""
    suffix = re.sub(r"[^A-Z0-9]", "_", name.upper())
    return [f"{WINRM_PASSWORD_ENV}_{suffix}", WINRM_PASSWORD_ENV]


def winrm_password_from_env(name: str, environ: Mapping[str, str] | None = None) -> Secret | None:
    """Return the WinRM password for host ``name`` from the environment, or None.

    Only the environment variables documented in this module are read; an empty value
    counts as unset so that ``HRW_WINRM_PASSWORD_X=`` can defer to the general one.
    """
    env = os.environ if environ is None else environ
    for var in winrm_password_env_names(name):
        value = env.get(var)
        if value:
            return Secret(value)
    return None


def require_winrm_credentials(
    name: str, transport: str, user: str | None, password: Secret | None, hint: str
) -> None:
    """Raise ConfigError unless a WinRM target that needs a user and password has both.

    ``hint`` names where the user could have set the password (inventory or host spec),
    so the message says exactly what to add.
    """
    missing = missing_transport_support(transport)
    if missing:
        raise ConfigError(f"host '{name}': {missing}")
    if transport == "kerberos":
        return
    if not user:
        raise ConfigError(f"host '{name}': no WinRM user: {hint}")
    if password is None:
        env_first, env_all = winrm_password_env_names(name)
        raise ConfigError(
            f"host '{name}': no WinRM password: set {env_first} or {env_all} "
            f"in the environment, or {hint}"
        )


def _format_address(address: str) -> str:
    """Return ``address`` ready for a URL: IPv6 literals get brackets."""
    return f"[{address}]" if ":" in address and not address.startswith("[") else address


def weakened_summary(targets: Iterable[Target], shown: int = 8) -> list[str]:
    """Return one line per weakening option with the hosts it applies to.

    Why: a fleet-wide option (say, an extra trusted CA file for every host) would otherwise
    repeat once per host and bury the report's first screen.
    """
    hosts_by_sentence: dict[str, list[str]] = {}
    for target in targets:
        for sentence in target.weakened():
            hosts_by_sentence.setdefault(sentence, []).append(target.name)
    lines = []
    for sentence, hosts in hosts_by_sentence.items():
        names = ", ".join(hosts[:shown]) + (
            f" and {len(hosts) - shown} more" if len(hosts) > shown else ""
        )
        lines.append(f"{sentence} (on {len(hosts)} host{'s' if len(hosts) != 1 else ''}: {names})")
    return lines
