"""Parsers for the OMS agent's and the hybrid worker's configuration files on Linux.

Pure functions from file text to plain data; the Linux probe feeds them what it read, and
the lab writes the same formats, so discovery is tested against both.
"""

from __future__ import annotations

import configparser
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from hrw_preflight.hosts.proxy_conf import parse_agent_proxy

OMSADMIN = "/etc/opt/microsoft/omsagent/conf/omsadmin.conf"
PROXY_CONFS = (
    "/etc/opt/microsoft/omsagent/proxy.conf",
    "/etc/opt/microsoft/omsagent/conf/proxy.conf",
)
OMS_CONF = "/var/opt/microsoft/omsagent/state/automationworker/oms.conf"
AUTO_WORKER_CONF = "/var/opt/microsoft/omsagent/state/automationworker/worker.conf"
AUTO_KEY = "auto_registered_worker_conf_path"
MANUAL_KEY = "manually_registered_worker_conf_path"
VERSION = "/opt/microsoft/omsconfig/modules/nxOMSAutomationWorker/VERSION"
# Log Analytics top-level domain -> Automation domain of the same cloud.
AUTOMATION_DOMAINS = {
    "opinsights.azure.com": "azure-automation.net",
    "opinsights.azure.us": "azure-automation.us",
    "opinsights.azure.cn": "azure-automation.cn",
}


@dataclass(frozen=True)
class ProxySetting:
    """The agent's proxy: where it is and whether it has credentials (never the password)."""

    url: str
    host: str
    port: int | None
    has_credentials: bool
    password: str | None = field(default=None, repr=False)

    def masked(self) -> dict[str, Any]:
        """Return the proxy as plain data with the password replaced by ``***``."""
        return {
            "url": self.url,
            "host": self.host,
            "port": self.port,
            "has_credentials": self.has_credentials,
        }


def parse_key_values(text: str) -> dict[str, str]:
    """Return the KEY=value pairs of an omsadmin.conf-style file (later keys win)."""
    pairs: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.strip().partition("=")
        if sep and key and not key.startswith("#"):
            pairs[key.strip()] = value.strip()
    return pairs


def parse_ini(text: str) -> configparser.ConfigParser:
    """Return the INI file (oms.conf, worker.conf) parsed without interpolation.

    Raises configparser.Error for a file that is not INI, which the probe reports as unreadable.
    """
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(text)
    return parser


def parse_proxy(text: str, source: str = "proxy.conf") -> ProxySetting | None:
    """Return the proxy of a proxy.conf line ``[http(s)://][user:password@]host[:port]``,
    read exactly as the agent reads it (:mod:`hrw_preflight.hosts.proxy_conf`).

    An empty file means no proxy. Raises ProxyFormatError (a ValueError) naming ``source``
    and what is wrong, without any part of the text.
    """
    parsed = parse_agent_proxy(text, source)
    if parsed is None:
        return None
    return ProxySetting(
        url=parsed.masked_url(),
        host=parsed.host,
        port=parsed.port,
        has_credentials=parsed.has_credentials,
        password=parsed.password,
    )


def url_host(url: str | None) -> str | None:
    """Return the host name of a URL, or None when there is no URL."""
    if not url:
        return None
    return urlsplit(url if "://" in url else f"https://{url}").hostname


def oms_conf_keys(oms: configparser.ConfigParser | None) -> dict[str, bool]:
    """Return which worker keys oms.conf holds, as Microsoft's DSC test reads them (a key that
    is present counts, even when empty), and whether the file exists at all."""
    section = "oms-worker-conf"
    if oms is None or not oms.has_section(section):
        return {
            "exists": oms is not None,
            "worker_conf_section": False,
            "auto_registered": False,
            "manually_registered": False,
        }
    return {
        "exists": True,
        "worker_conf_section": True,
        "auto_registered": oms.has_option(section, AUTO_KEY),
        "manually_registered": oms.has_option(section, MANUAL_KEY),
    }


def discover_worker(files: dict[str, str]) -> dict[str, Any]:
    """Return the ``worker`` section data from the text of the agent files that exist.

    ``files`` maps path -> content for every file the probe could read (missing files are
    absent). Raises configparser.Error or ValueError for a file that cannot be parsed.
    """
    others = sorted(p for p in files if p.endswith("/conf/omsadmin.conf") and p != OMSADMIN)
    admin_paths = [OMSADMIN, *others]
    admin = next((parse_key_values(files[p]) for p in admin_paths if p in files), {})
    workspace = admin.get("WORKSPACE_ID") or None
    tld = admin.get("URL_TLD") or "opinsights.azure.com"
    automation = AUTOMATION_DOMAINS.get(tld, "azure-automation.net")

    oms = parse_ini(files[OMS_CONF]) if OMS_CONF in files else None
    auto_path = (
        oms.get("oms-worker-conf", "auto_registered_worker_conf_path", fallback=None)
        if oms
        else None
    )
    user_path = (
        oms.get("oms-worker-conf", "manually_registered_worker_conf_path", fallback=None)
        if oms
        else None
    )
    if oms is not None and not workspace:
        workspace = oms.get("oms-global", "workspace_id", fallback=None)

    jrds = registration = None
    for path in (auto_path, user_path):
        if path and path in files:
            worker = parse_ini(files[path])
            jrds = jrds or url_host(worker.get("worker-required", "jrds_base_uri", fallback=None))
            registration = registration or url_host(
                worker.get("oms-metadata", "registration_endpoint", fallback=None)
            )

    proxy_path = next((p for p in PROXY_CONFS if p in files), None)
    auto_conf = parse_ini(files[AUTO_WORKER_CONF]) if AUTO_WORKER_CONF in files else None
    # Microsoft's DSC test acts only for the primary workspace: the one of the old-style path.
    primary = parse_key_values(files[OMSADMIN]).get("WORKSPACE_ID") if OMSADMIN in files else None
    proxy = parse_proxy(files[proxy_path], proxy_path) if proxy_path else None
    agentsvc = registration or (f"{workspace}.agentsvc.{automation}" if workspace else None)
    return {
        "workspace_id": workspace,
        "version": files.get(VERSION, "").strip() or None,
        "update_management": bool(auto_path),
        "user_worker": bool(user_path),
        "worker_conf_paths": {"auto-registered": auto_path, "user": user_path},
        "primary_workspace_id": primary or None,
        "oms_conf": oms_conf_keys(oms),
        "auto_worker_conf": {
            "exists": auto_conf is not None,
            "jrds_cert_thumbprint": auto_conf.get(
                "oms-metadata", "jrds_cert_thumbprint", fallback=None
            )
            if auto_conf
            else None,
        },
        "proxy": {**proxy.masked(), "path": proxy_path} if proxy else None,
        "endpoints": {
            "agentsvc": agentsvc,
            "jrds": jrds,
            "oms": f"{workspace}.oms.{tld}" if workspace else None,
            # The agent's own data endpoint when omsadmin.conf names it (OMS_ENDPOINT).
            "ods": url_host(admin.get("OMS_ENDPOINT"))
            or (f"{workspace}.ods.{tld}" if workspace else None),
        },
    }
