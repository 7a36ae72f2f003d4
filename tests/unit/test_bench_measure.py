"""The benchmark's measuring of one command: wall, CPU (own tree and whole machine), RSS."""

from __future__ import annotations

import sys
from pathlib import Path

from bench.measure import machine_busy_seconds, run_measured


def test_a_busy_command_shows_its_cpu_and_memory(tmp_path: Path) -> None:
    burn = "x = bytearray(64 * 2**20); sum(range(3 * 10**7)); print('done')"
    measured = run_measured([sys.executable, "-c", burn], tmp_path, poll_s=0.02)
    assert measured.returncode == 0 and measured.output_tail.strip() == "done"
    assert measured.cpu_seconds > 0.2
    # The whole machine did at least what the command did (less a tick of rounding).
    assert measured.machine_cpu_seconds >= measured.cpu_seconds * 0.8
    assert measured.peak_rss_bytes > 64 * 2**20
    assert measured.seconds >= measured.cpu_seconds * 0.5


def test_machine_busy_time_only_grows() -> None:
    first = machine_busy_seconds()
    sum(range(10**6))
    assert machine_busy_seconds() >= first > 0
