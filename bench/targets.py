"""The suite-speed targets of issue 13, judged from one bench run's rows.

- within 1.5x of (floor + endpoint timeout) at every lab-mix fleet size: a host whose
  endpoints drop TCP 443 cannot be judged before the endpoint timeout has passed, which the
  one-command floor never waits for;
- within 1.5x of the floor itself on a fleet without blocked endpoints;
- controller CPU per check at most 1.5 ms above the floor's, at 200 hosts;
- at least 20x faster than the textbook baseline at 100 hosts.

Kept apart from ``bench.run`` (which measures) so the arithmetic is unit-tested.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

WALL_RATIO = 1.5
CPU_PER_CHECK_MS = 1.5
CPU_AT_HOSTS = 200
TEXTBOOK_SPEEDUP = 20.0
TEXTBOOK_AT_HOSTS = 100


class Measured(Protocol):
    """What a target reads of a measured run."""

    @property
    def seconds(self) -> float: ...

    @property
    def cpu_seconds(self) -> float: ...


class RowLike(Protocol):
    """What a target reads of a bench row."""

    @property
    def hosts(self) -> int: ...

    @property
    def kind(self) -> str: ...

    @property
    def fleet(self) -> str: ...

    @property
    def checks(self) -> int: ...

    @property
    def measured(self) -> Measured: ...


@dataclass(frozen=True)
class Target:
    """One target: what it asks, the figure measured, and whether it was met."""

    what: str
    figure: str
    met: bool

    def row(self) -> str:
        """Return the Markdown table row."""
        return f"| {self.what} | {self.figure} | {'met' if self.met else 'MISSED'} |"


def _find(rows: Sequence[RowLike], hosts: int, kind: str, fleet: str) -> RowLike | None:
    return next((r for r in rows if r.hosts == hosts and r.kind == kind and r.fleet == fleet), None)


def judge_targets(rows: Sequence[RowLike], endpoint_timeout_s: float) -> list[Target]:
    """Return every target that the rows allow to judge, in the issue's order."""
    found: list[Target] = []
    for suite in (r for r in rows if r.kind == "suite"):
        floor = _find(rows, suite.hosts, "floor", suite.fleet)
        if floor is None:
            continue
        base = floor.measured.seconds + (0.0 if suite.fleet else endpoint_timeout_s)
        ratio = suite.measured.seconds / base if base else float("inf")
        label = f"{suite.hosts} hosts" + (f" ({suite.fleet})" if suite.fleet else "")
        budget = "floor" if suite.fleet else f"(floor + {endpoint_timeout_s:g} s)"
        found.append(
            Target(
                f"{label}: wall within {WALL_RATIO:g}x of {budget}",
                f"{suite.measured.seconds:.1f} s vs {base:.1f} s: {ratio:.2f}x",
                ratio <= WALL_RATIO,
            )
        )
    suite_cpu = _find(rows, CPU_AT_HOSTS, "suite", "")
    floor_cpu = _find(rows, CPU_AT_HOSTS, "floor", "")
    if suite_cpu is not None and floor_cpu is not None and suite_cpu.checks:
        extra = suite_cpu.measured.cpu_seconds - floor_cpu.measured.cpu_seconds
        per_check = 1000 * extra / suite_cpu.checks
        found.append(
            Target(
                f"{CPU_AT_HOSTS} hosts: controller CPU per check at most "
                f"{CPU_PER_CHECK_MS:g} ms above the floor's",
                f"({suite_cpu.measured.cpu_seconds:.1f} s - {floor_cpu.measured.cpu_seconds:.1f}"
                f" s) / {suite_cpu.checks} checks = {per_check:.2f} ms",
                per_check <= CPU_PER_CHECK_MS,
            )
        )
    suite_tb = _find(rows, TEXTBOOK_AT_HOSTS, "suite", "")
    textbook = _find(rows, TEXTBOOK_AT_HOSTS, "textbook", "")
    if suite_tb is not None and textbook is not None and suite_tb.measured.seconds:
        speedup = textbook.measured.seconds / suite_tb.measured.seconds
        found.append(
            Target(
                f"{TEXTBOOK_AT_HOSTS} hosts: at least {TEXTBOOK_SPEEDUP:g}x faster than the "
                "textbook baseline",
                f"{textbook.measured.seconds:.1f} s / {suite_tb.measured.seconds:.1f} s = "
                f"{speedup:.1f}x",
                speedup >= TEXTBOOK_SPEEDUP,
            )
        )
    return found


def targets_table(targets: list[Target]) -> list[str]:
    """Return the Markdown lines of the targets table."""
    return [
        "| target | measured | |",
        "|---|---|---|",
        *(t.row() for t in targets),
    ]
