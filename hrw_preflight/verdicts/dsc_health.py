"""HRW-L04: Microsoft's own health test of the agent-based Linux worker, one item per criterion.

Microsoft's DSC resource nxOMSAutomationWorker decides whether the worker is healthy with its
``Test_Marshall`` (and Microsoft's offline troubleshooter reports that as its
``Linux.HybridWorkerStatusCheck``; microsoft/PowerShell-DSC-for-Linux,
``Providers/Scripts/3.x/Scripts/nxOMSAutomationWorker.py``, and Azure/updatemanagement,
``UM_Linux_Troubleshooter_Offline.py``, are where the criteria come from). Each item
below is one criterion, judged on the same facts, and a failure quotes Microsoft's own log
message so that it can be found in omsconfig.log. Where Microsoft's test returns healthy
without testing (not the primary workspace, no ``nxautomation`` user) the items are skipped
with that reason rather than passed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from hrw_preflight.facts.model import HostFacts
from hrw_preflight.facts.schema import ProcessData, WorkerData
from hrw_preflight.verdicts.base import (
    Settings,
    Unreadable,
    Verdict,
    failed,
    need,
    passed,
    skipped,
)
from hrw_preflight.verdicts.registry import check

WORKER_USER = "nxautomation"
_RESOURCE = (
    "/opt/microsoft/omsconfig/modules/nxOMSAutomationWorker/DSCResources/"
    "MSFT_nxOMSAutomationWorkerResource/automationworker"
)
# The manager as Microsoft's DSC scripts start and look for it: the Python 2 script under
# worker/ (the article's layout), the Python 3 script under 3.x/worker/.
MANAGER_PATHS = (f"{_RESOURCE}/worker/main.py", f"{_RESOURCE}/3.x/worker/main.py")
_WORKSPACE_ARG = re.compile(
    r"rworkspace:([a-z0-9]{8}-[a-z0-9]{4}-[a-z0-9]{4}-[a-z0-9]{4}-[a-z0-9]{12})"
)
RESTART = "restart the agent: sudo /opt/microsoft/omsagent/bin/service_control restart"
REREGISTER = (
    "re-register the auto-registered worker with the agent's current certificate: run the DSC "
    "consistency check (sudo su omsagent -c 'python3 /opt/microsoft/omsconfig/Scripts/"
    "PerformRequiredConfigurationChecks.py'), whose Set registers it again, or restart the agent"
)
# Items that need the solutions enabled in the DSC configuration (Current.mof).
NEEDS_SOLUTIONS = (
    "manager-version",
    "no-workers-without-solution",
    "oms-conf-consistent",
    "auto-worker-conf",
    "cert-thumbprint",
)


def _microsoft(message: str, fix: str) -> str:
    return f"Microsoft's DSC test: 'Test_Marshall returned [-1]: {message}'; fix: {fix}"


def _describe(proc: ProcessData) -> str:
    return f"pid {proc['pid']}: {proc['args']}"


def _user_processes(facts: HostFacts) -> tuple[int | None, list[ProcessData]]:
    """Return nxautomation's uid and its processes (what ``ps -u nxautomation`` lists)."""
    table = need(facts, "processes")
    uid = table["users"].get(WORKER_USER)
    if uid is None:
        return None, []
    return int(uid), [p for p in table["processes"] if int(p["uid"]) == int(uid)]


def _managers(processes: list[ProcessData], workspace: str) -> list[ProcessData]:
    return [
        p
        for p in processes
        if any(path in str(p["args"]) for path in MANAGER_PATHS) and workspace in str(p["args"])
    ]


def _version(proc: ProcessData) -> str:
    """Return a manager's version: the last word of its command line, as Microsoft reads it."""
    words = str(proc["args"]).split()
    return words[-1] if words else ""


def _settings(facts: HostFacts) -> tuple[dict[str, Any] | None, str | None]:
    """Return (nxOMSAutomationWorker settings, None) or (None, why they cannot be read)."""
    section = facts.section("dsc_config")
    if section.data is None:
        return None, f"could not read the DSC configuration: {section.error}"
    config = section.data
    if not config["exists"]:
        return None, (
            f"the DSC configuration {config['path']} does not exist (Microsoft's troubleshooter: "
            "'Hybrid worker is not running. current_mof file is missing')"
        )
    if config["settings"] is None:
        return None, (
            f"{config['path']} holds no MSFT_nxOMSAutomationWorkerResource instance, so the "
            "worker's configured solutions are unknown"
        )
    return dict(config["settings"]), None


