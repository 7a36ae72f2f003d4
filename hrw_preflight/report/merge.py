"""``python -m hrw_preflight merge OUT SHARD...``: one fleet bundle from the bundles of N shards.

Each shard bundle (the run folder of one ``--hrw-shard K/N`` job) is verified first. The merge
is refused, one line per reason naming the shard, when a shard is missing or given twice, a
host is in two shards, or the shards differ in what decides a verdict: catalogue, tool,
options (thresholds, timeouts, look-back, trusted CAs, workspace, selection, waivers) or
inventory (the hash of the full host list). Otherwise it writes ``OUT/`` with ``report.html``,
``junit.xml``, ``evidence.json`` (recording the shards and the hashes of their files) and
``SHA256SUMS``, a bundle that ``verify`` accepts, and returns the exit code a single run over
every host would have had: ``--hrw-waivers`` and ``--hrw-fail-on`` are applied to the merged
checks exactly as the plugin applies them to one run's.
"""

from __future__ import annotations

import json
import re
import sys
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import pytest

from hrw_preflight.hosts.errors import ConfigError
from hrw_preflight.hosts.redact import Redactor
from hrw_preflight.hosts.shards import host_list_sha256, shard_of
from hrw_preflight.report.atomic import sha256_file, write_atomic
from hrw_preflight.report.evidence import (
    EVIDENCE,
    SUMS,
    CheckResult,
    RunInfo,
    build_record,
    safe_command_line,
    utc_timestamp,
    write_bundle,
)
from hrw_preflight.report.fleet_page import render_fleet_page
from hrw_preflight.report.gate import GateResult, apply_gate, parse_fail_on
from hrw_preflight.report.verify import verify_bundle
from hrw_preflight.report.waivers import Waivers, load_waivers
from hrw_preflight.verdicts.catalogue import Catalogue, load_catalogue

REFUSED = int(pytest.ExitCode.USAGE_ERROR)  # bad input, as pytest says for a single run
# Options in a shard's record that change what a check concludes; every shard must agree.
VERDICT_OPTIONS = (
    "connect_timeout_s",
    "command_timeout_s",
    "accept_unknown_host_keys",
    "lookback_hours",
    "endpoint_timeout_s",
    "min_cpus",
    "min_memory_gb",
    "max_cpu_load",
    "min_memory_available_pct",
    "trusted_ca_sha256",
    "workspace_id",
    "markexpr",
    "keyword",
)
WAIVER_FIELDS = ("scenario", "hosts", "justification", "owner", "expires")
_CASES = "@@hrw-preflight-cases@@"
SHOWN = 10  # lines of one kind of host problem before "... and N more"
_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_SUMS_LINE = re.compile(r"^([0-9a-fA-F]{64}) [ *](.+)$")


class MergeRefused(Exception):
    """The shards cannot be merged; ``lines`` says why, one line per reason."""

    def __init__(self, lines: Sequence[str]) -> None:
        super().__init__("\n".join(lines))
        self.lines = list(lines)


@dataclass
class ShardBundle:
    """One verified shard bundle: its folder, record and the hashes its SHA256SUMS lists."""

    folder: Path
    record: dict[str, Any]
    sums: dict[str, str]
    sums_sha256: str

    @property
    def index(self) -> int:
        """Return the shard's 1-based index."""
        return int(self.record["shard"]["index"])

    @property
    def total(self) -> int:
        """Return how many shards the run was split into."""
        return int(self.record["shard"]["total"])

    @property
    def name(self) -> str:
        """Return how refusal lines name this shard: its folder and ``(shard K/N)``."""
        return f"{self.folder} (shard {self.index}/{self.total})"

    @property
    def host_list(self) -> str:
        """Return the recorded hash of the full, unsharded host list ("" if none)."""
        return str((self.record.get("inventory") or {}).get("host_list_sha256") or "")


@dataclass
class MergeResult:
    """What a merge wrote and decided: the folder, the gate and the exit code."""

    out: Path
    gate: GateResult
    summary: dict[str, int]
    shards: list[ShardBundle] = field(default_factory=list)

    @property
    def exit(self) -> int:
        """Return the exit code: that of a single run over every host."""
        return self.gate.exit


