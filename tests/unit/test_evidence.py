"""Run bundles end to end: evidence.json, SHA256SUMS, atomic writes, interrupted runs, xdist.

Like ``test_plugin.py``, the real scenario tests run through pytester against recorded facts
(``probe_host`` replaced), with the evidence plugin loaded explicitly so these tests do not
depend on how ``plugin.py`` registers it.
"""

from __future__ import annotations

import json
import os
import pickle
import re
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import pytest

import hrw_preflight
import hrw_preflight.facts.collector
from hrw_preflight.facts.model import HostFacts
from hrw_preflight.hosts.redact import Redactor
from hrw_preflight.hosts.shards import host_list_sha256
from hrw_preflight.hosts.targets import Target
from hrw_preflight.report import atomic
from hrw_preflight.report.evidence import (
    COMPACT_ABOVE,
    EVIDENCE,
    SUMS,
    CheckResult,
    dump_record,
    find_git_root,
    git_commit,
    load_schema,
    record_chunks,
    redact_data,
    safe_command_line,
    schema_errors,
)
from hrw_preflight.report.html_matrix import render_matrix
from hrw_preflight.report.verify import verify_bundle
from hrw_preflight.run.case import bound
from hrw_preflight.verdicts.catalogue import load_catalogue
from tests.linux_samples import LinuxHost
from tests.suite_runner import (
    LINUX_CHECKS,
    PLUGINS,
    SECRET,
    SUITE,
    deselected_count,
    latest,
    load_evidence,
    local_facts,
    local_inventory,
    run_folders,
    run_suite,
    windows_inventory,
    windows_sections,
)

pytest_plugins = ["pytester"]


