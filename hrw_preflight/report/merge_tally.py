"""What a merge keeps of the fleet's checks while they stream past, shard by shard.

Every check is judged again against the merge's own waivers (:func:`judge`), then only what
the record's head, the gate and the fleet page need is kept (:class:`FleetTally`): counts by
outcome, failures by severity, how often each waiver applied or was blocked, the failed,
errored and waived checks themselves, and one outcome per host and scenario for the matrix.
Passed and skipped checks go on to the spill files and are not held.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import pytest

from hrw_preflight.report.evidence import OUTCOMES, CheckResult
from hrw_preflight.report.fleet_page import EVIDENCE_INLINE
from hrw_preflight.report.gate import GateResult
from hrw_preflight.report.waivers import Waivers

WAIVER_FIELDS = ("scenario", "hosts", "justification", "owner", "expires")
CHECK_FIELDS = tuple(CheckResult("n", None, None, None, None, "passed", "").as_dict())
_NEVER_WAIVED = ("passed", "error", "skipped")
SHOWN_IN_FULL = ("failed", "error", "waived")  # outcomes the fleet page lists check by check


def _judged(data: dict[str, Any], waivers: Waivers | None) -> CheckResult:
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


def _as_written(data: dict[str, Any]) -> bool:
    """Return whether ``data`` (a check of a schema-valid record) is exactly what
    ``CheckResult.as_dict`` writes for it: the fields in order, no waiver, a duration
    already rounded to the millisecond."""
    if tuple(data) != CHECK_FIELDS or data["waiver"] is not None:
        return False
    duration = data["duration_s"]
    return (
        data["expired_waiver"] is None
        and type(duration) is float
        and duration == round(duration, 3)
        and math.copysign(1.0, duration) > 0  # -0.0 is written 0.0
    )


def judge(data: dict[str, Any], waivers: Waivers | None) -> dict[str, Any]:
    """Return one shard check as the merged record holds it (``CheckResult.as_dict``'s
    shape), judged again against the merge's ``waivers``.

    Exists so the checks the merge does not change, nearly all of them, are kept as the
    shard's parsed dict rather than rebuilt: a failure may gain or lose a waiver, a waived
    check is judged again, anything else stays as it was.
    """
    outcome = data["outcome"]
    unchanged = outcome in _NEVER_WAIVED or (outcome == "failed" and waivers is None)
    if unchanged and _as_written(data):
        return data
    return _judged(data, waivers).as_dict()


def _waiver_key(waiver: dict[str, Any] | None) -> tuple[Any, ...] | None:
    return tuple(waiver.get(k) for k in WAIVER_FIELDS) if waiver else None


@dataclass
class FleetTally:
    """The merged run's counts and the checks its fleet page shows, added shard by shard."""

    outcomes: Counter[str] = field(default_factory=Counter)
    failures: Counter[tuple[str, str | None]] = field(default_factory=Counter)
    applied: Counter[tuple[Any, ...]] = field(default_factory=Counter)
    blocked: Counter[tuple[Any, ...]] = field(default_factory=Counter)
    # Per shard index: its failed, errored and waived checks as the record holds them.
    listed: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    # (host, scenario, outcome) of passed and skipped checks: all the matrix needs of them.
    cells: set[tuple[str | None, str | None, str]] = field(default_factory=set)

    def add(self, index: int, checks: Iterable[dict[str, Any]]) -> None:
        """Count the judged ``checks`` (as :func:`judge` returns them) of the shard numbered
        ``index``."""
        listed = self.listed.setdefault(index, [])
        for check in checks:
            outcome = check["outcome"]
            self.outcomes[outcome] += 1
            if outcome in ("failed", "error"):
                self.failures[(outcome, check["severity"])] += 1
            if (key := _waiver_key(check["waiver"])) is not None:
                self.applied[key] += 1
            if (key := _waiver_key(check["expired_waiver"])) is not None:
                self.blocked[key] += 1
            if outcome in SHOWN_IN_FULL:
                # The page shows EVIDENCE_INLINE characters and says when there were more.
                listed.append(dict(check, evidence=check["evidence"][: EVIDENCE_INLINE + 1]))
            else:
                self.cells.add((check["host"], check["scenario_id"], outcome))

    def absorb(self, other: FleetTally) -> None:
        """Add what ``other`` counted (a worker's tally of one shard) to this tally."""
        self.outcomes.update(other.outcomes)
        self.failures.update(other.failures)
        self.applied.update(other.applied)
        self.blocked.update(other.blocked)
        for index, listed in other.listed.items():
            self.listed.setdefault(index, []).extend(listed)
        self.cells.update(other.cells)

    @property
    def checks(self) -> int:
        """Return how many checks were counted."""
        return sum(self.outcomes.values())

    def summary(self) -> dict[str, int]:
        """Return the record's ``summary``: checks by outcome, every outcome named."""
        found = dict.fromkeys(OUTCOMES, 0)
        found.update(self.outcomes)
        return found

    def gate_failures(self) -> Iterable[tuple[str, str | None]]:
        """Return ``(outcome, severity)`` of every failed or errored check, for the gate."""
        return (key for key, n in sorted(self.failures.items(), key=str) for _ in range(n))

    def pytest_exit(self) -> int:
        """Return pytest's exit status for a run of these checks, before the gate."""
        if not self.checks:
            return int(pytest.ExitCode.NO_TESTS_COLLECTED)
        if self.failures:
            return int(pytest.ExitCode.TESTS_FAILED)
        return int(pytest.ExitCode.OK)

    def page_checks(self) -> list[dict[str, Any]]:
        """Return the checks the fleet page is rendered from: every failed, errored and
        waived check in the record's order (node id, then shard), and one stand-in per
        (host, scenario, outcome) of the passed and skipped ones, which the page only counts
        in its matrix cells (the header's counts come from the record's summary)."""
        listed = [c for index in sorted(self.listed) for c in self.listed[index]]
        listed.sort(key=lambda c: str(c["nodeid"]))
        stand_ins = [
            {"host": host, "scenario_id": scenario, "outcome": outcome}
            for host, scenario, outcome in self.cells  # the page orders hosts itself
        ]
        return listed + stand_ins

    def waivers_record(self, waivers: Waivers | None) -> dict[str, Any] | None:
        """Return the record's ``waivers``: each entry of the merge's file with the failures
        it waived (``applied``) and would have waived had it not expired (``blocked``)."""
        if waivers is None:
            return None
        entries = []
        for waiver in waivers.entries:
            entry: dict[str, Any] = dict(waiver.as_dict(waivers.today))
            key = _waiver_key(entry)
            entry["applied"] = self.applied[key] if key else 0
            entry["blocked"] = self.blocked[key] if key else 0
            entries.append(entry)
        return {"file": str(waivers.source), "entries": entries}