@check("HRW-L04")
def dsc_health(facts: HostFacts, item: str, settings: Settings) -> Verdict:
    """HRW-L04: return the verdict of Microsoft's DSC health criterion ``item``, a skip where
    Microsoft's test returns healthy without testing, or an error when the facts it needs
    (the DSC configuration for the solution-dependent items) cannot be read."""
    worker = need(facts, "worker")
    primary = worker["primary_workspace_id"]
    if not primary:
        return skipped(
            "no primary workspace (/etc/opt/microsoft/omsagent/conf/omsadmin.conf has no "
            "WORKSPACE_ID): Microsoft's DSC test does not test the worker then",
            "worker",
        )
    config, config_error = _settings(facts)
    if config is None and item in NEEDS_SOLUTIONS:
        raise Unreadable(str(config_error))
    workspace = str(config["workspace_id"]) if config else str(primary)
    if workspace != primary:
        return skipped(
            f"the configured workspace {workspace} is not the primary workspace {primary}: "
            "Microsoft's DSC test returns healthy without testing then",
            "dsc_config",
            "worker",
        )
    uid, processes = _user_processes(facts)
    if uid is None:
        return skipped(
            f"user {WORKER_USER} does not exist: Microsoft's DSC test returns healthy without "
            "testing ('please update omsagent to the latest version'); HRW-L01 reports it",
            "processes",
        )
    note = f" (judged for the primary workspace; {config_error})" if config is None else ""
    updates = bool(config and config["updates_enabled"])
    automation = bool(config and config["automation_enabled"])
    return _ITEMS[item](_Context(facts, worker, workspace, processes, updates, automation, note))


@dataclass(frozen=True)
class _Context:
    """What every criterion is judged on: the host's facts resolved for one workspace."""

    facts: HostFacts
    worker: WorkerData
    workspace: str
    processes: list[ProcessData]
    updates: bool
    automation: bool
    note: str

    @property
    def any_solution(self) -> bool:
        """Return whether the configuration enables a solution (why: criteria 4 and 5)."""
        return self.updates or self.automation

    def solutions(self) -> str:
        """Return the configured solutions as words, for messages."""
        updates = "enabled" if self.updates else "disabled"
        automation = "enabled" if self.automation else "disabled"
        return f"Updates {updates}, AzureAutomation {automation}"


def _stray_workspace(c: _Context) -> Verdict:
    expected = f"no {WORKER_USER} process for a workspace other than {c.workspace}"
    stray = [
        p
        for p in c.processes
        if (m := _WORKSPACE_ARG.search(str(p["args"]).lower()))
        and m.group(1) != c.workspace.lower()
    ]
    if stray:
        seen = "; ".join(_describe(p) for p in stray)
        return failed(
            f"{seen}. {_microsoft('process started by other workspaces detected', RESTART)}",
            expected,
            "processes",
        )
    return passed(
        f"{len(c.processes)} {WORKER_USER} process(es), none for another workspace{c.note}",
        expected,
        "processes",
    )


def _oms_conf(c: _Context) -> Verdict:
    expected = "/var/opt/microsoft/omsagent/state/automationworker/oms.conf exists"
    if not c.worker["oms_conf"]["exists"]:
        return failed(
            f"oms.conf is missing. {_microsoft('oms.conf file not found', RESTART)}",
            expected,
            "worker",
        )
    return passed(f"oms.conf exists{c.note}", expected, "worker")


def _no_old_manager(c: _Context) -> Verdict:
    expected = "no worker manager of the retired version 1.4"
    old = [p for p in _managers(c.processes, c.workspace) if _version(p) == "1.4"]
    if old:
        message = _microsoft("an older version of Hybrid Worker was found", RESTART)
        return failed(f"{_describe(old[0])}. {message}", expected, "processes")
    return passed(f"no 1.4 manager for workspace {c.workspace}{c.note}", expected, "processes")


def _manager_version(c: _Context) -> Verdict:
    if not c.any_solution:
        return skipped(
            f"no solution is enabled in the DSC configuration ({c.solutions()}), so no manager "
            "is expected (item no-workers-without-solution)",
            "dsc_config",
        )
    module = c.worker.get("version")
    if not module:
        raise Unreadable(
            "the module's VERSION file (/opt/microsoft/omsconfig/modules/nxOMSAutomationWorker/"
            "VERSION) is missing or empty, so the latest version is unknown"
        )
    expected = f"exactly one worker manager for workspace {c.workspace} at version {module}"
    managers = _managers(c.processes, c.workspace)
    message = _microsoft("worker manager isn't running or is not latest", RESTART)
    if not managers:
        return failed(f"no worker manager runs. {message}", expected, "processes", "worker")
    if len(managers) > 1:
        seen = "; ".join(_describe(p) for p in managers)
        return failed(
            f"{len(managers)} worker managers run: {seen}. {message}",
            expected,
            "processes",
            "worker",
        )
    if _version(managers[0]) != module:
        return failed(
            f"the manager runs version {_version(managers[0])}: {_describe(managers[0])}. "
            f"{message}",
            expected,
            "processes",
            "worker",
        )
    return passed(_describe(managers[0]), expected, "processes", "worker", "dsc_config")


