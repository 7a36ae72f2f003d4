"""Running the suite the way an operator does, from lab tests, and reading its outcomes.

The suite runs in a subprocess (``python -m pytest tests_infra ...``); its JUnit file is
read back into one :class:`Outcome` per check, so tests can say what each host's checks
ended as and why.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from junitparser import Error, Failure, Skipped

from tests.junit_read import cases, properties

ROOT = Path(__file__).resolve().parents[2]
INVENTORY = ROOT / "inventories" / "lab.yml"
# Every report folder a suite run of this session wrote, in order: a failing lab test keeps
# the ones of its module (tests/lab/conftest.py), so a flaky verdict can be diagnosed.
REPORT_DIRS: list[Path] = []


@dataclass(frozen=True)
class Outcome:
    """How one check ended: passed, failed, error or skipped, and its message."""

    host: str
    scenario: str
    item: str
    kind: str
    message: str


@dataclass(frozen=True)
class SuiteRun:
    """One finished suite run: exit status, output, wall time and outcomes per host."""

    returncode: int
    output: str
    seconds: float
    outcomes: dict[str, list[Outcome]]

    def kinds(self, host: str) -> set[str]:
        """Return the set of outcome kinds of ``host``'s checks."""
        return {o.kind for o in self.outcomes.get(host, [])}


def _outcome(case: Any) -> Outcome:
    props = properties(case)
    kind, message = "passed", ""
    for result in case.result:
        if isinstance(result, Error):
            kind = "error"
        elif isinstance(result, Failure):
            kind = "failed"
        elif isinstance(result, Skipped):
            kind = "skipped"
        else:
            continue
        message = f"{result.message or ''}\n{result.text or ''}"
    return Outcome(props["host"], props["scenario_id"], props["item"], kind, message)


def run_suite(args: list[str], reports: Path, timeout: float = 600.0, cwd: Path = ROOT) -> SuiteRun:
    """Run ``pytest tests_infra`` with ``args``; return its outcomes by host.

    ``reports`` receives the run's report directory. A run that ends in a usage error has
    no JUnit file and so no outcomes.
    """
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "tests_infra",
        "-p",
        "no:cacheprovider",
        "-q",
        f"--hrw-reports={reports}",
        *args,
    ]
    REPORT_DIRS.append(reports)
    started = time.monotonic()
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    seconds = time.monotonic() - started
    outcomes: dict[str, list[Outcome]] = defaultdict(list)
    junit = reports / "latest" / "junit.xml"
    if junit.exists():
        for case in cases(str(junit)):
            outcome = _outcome(case)
            outcomes[outcome.host].append(outcome)
    return SuiteRun(proc.returncode, proc.stdout + proc.stderr, seconds, dict(outcomes))


def read_inventory(path: Path = INVENTORY) -> dict[str, Any]:
    """Return an inventory file as a plain document."""
    data: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return data


def host_vars(name: str, path: Path = INVENTORY) -> dict[str, Any]:
    """Return a copy of the inventory variables of host ``name``."""
    for group in read_inventory(path)["all"]["children"].values():
        hosts = group.get("hosts") or {}
        if name in hosts:
            return dict(hosts[name])
    raise KeyError(f"{name} is not in {path}")


def write_inventory(path: Path, linux: dict[str, Any], windows: dict[str, Any]) -> Path:
    """Write an inventory with the given Linux and Windows hosts (lab CAs trusted)."""
    doc = {
        "all": {
            "vars": read_inventory()["all"]["vars"],
            "children": {"linux": {"hosts": linux}, "windows": {"hosts": windows}},
        }
    }
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    path.chmod(0o600)
    return path


def run_inventory_hosts(hosts: Iterable[str], reports: Path) -> SuiteRun:
    """Return the suite's run against the named hosts of the lab inventory, reports under
    ``reports``; fails the calling test when no check ran."""
    names = ",".join(f"ansible://{h}" for h in hosts)
    run = run_suite([f"--ansible-inventory={INVENTORY}", f"--hosts={names}"], reports)
    assert run.outcomes, run.output[-3000:]
    return run


def assert_judged(
    run: SuiteRun,
    hosts: Iterable[str],
    failures: Mapping[str, Mapping[tuple[str, str], str]],
    passing: Mapping[str, Iterable[tuple[str, str]]] | None = None,
) -> None:
    """Assert each host's checks: no errors, exactly ``failures[host]`` failed (each message
    holding its text), and every check of ``passing[host]`` passed."""
    for host in hosts:
        got = {(o.scenario, o.item): o for o in run.outcomes[host]}
        errors = [f"{k}: {o.message[:300]}" for k, o in got.items() if o.kind == "error"]
        assert not errors, (host, errors)
        failed = {k for k, o in got.items() if o.kind == "failed"}
        assert failed == set(failures.get(host, {})), (host, failed)
        for key, text in failures.get(host, {}).items():
            assert text in got[key].message, (host, key, got[key].message[:500])
        for key in (passing or {}).get(host, []):
            assert got[key].kind == "passed", (host, key, got[key].message[:500])
