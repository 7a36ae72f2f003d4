"""Ctrl-C during a fleet run: the run stops, says so in its record, and leaves nothing
behind (no probe process, no SSH master, no control-socket folder)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.lab.suite_run import INVENTORY, ROOT

pytestmark = pytest.mark.lab


def _control_dirs() -> set[str]:
    return {p.name for p in Path("/tmp").glob("hrw-ssh-*")}


def _ssh_with_control_sockets() -> set[int]:
    """Return the pids of processes whose command line names an hrw-preflight socket folder."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if b"ssh" in cmdline and b"hrw-ssh-" in cmdline:
            found.add(int(entry.name))
    return found


def test_ctrl_c_mid_run_stops_cleanly(tmp_path: Path) -> None:
    before = _control_dirs()
    ssh_before = _ssh_with_control_sockets()
    reports = tmp_path / "reports"
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "pytest", "tests_infra", "-p", "no:cacheprovider", "-q",
            f"--ansible-inventory={INVENTORY}", "--hosts=ansible://all",
            f"--hrw-reports={reports}",
        ],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        # A child started from a script may inherit SIGINT ignored; a terminal's Ctrl-C
        # reaches pytest with the default handler.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    assert proc.stdout is not None
    # Interrupt once checks are being reported, while hosts are still being probed.
    seen = b""
    while b"." not in seen and b"F" not in seen and proc.poll() is None:
        seen += os.read(proc.stdout.fileno(), 64)
    proc.send_signal(signal.SIGINT)
    started = time.monotonic()
    output = seen + proc.stdout.read()
    proc.wait(timeout=60)
    assert proc.returncode == pytest.ExitCode.INTERRUPTED, output.decode()[-2000:]
    assert time.monotonic() - started < 30
    record = json.loads((reports / "latest" / "evidence.json").read_text())
    assert record["status"] == "incomplete" and "interrupted" in record["status_reason"]
    new = _control_dirs() - before
    assert not new, f"control-socket folders left: {new}"
    assert _ssh_with_control_sockets() - ssh_before == set(), "ssh processes left running"
