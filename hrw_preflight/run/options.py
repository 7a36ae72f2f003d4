"""The suite's command-line options and the run settings built from them."""

from __future__ import annotations

import os
from dataclasses import dataclass
from urllib.parse import urlsplit

import pytest

from hrw_preflight import defaults
from hrw_preflight.hosts.connections import ConnectOptions
from hrw_preflight.hosts.errors import ConfigError
from hrw_preflight.hosts.shards import Shard, read_shard


def _positive_float(text: str) -> float:
    """Return ``text`` as a number above zero (argparse turns ValueError into one line)."""
    value = float(text)
    if not value > 0:
        raise ValueError(text)
    return value


def add_options(parser: pytest.Parser) -> None:
    """Register the hrw-preflight options (testinfra's own --hosts etc. are reused)."""
    group = parser.getgroup("hrw-preflight", "Hybrid Runbook Worker preflight")
    add = group.addoption
    add(
        "--hrw-lookback-hours",
        type=float,
        default=defaults.LOOKBACK_HOURS,
        help=f"event-log look-back window in hours (default {defaults.LOOKBACK_HOURS:g})",
    )
    add(
        "--hrw-connect-timeout",
        type=int,
        default=defaults.CONNECT_TIMEOUT_S,
        help="seconds to wait for a host to accept the connection "
        f"(default {defaults.CONNECT_TIMEOUT_S})",
    )
    add(
        "--hrw-command-timeout",
        type=int,
        default=defaults.COMMAND_TIMEOUT_S,
        help=f"seconds one probe command may take on a host (default {defaults.COMMAND_TIMEOUT_S})",
    )
    add(
        "--hrw-max-output-mb",
        type=_positive_float,
        default=float(defaults.MAX_OUTPUT_MB),
        metavar="MB",
        help=f"most output one probe command may print (default {defaults.MAX_OUTPUT_MB}); "
        "a host printing more is stopped and its checks end as errors",
    )
    add(
        "--hrw-endpoint-timeout",
        type=float,
        default=defaults.ENDPOINT_TIMEOUT_S,
        help="seconds for TCP 443 + TLS to one Azure endpoint from the host "
        f"(default {defaults.ENDPOINT_TIMEOUT_S:g})",
    )
    add(
        "--hrw-min-cpus",
        type=int,
        default=defaults.MIN_LOGICAL_PROCESSORS,
        help=f"minimum logical processors (default {defaults.MIN_LOGICAL_PROCESSORS})",
    )
    add(
        "--hrw-min-memory-gb",
        type=float,
        default=defaults.MIN_MEMORY_GB,
        help=f"minimum RAM in GB (default {defaults.MIN_MEMORY_GB:g})",
    )
    add(
        "--hrw-max-cpu-load",
        type=float,
        default=defaults.MAX_CPU_LOAD,
        help="CPU load per logical processor counted as pressure "
        f"(default {defaults.MAX_CPU_LOAD:g})",
    )
    add(
        "--hrw-min-memory-available",
        type=float,
        default=defaults.MIN_MEMORY_AVAILABLE_PCT,
        help="percent of memory that must be available "
        f"(default {defaults.MIN_MEMORY_AVAILABLE_PCT:g})",
    )
    add(
        "--hrw-trusted-ca",
        action="append",
        default=[],
        metavar="PEM",
        help="extra CA certificates (PEM) trusted besides the Azure CA list; repeatable",
    )
    add(
        "--hrw-workspace-id",
        default=None,
        metavar="ID",
        help="workspace id for hosts whose inventory sets no hrw_workspace_id (e.g. an image "
        "not yet onboarded): its endpoints are probed instead of discovered ones",
    )
    add(
        "--hrw-automation-account-url",
        default=None,
        metavar="URL",
        help="the Automation account's AutomationHybridServiceUrl (https://<id>.jrds.<region>."
        "azure-automation.net/automationAccounts/<id>) for hosts whose inventory sets no "
        "hrw_automation_account_url and whose extension names none (e.g. an image not yet "
        "onboarded): its extension-based worker endpoints are probed",
    )
    add(
        "--accept-unknown-host-keys",
        action="store_true",
        default=False,
        help="accept SSH host keys not in known_hosts (weakens the run; the report says so)",
    )
    add(
        "--hrw-reports",
        default=defaults.REPORTS_DIR,
        metavar="DIR",
        help="folder for run reports (default ./reports); each run gets DIR/<run-id>/",
    )
    add(
        "--hrw-parallel",
        type=int,
        default=defaults.PARALLEL_HOSTS,
        help="hosts probed at once, ahead of the tests, in a child process (default 16; "
        "0 = in this process, one at a time)",
    )
    add(
        "--hrw-shard",
        default=None,
        metavar="K/N",
        help="check only the hosts of shard K of N (1-based; a host's shard is a hash of its "
        "inventory name); default: GitLab's CI_NODE_INDEX/CI_NODE_TOTAL or Azure Pipelines' "
        "SYSTEM_JOBPOSITIONINPHASE/SYSTEM_TOTALJOBSINPHASE when set; none: every host",
    )


