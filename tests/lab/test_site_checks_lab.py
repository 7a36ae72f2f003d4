"""Site checks against the lab: the worked example of docs/site-checks.md on a Linux and a
Windows lab host, through the suite's own connections, in the suite's reports."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from junitparser import Error, Failure, JUnitXml, Skipped

from tests.junit_read import properties
from tests.lab.suite_run import INVENTORY, ROOT

pytestmark = pytest.mark.lab
EXAMPLE = ROOT / "docs" / "examples" / "test_site_checks.py"


def test_worked_example_runs_on_a_linux_and_a_windows_host(tmp_path: Path) -> None:
    cmd = [
        sys.executable, "-m", "pytest", str(EXAMPLE), "-p", "no:cacheprovider", "-q",
        f"--ansible-inventory={INVENTORY}",
        "--hosts=ansible://linux-healthy,ansible://windows-healthy",
        f"--hrw-reports={tmp_path}",
    ]  # fmt: skip
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}  # nothing of the venv on PATH
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    outcomes: dict[tuple[str, str], str] = {}
    for case in (c for s in JUnitXml.fromfile(str(tmp_path / "latest" / "junit.xml")) for c in s):
        props = properties(case)
        kind = "passed"
        for result in case.result:
            if isinstance(result, Error | Failure):
                kind = "not passed"
            elif isinstance(result, Skipped):
                kind = "skipped"
        assert case.classname == props["host"]
        outcomes[(props["host"], props["item"])] = kind
    assert outcomes == {
        ("linux-healthy", "test_hosts_file_belongs_to_root"): "passed",
        ("linux-healthy", "test_worker_account_exists"): "passed",
        ("linux-healthy", "test_machine_answers_with_its_name"): "skipped",
        ("windows-healthy", "test_hosts_file_belongs_to_root"): "skipped",
        ("windows-healthy", "test_worker_account_exists"): "skipped",
        ("windows-healthy", "test_machine_answers_with_its_name"): "passed",
    }
