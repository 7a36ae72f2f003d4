"""The bench's suite-speed targets are computed as issue 13 states them."""

from __future__ import annotations

from dataclasses import dataclass

from bench.targets import judge_targets


@dataclass(frozen=True)
class M:
    seconds: float
    cpu_seconds: float


@dataclass(frozen=True)
class R:
    hosts: int
    kind: str
    measured: M
    checks: int = 0
    fleet: str = ""


def test_each_target_from_the_rows() -> None:
    rows = [
        R(100, "suite", M(15.0, 20.0), 4000),
        R(100, "floor", M(5.0, 8.0)),
        R(100, "textbook", M(360.0, 250.0)),
        R(200, "suite", M(40.0, 31.6), 4450),
        R(200, "floor", M(11.6, 14.5)),
        R(200, "suite", M(20.0, 25.0), 4000, "no blocked endpoints"),
        R(200, "floor", M(12.0, 14.0), 0, "no blocked endpoints"),
    ]
    found = {t.what: t for t in judge_targets(rows, 5.0)}
    at_100 = found["100 hosts: wall within 1.5x of (floor + 5 s)"]
    assert at_100.met and "15.0 s vs 10.0 s: 1.50x" in at_100.figure
    at_200 = found["200 hosts: wall within 1.5x of (floor + 5 s)"]
    assert not at_200.met and "2.41x" in at_200.figure
    clean = found["200 hosts (no blocked endpoints): wall within 1.5x of floor"]
    assert not clean.met and "20.0 s vs 12.0 s: 1.67x" in clean.figure
    cpu = found["200 hosts: controller CPU per check at most 1.5 ms above the floor's"]
    assert not cpu.met and "= 3.84 ms" in cpu.figure  # the issue's own example
    speed = found["100 hosts: at least 20x faster than the textbook baseline"]
    assert speed.met and "24.0x" in speed.figure
    assert len(found) == 5


def test_rows_missing_leave_their_targets_out() -> None:
    assert judge_targets([R(25, "suite", M(8.0, 4.0), 500)], 5.0) == []
