"""The fleet: which hosts the lab starts, their names, addresses and workspace ids.

Host ``i`` (0-based, in fleet order) gets profile ``order[i % P]``; copies after the first
get ``-2``, ``-3`` ... suffixes. Its address is ``10.213.(1 + i // 200).(10 + i % 200)``
(docs/design.md section 3), so the same host always lands on the same address.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from fnmatch import fnmatch
from typing import Any

from lab.profiles import Profile, ProfileError, ProfileSet

AZURE_ADDRESS = "10.213.0.2"
PROXY_ADDRESS = "10.213.0.3"
PROXY_PORT = 3128
PROXY_AUTH_PORT = 3129  # authenticating, TLS passed through untouched
PROXY_OPEN_PORT = 3130  # no credentials, TLS passed through untouched
BRIDGE = "hrwlab0"
BRIDGE_ADDRESS = "10.213.0.1"
PREFIX_LEN = 16
NETNS_PREFIX = "hrw-"
JRDS_HOST = "eus-jobruntimedata-prod-su1.azure-automation.net"
AGENTSERVICE_HOST = "eus-agentservice-prod-1.azure-automation.net"
MAX_HOSTS = 2000
LAB_REGION = "eus"


def workspace_id(host_name: str) -> str:
    """Return the lab workspace id of a host: uuid5(NAMESPACE_DNS, "<host>.hrw-lab")."""
    return str(uuid.uuid5(uuid.NAMESPACE_DNS, f"{host_name}.hrw-lab"))


def host_address(index: int) -> str:
    """Return the IPv4 address of the fleet's ``index``-th host (0-based)."""
    return f"10.213.{1 + index // 200}.{10 + index % 200}"


@dataclass(frozen=True)
class Host:
    """One lab host: a profile instance with its own name, address and workspace."""

    name: str
    index: int
    profile: Profile

    @property
    def platform(self) -> str:
        """Return ``linux`` or ``windows``."""
        return self.profile.platform

    @property
    def address(self) -> str:
        """Return the host's address on the lab bridge."""
        return host_address(self.index)

    @property
    def netns(self) -> str:
        """Return the name of the host's network namespace."""
        return f"{NETNS_PREFIX}{self.name}"

    @property
    def veth(self) -> str:
        """Return the root-side veth name (short: interface names are limited to 15 bytes)."""
        return f"hrwv{self.index}"

    @property
    def workspace_id(self) -> str:
        """Return the host's Log Analytics workspace id."""
        return workspace_id(self.name)

    @property
    def endpoints(self) -> dict[str, str]:
        """Return the endpoint host names the agent uses, keyed by role."""
        ws = self.workspace_id
        return {
            "agentsvc": f"{ws}.agentsvc.azure-automation.net",
            "jrds": JRDS_HOST,
            "oms": f"{ws}.oms.opinsights.azure.com",
            "ods": f"{ws}.ods.opinsights.azure.com",
        }

    @property
    def account_id(self) -> str:
        """Return the id of the Automation account the host's extension-based worker joins."""
        return str(uuid.uuid5(uuid.NAMESPACE_DNS, f"{self.name}.account.hrw-lab"))

    @property
    def account_url(self) -> str:
        """Return the account's AutomationHybridServiceUrl, as the extension's settings hold it."""
        aid = self.account_id
        return f"https://{aid}.jrds.{LAB_REGION}.azure-automation.net/automationAccounts/{aid}"

    @property
    def extension_endpoints(self) -> list[str]:
        """Return the extension-based worker's endpoint names (none without the extension)."""
        p = self.profile.as_dict()
        if not p.get("extension" if self.platform == "linux" else "win_extension"):
            return []
        aid = self.account_id
        names = [
            f"{aid}.jrds.{LAB_REGION}.azure-automation.net",
            f"{aid}.agentsvc.{LAB_REGION}.azure-automation.net",
        ]
        if p.get("place") == "arc":
            names += ["gbl.his.arc.azure.com", "login.microsoftonline.com"]
        return names

    @property
    def endpoint_names(self) -> list[str]:
        """Return every Azure name the host resolves (endpoints plus ODS and DSC hosts, and
        the extension-based worker's endpoints)."""
        names = [*self.endpoints.values(), AGENTSERVICE_HOST]
        return list(dict.fromkeys([*names, *self.extension_endpoints]))

    def resolved_profile(self) -> dict[str, Any]:
        """Return the profile as a dict, ``{workspace_id}``/``{host}`` in event texts filled in.

        The event messages of Windows profiles name the host's own workspace, which exists
        only once the profile is bound to a host name.
        """
        data = self.profile.as_dict()
        for event in data.get("events", []):
            event["message"] = (
                event["message"]
                .replace("{workspace_id}", self.workspace_id)
                .replace("{host}", self.name)
            )
        return data


def expand_fleet(
    profiles: ProfileSet, count: int | None = None, without: Sequence[str] = ()
) -> list[Host]:
    """Return the fleet: one host per profile, or ``count`` hosts cycling through the profiles,
    leaving out the profiles whose names match a glob of ``without``."""
    order = [p for p in profiles.ordered() if not any(fnmatch(p.name, g) for g in without)]
    for glob in without:
        if not any(fnmatch(p.name, glob) for p in profiles.ordered()):
            raise ProfileError(f"LAB_WITHOUT: {glob!r} matches no profile in lab/profiles/")
    if not order:
        raise ProfileError("LAB_WITHOUT leaves no profile: name fewer profiles to leave out")
    total = len(order) if count is None else count
    if not 1 <= total <= MAX_HOSTS:
        raise ProfileError(f"LAB_HOSTS={total} is out of range; use 1 .. {MAX_HOSTS}")
    hosts = []
    for i in range(total):
        profile = order[i % len(order)]
        copy = i // len(order) + 1
        name = profile.name if copy == 1 else f"{profile.name}-{copy}"
        hosts.append(Host(name=name, index=i, profile=profile))
    return hosts


def count_from_env(environ: dict[str, str] | None = None) -> int | None:
    """Return LAB_HOSTS as an int (None when unset or empty); a bad value is a ProfileError."""
    raw = (os.environ if environ is None else environ).get("LAB_HOSTS", "").strip()
    if not raw:
        return None
    if not raw.isdigit():
        raise ProfileError(f"LAB_HOSTS={raw!r} is not a number; use e.g. LAB_HOSTS=200")
    return int(raw)


def without_from_env(environ: dict[str, str] | None = None) -> list[str]:
    """Return LAB_WITHOUT's comma-separated profile-name globs (empty when unset): the
    profiles a fleet leaves out, e.g. ``*443-blocked*`` for a fleet whose endpoints answer."""
    raw = (os.environ if environ is None else environ).get("LAB_WITHOUT", "")
    return [glob.strip() for glob in raw.split(",") if glob.strip()]
