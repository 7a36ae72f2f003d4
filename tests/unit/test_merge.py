"""``python -m hrw_preflight merge``: N shard bundles make one bundle equal to a single run's.

Shard bundles are made by the real plugin through pytester (recorded facts, no host
contacted), one run per ``--hrw-shard K/N``; the single run over every host is the reference
the merged outcomes, exit code and gate are compared with, check by check. Every refusal is
shown with the one line it prints.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from hrw_preflight.__main__ import main
from hrw_preflight.facts.model import HostFacts
from hrw_preflight.report import atomic
from hrw_preflight.report.evidence import EVIDENCE, SUMS, schema_errors
from hrw_preflight.report.verify import verify_bundle
from tests.junit_read import cases, properties
from tests.linux_samples import LinuxHost
from tests.suite_runner import (
    LINUX_CHECKS,
    latest,
    load_evidence,
    local_facts,
    local_inventory,
    run_suite,
)

pytest_plugins = ["pytester"]

HOSTS = ("a", "b", "c", "d", "e", "f")  # shards of 3: 1 = f; 2 = a, b; 3 = c, d, e
# Named, not a prefix: a new HRW-L0x scenario must not change the counts below.
CHECKS = f"{LINUX_CHECKS} or HRW-G02"
REFUSED = int(pytest.ExitCode.USAGE_ERROR)
WAIVERS = """
- scenario: HRW-L02
  hosts: "a"
  justification: agent rebuilt next sprint
  owner: ops@example.com
  expires: 2999-12-31
- scenario: HRW-L02
  hosts: "d"
  justification: was accepted last year
  owner: ops@example.com
  expires: 2000-01-01
"""


def _facts() -> dict[str, HostFacts]:
    facts = {n: local_facts(LinuxHost(agent=n not in ("a", "d"))) for n in HOSTS}
    facts["b"] = HostFacts("b", "linux", connect_error="ssh failed: Connection timed out")
    facts["e"] = local_facts(LinuxHost(load=8.0))  # fails HRW-G03 (medium) only
    return facts


def _run(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    hosts: tuple[str, ...] = HOSTS,
    checks: str = CHECKS,
) -> tuple[Path, int]:
    inventory = local_inventory(pytester, *hosts)
    facts = {**_facts(), "g": local_facts(LinuxHost())}
    result = run_suite(
        pytester,
        monkeypatch,
        facts,
        [f"--ansible-inventory={inventory}", "--hosts=ansible://all", "-k", checks, *args],
    )
    return latest(pytester), int(result.ret)


def _shards(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    *args: str,
    total: int = 3,
    checks: str = CHECKS,
) -> list[Path]:
    return [
        _run(pytester, monkeypatch, [f"--hrw-shard={k}/{total}", *args], checks=checks)[0]
        for k in range(1, total + 1)
    ]


def _merge(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, list[str]]:
    capsys.readouterr()  # drop what the suite runs before printed
    code = main(["merge", *(str(a) for a in argv)])
    captured = capsys.readouterr()
    return code, [ln for ln in (captured.out + captured.err).splitlines() if ln]


def _outcomes(folder: Path) -> dict[tuple[str, str, str], str]:
    return {
        (c["host"], c["scenario_id"], c["item"]): c["outcome"]
        for c in load_evidence(folder)["checks"]
    }


def _junit(folder: Path) -> dict[tuple[str, str, str], tuple[str, str]]:
    """Return each JUnit case's outcome property and result element, by check."""
    found = {}
    for case in cases(str(folder / "junit.xml")):
        props = properties(case)
        kinds = sorted(type(r).__name__ for r in case.result) or ["passed"]
        found[(props["host"], props["scenario_id"], props["item"])] = (
            props["outcome"],
            "+".join(kinds),
        )
    return found


def _reseal(folder: Path, change: Any) -> None:
    """Edit a shard's evidence.json with ``change`` and rewrite its SHA256SUMS, so the
    bundle still verifies: what a forged or buggy shard would look like."""
    record = load_evidence(folder)
    change(record)
    (folder / EVIDENCE).write_text(json.dumps(record))
    names = ["report.html", "checks.html", "junit.xml", EVIDENCE]
    (folder / SUMS).write_text(atomic.sha256sums(folder, names))
    assert verify_bundle(folder).ok


