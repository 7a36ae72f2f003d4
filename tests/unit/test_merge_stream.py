"""The streaming merge: shards read one at a time, spilled sorted, then k-way merged, make the
bundle the in-memory merge made, check by check and byte by byte.

Synthetic shard bundles (``bench/synth.py``: the lab's profiles repeated, shaped as real
shards) keep these fast; ``test_merge.py`` merges shards the real plugin wrote.
"""

from __future__ import annotations

import json
import random
import re
import shutil
import xml.etree.ElementTree as ET
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

import pytest

from bench.synth import make_fleet
from hrw_preflight.__main__ import main as cli
from hrw_preflight.hosts.redact import Redactor
from hrw_preflight.report import atomic, evidence
from hrw_preflight.report import merge as merge_module
from hrw_preflight.report.evidence import EVIDENCE, SUMS, record_chunks
from hrw_preflight.report.merge import REFUSED, main, merge
from hrw_preflight.report.merge_junit import CheckKey, _parsed, set_outcome, shard_cases
from hrw_preflight.report.merge_spill import escape_key, unescape_key
from hrw_preflight.report.merge_tally import _judged, judge
from hrw_preflight.report.verify import verify_bundle
from hrw_preflight.report.waivers import Waivers, load_waivers
from hrw_preflight.verdicts.catalogue import load_catalogue

