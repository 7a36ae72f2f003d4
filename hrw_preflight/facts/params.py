"""What a probe is told before it runs: time windows, timeouts and operator overrides."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from hrw_preflight import defaults


@dataclass(frozen=True)
class ProbeParams:
    """Inputs of one host's probe.

    The override fields come from inventory variables (``hrw_workspace_id``,
    ``hrw_endpoints``, ``hrw_proxy``, ``hrw_automation_account_url``); when set they
    replace what the probe would discover on the host. Values are passed to the host as
    data (base64 JSON or shell-quoted), never spliced into code.
    """

    lookback_hours: float = defaults.LOOKBACK_HOURS
    connect_timeout_s: float = defaults.ENDPOINT_TIMEOUT_S
    workspace_id: str | None = None
    endpoints: dict[str, str] = field(default_factory=dict)  # role -> host name
    proxy: str | None = None  # "[scheme://][user:pass@]host:port", or "" to force no proxy
    # The extension-based worker's account (hrw_automation_account_url, or
    # --hrw-automation-account-url) when the host's extension names none.
    automation_account_url: str | None = None
    # The custom Hybrid Worker credential's account (hrw_worker_credential_account): no
    # public source says where a host keeps it, so the inventory names it (HRW-X05).
    worker_credential_account: str | None = None
    omsconfig_log_max_bytes: int = defaults.OMSCONFIG_LOG_MAX_BYTES
    event_ids: dict[str, list[int]] = field(
        default_factory=lambda: {log: list(ids) for log, ids in defaults.EVENT_IDS.items()}
    )

    @property
    def endpoint_overrides(self) -> dict[str, str]:
        """Return the endpoints the inventory sets for this host (see
        :func:`endpoint_overrides`)."""
        return endpoint_overrides(self.workspace_id, self.endpoints)


def endpoint_overrides(workspace_id: str | None, endpoints: Mapping[str, str]) -> dict[str, str]:
    """Return role -> host name as the inventory sets them: the agentsvc and oms hosts of
    ``workspace_id`` (``hrw_workspace_id``), then ``endpoints`` (``hrw_endpoints``) on top.

    Why one function on the controller: both probes receive its result as data and put it
    over what they discover, so an override means the same on Linux and Windows.
    """
    found: dict[str, str] = {}
    if workspace_id:
        found["agentsvc"] = f"{workspace_id}.agentsvc.azure-automation.net"
        found["oms"] = f"{workspace_id}.oms.opinsights.azure.com"
        found["ods"] = f"{workspace_id}.ods.opinsights.azure.com"
    found.update(endpoints)
    return found