def _read_sums(folder: Path) -> dict[str, str]:
    """Return file name -> SHA-256 from a verified bundle's SHA256SUMS."""
    listed = {}
    for line in (folder / SUMS).read_text(encoding="utf-8").splitlines():
        match = _SUMS_LINE.match(line)
        if match:
            listed[match.group(2)] = match.group(1).lower()
    return listed


def load_shard(folder: Path) -> ShardBundle:
    """Return the verified shard bundle in ``folder``, or raise MergeRefused naming it."""
    verdict = verify_bundle(folder)
    if not verdict.ok:
        raise MergeRefused([f"{folder}: not a sound bundle: {p}" for p in verdict.problems])
    record = json.loads((folder / EVIDENCE).read_text(encoding="utf-8"))
    shard = record.get("shard")
    if not isinstance(shard, dict) or not record.get("inventory", {}).get("host_list_sha256"):
        raise MergeRefused(
            [
                f"{folder}: not a shard's bundle (its evidence.json names no shard): merge the "
                "bundles of runs made with --hrw-shard K/N (or the CI's shard variables)"
            ]
        )
    return ShardBundle(folder, record, _read_sums(folder), sha256_file(folder / SUMS))


def _waiver_entries(record: dict[str, Any]) -> list[dict[str, Any]]:
    waivers = record.get("waivers") or {}
    entries = waivers.get("entries") or []
    return sorted(
        ({k: e.get(k) for k in WAIVER_FIELDS} for e in entries if isinstance(e, dict)),
        key=lambda e: [str(e[k]) for k in WAIVER_FIELDS],
    )


def _tool(record: dict[str, Any]) -> dict[str, Any]:
    tool = record.get("tool") or {}
    return {k: tool.get(k) for k in ("version", "git_commit", "probe_scripts")}


def _more(lines: list[str], what: str) -> list[str]:
    if len(lines) <= SHOWN:
        return lines
    return [*lines[:SHOWN], f"... and {len(lines) - SHOWN} more {what}"]


def check_shards(shards: Sequence[ShardBundle], catalogue: Catalogue) -> list[str]:
    """Return one line per reason the shards cannot be merged (empty: they can).

    The first shard given is the reference the others are compared with.
    """
    if not shards:
        return ["no shard bundles given: pass the run folder of every shard"]
    ref = shards[0]
    lines: list[str] = []
    seen_folders: dict[Path, ShardBundle] = {}
    by_index: dict[int, ShardBundle] = {}
    for shard in shards:
        where = shard.folder.resolve()
        if where in seen_folders:
            lines.append(f"{shard.name}: given twice: pass each shard's bundle once")
            continue
        seen_folders[where] = shard
        if shard.total != ref.total:
            lines.append(
                f"{shard.name}: split into {shard.total} shards, but {ref.name} into "
                f"{ref.total}: every shard must come from one split (same N)"
            )
            continue
        if shard.index in by_index:
            lines.append(
                f"{shard.name}: shard {shard.index}/{shard.total} is also "
                f"{by_index[shard.index].folder}: pass each shard's bundle once"
            )
            continue
        by_index[shard.index] = shard
        lines.extend(_compare(shard, ref, catalogue if shard is ref else None))
    given = sorted(by_index)
    for index in range(1, ref.total + 1):
        if index not in by_index:
            lines.append(
                f"shard {index}/{ref.total}: missing (given: "
                f"{', '.join(str(i) for i in given) or 'none'}): pass the bundles of all "
                f"{ref.total} shards"
            )
    lines.extend(_host_problems(list(by_index.values())))
    if not lines:
        union = [h for s in by_index.values() for h in s.record.get("hosts", {})]
        if host_list_sha256(union) != ref.host_list:
            lines.append(
                f"the {len(union)} hosts of the shards do not make up their inventory's host "
                f"list (sha256 {ref.host_list[:12]}...): a shard's record lost hosts"
            )
    return lines


