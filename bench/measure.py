"""Run one command and measure its wall time, CPU time and the peak memory (PSS) of its
process tree."""

from __future__ import annotations

import os
import resource
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Measured:
    """Wall time, CPU time, peak tree memory (PSS) and exit status of one command run."""

    seconds: float
    cpu_seconds: float
    machine_cpu_seconds: float
    peak_rss_bytes: int
    returncode: int
    output_tail: str


def machine_busy_seconds() -> float:
    """Return the CPU time all cores have spent busy since boot (``/proc/stat``), in seconds.

    Why: the lab's hosts run on the same cores as the controller, so the difference over a
    run is what the run cost the whole machine (controller and hosts alike).
    """
    with open("/proc/stat", encoding="ascii") as handle:
        fields = handle.readline().split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    kids: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            text = Path(f"/proc/{pid}/task/{task}/children").read_text(encoding="ascii")
            kids.extend(int(k) for k in text.split())
    except OSError:
        pass
    return kids


def _rss(pid: int) -> int:
    """Return the process's proportional set size in bytes (its RSS where PSS is unknown).

    Why PSS: the suite forks its probe process, and the pages the two share would be
    counted twice in a sum of RSS; PSS splits each shared page among its sharers.
    """
    try:
        with open(f"/proc/{pid}/smaps_rollup", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        with open(f"/proc/{pid}/statm", encoding="ascii") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def tree_rss(root: int) -> int:
    """Return the summed PSS in bytes of ``root`` and all its descendants right now.

    Walks ``/proc/PID/task/TID/children`` rather than every process of the machine, so a
    poll stays cheap while the lab runs thousands of processes.
    """
    total, stack, seen = 0, [root], set()
    while stack:
        pid = stack.pop()
        if pid in seen:
            continue
        seen.add(pid)
        total += _rss(pid)
        stack.extend(_children(pid))
    return total


def run_measured(
    argv: Sequence[str],
    cwd: Path,
    env: Mapping[str, str] | None = None,
    poll_s: float = 0.1,
    timeout_s: float = 3600.0,
) -> Measured:
    """Run ``argv``; return its wall time, the peak PSS of its process tree and its status.

    CPU time is that of the command and every descendant it waited for (``RUSAGE_CHILDREN``
    of this process, before and after), so runs must not overlap; detached ssh control
    masters are not counted.

    The tree is sampled every ``poll_s`` seconds, so a peak shorter than that can be missed;
    the figure is a lower bound on the true peak, close to it for runs of many seconds.
    """
    peak = 0
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    machine_before = machine_busy_seconds()
    started = time.monotonic()
    proc = subprocess.Popen(
        list(argv),
        cwd=cwd,
        env=None if env is None else dict(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    chunks: list[bytes] = []
    reader = threading.Thread(
        target=lambda: chunks.append(proc.stdout.read() if proc.stdout else b""), daemon=True
    )
    reader.start()
    deadline = started + timeout_s
    while proc.poll() is None:
        peak = max(peak, tree_rss(proc.pid))
        if time.monotonic() > deadline:
            proc.kill()
            break
        time.sleep(poll_s)
    proc.wait()
    seconds = time.monotonic() - started
    machine = machine_busy_seconds() - machine_before
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    reader.join(timeout=10)
    text = b"".join(chunks).decode("utf-8", "replace")
    return Measured(seconds, cpu, machine, peak, proc.returncode, text[-3000:])