def test_merged_bundle_is_the_single_run_check_by_check(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    single, single_exit = _run(pytester, monkeypatch, [])
    shards = _shards(pytester, monkeypatch)
    out = pytester.path / "fleet"
    code, lines = _merge(capsys, out, *shards)
    assert code == single_exit == 1
    counts = ", ".join(f"{n} {k}" for k, n in load_evidence(single)["summary"].items() if n)
    assert lines == [
        f"merged 3 shards into {out}/ ({counts}); "
        "SHA256SUMS covers report.html, junit.xml, evidence.json"
    ]
    verdict = verify_bundle(out)
    assert verdict.ok and verdict.warnings == [], verdict.problems
    assert sorted(p.name for p in out.iterdir()) == [SUMS, EVIDENCE, "junit.xml", "report.html"]
    merged, alone = load_evidence(out), load_evidence(single)
    assert schema_errors(merged) == []
    assert _outcomes(out) == _outcomes(single) and len(_outcomes(out)) == 6 * 7
    assert _junit(out) == _junit(single)
    assert merged["summary"] == alone["summary"] and merged["gate"] == alone["gate"]
    assert sorted(merged["hosts"]) == sorted(alone["hosts"]) == sorted(HOSTS)
    assert merged["hosts"]["b"]["connect_error"] == "ssh failed: Connection timed out"
    assert merged["inventory"]["host_list_sha256"] == alone["inventory"]["host_list_sha256"]
    assert merged["run_id"] == "fleet" and merged["status"] == "complete"
    assert merged["shard"] is None and merged["options"] == alone["options"]
    assert merged["command_line"][:4] == ["python", "-m", "hrw_preflight", "merge"]
    record = merged["merged"]
    assert record["shard_total"] == 3
    assert [s["index"] for s in record["shards"]] == [1, 2, 3]
    for entry, folder in zip(record["shards"], shards, strict=True):
        assert entry["run_id"] == folder.name and entry["folder"] == str(folder)
        assert entry["sha256sums"] == atomic.sha256_file(folder / SUMS)
        assert entry["files"] == {
            n: atomic.sha256_file(folder / n)
            for n in ("report.html", "checks.html", "junit.xml", EVIDENCE)
        }
    assert [s["hosts"] for s in record["shards"]] == [1, 2, 3]
    page = (out / "report.html").read_text()
    assert "<title>hrw-preflight run fleet</title>" in page
    assert "<h1>hrw-preflight run fleet (merged from 3 shards)</h1>" in page
    counts = f"{merged['summary']['failed']} failed, {merged['summary']['error']} error"
    assert 'id="matrix"' in page and f"<h2>Failures and errors ({counts})</h2>" in page
    assert "service_control restart" in page  # HRW-L02's fix
    # One matrix row per distinct outcome pattern, naming all 6 hosts once between them.
    worst = ("failed", "error", "waived", "passed", "skipped")
    per_host: dict[str, dict[str, str]] = {}
    for c in merged["checks"]:
        cell = per_host.setdefault(c["host"], {})
        now = cell.get(c["scenario_id"], "skipped")
        cell[c["scenario_id"]] = min(now, c["outcome"], key=worst.index)
    patterns = {tuple(sorted(cells.items())) for cells in per_host.values()}
    rows = [int(n) for n in re.findall(r'<tr data-n="(\d+)"', page)]
    assert sum(rows) == 6 and len(rows) == len(patterns) < 6


@pytest.mark.parametrize(
    ("checks", "fail_on", "exit"),
    [("HRW-G03", "high", 0), ("HRW-G03", "medium", 1), (CHECKS, "critical", 1)],
)
def test_fail_on_decides_the_merged_exit_as_in_a_single_run(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    checks: str,
    fail_on: str,
    exit: int,
) -> None:
    single, single_exit = _run(pytester, monkeypatch, [f"--hrw-fail-on={fail_on}"], checks=checks)
    shards = _shards(pytester, monkeypatch, checks=checks)
    out = pytester.path / "fleet"
    code, lines = _merge(capsys, out, *shards, "--hrw-fail-on", fail_on)
    assert code == single_exit == exit
    gate = load_evidence(out)["gate"]
    assert gate == load_evidence(single)["gate"]
    assert lines[-1] == (
        f"gate --hrw-fail-on {fail_on}: {gate['counted']} failure(s) counted, "
        f"{gate['ignored']} below {fail_on} ignored; exit {exit}"
    )
    assert load_evidence(out)["options"]["fail_on"] == fail_on
    assert (
        "Exit code counts only failures and errors of severity" in (out / "report.html").read_text()
    )


def test_the_merge_applies_its_waivers_as_a_single_run_does(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    waivers = pytester.path / "waivers.yml"
    waivers.write_text(WAIVERS)
    single, single_exit = _run(pytester, monkeypatch, [f"--hrw-waivers={waivers}"])
    shards = _shards(pytester, monkeypatch)  # the shards ran without waivers
    out = pytester.path / "fleet"
    code, _ = _merge(capsys, out, *shards, "--hrw-waivers", waivers)
    assert code == single_exit
    assert _outcomes(out) == _outcomes(single)
    assert _outcomes(out)[("a", "HRW-L02", "omsagent")] == "waived"
    assert _outcomes(out)[("d", "HRW-L02", "omsagent")] == "failed"
    assert _junit(out) == _junit(single)
    assert _junit(out)[("a", "HRW-L02", "omsagent")] == ("waived", "Skipped")
    merged = load_evidence(out)
    assert merged["waivers"] == load_evidence(single)["waivers"]
    assert [(e["applied"], e["blocked"]) for e in merged["waivers"]["entries"]] == [(1, 0), (0, 1)]
    checks = {(c["host"], c["scenario_id"]): c for c in merged["checks"] if c["item"] == "omsagent"}
    assert checks[("a", "HRW-L02")]["waiver"]["owner"] == "ops@example.com"
    assert checks[("d", "HRW-L02")]["expired_waiver"]["expires"] == "2000-01-01"
    page = (out / "report.html").read_text()
    assert "<h2>Waived (1)</h2>" in page and "EXPIRED: waiver for HRW-L02 on d" in page
    assert verify_bundle(out).ok


def test_waivers_the_shards_applied_do_not_carry_over_without_the_merges_own(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    waivers = pytester.path / "waivers.yml"
    waivers.write_text(WAIVERS)
    shards = _shards(pytester, monkeypatch, f"--hrw-waivers={waivers}")
    assert _outcomes(shards[1])[("a", "HRW-L02", "omsagent")] == "waived"
    out = pytester.path / "fleet"
    code, _ = _merge(capsys, out, *shards)
    assert code == 1
    assert _outcomes(out)[("a", "HRW-L02", "omsagent")] == "failed"
    outcome, element = _junit(out)[("a", "HRW-L02", "omsagent")]
    assert (outcome, element) == ("failed", "Failure")
    assert load_evidence(out)["waivers"] is None and verify_bundle(out).ok


def _refused(capsys: pytest.CaptureFixture[str], out: Path, *shards: Path | str) -> list[str]:
    code, lines = _merge(capsys, out, *shards)
    assert code == REFUSED
    assert all(line.startswith("REFUSED ") for line in lines)
    assert not out.exists() or not any(out.iterdir())  # nothing written
    return [line.removeprefix("REFUSED ") for line in lines]


_PRISTINE: dict[str, list[Path]] = {}


@pytest.fixture
def shards(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path_factory: pytest.TempPathFactory,
) -> list[Path]:
    """Return fresh copies of the three shard bundles of HOSTS, built once per process (the
    refusal tests edit them)."""
    if not _PRISTINE:
        keep = tmp_path_factory.mktemp("pristine-shards")
        built = _shards(pytester, monkeypatch)
        _PRISTINE["shards"] = [shutil.copytree(f, keep / f.name) for f in built]
    return [
        shutil.copytree(f, pytester.path / f"shard-{i}-{f.name}")
        for i, f in enumerate(_PRISTINE["shards"], start=1)
    ]


def test_refuses_a_missing_shard(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    shards: list[Path],
) -> None:
    one, two, _ = shards
    assert _refused(capsys, pytester.path / "fleet", one, two) == [
        "shard 3/3: missing (given: 1, 2): pass the bundles of all 3 shards"
    ]


def test_refuses_a_shard_given_twice_or_copied(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    shards: list[Path],
) -> None:
    one, two, three = shards
    assert _refused(capsys, pytester.path / "fleet", one, two, three, two) == [
        f"{two} (shard 2/3): given twice: pass each shard's bundle once"
    ]
    copy = pytester.path / "copy-of-1"
    shutil.copytree(one, copy)
    assert _refused(capsys, pytester.path / "fleet", one, two, three, copy) == [
        f"{copy} (shard 1/3): shard 1/3 is also {one}: pass each shard's bundle once"
    ]


def test_refuses_a_host_in_two_shards(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    shards: list[Path],
) -> None:
    one, two, three = shards
    _reseal(two, lambda r: r["hosts"].update(f=load_evidence(one)["hosts"]["f"]))
    assert _refused(capsys, pytester.path / "fleet", one, two, three) == [
        f"host f: in {one} (shard 1/3) and in {two} (shard 2/3): a host belongs to one shard"
    ]


def test_refuses_a_host_in_the_wrong_shard_and_hosts_lost(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    shards: list[Path],
) -> None:
    one, two, three = shards
    _reseal(two, lambda r: r["hosts"].update(f=r["hosts"].pop("a")))
    assert _refused(capsys, pytester.path / "fleet", one, two, three) == [
        f"host f: in {one} (shard 1/3) and in {two} (shard 2/3): a host belongs to one shard"
    ]
    _reseal(one, lambda r: r["hosts"].clear())
    assert _refused(capsys, pytester.path / "fleet", one, two, three) == [
        f"{two} (shard 2/3): host f belongs to shard 1/3: the shard was split differently "
        "(another hrw-preflight version?)"
    ]
    _reseal(two, lambda r: r["hosts"].pop("f"))
    [line] = _refused(capsys, pytester.path / "fleet", one, two, three)
    assert line.startswith("the 4 hosts of the shards do not make up their inventory's host list")


def test_refuses_shards_of_another_catalogue_or_tool(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    shards: list[Path],
) -> None:
    one, two, three = shards
    sha = load_evidence(one)["catalogue"]["sha256"]
    version = load_evidence(one)["catalogue"]["version"]  # the catalogue's own, not pinned
    other = version + 1
    _reseal(three, lambda r: r["catalogue"].update(version=other, sha256="0" * 64))
    assert _refused(capsys, pytester.path / "fleet", one, two, three) == [
        f"{three} (shard 3/3): catalogue v{other} sha256:000000000000 differs from {one} "
        f"(shard 1/3)'s v{version} sha256:{sha[:12]}: run every shard from the same catalogue"
    ]
    lines = _refused(capsys, pytester.path / "fleet", three, one, two)
    assert lines[0].startswith(
        f"{three} (shard 3/3): catalogue v{other} sha256:000000000000 is not"
    )
    assert [ln.split(":")[0] for ln in lines[1:]] == [f"{one} (shard 1/3)", f"{two} (shard 2/3)"]
    _reseal(three, lambda r: r["catalogue"].update(version=version, sha256=sha))
    _reseal(three, lambda r: r["tool"].update(version="9.9"))
    assert _refused(capsys, pytester.path / "fleet", one, two, three) == [
        f"{three} (shard 3/3): tool (version) differs from {one} (shard 1/3)'s: run every "
        "shard from the same hrw-preflight commit"
    ]


def test_refuses_shards_run_with_options_that_change_verdicts(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    shards: list[Path],
) -> None:
    one, _, three = shards
    waivers = pytester.path / "waivers.yml"
    waivers.write_text(WAIVERS)
    two, _ = _run(
        pytester,
        monkeypatch,
        [
            "--hrw-shard=2/3",
            "--hrw-lookback-hours=12",
            "--hrw-min-cpus=4",
            f"--hrw-waivers={waivers}",
        ],
    )
    assert _refused(capsys, pytester.path / "fleet", one, two, three) == [
        f"{two} (shard 2/3): options that change verdicts differ from {one} (shard 1/3): "
        "lookback_hours 12.0 (not 24.0); min_cpus 4 (not 2); waivers (another waiver file's "
        "entries): run every shard with the same options"
    ]
    # The gate and the reports folder change no verdict: such shards merge.
    two, _ = _run(pytester, monkeypatch, ["--hrw-shard=2/3", "--hrw-fail-on=low"])
    code, _ = _merge(capsys, pytester.path / "fleet", one, two, three)
    assert code == 1


def test_refuses_shards_of_different_inventories(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    shards: list[Path],
) -> None:
    one, two, _ = shards
    three, _ = _run(pytester, monkeypatch, ["--hrw-shard=3/3"], hosts=(*HOSTS, "g"))
    [line] = _refused(capsys, pytester.path / "fleet", one, two, three)
    assert line.startswith(f"{three} (shard 3/3): host list sha256:")
    assert line.endswith("the shards come from different inventories or host patterns")


def test_refuses_a_different_split_an_unsharded_run_and_a_changed_bundle(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    shards: list[Path],
) -> None:
    one, two, three = shards
    half, _ = _run(pytester, monkeypatch, ["--hrw-shard=1/2"])
    assert _refused(capsys, pytester.path / "fleet", one, two, three, half) == [
        f"{half} (shard 1/2): split into 2 shards, but {one} (shard 1/3) into 3: every shard "
        "must come from one split (same N)"
    ]
    whole, _ = _run(pytester, monkeypatch, [])
    assert _refused(capsys, pytester.path / "fleet", one, two, whole) == [
        f"{whole}: not a shard's bundle (its evidence.json names no shard): merge the bundles "
        "of runs made with --hrw-shard K/N (or the CI's shard variables)"
    ]
    (two / "report.html").write_text("edited")
    assert _refused(capsys, pytester.path / "fleet", one, two, three) == [
        f"{two}: not a sound bundle: report.html: changed since the run (sha256 does not "
        "match SHA256SUMS)"
    ]
    assert _refused(capsys, pytester.path / "fleet", one, pytester.path / "nowhere") == [
        f"{pytester.path / 'nowhere'}: not a sound bundle: {pytester.path / 'nowhere'}: not a "
        "folder: pass a run folder reports/<run-id>"
    ]


def test_refuses_bad_output_folders_and_bad_options(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    shards: list[Path],
) -> None:
    taken = pytester.path / "taken"
    taken.mkdir()
    (taken / "keep.txt").write_text("x")
    code, lines = _merge(capsys, taken, *shards)
    assert code == REFUSED
    assert lines == [f"REFUSED {taken}: exists and is not an empty folder: merge into a new one"]
    code, lines = _merge(capsys, shards[0], *shards)
    assert (code, lines) == (
        REFUSED,
        [f"REFUSED {shards[0]}: is one of the shards: merge into a new folder"],
    )
    code, lines = _merge(capsys, pytester.path / "fleet", *shards, "--hrw-fail-on", "severe")
    assert code == REFUSED and len(lines) == 1 and "use one of low, medium" in lines[0]
    bad = pytester.path / "bad.yml"
    bad.write_text(
        "- scenario: HRW-X99\n  hosts: a\n  justification: j\n  owner: o\n  expires: 2999-01-01\n"
    )
    code, lines = _merge(capsys, pytester.path / "fleet", *shards, "--hrw-waivers", bad)
    assert code == REFUSED and len(lines) == 1 and "unknown scenario 'HRW-X99'" in lines[0]
    assert not (pytester.path / "fleet").exists()