HOSTS = 60  # every lab profile at least once, in 3 shards
WAIVERS = """
- scenario: HRW-R01
  hosts: "linux-*"
  justification: retirement planned for next quarter
  owner: ops@example.com
  expires: 2999-12-31
- scenario: HRW-G01
  hosts: "windows-*"
  justification: firewall change was due last year
  owner: net@example.com
  expires: 2000-01-01
"""
_TIMESTAMP = re.compile(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Return three synthetic shard bundles of HOSTS hosts, made once for the module."""
    return make_fleet(tmp_path_factory.mktemp("fleet"), HOSTS, 3)


@pytest.fixture
def shards(pristine: list[Path], tmp_path: Path) -> list[Path]:
    """Return copies of the pristine shards that a test may edit."""
    return [shutil.copytree(f, tmp_path / "in" / f.name) for f in pristine]


def _waivers(tmp_path: Path) -> tuple[Path, Waivers]:
    path = tmp_path / "waivers.yml"
    path.write_text(WAIVERS)
    return path, load_waivers(str(path), {s.id for s in load_catalogue().scenarios})


def _in_memory(folders: list[Path], waivers: Waivers | None) -> tuple[list[dict[str, Any]], bytes]:
    """Return the checks and the JUnit cases the in-memory merge made of ``folders``: every
    shard's checks judged again and sorted by node id; every case, rewritten where the
    waivers changed its outcome, serialized by ElementTree, sorted by (classname, name)."""
    records = sorted(
        (json.loads((f / EVIDENCE).read_text()) for f in folders),
        key=lambda r: r["shard"]["index"],
    )
    checks = sorted(
        (_judged(c, waivers) for r in records for c in r["checks"]), key=lambda c: c.nodeid
    )
    by_key = {(c.host, c.scenario_id, c.item): c.as_dict() for c in checks}
    cases = []
    for folder in sorted(folders, key=lambda f: int(f.name.rsplit("-", 1)[1])):
        for case in ET.parse(folder / "junit.xml").getroot().iter("testcase"):
            props = {
                str(p.get("name")): str(p.get("value"))
                for p in case.iter("property")
                if p.get("name") is not None
            }
            check = by_key.get((props.get("host"), props.get("scenario_id"), props.get("item")))
            if check is not None and props.get("outcome") != check["outcome"]:
                set_outcome(case, check, waivers)
            case.tail = "\n"
            key = (case.get("classname", ""), case.get("name", ""))
            cases.append((key, ET.tostring(case, encoding="utf-8")))
    cases.sort(key=lambda c: c[0])
    return [c.as_dict() for c in checks], b"".join(xml for _, xml in cases)


def _cases(junit: bytes) -> bytes:
    """Return the test cases of a merged junit.xml: what lies between the suite's tags."""
    start = junit.index(b">\n", junit.index(b"<testsuite ")) + 2
    assert junit.endswith(b"</testsuite></testsuites>\n")
    return junit[start : -len(b"</testsuite></testsuites>\n")]


def _reseal(folder: Path) -> None:
    """Rewrite a shard's SHA256SUMS over its files after an edit, as a forger would."""
    names = ["report.html", "junit.xml", EVIDENCE]
    (folder / SUMS).write_text(atomic.sha256sums(folder, names))


def _without_times(folder: Path) -> dict[str, bytes]:
    """Return the bundle's files with their timestamps blanked (SHA256SUMS, which hashes
    them, left out)."""
    return {
        p.name: _TIMESTAMP.sub(b"T", p.read_bytes())
        for p in sorted(folder.iterdir())
        if p.name != SUMS
    }


@pytest.mark.parametrize("compact", [False, True], ids=["indented", "compact"])
def test_the_streamed_bundle_is_the_in_memory_merge(
    shards: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, compact: bool
) -> None:
    if compact:  # the layout of a record of more than COMPACT_ABOVE checks, one by one
        monkeypatch.setattr(evidence, "COMPACT_ABOVE", 10)
    path, waivers = _waivers(tmp_path)
    random.Random(7).shuffle(shards)  # the order given does not matter
    result = merge(tmp_path / "fleet", shards, waivers_file=str(path))
    checks, cases = _in_memory(shards, waivers)
    text = (tmp_path / "fleet" / EVIDENCE).read_text()
    record = json.loads(text)
    assert record["checks"] == checks
    assert {c["outcome"] for c in checks} == {"passed", "failed", "skipped", "waived"}
    assert any(c["expired_waiver"] for c in checks)
    assert _cases((tmp_path / "fleet" / "junit.xml").read_bytes()) == cases
    assert b'<property name="outcome" value="waived" />' in cases
    # Written as the in-memory merge wrote the whole record, indented or compact.
    assert text == "".join(record_chunks(record, Redactor()))
    assert (text.count("\n") == 1) is compact
    summary = {o: sum(c["outcome"] == o for c in checks) for o in evidence.OUTCOMES}
    assert record["summary"] == result.summary == summary
    applied = [(e["applied"], e["blocked"]) for e in record["waivers"]["entries"]]
    assert applied == [
        (sum(c["outcome"] == "waived" for c in checks), 0),
        (0, sum(bool(c["expired_waiver"]) for c in checks)),
    ]
    verdict = verify_bundle(tmp_path / "fleet")
    assert verdict.ok and not verdict.warnings, verdict.problems


def test_checks_and_cases_come_in_order_across_the_shards(
    shards: list[Path], tmp_path: Path
) -> None:
    merge(tmp_path / "fleet", shards)
    record = json.loads((tmp_path / "fleet" / EVIDENCE).read_text())
    nodeids = [c["nodeid"] for c in record["checks"]]
    assert nodeids == sorted(nodeids) and len(set(nodeids)) == len(nodeids)
    owner = {h: s.name for s in shards for h in json.loads((s / EVIDENCE).read_text())["hosts"]}
    switches = sum(
        owner[a["host"]] != owner[b["host"]]
        for a, b in zip(record["checks"], record["checks"][1:], strict=False)
    )
    assert switches > 100  # the shards' checks interleave, not one shard after another
    root = ET.parse(tmp_path / "fleet" / "junit.xml").getroot()
    keys = [(c.get("classname", ""), c.get("name", "")) for c in root.iter("testcase")]
    assert keys == sorted(keys) and len(keys) == len(nodeids)


def test_the_same_shards_make_the_same_bytes_but_for_the_time(
    shards: list[Path], tmp_path: Path
) -> None:
    path, _ = _waivers(tmp_path)
    merge(tmp_path / "a" / "fleet", shards, waivers_file=str(path), jobs=1)
    merge(tmp_path / "b" / "fleet", shards[::-1], waivers_file=str(path), jobs=3)
    assert _without_times(tmp_path / "a" / "fleet") == _without_times(tmp_path / "b" / "fleet")


def test_shards_are_read_in_this_process_when_no_worker_can_start(
    shards: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    merge(tmp_path / "a" / "fleet", shards, jobs=1)

    class NoWorkers(ProcessPoolExecutor):
        def map(self, *args: Any, **kwargs: Any) -> Any:
            raise BrokenProcessPool("no worker")

    monkeypatch.setattr(merge_module, "ProcessPoolExecutor", NoWorkers)
    merge(tmp_path / "b" / "fleet", shards, jobs=2)
    assert _without_times(tmp_path / "a" / "fleet") == _without_times(tmp_path / "b" / "fleet")


@pytest.mark.parametrize("jobs", ["1", "3"])
def test_refusals_come_in_the_order_the_shards_were_given_however_many_are_read_at_once(
    shards: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture[str], jobs: str
) -> None:
    for folder in shards[1:]:
        (folder / "report.html").write_text("edited")
    code = cli(["merge", str(tmp_path / "fleet"), *map(str, shards[::-1]), "--jobs", jobs])
    assert code == REFUSED
    assert capsys.readouterr().err.splitlines() == [
        f"REFUSED {folder}: not a sound bundle: report.html: changed since the run (sha256 "
        "does not match SHA256SUMS)"
        for folder in shards[:0:-1]
    ]
    with pytest.raises(SystemExit):
        cli(["merge", str(tmp_path / "fleet"), *map(str, shards), "--jobs", "0"])
    assert "--jobs: '0' is not a whole number of 1 or more" in capsys.readouterr().err


def test_a_shard_whose_checks_and_cases_are_out_of_order_merges_the_same(
    shards: list[Path], tmp_path: Path
) -> None:
    merge(tmp_path / "a" / "fleet", shards)
    folder = shards[1]
    record = json.loads((folder / EVIDENCE).read_text())
    record["checks"].reverse()
    (folder / EVIDENCE).write_text(json.dumps(record, indent=2))
    tree = ET.parse(folder / "junit.xml")
    suite = tree.getroot()[0]
    cases = list(suite)
    random.Random(3).shuffle(cases)
    suite[:] = cases
    tree.write(folder / "junit.xml", encoding="utf-8", xml_declaration=True)
    _reseal(folder)
    assert verify_bundle(folder).ok
    merge(tmp_path / "b" / "fleet", shards)
    before, after = (
        _without_times(tmp_path / "a" / "fleet"),
        _without_times(tmp_path / "b" / "fleet"),
    )
    assert before.pop("junit.xml") == after.pop("junit.xml")
    assert before.pop("report.html") == after.pop("report.html")
    records = [json.loads(before[EVIDENCE]), json.loads(after[EVIDENCE])]
    files = [[s["files"] for s in r.pop("merged")["shards"]] for r in records]
    assert records[0] == records[1] and files[0][1] != files[1][1]  # the shard was resealed


def test_node_ids_with_tabs_newlines_and_backslashes_survive_the_spill(
    shards: list[Path], tmp_path: Path
) -> None:
    odd = ["t[a\tb]", "t[a\nb]", "t[a\\tb]", "t[a\\\\nb]", "t[é\\]", "t[a b]"]
    assert all(unescape_key(escape_key(n)) == n for n in odd)
    folder = shards[0]
    record = json.loads((folder / EVIDENCE).read_text())
    for check, nodeid in zip(record["checks"], odd, strict=False):
        check["nodeid"] = nodeid
    (folder / EVIDENCE).write_text(json.dumps(record))
    _reseal(folder)
    merge(tmp_path / "fleet", shards)
    nodeids = [
        c["nodeid"] for c in json.loads((tmp_path / "fleet" / EVIDENCE).read_text())["checks"]
    ]
    assert nodeids[: len(odd)] == sorted(odd) and nodeids == sorted(nodeids)


def test_a_case_is_copied_as_elementtree_would_write_it(shards: list[Path], tmp_path: Path) -> None:
    source = shards[0] / "junit.xml"
    copied = shard_cases(source, {}, None).cases
    # A comment makes copying unsafe (it could hide a "<testcase"): ElementTree serializes.
    odd = tmp_path / "junit.xml"
    odd.write_bytes(source.read_bytes().replace(b"<testsuites>", b"<testsuites><!-- x -->", 1))
    serialized = shard_cases(odd, {}, None).cases
    assert copied == serialized and len(copied) > 100


def _odd_junit(path: Path, *, nested: bool) -> None:
    """Write a JUnit file as ElementTree writes one, with cases that test the copying:
    empty elements, text and attributes that need escaping, one case waived in the file."""
    suite = ET.Element("testsuite", {"name": "pytest"})
    for n, (outcome, text) in enumerate(
        [("passed", None), ("failed", 'a <b> & "c"\n\tend'), ("waived", "")]
    ):
        case = ET.SubElement(
            suite, "testcase", {"classname": f"h{n}", "name": f't[h{n}:"x">\n]', "time": "0.5"}
        )
        props = ET.SubElement(case, "properties")
        for name, value in (("scenario_id", "HRW-L02"), ("host", f"h{n}"), ("outcome", outcome)):
            ET.SubElement(props, "property", {"name": name, "value": value})
        ET.SubElement(props, "property", {"name": "item"})  # no value: "None" to the merge
        if text is not None:
            ET.SubElement(case, "failure" if text else "skipped", {"message": "m"}).text = text
        if nested and n == 1:
            ET.SubElement(case, "testcase", {"classname": "inner", "name": "i"})
    ET.SubElement(suite, "testcase", {"classname": "empty", "name": "e"})
    root = ET.Element("testsuites")
    root.append(suite)
    ET.indent(root, space="")
    path.write_bytes(ET.tostring(root, encoding="utf-8", xml_declaration=True))


@pytest.mark.parametrize("nested", [False, True], ids=["flat", "nested"])
def test_copied_cases_are_what_elementtree_reads_and_writes(tmp_path: Path, nested: bool) -> None:
    path = tmp_path / "junit.xml"
    _odd_junit(path, nested=nested)
    _, waivers = _waivers(tmp_path)
    failed = {"outcome": "failed", "reason": "r", "waiver": None, "scenario_id": "HRW-L02"}
    checks: dict[CheckKey, Any] = {("h2", "HRW-L02", "None"): {**failed, "host": "h2"}}
    # Waived in the file, failed as the merge judges it: rewritten.
    fast, slow = shard_cases(path, checks, waivers), _parsed(path.read_bytes(), checks, waivers)
    assert fast == slow and len(fast.cases) == 4 + nested
    assert fast.counts == Counter(properties=3, failure=2, testcase=int(nested))
    cases = dict(fast.cases)
    assert b'<failure message="r">r</failure>' in cases[("h2", 't[h2:"x">\n]')]  # rewritten
    one = cases[("h1", 't[h1:"x">\n]')]
    assert b'<failure message="m">a &lt;b&gt; &amp; "c"\n\tend</failure>' in one
    assert (b'<testcase classname="inner" name="i" />' in one) is nested


def test_a_shard_whose_junit_disagrees_with_its_record_is_refused_as_verify_says(
    shards: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = shards[2]
    text = (folder / "junit.xml").read_text()
    (folder / "junit.xml").write_text(
        text.replace('name="outcome" value="passed"', 'name="outcome" value="failed"', 1)
    )
    _reseal(folder)
    problems = verify_bundle(folder).problems
    assert len(problems) == 1 and "is failed there but passed in evidence.json" in problems[0]
    out = tmp_path / "fleet"
    assert main(str(out), [str(s) for s in shards], fail_on=None, waivers_file=None, argv=[]) == (
        REFUSED
    )
    assert capsys.readouterr().err.splitlines() == [
        f"REFUSED {folder}: not a sound bundle: {problems[0]}"
    ]
    (folder / "junit.xml").write_text("<testsuites><testcase")
    _reseal(folder)
    assert main(str(out), [str(s) for s in shards], fail_on=None, waivers_file=None, argv=[]) == (
        REFUSED
    )
    assert capsys.readouterr().err.splitlines() == [
        f"REFUSED {folder}: not a sound bundle: junit.xml: not readable XML (ParseError)"
    ]
    assert not out.exists()


def test_an_unchanged_check_is_kept_as_it_was_read() -> None:
    check: dict[str, Any] = {
        "nodeid": "t[x]",
        "scenario_id": "HRW-L02",
        "item": "omsagent",
        "host": "x",
        "severity": "critical",
        "outcome": "failed",
        "reason": "seen: stopped",
        "waiver": None,
        "expired_waiver": None,
        "evidence": "ps",
        "evidence_truncated": False,
        "taken_at": {},
        "duration_s": 0.25,
    }
    assert judge(check, None) is check
    for changed in ({"duration_s": 0}, {"duration_s": 0.1234}, {"duration_s": -0.0}):
        data = {**check, **changed}
        written = json.dumps(judge(data, None))
        assert written == json.dumps(_judged(data, None).as_dict()) != json.dumps(data)
    reordered = dict(reversed(check.items()))
    assert list(judge(reordered, None)) == list(check)