@dataclass(frozen=True)
class RunOptions:
    """Everything the run needs from the command line, read once."""

    connect: ConnectOptions
    lookback_hours: float
    endpoint_timeout_s: float
    min_cpus: int
    min_memory_gb: float
    max_cpu_load: float
    min_memory_available_pct: float
    trusted_ca_files: tuple[str, ...]
    reports_dir: str
    parallel: int
    workspace_id: str | None = None
    shard: Shard | None = None
    automation_account_url: str | None = None

    def weakened(self) -> list[str]:
        """Return one sentence per run-wide option that weakens what the checks prove.

        Why: the run header, the HTML summary and evidence.json must all say so, from one
        list, so that none of them can forget one.
        """
        found = []
        if self.connect.accept_unknown_host_keys:
            found.append(
                "unknown SSH host keys are accepted, host keys not verified "
                "(--accept-unknown-host-keys)"
            )
        found.extend(
            f"extra trusted CAs from {path} widen the Azure CA list for every host "
            "(--hrw-trusted-ca)"
            for path in self.trusted_ca_files
        )
        return found


def read_options(config: pytest.Config) -> RunOptions:
    """Return the run options from pytest's parsed command line (and the CI's shard
    variables); a bad value raises ConfigError."""
    get = config.getoption
    return RunOptions(
        connect=ConnectOptions(
            connect_timeout_s=int(get("hrw_connect_timeout")),
            command_timeout_s=int(get("hrw_command_timeout")),
            accept_unknown_host_keys=bool(get("accept_unknown_host_keys")),
            max_output_bytes=int(float(get("hrw_max_output_mb")) * 1024 * 1024),
        ),
        lookback_hours=float(get("hrw_lookback_hours")),
        endpoint_timeout_s=float(get("hrw_endpoint_timeout")),
        min_cpus=int(get("hrw_min_cpus")),
        min_memory_gb=float(get("hrw_min_memory_gb")),
        max_cpu_load=float(get("hrw_max_cpu_load")),
        min_memory_available_pct=float(get("hrw_min_memory_available")),
        trusted_ca_files=tuple(get("hrw_trusted_ca")),
        reports_dir=str(get("hrw_reports")),
        parallel=int(get("hrw_parallel")),
        workspace_id=get("hrw_workspace_id"),
        shard=read_shard(get("hrw_shard"), os.environ),
        automation_account_url=account_url(get("hrw_automation_account_url")),
    )


def account_url(value: object, where: str = "--hrw-automation-account-url") -> str | None:
    """Return an Automation account URL checked to be https with a host, or None for none;
    raise ConfigError saying what to give (why: it becomes endpoints probed on every host)."""
    if value is None or value == "":
        return None
    text = str(value).strip()
    split = urlsplit(text)
    if split.scheme != "https" or not split.hostname or any(c.isspace() for c in text):
        raise ConfigError(
            f"{where} must be the account's https URL, e.g. https://<id>.jrds.<region>."
            "azure-automation.net/automationAccounts/<id>"
        )
    return text
