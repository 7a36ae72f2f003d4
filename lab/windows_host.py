"""A simulated Windows worker: a network namespace running the WinRM emulator.

Windows hosts need no mount or pid namespace: everything the suite sees of them comes through
WinRM, and ``lab.winrm_emulator`` answers from the host's profile. The lab writes the
emulator's config (``winrm.json``, mode 600: it holds the password) and starts it inside the
host's namespace so its own connectivity probes leave from the host's address.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

from lab.context import WINRM_USER, LabContext
from lab.fleet import AZURE_ADDRESS, Host
from lab.paths import REPO_ROOT
from lab.pki import issue_winrm_cert, write_private
from lab.spawn import spawn_logged

HTTP_PORT = 5985
HTTPS_PORT = 5986
EMULATOR_MODULE = "lab.winrm_emulator"


def emulator_missing() -> str | None:
    """Return why the WinRM emulator cannot be started, or None when it is installed."""
    try:
        spec = importlib.util.find_spec(f"{EMULATOR_MODULE}.__main__")
    except ModuleNotFoundError:
        spec = None
    if spec is None:
        return f"{EMULATOR_MODULE} is not installed (no {EMULATOR_MODULE}/__main__.py)"
    return None


def emulator_config(host: Host, ctx: LabContext, cert: Path, key: Path) -> dict[str, Any]:
    """Return the emulator's config for the host (see lab/winrm_emulator/config.py)."""
    return {
        "name": host.name,
        "address": host.address,
        "http_port": HTTP_PORT,
        "https_port": HTTPS_PORT,
        "tls_cert": str(cert),
        "tls_key": str(key),
        "username": WINRM_USER,
        "password": ctx.winrm_password,
        "workspace_id": host.workspace_id,
        "endpoints": host.endpoints,
        "resolve": {name: AZURE_ADDRESS for name in host.endpoint_names},
        "proxy": ctx.proxy_url if host.profile["network"] == "intercepted" else None,
        "profile": host.resolved_profile(),
        "account_url": host.account_url,
        "imds_token": ctx.imds_token,
        "script_log": str(script_log_path(host, ctx)),
    }


def script_log_path(host: Host, ctx: LabContext) -> Path:
    """Return where the host's emulator records what PowerShell's logging would."""
    return ctx.paths.host_dir(host.name) / "powershell-script-log.jsonl"


def prepare(host: Host, ctx: LabContext) -> Path:
    """Write the host's WinRM certificate and ``winrm.json``; return the config's path."""
    hdir = ctx.paths.host_dir(host.name)
    hdir.mkdir(parents=True, exist_ok=True)
    cert, key = hdir / "winrm-cert.pem", hdir / "winrm-key.pem"
    issue_winrm_cert(ctx.pki, host.name, host.address, cert, key)
    config = hdir / "winrm.json"
    write_private(config, json.dumps(emulator_config(host, ctx, cert, key), indent=2).encode())
    return config


def start(host: Host, ctx: LabContext) -> int:
    """Start the emulator in the host's namespace; return its pid (it logs to winrm.log)."""
    hdir = ctx.paths.host_dir(host.name)
    argv = [
        "ip",
        "netns",
        "exec",
        host.netns,
        sys.executable,
        "-m",
        EMULATOR_MODULE,
        "--config",
        str(hdir / "winrm.json"),
    ]
    return spawn_logged(argv, hdir / "winrm.log", cwd=REPO_ROOT)
