"""Verdicts for Linux agent-based workers: worker processes, the OMS agent, omsconfig.log."""

from __future__ import annotations

import re

from hrw_preflight.facts.model import HostFacts
from hrw_preflight.facts.schema import ProcessData
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
DAEMON_USER = "omsagent"
_PY = r"(?:^|/)python[0-9.]*\s+"
_CODE = r"\S*/automationworker/(?:3\.x/)?worker/"
_STATE = "/var/opt/microsoft/omsagent"
# What each worker process's command line looks like (both field layouts: the article's and 3.x).
PATTERNS: dict[str, str] = {
    "manager": _PY
    + _CODE
    + r"main\.py\s+"
    + re.escape(_STATE)
    + r"/state/automationworker/oms\.conf\s+rworkspace:(?P<ws>\S+)",
    "auto-registered": _PY
    + _CODE
    + r"hybridworker\.py\s+"
    + re.escape(_STATE)
    + r"/state/automationworker/worker\.conf\s+managed\s+rworkspace:(?P<ws>\S+)",
    "user": _PY
    + _CODE
    + r"hybridworker\.py\s+(?:"
    + re.escape(_STATE)
    + r"/[0-9a-fA-F-]{32,}/state/automationworker/diy/worker\.conf|/home/nxautomation/state/"
    r"worker\.conf)\s+managed\s+rworkspace:(?P<ws>\S+)",
}
DESCRIPTIONS = {
    "manager": "worker manager (main.py ... oms.conf)",
    "auto-registered": "auto-registered worker (hybridworker.py ... worker.conf)",
    "user": "user worker (hybridworker.py ... diy/worker.conf)",
}
OMSAGENT = re.compile(r"(?:^|/)ruby\S*\s+\S*/omsagent/bin/omsagent(?:\s|$)|(?:^|/)omsagent(?:\s|$)")


def _describe(proc: ProcessData) -> str:
    return f"pid {proc['pid']} user {proc['user']} (uid {proc['uid']}): {proc['args']}"


@check("HRW-L01")
def worker_processes(facts: HostFacts, item: str, settings: Settings) -> Verdict:
    """HRW-L01: return whether the worker process ``item`` runs as nxautomation for this
    workspace, or a skip when the host's configuration does not call for it."""
    worker = need(facts, "worker")
    if item == "auto-registered" and not worker["update_management"]:
        return skipped(
            "Update Management is not enabled on this host (oms.conf names no "
            "auto-registered worker), so no auto-registered worker is expected",
            "worker",
        )
    if item == "user" and not worker["user_worker"]:
        return skipped(
            "no user hybrid worker is registered on this host (oms.conf names no "
            "manually registered worker)",
            "worker",
        )
    workspace = worker.get("workspace_id")
    if not workspace:
        raise Unreadable("the workspace id could not be discovered (omsadmin.conf)")
    table = need(facts, "processes")
    uid = table["users"].get(WORKER_USER)
    expected = f"the {DESCRIPTIONS[item]} running as {WORKER_USER} for workspace {workspace}"
    pattern = re.compile(PATTERNS[item])
    matches = [(p, m) for p in table["processes"] if (m := pattern.search(str(p["args"])))]
    if uid is None:
        return failed(
            f"user {WORKER_USER} does not exist on the host", expected, "worker", "processes"
        )
    if not matches:
        return failed(
            f"no {DESCRIPTIONS[item]} process is running", expected, "worker", "processes"
        )
    good = [p for p, m in matches if int(p["uid"]) == int(uid) and m["ws"] == workspace]
    if good:
        return passed(_describe(good[0]), expected, "worker", "processes")
    seen = "; ".join(_describe(p) for p, _ in matches)
    return failed(
        f"found only processes with another owner or workspace: {seen}",
        expected,
        "worker",
        "processes",
    )


@check("HRW-L02")
def omsagent_running(facts: HostFacts, item: str, settings: Settings) -> Verdict:
    """HRW-L02: return whether the omsagent daemon runs as the ``omsagent`` account.

    Why the owner counts: any account on the host can start a process of that name, so a
    process called omsagent under another user is not the agent's daemon.
    """
    table = need(facts, "processes")
    uid = table["users"].get(DAEMON_USER)
    expected = (
        "the omsagent daemon (/opt/microsoft/omsagent/ruby/bin/ruby ... omsagent) running "
        f"as {DAEMON_USER}"
    )
    found = [p for p in table["processes"] if OMSAGENT.search(str(p["args"]))]
    if uid is None:
        return failed(f"user {DAEMON_USER} does not exist on the host", expected, "processes")
    if not found:
        return failed("no omsagent process is running", expected, "processes")
    good = [p for p in found if int(p["uid"]) == int(uid)]
    if good:
        return passed(_describe(good[0]), expected, "processes")
    seen = "; ".join(_describe(p) for p in found)
    return failed(f"found only omsagent processes of another user: {seen}", expected, "processes")


@check("HRW-L03")
def omsconfig_class_missing(facts: HostFacts, item: str, settings: Settings) -> Verdict:
    """HRW-L03: return whether omsconfig.log is free of 'The specified class does not exist'."""
    log = need(facts, "omsconfig_log")
    expected = f"{log['path']} without 'The specified class does not exist..'"
    if not log["exists"]:
        raise Unreadable(f"{log['path']} does not exist, so the agent's DSC state is unknown")
    matches = list(log["matches"])
    if matches:
        return failed(
            f"{len(matches)} matching line(s), first: {matches[0]!r}", expected, "omsconfig_log"
        )
    return passed(
        f"no matching line in the last {log['bytes_scanned']} bytes", expected, "omsconfig_log"
    )
