"""Targets from Ansible inventories, through ansible-core's own Python API.

Using ansible-core (rather than reading YAML ourselves) means every inventory Ansible
accepts works here: static YAML and INI, ``group_vars``/``host_vars``, directories,
dynamic inventory scripts and plugins, and Jinja values such as
``{{ lookup('env', 'WINRM_PW') }}``. Ansible is imported only when an inventory is
actually used, because importing it takes about half a second.

Variables read (everything else is ignored):

- ``ansible_host``, ``ansible_port``, ``ansible_user`` (``ansible_ssh_user``,
  ``ansible_winrm_user``), ``ansible_connection`` (ssh, smart, paramiko, local, winrm;
  psrp is refused), ``ansible_ssh_private_key_file``/``ansible_private_key_file``,
  ``ansible_ssh_common_args`` + ``ansible_ssh_extra_args``, ``ansible_become``,
  ``ansible_become_user``;
- WinRM: ``ansible_winrm_scheme``, ``ansible_winrm_transport`` (first of a list or comma
  string), ``ansible_winrm_server_cert_validation``, ``ansible_winrm_ca_trust_path``,
  ``ansible_winrm_password``/``ansible_winrm_pass``/``ansible_password``; the host is
  Windows when the connection is winrm or ``ansible_os_family``/``ansible_shell_type``
  say so; the port defaults to 5986 (https) or 5985 (http);
- ``hrw_*``: operator overrides kept in :attr:`Target.overrides`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from hrw_preflight.hosts.errors import ConfigError
from hrw_preflight.hosts.targets import (
    WINRM_TRANSPORTS,
    Connection,
    HostDefaults,
    Secret,
    Target,
    default_winrm_port,
    require_winrm_credentials,
    winrm_password_from_env,
)

_CONNECTIONS: dict[str, Connection] = {
    "ssh": "ssh",
    "smart": "ssh",
    "ansible.builtin.ssh": "ssh",
    "paramiko": "paramiko",
    "paramiko_ssh": "paramiko",
    "ansible.builtin.paramiko_ssh": "paramiko",
    "local": "local",
    "ansible.builtin.local": "local",
    "winrm": "winrm",
    "ansible.builtin.winrm": "winrm",
}
_PSRP = frozenset({"psrp", "ansible.builtin.psrp"})
_WINDOWS_SHELLS = frozenset({"powershell", "cmd"})
_TRUE = frozenset({"true", "yes", "on", "1", "y", "t"})
_FALSE = frozenset({"false", "no", "off", "0", "n", "f", ""})

# Later names win, as in Ansible's connection plugins (ansible_winrm_password beats
# ansible_password); templating is applied only to these and the hrw_* variables.
_SSH_PASSWORD_VARS = ("ansible_password", "ansible_ssh_pass", "ansible_ssh_password")
_WINRM_PASSWORD_VARS = ("ansible_password", "ansible_winrm_pass", "ansible_winrm_password")
_PASSWORD_VARS = (*_SSH_PASSWORD_VARS, *_WINRM_PASSWORD_VARS)
_USER_VARS = ("ansible_ssh_user", "ansible_user", "ansible_winrm_user")
_MAPPED_VARS = frozenset(
    {
        "ansible_host",
        "ansible_port",
        "ansible_connection",
        "ansible_ssh_private_key_file",
        "ansible_private_key_file",
        "ansible_ssh_common_args",
        "ansible_ssh_extra_args",
        "ansible_become",
        "ansible_become_user",
        "ansible_winrm_scheme",
        "ansible_winrm_transport",
        "ansible_winrm_server_cert_validation",
        "ansible_winrm_ca_trust_path",
        "ansible_os_family",
        "ansible_shell_type",
        *_PASSWORD_VARS,
        *_USER_VARS,
    }
)


def targets_from_inventory(
    inventory_paths: list[str], pattern: str, *, defaults: HostDefaults | None = None
) -> list[Target]:
    """Return the targets of the inventory hosts that match Ansible host ``pattern``.

    ``pattern`` is Ansible's (``all``, a group, a host, ``linux:&prod``). ``defaults``
    fill SSH options an inventory host leaves unset. A missing or unparsable inventory, a
    pattern that matches nothing or a bad value raise ConfigError with one line; Ansible's
    own warnings are collected instead of printed.
    """
    if not inventory_paths:
        raise ConfigError("no inventory given: pass --ansible-inventory PATH")
    for path in inventory_paths:
        # A comma in a source is Ansible's inline host list ("h1,h2,"), not a path.
        if "," not in path and not os.path.exists(path):
            raise ConfigError(f"inventory '{path}' does not exist: check the path")
    source = f"inventory {', '.join(inventory_paths)} (pattern '{pattern}')"
    defaults = defaults or HostDefaults()
    with _quiet_ansible() as warnings:
        resolved = _resolve_hosts(inventory_paths, pattern, warnings, defaults)
    # Ansible hands out tagged strings; targets hold plain ones (xdist pickles them).
    return [
        target_from_hostvars(str(plain(name)), hostvars, source, defaults)
        for name, hostvars in resolved
    ]


def _resolve_hosts(
    inventory_paths: list[str], pattern: str, warnings: list[str], defaults: HostDefaults
) -> list[tuple[str, dict[str, Any]]]:
    """Return (host name, templated variables) for each host matching ``pattern``.

    Ansible's configured defaults fill unset variables, except that the command line's
    ``--ssh-identity-file`` beats ansible.cfg's ``private_key_file``.
    """
    from ansible.errors import AnsibleError
    from ansible.inventory.manager import InventoryManager
    from ansible.parsing.dataloader import DataLoader
    from ansible.template import Templar
    from ansible.vars.manager import VariableManager

    loader = DataLoader()
    _setup_vault(loader)
    try:
        inventory = InventoryManager(loader=loader, sources=list(inventory_paths))
    except AnsibleError as exc:
        raise ConfigError(f"inventory {', '.join(inventory_paths)}: {_first_line(exc)}") from exc
    failed = [w for w in warnings if w.startswith(("Unable to parse", "Failed to parse"))]
    if failed:
        detail = next((w for w in warnings if w.startswith("Failed to parse")), failed[0])
        raise ConfigError(f"inventory {', '.join(inventory_paths)} could not be parsed: {detail}")
    try:
        hosts = inventory.get_hosts(pattern)
    except AnsibleError as exc:
        raise ConfigError(f"host pattern '{pattern}': {_first_line(exc)}") from exc
    if not hosts:
        raise ConfigError(
            f"host pattern '{pattern}' matches no host in {', '.join(inventory_paths)}: "
            "check the group or host name"
        )
    variables = VariableManager(loader=loader, inventory=inventory)
    config_defaults = _ansible_config_defaults()
    if defaults.ssh_identity_file:
        config_defaults.pop("ansible_private_key_file", None)
    resolved: list[tuple[str, dict[str, Any]]] = []
    for host in hosts:
        all_vars = variables.get_vars(host=host, include_hostvars=False)
        templar = Templar(loader=loader, variables=all_vars)
        wanted: dict[str, Any] = {}
        for key, value in all_vars.items():
            if key in _MAPPED_VARS or key.startswith("hrw_"):
                try:
                    wanted[key] = plain(templar.template(value))
                except AnsibleError as exc:
                    hint = ""
                    if "vault" in str(exc).lower():
                        hint = ": set ANSIBLE_VAULT_PASSWORD_FILE to the vault password file"
                    raise ConfigError(
                        f"host '{host.name}': cannot resolve {key}: {_first_line(exc)}{hint}"
                    ) from exc
        fallback = dict(config_defaults)
        if any(key in wanted for key in _USER_VARS):
            fallback.pop("ansible_user", None)
        resolved.append((host.name, {**fallback, **wanted}))
    return resolved


def _ansible_config_defaults() -> dict[str, Any]:
    """Return host variables implied by Ansible's configuration (ansible.cfg, ANSIBLE_*).

    ``remote_user``, ``remote_port``, ``private_key_file`` and ``become`` apply to every
    host that does not set the matching variable, as they do for ``ansible-playbook``
    (and testinfra's own inventory support).
    """
    from ansible import constants

    found: dict[str, Any] = {}
    for setting, variable in (
        ("DEFAULT_REMOTE_USER", "ansible_user"),
        ("DEFAULT_REMOTE_PORT", "ansible_port"),
        ("DEFAULT_PRIVATE_KEY_FILE", "ansible_private_key_file"),
        ("DEFAULT_BECOME", "ansible_become"),
    ):
        value = constants.config.get_config_value(setting)
        if value not in (None, "", False):
            found[variable] = plain(value)
    return found


def _setup_vault(loader: Any) -> None:
    """Give the loader the vault passwords Ansible is configured with, if any.

    ``ANSIBLE_VAULT_PASSWORD_FILE`` / ``ANSIBLE_VAULT_IDENTITY_LIST`` (or ansible.cfg) name
    them, exactly as for ``ansible-playbook``; nothing is prompted for.
    """
    from ansible import constants
    from ansible.cli import CLI
    from ansible.errors import AnsibleError

    # Read the settings now, not at Ansible's import, so the caller's environment counts.
    password_file = constants.config.get_config_value("DEFAULT_VAULT_PASSWORD_FILE")
    identities = list(constants.config.get_config_value("DEFAULT_VAULT_IDENTITY_LIST") or [])
    if not (password_file or identities):
        return
    try:
        from ansible.parsing.vault import VaultSecretsContext
    except ImportError:  # ansible-core before 2.19 has no ambient vault context
        context_options: dict[str, bool] = {}
    else:
        # The ambient context can be set once per process; later calls only feed the loader.
        context_options = {"initialize_context": VaultSecretsContext.current(optional=True) is None}
    try:
        secrets = CLI.setup_vault_secrets(
            loader,
            vault_ids=identities,
            vault_password_files=[password_file] if password_file else [],
            auto_prompt=False,
            **context_options,
        )
    except AnsibleError as exc:
        raise ConfigError(
            f"vault password: {_first_line(exc)}: check ANSIBLE_VAULT_PASSWORD_FILE"
        ) from exc
    loader.set_vault_secrets(secrets)


def plain(value: Any) -> Any:
    """Return ``value`` with Ansible's tagged str/int/list/dict types turned into builtins.

    Ansible 2.19 hands out subclasses that carry provenance tags; plain builtins keep
    targets comparable, picklable (pytest-xdist) and free of Ansible objects.
    """
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, str):
        return str(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [plain(v) for v in value]
    return str(value)


@contextmanager
def _quiet_ansible() -> Iterator[list[str]]:
    """Collect Ansible's warnings and deprecations instead of printing them.

    Yields the list the warning texts are appended to, so the caller can turn a parse
    failure into a ConfigError. The singleton Display is restored afterwards.
    """
    from ansible.utils.display import Display

    display = Display()
    collected: list[str] = []

    def warning(msg: str, *args: Any, **kwargs: Any) -> None:
        collected.append(str(msg))

    def error_as_warning(msg: str | None, exception: BaseException, **kwargs: Any) -> None:
        collected.append(f"{msg or ''} {_first_line(exception)}".strip())

    def ignore(*args: Any, **kwargs: Any) -> None:
        return None

    patches: dict[str, Callable[..., None]] = {
        "warning": warning,
        "error_as_warning": error_as_warning,
        "deprecated": ignore,
        "system_warning": ignore,
    }
    saved = {name: display.__dict__.get(name) for name in patches}
    for name, replacement in patches.items():
        setattr(display, name, replacement)
    try:
        yield collected
    finally:
        for name, previous in saved.items():
            if previous is None:
                delattr(display, name)
            else:
                setattr(display, name, previous)


def _first_line(exc: BaseException) -> str:
    """Return the first non-empty line of an exception's message."""
    for line in str(exc).splitlines():
        if line.strip():
            return line.strip()
    return type(exc).__name__


def _as_bool(value: Any, key: str, host: str) -> bool:
    """Return an Ansible-style boolean (yes/no/true/false/1/0) or raise ConfigError."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ConfigError(f"host '{host}': {key}='{value}' is not a boolean: use true or false")


def _as_port(value: Any, host: str) -> int:
    """Return ``ansible_port`` as an int in 1-65535 or raise ConfigError."""
    text = str(value).strip()
    if isinstance(value, bool) or not text.isdigit() or not 1 <= int(text) <= 65535:
        raise ConfigError(f"host '{host}': ansible_port='{value}' is not a port: use 1-65535")
    return int(text)


def _text(value: Any) -> str | None:
    """Return a non-empty string value, or None for unset/empty."""
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _connection(raw: Any, host: str) -> Connection:
    """Return the Target connection for ``ansible_connection`` or raise ConfigError."""
    name = str(raw).strip().lower()
    if name in _PSRP:
        raise ConfigError(
            f"host '{host}': ansible_connection psrp is not supported: "
            "set ansible_connection: winrm"
        )
    connection = _CONNECTIONS.get(name)
    if connection is None:
        raise ConfigError(
            f"host '{host}': ansible_connection '{raw}' is not supported: "
            "use ssh, paramiko, local or winrm"
        )
    return connection


def _winrm_transport(raw: Any, host: str) -> str:
    """Return the first WinRM transport of a list or comma string, checked."""
    items = raw if isinstance(raw, list) else str(raw).split(",")
    first = str(items[0]).strip().lower() if items else ""
    if first not in WINRM_TRANSPORTS:
        raise ConfigError(
            f"host '{host}': ansible_winrm_transport '{first}' is not supported: "
            f"use one of {', '.join(WINRM_TRANSPORTS)}"
        )
    return first


def _overrides(hostvars: Mapping[str, Any], host: str) -> dict[str, Any]:
    """Return the host's ``hrw_*`` variables, with the shape of the known ones checked."""
    overrides = {k: v for k, v in hostvars.items() if k.startswith("hrw_")}
    endpoints = overrides.get("hrw_endpoints")
    if endpoints is not None and (
        not isinstance(endpoints, dict)
        or not all(isinstance(v, str) and v for v in endpoints.values())
    ):
        raise ConfigError(
            f"host '{host}': hrw_endpoints must map a role (agentsvc, jrds, oms, ods) to a "
            "host name"
        )
    for key in (
        "hrw_workspace_id",
        "hrw_proxy",
        "hrw_trusted_ca_file",
        "hrw_automation_account_url",
        "hrw_worker_credential_account",
    ):
        if key in overrides and not isinstance(overrides[key], str):
            raise ConfigError(f"host '{host}': {key} must be a string")
    return overrides


def target_from_hostvars(
    name: str, hostvars: Mapping[str, Any], source: str, defaults: HostDefaults
) -> Target:
    """Return the Target for one inventory host from its (templated, plain) variables.

    Kept apart from the Ansible calls so the mapping can be tested with plain dicts.
    """
    connection = _connection(hostvars.get("ansible_connection", "ssh"), name)
    windows = (
        connection == "winrm"
        or str(hostvars.get("ansible_os_family", "")).lower() == "windows"
        or str(hostvars.get("ansible_shell_type", "")).lower() in _WINDOWS_SHELLS
    )
    if windows and connection != "winrm":
        raise ConfigError(
            f"host '{name}' is Windows but ansible_connection is {connection}: "
            "set ansible_connection: winrm"
        )
    address = _text(hostvars.get("ansible_host")) or name
    port = _as_port(hostvars["ansible_port"], name) if "ansible_port" in hostvars else None
    user = next((_text(hostvars[k]) for k in reversed(_USER_VARS) if _text(hostvars.get(k))), None)
    password_vars = _WINRM_PASSWORD_VARS if connection == "winrm" else _SSH_PASSWORD_VARS
    password_text = next(
        (str(hostvars[k]) for k in reversed(password_vars) if _text(hostvars.get(k))), None
    )
    password = Secret(password_text) if password_text else None
    overrides = _overrides(hostvars, name)

    if connection == "winrm":
        scheme_raw = _text(hostvars.get("ansible_winrm_scheme"))
        # Ansible's winrm plugin: without a scheme, port 5985 means http, anything else https.
        scheme = (scheme_raw or ("http" if port == 5985 else "https")).lower()
        if scheme not in ("http", "https"):
            raise ConfigError(
                f"host '{name}': ansible_winrm_scheme '{scheme_raw}': use https or http"
            )
        transport = _winrm_transport(hostvars.get("ansible_winrm_transport", "ntlm"), name)
        validation = (
            _text(hostvars.get("ansible_winrm_server_cert_validation")) or "validate"
        ).lower()
        if validation not in ("validate", "ignore"):
            raise ConfigError(
                f"host '{name}': ansible_winrm_server_cert_validation '{validation}': "
                "use validate or ignore"
            )
        password = password or winrm_password_from_env(name)
        require_winrm_credentials(
            name, transport, user, password, "set ansible_user / ansible_password in the inventory"
        )
        return Target(
            name=name,
            platform="windows",
            connection="winrm",
            address=address,
            port=port if port is not None else default_winrm_port(scheme),
            user=user,
            password=password,
            winrm_scheme="http" if scheme == "http" else "https",
            winrm_transport=transport,  # type: ignore[arg-type]
            winrm_cert_validation="ignore" if validation == "ignore" else "validate",
            winrm_ca_trust_path=_text(hostvars.get("ansible_winrm_ca_trust_path")),
            overrides=overrides,
            source=source,
        )

    extra_args = " ".join(
        filter(
            None,
            (
                _text(hostvars.get("ansible_ssh_common_args")),
                _text(hostvars.get("ansible_ssh_extra_args")),
            ),
        )
    )
    identity = _text(hostvars.get("ansible_ssh_private_key_file")) or _text(
        hostvars.get("ansible_private_key_file")
    )
    become = (
        _as_bool(hostvars["ansible_become"], "ansible_become", name)
        if "ansible_become" in hostvars
        else defaults.sudo
    )
    return Target(
        name=name,
        platform="linux",
        connection=connection,
        address=address,
        port=port,
        user=user,
        password=password,
        identity_file=os.path.expanduser(identity) if identity else defaults.ssh_identity_file,
        ssh_config=defaults.ssh_config,
        ssh_extra_args=extra_args,
        sudo=become,
        sudo_user=_text(hostvars.get("ansible_become_user")),
        overrides=overrides,
        source=source,
    )
