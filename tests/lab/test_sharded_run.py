"""Sharded runs against the lab fleet: three shard processes, each told its shard the way one
CI system tells it (GitLab's ``CI_NODE_INDEX``/``CI_NODE_TOTAL``, Azure Pipelines'
``SYSTEM_JOBPOSITIONINPHASE``/``SYSTEM_TOTALJOBSINPHASE``, GitHub Actions' matrix passing
``--hrw-shard 3/3``), run at once as N CI jobs would, then ``python -m hrw_preflight merge``;
the merged bundle must equal a single run over the whole fleet, host by host and check by
check, with the same exit code under the same waivers and gate.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.junit_read import cases, properties
from tests.lab.suite_run import INVENTORY, ROOT

pytestmark = pytest.mark.lab

SHARD_VARIABLES = (
    "CI_NODE_INDEX",
    "CI_NODE_TOTAL",
    "SYSTEM_JOBPOSITIONINPHASE",
    "SYSTEM_TOTALJOBSINPHASE",
)
# How each of the three jobs learns its shard: (extra environment, extra arguments).
JOBS: tuple[tuple[dict[str, str], list[str]], ...] = (
    ({"CI_NODE_INDEX": "1", "CI_NODE_TOTAL": "3"}, []),  # GitLab parallel: 3
    ({"SYSTEM_JOBPOSITIONINPHASE": "2", "SYSTEM_TOTALJOBSINPHASE": "3"}, []),  # Azure
    ({}, ["--hrw-shard", "3/3"]),  # GitHub Actions matrix
)
WAIVERS = """
- scenario: HRW-G02
  hosts: "linux-underspec*"
  justification: lab host built small on purpose
  owner: lab@example.com
  expires: 2999-12-31
"""
GATE = ["--hrw-fail-on", "high"]


def _suite(reports: Path, extra_env: dict[str, str], args: list[str]) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k not in SHARD_VARIABLES}
    env.update(extra_env)
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
        f"--hrw-reports={reports}",
        *args,
    ]
    return subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def _finish(proc: subprocess.Popen[str]) -> tuple[int, str]:
    out, _ = proc.communicate(timeout=600)
    return proc.returncode, out


def _evidence(folder: Path) -> dict[str, Any]:
    record: dict[str, Any] = json.loads((folder / "evidence.json").read_text())
    return record


def _outcomes(folder: Path) -> dict[tuple[str, str, str], str]:
    return {
        (c["host"], c["scenario_id"], c["item"]): c["outcome"] for c in _evidence(folder)["checks"]
    }


def _junit(folder: Path) -> dict[tuple[str, str, str], str]:
    found = {}
    for case in cases(str(folder / "junit.xml")):
        props = properties(case)
        found[(props["host"], props["scenario_id"], props["item"])] = props["outcome"]
    return found


def test_three_ci_shards_merge_into_the_single_runs_result(tmp_path: Path) -> None:
    waivers = tmp_path / "waivers.yml"
    waivers.write_text(WAIVERS)
    shards = [
        _suite(tmp_path / f"shard-{n}", env, args) for n, (env, args) in enumerate(JOBS, start=1)
    ]
    results = [_finish(p) for p in shards]
    for code, text in results:
        assert code in (0, 1), text[-3000:]
    folders = [(tmp_path / f"shard-{n}" / "latest").resolve() for n in (1, 2, 3)]
    assert [_evidence(f)["shard"]["index"] for f in folders] == [1, 2, 3]
    sources = [_evidence(f)["shard"]["source"] for f in folders]
    assert sources == [
        "CI_NODE_INDEX/CI_NODE_TOTAL",
        "SYSTEM_JOBPOSITIONINPHASE/SYSTEM_TOTALJOBSINPHASE",
        "--hrw-shard",
    ]
    per_shard = [set(_evidence(f)["hosts"]) for f in folders]
    assert all(per_shard) and not set.intersection(*per_shard)

    single_code, single_out = _finish(
        _suite(tmp_path / "single", {}, [f"--hrw-waivers={waivers}", *GATE])
    )
    assert single_code in (0, 1), single_out[-3000:]
    single = (tmp_path / "single" / "latest").resolve()

    out = tmp_path / "fleet"
    merge = subprocess.run(
        [
            sys.executable,
            "-m",
            "hrw_preflight",
            "merge",
            str(out),
            *map(str, folders),
            "--hrw-waivers",
            str(waivers),
            *GATE,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert merge.returncode == single_code, merge.stdout + merge.stderr
    assert merge.stdout.startswith(f"merged 3 shards into {out}/"), merge.stdout + merge.stderr
    verify = subprocess.run(
        [sys.executable, "-m", "hrw_preflight", "verify", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert verify.returncode == 0 and verify.stdout.startswith("OK "), verify.stdout

    merged, alone = _outcomes(out), _outcomes(single)
    hosts = {h for h, _, _ in alone}
    assert {h for h, _, _ in merged} == hosts == set().union(*per_shard)
    for host in sorted(hosts):  # host by host, so a difference names its host
        mine = {k: v for k, v in merged.items() if k[0] == host}
        theirs = {k: v for k, v in alone.items() if k[0] == host}
        assert mine == theirs, host
    assert _junit(out) == _junit(single)
    assert any(v == "waived" for v in merged.values())  # the merge applied the waiver
    record, reference = _evidence(out), _evidence(single)
    assert record["summary"] == reference["summary"]
    assert record["gate"] == reference["gate"]
    assert record["inventory"]["host_list_sha256"] == reference["inventory"]["host_list_sha256"]
    assert [s["index"] for s in record["merged"]["shards"]] == [1, 2, 3]
