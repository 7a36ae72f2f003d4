"""Write ``inventories/lab.yml``: the running fleet as an Ansible inventory (design.md s. 4)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from lab.context import WINRM_USER
from lab.fleet import Host
from lab.paths import LabPaths
from lab.windows_host import HTTPS_PORT


def linux_vars(host: Host, paths: LabPaths) -> dict[str, Any]:
    """Return the inventory variables of a Linux host (root over SSH with the lab key)."""
    return {
        "ansible_host": host.address,
        "ansible_connection": "ssh",
        "ansible_user": "root",
        "ansible_ssh_private_key_file": str(paths.ssh_key),
        "ansible_ssh_common_args": (
            f"-o UserKnownHostsFile={paths.known_hosts} -o StrictHostKeyChecking=yes"
        ),
        "hrw_lab_profile": host.profile.name,
    }


def windows_vars(host: Host, paths: LabPaths, password: str, proxy_url: str) -> dict[str, Any]:
    """Return the inventory variables of a Windows host (NTLM over HTTPS, CA validated).

    An intercepted host also gets ``hrw_proxy``: the agent's proxy password cannot be read
    back from the MMA configuration, so an operator gives it in the inventory, as here; a
    host whose worker runs jobs under a custom credential gets its account name
    (``hrw_worker_credential_account``) for HRW-X05.
    """
    extra = {"hrw_proxy": proxy_url} if host.profile["network"] == "intercepted" else {}
    credential = host.profile["worker_credential"]
    if credential:  # no public source says where a host keeps it: the operator names it
        extra["hrw_worker_credential_account"] = credential["account"]
    return {
        "ansible_host": host.address,
        "ansible_connection": "winrm",
        "ansible_port": HTTPS_PORT,
        "ansible_winrm_scheme": "https",
        "ansible_winrm_transport": "ntlm",
        "ansible_winrm_server_cert_validation": "validate",
        "ansible_winrm_ca_trust_path": str(paths.winrm_ca),
        "ansible_user": WINRM_USER,
        "ansible_password": password,
        "hrw_lab_profile": host.profile.name,
        **extra,
    }


def inventory(
    hosts: list[Host], paths: LabPaths, winrm_password: str, proxy_url: str
) -> dict[str, Any]:
    """Return the inventory document for ``hosts`` (groups ``linux`` and ``windows``)."""
    linux = {h.name: linux_vars(h, paths) for h in hosts if h.platform == "linux"}
    windows = {
        h.name: windows_vars(h, paths, winrm_password, proxy_url)
        for h in hosts
        if h.platform == "windows"
    }
    return {
        "all": {
            "vars": {"hrw_trusted_ca_file": str(paths.trusted_cas)},
            "children": {"linux": {"hosts": linux}, "windows": {"hosts": windows}},
        }
    }


def write_inventory(
    path: Path, hosts: list[Host], paths: LabPaths, winrm_password: str, proxy_url: str
) -> None:
    """Write the inventory atomically with mode 600 (it holds the WinRM password)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "# written by `python -m lab up`; removed by `python -m lab down`\n" + yaml.safe_dump(
        inventory(hosts, paths, winrm_password, proxy_url),
        sort_keys=False,
        default_flow_style=False,
    )
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(tmp, path)