def test_every_run_gets_its_own_sealed_bundle_and_earlier_ones_stay_intact(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    facts = {"local": local_facts(LinuxHost())}
    run_suite(pytester, monkeypatch, facts, ["--hosts=local://", "-k", "HRW-L02"])
    [first] = run_folders(pytester)
    before = {p.name: p.read_bytes() for p in first.iterdir()}
    run_suite(pytester, monkeypatch, facts, ["--hosts=local://", "-k", "HRW-L02"])
    folders = run_folders(pytester)
    assert len(folders) == 2 and latest(pytester) == folders[1]
    assert {p.name: p.read_bytes() for p in first.iterdir()} == before
    for folder in folders:
        assert sorted(p.name for p in folder.iterdir()) == [
            SUMS,
            "checks.html",
            EVIDENCE,
            "junit.xml",
            "report.html",
        ]
        # Reports quote what hosts hold: readable by owner and group only (issue 10 item 2).
        assert {oct(p.stat().st_mode & 0o777) for p in folder.iterdir()} == {"0o640"}
        sums = (folder / SUMS).read_text().splitlines()
        assert [line.split("  ")[1] for line in sums] == [
            "report.html",
            "checks.html",
            "junit.xml",
            EVIDENCE,
        ]
        assert all(
            atomic.sha256_file(folder / line.split("  ")[1]) == line.split("  ")[0] for line in sums
        )
        verdict = verify_bundle(folder)
        assert verdict.ok and not verdict.warnings, verdict.problems
        assert load_evidence(folder)["run_id"] == folder.name


def test_evidence_json_records_the_run_and_matches_the_schema(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    facts = {"local": local_facts(LinuxHost(agent=False, auto=False))}
    result = run_suite(
        pytester,
        monkeypatch,
        facts,
        ["--hosts=local://", "-k", f"{LINUX_CHECKS} or HRW-G02", "--accept-unknown-host-keys"],
    )
    selected = ("HRW-L01", "HRW-L02", "HRW-L03", "HRW-G02")
    deselected = deselected_count("linux", selected)
    result.assert_outcomes(passed=3, failed=3, skipped=1, deselected=deselected)
    record = load_evidence(latest(pytester))
    # Passes, failures and a skip: JUnit and the record's counts agree with its checks.
    assert verify_bundle(latest(pytester)).problems == []
    jsonschema.validate(record, load_schema())
    assert schema_errors(record) == []
    assert record["status"] == "complete" and record["status_reason"] is None
    assert record["started_at"] <= record["finished_at"]
    assert record["started_at"].endswith("Z")
    assert record["operator"]["user"] and record["operator"]["hostname"]
    assert record["tool"]["version"] == hrw_preflight.__version__
    if find_git_root(Path(hrw_preflight.__file__).resolve().parent) is not None:
        assert re.fullmatch(r"[0-9a-f]{40}", record["tool"]["git_commit"] or "")
    else:
        assert record["tool"]["git_commit"] is None
    assert set(record["tool"]["probe_scripts"]) >= {"linux_facts.sh", "windows_facts.ps1"}
    assert record["catalogue"]["version"] == 2 and len(record["catalogue"]["sha256"]) == 64
    assert record["command_line"][0] == "pytest" and "--hosts=local://" in record["command_line"]
    assert record["inventory"] == {
        "hosts": "local://",
        "ansible_inventory": None,
        "sources": {"local": record["inventory"]["sources"]["local"]},
        "host_count": 1,
        "host_list_sha256": host_list_sha256(["local"]),
    }
    assert record["shard"] is None and record["merged"] is None
    assert record["weakened"]["run"] == [
        "unknown SSH host keys are accepted, host keys not verified (--accept-unknown-host-keys)"
    ]
    host = record["hosts"]["local"]
    assert host["platform"] == "linux" and host["connection"] == "local"
    assert host["worker"]["update_management"] is False and host["commands"] == 0
    assert record["summary"] == {"passed": 3, "failed": 3, "error": 0, "skipped": 1, "waived": 0}
    checks = {(c["scenario_id"], c["item"]): c for c in record["checks"]}
    failed = checks[("HRW-L02", "omsagent")]
    assert failed["outcome"] == "failed" and failed["severity"] and failed["host"] == "local"
    assert "no omsagent process is running" in failed["reason"] and "expected" in failed["reason"]
    assert "[processes] taken" in failed["evidence"] and set(failed["taken_at"]) == {"processes"}
    skipped = checks[("HRW-L01", "auto-registered")]
    assert skipped["outcome"] == "skipped" and "Update Management" in skipped["reason"]
    assert checks[("HRW-G02", "cpu")]["outcome"] == "passed"


def test_no_secret_reaches_evidence_junit_html_or_environment(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    inventory = windows_inventory(pytester)
    monkeypatch.setenv("HRW_TEST_TOKEN", SECRET)
    result = run_suite(
        pytester,
        monkeypatch,
        {"win1": HostFacts("win1", "windows", windows_sections(state="Stopped"))},
        [
            f"--ansible-inventory={inventory}",
            "--hosts=ansible://all",
            "-k",
            "HRW-W01",
            "--metadata",
            "deploy_password",
            SECRET,
            "--metadata",
            "note",
            f"token={SECRET}",
        ],
    )
    result.assert_outcomes(failed=1)
    folder = latest(pytester)
    record = load_evidence(folder)
    assert "State Stopped pw=***" in record["checks"][0]["evidence"]
    for name in (EVIDENCE, "junit.xml", "report.html", SUMS):
        assert SECRET not in (folder / name).read_text(), name
    assert SECRET not in result.stdout.str()


def test_command_line_drops_password_option_values_and_url_passwords() -> None:
    redact = Redactor(["hunter22"])
    args = [
        "pytest",
        "--winrm-password",
        "abc",
        "--token=xyz",
        "--hosts=winrm://u:pw9@h",
        "--accept-unknown-host-keys",
        "-k",
        "HRW",
        "note hunter22",
    ]
    assert safe_command_line(args, redact) == [
        "pytest",
        "--winrm-password",
        "***",
        "--token=***",
        "--hosts=winrm://u:***@h",
        "--accept-unknown-host-keys",
        "-k",
        "HRW",
        "note ***",
    ]


def test_redact_data_masks_secret_keys_and_nested_strings() -> None:
    data = {
        "proxy": {"url": "http://u:s3cret-pw@p:3128", "password": "x"},
        "n": 3,
        "list": ["token=abc"],
        "has_credentials": True,
    }
    assert redact_data(data, Redactor()) == {
        "proxy": {"url": "http://u:***@p:3128", "password": "***"},
        "n": 3,
        "list": ["token=***"],
        "has_credentials": True,
    }


def test_git_commit_is_null_outside_a_checkout(tmp_path: Path) -> None:
    assert find_git_root(tmp_path) is None and git_commit(tmp_path) is None


def test_evidence_text_is_bounded() -> None:
    text, cut = bound("x" * 20_000)
    assert cut and len(text) < 8_100 and text.endswith("(12000 more chars not kept)")
    assert bound("short") == ("short", False)


def test_interrupted_run_is_recorded_incomplete_and_verify_refuses_it(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupt(target: Target) -> HostFacts:
        raise KeyboardInterrupt

    inventory = local_inventory(pytester, "a", "b")
    result = run_suite(
        pytester,
        monkeypatch,
        {"a": local_facts(LinuxHost()), "b": interrupt},
        [
            f"--ansible-inventory={inventory}",
            "--hosts=ansible://all",
            "-k",
            "HRW-L02",
            "--hrw-parallel=0",
        ],
        interrupted=True,
    )
    assert result.ret == pytest.ExitCode.INTERRUPTED
    folder = latest(pytester)
    record = load_evidence(folder)
    assert record["status"] == "incomplete"
    assert "KeyboardInterrupt" in record["status_reason"]
    assert schema_errors(record) == []
    assert {c["host"]: c["outcome"] for c in record["checks"]} == {"a": "passed"}
    verdict = verify_bundle(folder)
    assert not verdict.ok
    assert any("incomplete" in p and "interrupted" in p for p in verdict.problems)


def test_a_run_killed_mid_way_leaves_an_incomplete_unsealed_folder(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, Any] = {}

    def look_at_folder(target: Target) -> HostFacts:
        [folder] = run_folders(pytester)
        seen["files"] = sorted(p.name for p in folder.iterdir())
        seen["status"] = load_evidence(folder)["status"]
        seen["verify"] = verify_bundle(folder).problems
        return local_facts(LinuxHost())

    # --hrw-parallel=0: the host is probed in this process, when its check runs, so the
    # callback sees the folder mid-run (a probe process would see it at collection).
    run_suite(
        pytester,
        monkeypatch,
        {"local": look_at_folder},
        ["--hosts=local://", "-k", "HRW-L02", "--hrw-parallel=0"],
    )
    assert seen["files"] == [EVIDENCE]  # what a SIGKILL at this moment would leave
    assert seen["status"] == "incomplete"
    assert len(seen["verify"]) == 1 and seen["verify"][0].startswith(f"{SUMS}: missing")
    assert load_evidence(latest(pytester))["status"] == "complete"


def test_stopping_early_with_maxfail_is_incomplete(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    facts = {"local": local_facts(LinuxHost(agent=False))}
    run_suite(pytester, monkeypatch, facts, ["--hosts=local://", "-k", "HRW-L", "-x"])
    record = load_evidence(latest(pytester))
    assert record["status"] == "incomplete" and "stopped early" in record["status_reason"]


def test_atomic_write_never_leaves_a_partial_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "evidence.json"
    atomic.write_atomic(target, "old")

    def crash(src: str, dst: str) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        atomic.write_atomic(target, "new " * 100_000)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["evidence.json"]  # temp file removed
    monkeypatch.undo()
    atomic.write_atomic(target, "new")
    assert target.read_text() == "new" and oct(target.stat().st_mode)[-3:] == "640"


def test_profile_markers_select_the_image_profile(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    facts = {"local": local_facts(LinuxHost())}
    result = run_suite(
        pytester, monkeypatch, facts, ["--hosts=local://", "-m", "image", "--collect-only", "-q"]
    )
    ids = [line for line in result.stdout.lines if "::" in line]
    assert ids and not any("HRW-G03" in line for line in ids)  # runtime-only scenario
    assert any("HRW-G02" in line for line in ids)
    result = run_suite(
        pytester,
        monkeypatch,
        facts,
        ["--hosts=local://", "-m", "not runtime", "--collect-only", "-q"],
    )
    assert not any("::" in line for line in result.stdout.lines)  # every check is runtime


def test_html_report_opens_with_matrix_then_failures_with_fix(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    inventory = local_inventory(pytester, "good", "bad")
    dead = HostFacts("bad", "linux", connect_error="ssh failed: Connection timed out")
    run_suite(
        pytester,
        monkeypatch,
        {"good": local_facts(LinuxHost(agent=False)), "bad": dead},
        [f"--ansible-inventory={inventory}", "--hosts=ansible://all", "-k", "HRW-L0"],
    )
    # checks.html (pytest-html): the matrix and failures on top, then every check.
    page = (latest(pytester) / "checks.html").read_text()
    matrix, failures, details = (
        page.index('class="hrw-matrix"'),
        page.index("<h3>Failures"),
        page.index('id="results-table"'),
    )
    assert matrix < failures < details
    body = page[page.index("<tbody>", matrix) : page.index("</tbody>", matrix)]
    cells = dict(re.findall(r'<tr><th class="h">(\w+)</th>(.*?)</tr>', body))
    assert sorted(cells) == ["bad", "good"]
    assert 'class="error"' in cells["bad"] and 'class="failed"' in cells["good"]
    assert "service_control restart" in page[failures:details]  # HRW-L02's fix
    assert "Connection timed out" in page[failures:details]
    # report.html (the fleet page): matrix, then the unreachable host once, then failures.
    page = (latest(pytester) / "report.html").read_text()
    matrix, down, failures = (
        page.index('id="matrix"'),
        page.index("Hosts that could not be checked (1)"),
        page.index('data-s="HRW-L02"><h3>'),
    )
    assert matrix < down < failures
    assert page.count("Connection timed out") == 1
    assert "service_control restart" in page[failures:]
    assert 'id="results-table"' not in page


def test_xdist_controller_writes_the_sealed_bundle_after_html_and_junit(
    pytester: pytest.Pytester,
) -> None:
    for path in SUITE.glob("test_*.py"):
        pytester.makepyfile(**{path.stem: path.read_text()})
    facts = pytester.path / "facts.pickle"
    facts.write_bytes(pickle.dumps({"local": local_facts(LinuxHost(agent=False))}))
    pytester.makeconftest(f"""
import pickle
import hrw_preflight.facts.collector

FACTS = pickle.loads(open({str(facts)!r}, "rb").read())
hrw_preflight.facts.collector.probe_host = lambda target, host, params: FACTS[target.name]
""")
    result = pytester.runpytest_subprocess(
        *PLUGINS,
        "-p",
        "no:cacheprovider",
        "-n",
        "2",
        "--hosts=local://",
        "-k",
        LINUX_CHECKS,
        "--hrw-reports",
        str(pytester.path / "reports"),
    )
    result.assert_outcomes(passed=1, failed=4)
    folder = latest(pytester)
    assert verify_bundle(folder).ok
    record = load_evidence(folder)
    assert record["files"] == ["report.html", "checks.html", "junit.xml"]
    assert len(record["checks"]) == 5 and all(c["evidence"] for c in record["checks"])
    assert record["hosts"]["local"]["worker"]["user_worker"] is True
    assert "hrw-matrix" in (folder / "checks.html").read_text()
    assert 'id="matrix"' in (folder / "report.html").read_text()
    assert 'classname="local"' in (folder / "junit.xml").read_text()


def test_schema_is_valid_json_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(load_schema())


def test_matrix_stays_compact_for_200_hosts() -> None:
    scenarios = load_catalogue().scenarios
    hosts = [f"host-{i:03d}" for i in range(200)]
    checks = [
        CheckResult(
            f"t[{h}:{s.id}:{item}]",
            h,
            s.id,
            item,
            s.severity,
            "failed" if i % 7 == 0 else "passed",
            "",
        )
        for i, h in enumerate(hosts)
        for s in scenarios
        for item in s.items
    ]
    kinds = {h: "extension-based on Azure VM" for h in hosts}
    page = render_matrix(checks, hosts, scenarios, Redactor(), kinds)
    assert page.count('<tr><th class="h">host-') == 200
    assert page.count("<td ") == 200 * (len(scenarios) + 2)  # + the kind and the total
    assert page.count('<td class="kind">extension-based on Azure VM</td>') == 200
    assert len(page) / (200 * len(scenarios)) < 120  # bytes per cell
    assert "<script" not in page


def test_a_large_record_is_written_piece_by_piece_as_the_same_masked_json(
    tmp_path: Path,
) -> None:
    secret = "S3cret-Passw0rd"
    checks = [{"nodeid": f"t[{i}]", "evidence": "ok"} for i in range(COMPACT_ABOVE + 1)]
    checks[7]["evidence"] = f"password {secret} in a probe's output"
    record = {"run_id": "r", "note": f"{secret} in the head", "checks": checks}
    pieces = list(record_chunks(record, Redactor([secret])))
    assert len(pieces) == len(checks) + 2  # the head, one per check, the closing brackets
    written = json.loads("".join(pieces))
    assert secret not in "".join(pieces)
    assert written["note"] == "*** in the head"
    assert written["checks"][7]["evidence"] == "password *** in a probe's output"
    assert written["checks"][-1] == checks[-1] and len(written["checks"]) == len(checks)
    small = {"run_id": "r", "checks": checks[:3]}
    assert list(record_chunks(small, Redactor())) == [dump_record(small, Redactor())]