def _compare(shard: ShardBundle, ref: ShardBundle, catalogue: Catalogue | None) -> list[str]:
    """Return the reasons ``shard`` cannot be merged with ``ref`` (and, for the reference
    itself, with this tool's catalogue)."""
    lines = []
    rec, base = shard.record, ref.record
    cat, base_cat = rec.get("catalogue") or {}, base.get("catalogue") or {}
    if catalogue is not None and cat.get("sha256") != catalogue.sha256:
        lines.append(
            f"{shard.name}: catalogue v{cat.get('version')} sha256:"
            f"{str(cat.get('sha256'))[:12]} is not this tool's (v{catalogue.version} sha256:"
            f"{catalogue.sha256[:12]}): merge with the hrw-preflight version the shards ran"
        )
    if shard is ref:
        return lines
    if cat != base_cat:
        lines.append(
            f"{shard.name}: catalogue v{cat.get('version')} sha256:{str(cat.get('sha256'))[:12]}"
            f" differs from {ref.name}'s v{base_cat.get('version')} sha256:"
            f"{str(base_cat.get('sha256'))[:12]}: run every shard from the same catalogue"
        )
    if _tool(rec) != _tool(base):
        mine, theirs = _tool(rec), _tool(base)
        what = ", ".join(k for k in mine if mine[k] != theirs[k])
        lines.append(
            f"{shard.name}: tool ({what}) differs from {ref.name}'s: run every shard from the "
            "same hrw-preflight commit"
        )
    options, base_options = rec.get("options") or {}, base.get("options") or {}
    changed = [
        f"{k} {options.get(k)!r} (not {base_options.get(k)!r})"
        for k in VERDICT_OPTIONS
        if options.get(k) != base_options.get(k)
    ]
    if _waiver_entries(rec) != _waiver_entries(base):
        changed.append("waivers (another waiver file's entries)")
    if changed:
        lines.append(
            f"{shard.name}: options that change verdicts differ from {ref.name}: "
            f"{'; '.join(changed)}: run every shard with the same options"
        )
    if shard.host_list != ref.host_list:
        lines.append(
            f"{shard.name}: host list sha256:{shard.host_list[:12]} differs from {ref.name}'s "
            f"sha256:{ref.host_list[:12]}: the shards come from different inventories or "
            "host patterns"
        )
    return lines


def _host_problems(shards: Sequence[ShardBundle]) -> list[str]:
    owner: dict[str, ShardBundle] = {}
    twice, misplaced = [], []
    for shard in shards:
        for host in shard.record.get("hosts", {}):
            if host in owner:
                twice.append(
                    f"host {host}: in {owner[host].name} and in {shard.name}: a host belongs "
                    "to one shard"
                )
                continue
            owner[host] = shard
            if shard_of(host, shard.total) != shard.index:
                misplaced.append(
                    f"{shard.name}: host {host} belongs to shard "
                    f"{shard_of(host, shard.total)}/{shard.total}: the shard was split "
                    "differently (another hrw-preflight version?)"
                )
    return _more(twice, "hosts in two shards") + _more(misplaced, "misplaced hosts")


def _check(data: dict[str, Any], waivers: Waivers | None) -> CheckResult:
    """Return one shard check as the merged run judges it: a waived failure is a failure
    again, then the merge's own waivers decide, as the plugin's do in a single run."""
    outcome = str(data["outcome"])
    check = CheckResult(
        nodeid=str(data["nodeid"]),
        host=data.get("host"),
        scenario_id=data.get("scenario_id"),
        item=data.get("item"),
        severity=data.get("severity"),
        outcome="failed" if outcome == "waived" else outcome,
        reason=str(data.get("reason", "")),
        evidence=str(data.get("evidence", "")),
        evidence_truncated=bool(data.get("evidence_truncated", False)),
        taken_at=dict(data.get("taken_at") or {}),
        duration_s=float(data.get("duration_s") or 0.0),
    )
    if check.outcome != "failed" or waivers is None or not check.host or not check.scenario_id:
        return check
    active = waivers.active_for(check.scenario_id, check.host)
    if active is not None:
        check.outcome = "waived"
        check.waiver = active.as_dict(waivers.today)
    else:
        expired = waivers.expired_for(check.scenario_id, check.host)
        if expired is not None:
            check.expired_waiver = expired.as_dict(waivers.today)
    return check