def _no_workers_without_solution(c: _Context) -> Verdict:
    if c.any_solution:
        return skipped(
            f"a solution is enabled in the DSC configuration ({c.solutions()}); this criterion "
            "applies only when none is",
            "dsc_config",
        )
    expected = f"no worker or manager for workspace {c.workspace} (no solution is enabled)"
    running = [p for p in c.processes if f"rworkspace:{c.workspace}" in str(p["args"])]
    if running:
        seen = "; ".join(_describe(p) for p in running)
        message = _microsoft("worker or manager is running when no solution is enabled", RESTART)
        return failed(f"{seen}. {message}", expected, "processes", "dsc_config")
    return passed("no worker or manager runs", expected, "processes", "dsc_config")


def _oms_conf_consistent(c: _Context) -> Verdict:
    keys = c.worker["oms_conf"]
    auto = "(Updates enabled)" if c.updates else "not at all (Updates disabled)"
    manual = (
        "(AzureAutomation enabled)" if c.automation else "not at all (AzureAutomation disabled)"
    )
    expected = (
        f"oms.conf [oms-worker-conf] names the auto-registered worker {auto} and the manually "
        f"registered worker {manual}"
    )
    message = _microsoft("oms.conf differs from configuration mof", RESTART)
    if not keys["exists"] or not keys["worker_conf_section"]:
        what = "oms.conf is missing" if not keys["exists"] else "oms.conf has no [oms-worker-conf]"
        return failed(f"{what}. {message}", expected, "worker", "dsc_config")
    seen = (
        f"auto_registered_worker_conf_path {'present' if keys['auto_registered'] else 'absent'}, "
        f"manually_registered_worker_conf_path "
        f"{'present' if keys['manually_registered'] else 'absent'}; configuration: "
        f"{c.solutions()}"
    )
    if keys["auto_registered"] != c.updates or keys["manually_registered"] != c.automation:
        return failed(f"{seen}. {message}", expected, "worker", "dsc_config")
    return passed(seen, expected, "worker", "dsc_config")


def _auto_worker_conf(c: _Context) -> Verdict:
    if not c.updates:
        return skipped(
            "Updates is not enabled in the DSC configuration, so no auto-registered worker is "
            "expected",
            "dsc_config",
        )
    expected = "/var/opt/microsoft/omsagent/state/automationworker/worker.conf exists"
    if not c.worker["auto_worker_conf"]["exists"]:
        message = _microsoft("auto register is enabled but registration file is absent", RESTART)
        return failed(f"worker.conf is missing. {message}", expected, "worker", "dsc_config")
    return passed("worker.conf exists", expected, "worker", "dsc_config")


def _cert_thumbprint(c: _Context) -> Verdict:
    if not c.updates:
        return skipped(
            "Updates is not enabled in the DSC configuration, so no auto-registered worker is "
            "expected",
            "dsc_config",
        )
    auto = c.worker["auto_worker_conf"]
    if not auto["exists"]:
        raise Unreadable(
            "the auto-registered worker's worker.conf is missing (item auto-worker-conf), so "
            "its certificate thumbprint cannot be compared"
        )
    cert = need(c.facts, "oms_cert")
    expected = "worker.conf [oms-metadata] jrds_cert_thumbprint equal to oms.crt's SHA-1 thumbprint"
    message = _microsoft("certificate mismatch for auto registered worker", REREGISTER)
    registered = auto["jrds_cert_thumbprint"]
    if not cert["exists"]:
        return failed(
            f"the agent's certificate {cert['path']} is missing. {message}",
            expected,
            "worker",
            "oms_cert",
        )
    if not registered:
        return failed(
            f"worker.conf has no jrds_cert_thumbprint. {message}", expected, "worker", "oms_cert"
        )
    seen = f"worker.conf jrds_cert_thumbprint {registered}, oms.crt SHA-1 {cert['sha1']}"
    if registered != cert["sha1"]:
        return failed(
            f"{seen}: the agent's certificate was rotated after the worker registered. {message}",
            expected,
            "worker",
            "oms_cert",
        )
    return passed(seen, expected, "worker", "oms_cert")


_ITEMS = {
    "stray-workspace": _stray_workspace,
    "oms-conf": _oms_conf,
    "no-1.4-manager": _no_old_manager,
    "manager-version": _manager_version,
    "no-workers-without-solution": _no_workers_without_solution,
    "oms-conf-consistent": _oms_conf_consistent,
    "auto-worker-conf": _auto_worker_conf,
    "cert-thumbprint": _cert_thumbprint,
}
ITEMS = tuple(_ITEMS)
