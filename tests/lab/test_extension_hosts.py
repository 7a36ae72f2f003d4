"""Extension-based Linux lab hosts: each fault is a failure (never an error) that says what
was seen, the kinds shown per host are right, and the token the lab's IMDS hands out
reaches no output of the run (terminal, JUnit, HTML, evidence)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.lab.suite_run import SuiteRun, assert_judged, run_inventory_hosts

pytestmark = pytest.mark.lab

HOSTS = [
    "linux-v2-healthy",
    "linux-v2-arc-healthy",
    "linux-v2-handler-error",
    "linux-v2-install-stuck",
    "linux-v2-hwd-stopped",
    "linux-v2-no-identity",
    "linux-v2-arc-himds-stopped",
    "linux-v2-remnants",
    "linux-migrating",
    "linux-no-worker",
    "linux-healthy",
]
# host -> {(scenario, item): a text its failure message must hold}
FAILURES: dict[str, dict[tuple[str, str], str]] = {
    "linux-v2-handler-error": {("HRW-X01", "status"): "Invalid Authorization Token"},
    "linux-v2-install-stuck": {
        ("HRW-X01", "status"): "stuck",
        ("HRW-X01", "handler-state"): "HandlerState Installed",
    },
    "linux-v2-hwd-stopped": {
        ("HRW-X02", "running"): "systemctl is-active hwd: inactive",
        ("HRW-X02", "start"): "systemctl is-enabled hwd: disabled",
        ("HRW-X02", "worker-user"): "no process runs as hweautomation",
    },
    "linux-v2-no-identity": {("HRW-X03", "identity"): "Identity not found"},
    "linux-v2-arc-himds-stopped": {("HRW-X03", "identity"): "himds is not running"},
    "linux-v2-remnants": {("HRW-X04", "agent-remnants"): "/home/nxautomation/state/worker_diy.key"},
    "linux-migrating": {("HRW-R01", "agent-worker"): "migration under way"},
    "linux-no-worker": {("HRW-K01", "installed"): "no hybrid worker of either kind"},
    "linux-healthy": {("HRW-R01", "agent-worker"): "31 August 2024"},
}
KINDS = {
    "linux-v2-healthy": "extension-based on Azure VM",
    "linux-v2-arc-healthy": "extension-based on Arc",
    "linux-migrating": "agent-based + extension-based on Azure VM",
    "linux-no-worker": "no worker on neither Azure VM nor Arc",
    "linux-healthy": "agent-based on neither Azure VM nor Arc",
}


@pytest.fixture(scope="module")
def v2_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[SuiteRun, Path]:
    reports = tmp_path_factory.mktemp("v2") / "reports"
    return run_inventory_hosts(HOSTS, reports), reports


def test_faults_are_failures_that_say_what_was_seen(v2_run: tuple[SuiteRun, Path]) -> None:
    assert_judged(v2_run[0], HOSTS, FAILURES)


def test_each_host_shows_its_kind(v2_run: tuple[SuiteRun, Path]) -> None:
    run, reports = v2_run
    record: dict[str, Any] = json.loads((reports / "latest" / "evidence.json").read_text())
    for host, text in KINDS.items():
        assert f"{host} [{text}]:" in run.output
        assert record["hosts"][host]["worker_kind"]["text"] == text
    # The HTML matrix's kind column is checked by the unit tests (test_plugin, test_evidence):
    # a fleet this size gets the report's compact rendering, which is not greppable text.


def test_the_imds_token_reaches_no_output(
    v2_run: tuple[SuiteRun, Path], lab_state: dict[str, Any]
) -> None:
    run, reports = v2_run
    token = lab_state["imds_token"]
    assert token.startswith("hrw-lab-imds-token-")
    assert token not in run.output
    files = [p for p in (reports / "latest").resolve().iterdir() if p.is_file()]
    assert {p.name for p in files} >= {"junit.xml", "report.html", "evidence.json"}
    for path in files:
        assert token not in path.read_text(encoding="utf-8", errors="replace"), path.name