def merge_checks(shards: Iterable[ShardBundle], waivers: Waivers | None) -> list[CheckResult]:
    """Return every shard's checks, judged again against ``waivers``, sorted by node id."""
    checks = [_check(c, waivers) for s in shards for c in s.record.get("checks", [])]
    return sorted(checks, key=lambda c: c.nodeid)


def _pytest_exit(checks: Sequence[CheckResult]) -> int:
    if not checks:
        return int(pytest.ExitCode.NO_TESTS_COLLECTED)
    if any(c.outcome in ("failed", "error") for c in checks):
        return int(pytest.ExitCode.TESTS_FAILED)
    return int(pytest.ExitCode.OK)


def _properties(case: ET.Element) -> dict[str, str]:
    return {
        str(p.get("name")): str(p.get("value"))
        for p in case.iter("property")
        if p.get("name") is not None
    }


def _set_outcome(case: ET.Element, check: CheckResult, waivers: Waivers | None) -> None:
    """Rewrite one JUnit test case whose outcome the merge's waivers changed."""
    for prop in case.iter("property"):
        if prop.get("name") == "outcome":
            prop.set("value", check.outcome)
    for child in list(case):
        if child.tag in ("failure", "skipped"):
            case.remove(child)
    if check.outcome == "waived" and waivers is not None and check.waiver:
        active = waivers.active_for(check.scenario_id or "", check.host or "")
        text = active.text() if active is not None else "waived"
        ET.SubElement(case, "skipped", {"type": "pytest.xfail", "message": text})
    elif check.outcome == "failed":
        failure = ET.SubElement(case, "failure", {"message": check.reason[:500]})
        failure.text = check.reason


def merge_junit(
    shards: Iterable[ShardBundle], checks: Sequence[CheckResult], waivers: Waivers | None
) -> bytes:
    """Return one JUnit document holding every shard's test cases, in one test suite.

    Cases keep the shard's text; only a case whose outcome the merge's waivers changed
    (waived in the shard and not now, or the reverse) is rewritten, with its property
    ``outcome``.
    """
    by_key = {(c.host, c.scenario_id, c.item): c for c in checks}
    # Each case is kept as its serialized bytes, a shard's tree dropped once read: at
    # 10,000 hosts the trees of every case would be most of the merge's memory.
    cases: list[tuple[tuple[str, str], bytes]] = []
    counts: Counter[str] = Counter()
    seconds = 0.0
    for shard in shards:
        root = ET.parse(shard.folder / "junit.xml").getroot()
        for case in root.iter("testcase"):
            props = _properties(case)
            check = by_key.get((props.get("host"), props.get("scenario_id"), props.get("item")))
            if check is not None and props.get("outcome") != check.outcome:
                _set_outcome(case, check, waivers)
            counts.update(child.tag for child in case)
            seconds += float(case.get("time") or 0)
            case.tail = "\n"
            key = (case.get("classname", ""), case.get("name", ""))
            cases.append((key, ET.tostring(case, encoding="utf-8")))
        del root
    cases.sort(key=lambda c: c[0])
    suite = ET.Element(
        "testsuite",
        {
            "name": "hrw-preflight",
            "errors": str(counts["error"]),
            "failures": str(counts["failure"]),
            "skipped": str(counts["skipped"]),
            "tests": str(len(cases)),
            "time": f"{seconds:.3f}",
            "timestamp": utc_timestamp(),
        },
    )
    suite.text = _CASES  # where the cases go, in node order
    root = ET.Element("testsuites")
    root.append(suite)
    head, tail = ET.tostring(root, encoding="utf-8", xml_declaration=True).split(
        _CASES.encode("ascii")
    )
    return b"".join([head, b"\n", *(case for _, case in cases), tail, b"\n"])