def gate_record(gate: GateResult) -> dict[str, Any]:
    """Return the record's ``gate`` for the gate's decision."""
    return {
        "fail_on": gate.fail_on,
        "counted": gate.counted,
        "ignored": gate.ignored,
        "pytest_exit": gate.pytest_exit,
        "exit": gate.exit,
    }


def notes(record: dict[str, Any], gate: GateResult, waivers: Waivers | None) -> list[str]:
    """Return the run-level warnings under the fleet page's header: what was weakened (the
    run's options, then each per-host sentence with its hosts), expired waivers, the gate."""
    lines = [f"WEAKENED: {line}" for line in record["weakened"]["run"]]
    by_sentence: dict[str, list[str]] = {}
    for host, sentences in record["weakened"]["hosts"].items():
        for sentence in sentences:
            by_sentence.setdefault(sentence, []).append(host)
    for sentence, hosts in by_sentence.items():
        names = ", ".join(hosts[:8]) + (f" and {len(hosts) - 8} more" if len(hosts) > 8 else "")
        lines.append(f"WEAKENED: {sentence} (on {len(hosts)} host(s): {names})")
    if waivers is not None:
        lines.extend(f"EXPIRED: {w.expired_text()}" for w in waivers.expired())
    if gate.fail_on is not None:
        lines.append(
            f"Exit code counts only failures and errors of severity {gate.fail_on} "
            "and above (--hrw-fail-on); this report shows every outcome."
        )
    return lines
