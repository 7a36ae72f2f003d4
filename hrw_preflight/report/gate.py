"""The severity gate: which failures decide the run's exit code.

``--hrw-fail-on high`` makes the exit code count only failed and errored checks whose
scenario is high or critical; the reports still show every outcome. Without the option every
failure counts, as in plain pytest.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import pytest

from hrw_preflight.hosts.errors import ConfigError
from hrw_preflight.verdicts.catalogue import SEVERITIES, Severity

_RANK = {name: rank for rank, name in enumerate(SEVERITIES)}
COUNTED = ("failed", "error")


def parse_fail_on(value: str | None) -> Severity | None:
    """Return the ``--hrw-fail-on`` severity (None when unset), or raise ConfigError."""
    if value is None or value == "":
        return None
    name = value.strip().lower()
    for severity in SEVERITIES:
        if severity == name:
            return severity
    raise ConfigError(
        f"--hrw-fail-on {value!r} is not a severity: use one of {', '.join(SEVERITIES)}"
    )


def counts(severity: str | None, fail_on: Severity | None) -> bool:
    """Return whether a failure of ``severity`` counts toward the exit code.

    A failure without a severity (a test that is not a catalogue check, or a crash outside
    any check) always counts: nothing may hide a problem the gate cannot rank.
    """
    if fail_on is None or severity not in _RANK:
        return True
    return _RANK[severity] >= _RANK[fail_on]


@dataclass(frozen=True)
class GateResult:
    """What the gate decided: failures counted and ignored, exit codes before and after."""

    fail_on: Severity | None
    counted: int
    ignored: int
    pytest_exit: int
    exit: int


def apply_gate(
    exitstatus: int, failures: Iterable[tuple[str, str | None]], fail_on: Severity | None
) -> GateResult:
    """Return the gate's decision for a session ending with ``exitstatus``.

    ``failures`` holds ``(outcome, severity)`` of every failed or errored check. Only a run
    whose sole problem is test failures (exit 1) is turned into a pass (exit 0), when no
    counted failure is left; interrupted, crashed or usage-error runs keep their status.
    """
    counted = ignored = 0
    for outcome, severity in failures:
        if outcome not in COUNTED:
            continue
        if counts(severity, fail_on):
            counted += 1
        else:
            ignored += 1
    final = exitstatus
    if fail_on is not None and exitstatus == pytest.ExitCode.TESTS_FAILED and counted == 0:
        final = int(pytest.ExitCode.OK)
    return GateResult(fail_on, counted, ignored, int(exitstatus), int(final))