def _notes(record: dict[str, Any], gate: GateResult, waivers: Waivers | None) -> list[str]:
    notes = [f"WEAKENED: {line}" for line in record["weakened"]["run"]]
    by_sentence: dict[str, list[str]] = {}
    for host, sentences in record["weakened"]["hosts"].items():
        for sentence in sentences:
            by_sentence.setdefault(sentence, []).append(host)
    for sentence, hosts in by_sentence.items():
        names = ", ".join(hosts[:8]) + (f" and {len(hosts) - 8} more" if len(hosts) > 8 else "")
        notes.append(f"WEAKENED: {sentence} (on {len(hosts)} host(s): {names})")
    if waivers is not None:
        notes.extend(f"EXPIRED: {w.expired_text()}" for w in waivers.expired())
    if gate.fail_on is not None:
        notes.append(
            f"Exit code counts only failures and errors of severity {gate.fail_on} "
            "and above (--hrw-fail-on); this report shows every outcome."
        )
    return notes


def _waivers_record(waivers: Waivers | None, checks: Sequence[CheckResult]) -> Any:
    if waivers is None:
        return None

    def same(a: dict[str, Any] | None, b: dict[str, Any]) -> bool:
        return bool(a) and all(a.get(k) == b.get(k) for k in WAIVER_FIELDS)  # type: ignore[union-attr]

    entries = []
    for waiver in waivers.entries:
        entry: dict[str, Any] = dict(waiver.as_dict(waivers.today))
        entry["applied"] = sum(1 for c in checks if same(c.waiver, entry))
        entry["blocked"] = sum(1 for c in checks if same(c.expired_waiver, entry))
        entries.append(entry)
    return {"file": str(waivers.source), "entries": entries}


def _out_folder(out: Path) -> None:
    if not _RUN_ID.match(out.name):
        raise MergeRefused(
            [f"{out}: the folder's name is the merged run's id: use letters, digits, . _ -"]
        )
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise MergeRefused([f"{out}: exists and is not an empty folder: merge into a new one"])
    out.mkdir(parents=True, exist_ok=True)


def merge(
    out: str | Path,
    folders: Sequence[str | Path],
    *,
    fail_on: str | None = None,
    waivers_file: str | None = None,
    argv: Sequence[str] = (),
) -> MergeResult:
    """Merge the shard bundles in ``folders`` into the new bundle ``out``; return the result.

    Raises MergeRefused (lines naming each shard and reason) or ConfigError (a bad
    ``fail_on`` or waiver file, one line) before anything is written.
    """
    severity = parse_fail_on(fail_on)
    catalogue = load_catalogue()
    waivers = (
        load_waivers(waivers_file, {s.id for s in catalogue.scenarios}) if waivers_file else None
    )
    shards: list[ShardBundle] = []
    problems: list[str] = []
    for folder in folders:
        try:
            shards.append(load_shard(Path(folder)))
        except MergeRefused as exc:
            problems.extend(exc.lines)
    if problems:
        raise MergeRefused(problems)
    problems = check_shards(shards, catalogue)
    if problems:
        raise MergeRefused(problems)
    target = Path(out)
    if any(target.resolve() == s.folder.resolve() for s in shards):
        raise MergeRefused([f"{out}: is one of the shards: merge into a new folder"])
    _out_folder(target)
    shards.sort(key=lambda s: s.index)
    return _write(target, shards, catalogue, severity, waivers, argv)


