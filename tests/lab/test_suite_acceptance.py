"""The suite's acceptance: run against the whole lab fleet, each host fails exactly the
scenarios its profile lists, with the remediation in the message; healthy hosts pass.

Runs the real command an operator types, in a subprocess, and reads its JUnit back.
"""

from __future__ import annotations

import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest
import yaml
from junitparser import Error, Failure, JUnitXml, Skipped

from hrw_preflight.verdicts.catalogue import load_catalogue
from tests.junit_read import properties

ROOT = Path(__file__).resolve().parents[2]
INVENTORY = ROOT / "inventories" / "lab.yml"

pytestmark = pytest.mark.lab


def lab_hosts() -> dict[str, str]:
    """Return inventory host name -> lab profile name, read from the lab's inventory."""
    data = yaml.safe_load(INVENTORY.read_text())
    hosts: dict[str, str] = {}
    for group in data["all"]["children"].values():
        for name, hostvars in (group.get("hosts") or {}).items():
            hosts[name] = hostvars["hrw_lab_profile"]
    return hosts


def expected_failing(profile: str) -> set[str]:
    """Return the scenarios a profile says must not pass."""
    data = yaml.safe_load((ROOT / "lab" / "profiles" / f"{profile}.yaml").read_text())
    return set(data.get("expect_failing") or [])


@pytest.fixture(scope="module")
def lab_run(tmp_path_factory: pytest.TempPathFactory) -> JUnitXml:
    """Run the suite once against every lab host and return its JUnit report."""
    out = tmp_path_factory.mktemp("acceptance")
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "tests_infra",
        f"--ansible-inventory={INVENTORY}",
        "--hosts=ansible://all",
        "-p",
        "no:cacheprovider",
        "-q",
        f"--hrw-reports={out / 'reports'}",
    ]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900, check=False)
    assert proc.returncode in (0, 1), proc.stdout[-3000:] + proc.stderr[-3000:]
    return JUnitXml.fromfile(str(out / "reports" / "latest" / "junit.xml"))


def test_each_host_fails_exactly_its_profile(lab_run: JUnitXml) -> None:
    hosts = lab_hosts()
    not_passing: dict[str, set[str]] = defaultdict(set)
    seen_hosts: set[str] = set()
    for case in (c for suite in lab_run for c in suite):
        props = properties(case)
        host = props["host"]
        seen_hosts.add(host)
        for result in case.result:
            if isinstance(result, Failure | Error):
                not_passing[host].add(props["scenario_id"])
            if isinstance(result, Skipped):
                assert result.message, f"{case.name} skipped without a reason"
    assert seen_hosts == set(hosts)
    mismatches = {
        h: (sorted(not_passing[h]), sorted(expected_failing(p)))
        for h, p in hosts.items()
        if not_passing[h] != expected_failing(p)
    }
    assert not mismatches, f"host: (not passing, expected): {mismatches}"


def test_failures_carry_the_remediation(lab_run: JUnitXml) -> None:
    catalogue = load_catalogue()
    failures = 0
    for case in (c for suite in lab_run for c in suite):
        props = properties(case)
        for result in case.result:
            if isinstance(result, Failure):
                failures += 1
                text = str(result.text)
                scenario = catalogue.get(props["scenario_id"])
                assert scenario.id in text and props["host"] in text
                assert scenario.remediation in " ".join(text.split())
    assert failures > 0
