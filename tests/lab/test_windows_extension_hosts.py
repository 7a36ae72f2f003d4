"""Extension-based Windows lab hosts (the WinRM emulator answering the probe's extension
blocks): each fault is a failure, never an error, that says what was seen; the kinds shown
per host are right; and the token the lab's IMDS hands out reaches no output of the run
(terminal, JUnit, HTML, evidence)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.lab.suite_run import SuiteRun, assert_judged, run_inventory_hosts

pytestmark = pytest.mark.lab

HOSTS = [
    "windows-v2-healthy",
    "windows-v2-arc-healthy",
    "windows-v2-service-stopped",
    "windows-v2-install-stuck",
    "windows-v2-no-identity",
    "windows-v2-arc-tokens-acl",
    "windows-v2-remnants",
    "windows-migrating",
    "windows-healthy",
]
# host -> {(scenario, item): a text its failure message must hold}
FAILURES: dict[str, dict[tuple[str, str], str]] = {
    "windows-v2-service-stopped": {("HRW-X02", "running"): "HybridWorkerService State Stopped"},
    "windows-v2-install-stuck": {("HRW-X01", "status"): "stuck"},
    "windows-v2-no-identity": {("HRW-X03", "identity"): "Identity not found"},
    "windows-v2-arc-tokens-acl": {
        ("HRW-X05", "tokens-read"): "no Read entry of its own",
        ("HRW-X05", "exit-2148734720"): "Win32 Process Exited with code [2148734720]",
    },
    "windows-v2-remnants": {
        ("HRW-X04", "agent-remnants"): "HKLM:\\SOFTWARE\\Microsoft\\HybridRunbookWorker"
    },
    "windows-migrating": {("HRW-R01", "agent-worker"): "31 August 2024"},
    "windows-healthy": {("HRW-R01", "agent-worker"): "31 August 2024"},
}
KINDS = {
    "windows-v2-healthy": "extension-based on Azure VM",
    "windows-v2-arc-healthy": "extension-based on Arc",
    "windows-migrating": "agent-based + extension-based on Azure VM",
    "windows-healthy": "agent-based on neither Azure VM nor Arc",
}
# Passing checks that prove the extension's facts were read, not skipped.
PASSING = {
    "windows-v2-healthy": [
        ("HRW-X01", "status"),
        ("HRW-X02", "running"),
        ("HRW-X03", "identity"),
        ("HRW-G01", "ext-jrds"),
        ("HRW-G04", "ext-agentsvc"),
    ],
    "windows-v2-arc-healthy": [
        ("HRW-X03", "identity"),
        ("HRW-X05", "tokens-read"),
        ("HRW-X05", "extension-read-execute"),
        ("HRW-G01", "arc-his"),
        ("HRW-G04", "arc-login"),
    ],
}


@pytest.fixture(scope="module")
def v2_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[SuiteRun, Path]:
    reports = tmp_path_factory.mktemp("win-v2") / "reports"
    return run_inventory_hosts(HOSTS, reports), reports


def test_faults_are_failures_that_say_what_was_seen(v2_run: tuple[SuiteRun, Path]) -> None:
    assert_judged(v2_run[0], HOSTS, FAILURES, PASSING)


def test_each_host_shows_its_kind(v2_run: tuple[SuiteRun, Path]) -> None:
    run, reports = v2_run
    record: dict[str, Any] = json.loads((reports / "latest" / "evidence.json").read_text())
    for host, text in KINDS.items():
        assert f"{host} [{text}]:" in run.output
        assert record["hosts"][host]["worker_kind"]["text"] == text


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