def _write(
    out: Path,
    shards: Sequence[ShardBundle],
    catalogue: Catalogue,
    fail_on: Any,
    waivers: Waivers | None,
    argv: Sequence[str],
) -> MergeResult:
    redact = Redactor()
    checks = merge_checks(shards, waivers)
    counts = [len(s.record.get("checks", [])) for s in shards]
    for shard in shards:  # their checks now live in ``checks``: free the shards' copies
        shard.record["checks"] = []
    failures = [(c.outcome, c.severity) for c in checks]
    gate = apply_gate(_pytest_exit(checks), failures, fail_on)
    ref = shards[0].record
    hosts: dict[str, Any] = {}
    sources: dict[str, Any] = {}
    run_weakened: list[str] = []
    for shard in shards:
        hosts.update(shard.record.get("hosts", {}))
        sources.update(shard.record.get("inventory", {}).get("sources", {}))
        for line in shard.record.get("weakened", {}).get("run", []):
            if line not in run_weakened:
                run_weakened.append(line)
    options = dict(ref.get("options") or {})
    options.update(fail_on=fail_on, waivers=waivers.source if waivers else None)
    inventory = dict(ref.get("inventory") or {})
    inventory["sources"] = dict(sorted(sources.items()))
    info = RunInfo(
        run_id=out.name,
        started_at=min(str(s.record["started_at"]) for s in shards),
        command_line=safe_command_line(["python", "-m", "hrw_preflight", *argv], redact),
        inventory=inventory,
        run_weakened=run_weakened,
        catalogue_version=int(ref["catalogue"]["version"]),
        catalogue_sha256=str(ref["catalogue"]["sha256"]),
        options=options,
    )
    merged = {
        "shard_total": shards[0].total,
        "host_list_sha256": shards[0].host_list,
        "shards": [
            {
                "index": s.index,
                "run_id": s.record["run_id"],
                "folder": str(s.folder),
                "started_at": s.record["started_at"],
                "finished_at": s.record["finished_at"],
                "operator": s.record["operator"],
                "tool": _tool(s.record),
                "hosts": len(s.record.get("hosts", {})),
                "checks": n_checks,
                "gate": s.record.get("gate"),
                "sha256sums": s.sums_sha256,
                "files": dict(sorted(s.sums.items())),
            }
            for s, n_checks in zip(shards, counts, strict=True)
        ],
    }
    gate_record = {
        "fail_on": gate.fail_on,
        "counted": gate.counted,
        "ignored": gate.ignored,
        "pytest_exit": gate.pytest_exit,
        "exit": gate.exit,
    }
    record = build_record(
        info,
        status="complete",
        status_reason=None,
        finished_at=utc_timestamp(),
        hosts=dict(sorted(hosts.items())),
        checks=checks,
        files=["report.html", "junit.xml"],
        gate=gate_record,
        waivers=_waivers_record(waivers, checks),
        redact=redact,
        merged=merged,
        checks_redacted=True,
    )
    write_atomic(out / "junit.xml", merge_junit(shards, checks, waivers))
    notes = _notes(record, gate, waivers)
    page = render_fleet_page(record, catalogue.scenarios, notes, redact)
    write_atomic(out / "report.html", page)
    write_bundle(out, record, redact)
    return MergeResult(out, gate, dict(record["summary"]), list(shards))


def main(
    out: str,
    folders: Sequence[str],
    *,
    fail_on: str | None,
    waivers_file: str | None,
    argv: Sequence[str],
    stream: TextIO | None = None,
) -> int:
    """Run the merge, print what it did (or one line per refusal) and return the exit code:
    that of a single run over every host, or 4 when the shards cannot be merged."""
    err = stream or sys.stderr
    outp = stream or sys.stdout
    try:
        result = merge(out, folders, fail_on=fail_on, waivers_file=waivers_file, argv=argv)
    except MergeRefused as exc:
        for line in exc.lines:
            print(f"REFUSED {line}", file=err)
        return REFUSED
    except ConfigError as exc:
        print(f"REFUSED {exc}", file=err)
        return REFUSED
    counts = ", ".join(f"{n} {k}" for k, n in result.summary.items() if n) or "no checks"
    print(
        f"merged {len(result.shards)} shards into {result.out}/ ({counts}); "
        f"SHA256SUMS covers report.html, junit.xml, {EVIDENCE}",
        file=outp,
    )
    gate = result.gate
    if gate.fail_on is not None:
        print(
            f"gate --hrw-fail-on {gate.fail_on}: {gate.counted} failure(s) counted, "
            f"{gate.ignored} below {gate.fail_on} ignored; exit {gate.exit}",
            file=outp,
        )
    return result.exit
