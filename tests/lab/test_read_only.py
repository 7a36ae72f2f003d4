"""A suite run never changes a host.

Before and after one run against the whole fleet, every Linux host's files are listed with
their content hash, mode, owner and size from inside the host's mount namespace (the agent
trees, /etc, /root, /home, /tmp, /run), via ``lab/hostexec.py``; the two lists must match.
Windows hosts are emulated and have no files to compare: there the check is that the run
left no WinRM shell open (every shell it created, it deleted).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from lab.fleet import Host
from lab.hostexec import run_in_host
from lab.paths import LabPaths
from tests.lab.host_logs import running_fleet
from tests.lab.suite_run import INVENTORY, run_suite

pytestmark = pytest.mark.lab

TREES = ("/etc", "/opt", "/var/opt", "/home", "/root", "/tmp", "/run")
# Access times change on every read; what matters is content, mode, owner, size and mtime.
LISTING = (
    "find {trees} -xdev \\( -type f -o -type d -o -type l \\) "
    "-printf '%p %y %m %U:%G %s %T@\\n' | sort; "
    "find {trees} -xdev -type f -readable -print0 | sort -z | xargs -0 -r sha256sum"
)


def state(paths: LabPaths, host: Host) -> str:
    """Return the listing and hashes of the host's trees, as the host itself sees them."""
    script = LISTING.format(trees=" ".join(TREES))
    proc = run_in_host(paths, host.name, ["sh", "-c", script], timeout=120)
    assert proc.returncode == 0, f"{host.name}: {proc.stderr[-500:]}"
    return proc.stdout


def _shells(paths: LabPaths, host: Host) -> tuple[int, int]:
    text = (paths.host_dir(host.name) / "winrm.log").read_text(encoding="utf-8", errors="replace")
    lines = text.splitlines()
    created = sum(1 for line in lines if ": shell " in line and " created for " in line)
    deleted = sum(1 for line in lines if ": shell " in line and line.endswith(" deleted"))
    return created, deleted


def test_a_run_changes_nothing_on_any_host(lab_paths: LabPaths, tmp_path: Path) -> None:
    fleet = running_fleet(lab_paths)
    linux = [h for h in fleet if h.platform == "linux"]
    windows = [h for h in fleet if h.platform == "windows"]
    assert linux and windows, "lab is down"
    before = {h.name: state(lab_paths, h) for h in linux}
    shells_before = {h.name: _shells(lab_paths, h) for h in windows}
    run = run_suite(
        [f"--ansible-inventory={INVENTORY}", "--hosts=ansible://all"], tmp_path / "reports"
    )
    assert run.returncode == 1, run.output[-3000:]
    assert set(run.outcomes) == {h.name for h in fleet}
    for host in linux:
        after = state(lab_paths, host)
        assert after == before[host.name], f"{host.name}: files changed during the run"
        assert len(after.splitlines()) > 100  # the trees were really listed
    for host in windows:
        created, deleted = _shells(lab_paths, host)
        was_created, was_deleted = shells_before[host.name]
        assert created - was_created == 1, host.name
        assert deleted - was_deleted == 1, host.name
