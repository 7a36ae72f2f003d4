"""``-n`` (pytest-xdist) keeps every host on one worker: one connection and one probe per
host per run, whatever the number of workers, with the same verdicts as without xdist.

Proof from the hosts' side: each lab host's own log (sshd at VERBOSE, the WinRM emulator)
counts the connections and commands the run made.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from lab.paths import LabPaths
from tests.lab.host_logs import delta, running_fleet, snapshot
from tests.lab.suite_run import INVENTORY, run_suite

pytestmark = pytest.mark.lab


@pytest.mark.parametrize("workers", ["2", "4"])
def test_each_host_connected_and_probed_once_per_run(
    workers: str, lab_paths: LabPaths, tmp_path: Path
) -> None:
    hosts = running_fleet(lab_paths)
    before = snapshot(lab_paths, hosts)
    run = run_suite(
        [f"--ansible-inventory={INVENTORY}", "--hosts=ansible://all", "-n", workers],
        tmp_path / "reports",
    )
    assert run.returncode == 1, run.output[-3000:]
    seen = delta(before, snapshot(lab_paths, hosts))
    for host in hosts:
        got = seen[host.name]
        assert got.connections == 1, (host.name, got)
        assert 1 <= got.commands <= 2, (host.name, got)
    # The verdicts are the ones the acceptance run gets without xdist.
    for host in hosts:
        not_passing = {o.scenario for o in run.outcomes[host.name] if o.kind in ("failed", "error")}
        assert not_passing == set(host.profile["expect_failing"]), host.name
