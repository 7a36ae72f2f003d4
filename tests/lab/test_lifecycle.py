"""``python -m lab up|down``: idempotent, leaves nothing behind, recovers from leftovers.

The up/down cycle replaces the running fleet, so it runs only with ``LAB_LIFECYCLE=1``
(never alongside the other lab tests); it restores the fleet it found afterwards.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from lab.control import lab_processes, read_state
from lab.netns import lab_namespaces, leftover_links
from lab.paths import REPO_ROOT, LabPaths

PATHS = LabPaths()
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root")
lifecycle = pytest.mark.skipif(
    os.environ.get("LAB_LIFECYCLE") != "1",
    reason="replaces the running lab; set LAB_LIFECYCLE=1 to run",
)


def _lab(
    command: str,
    hosts: int | None = None,
    *,
    env: dict[str, str] | None = None,
    prefix: tuple[str, ...] = (),
    timeout: int = 300,
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m lab COMMAND`` (behind ``prefix``, e.g. setpriv) and return the result;
    ``env`` replaces the environment, which otherwise is ours without LAB_HOSTS."""
    if env is None:
        env = dict(os.environ)
        env.pop("LAB_HOSTS", None)
    if hosts is not None:
        env["LAB_HOSTS"] = str(hosts)
    return subprocess.run(
        [*prefix, sys.executable, "-m", "lab", command],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _assert_nothing_left() -> None:
    assert lab_namespaces() == []
    assert leftover_links() == []
    assert lab_processes(PATHS) == []
    assert not PATHS.inventory.exists()
    remaining = {p for p in PATHS.state.iterdir()} if PATHS.state.exists() else set()
    assert remaining <= set(PATHS.keep)


@pytest.fixture()
def restore_fleet() -> Iterator[None]:
    """Remember the running fleet's size and bring it back after the test."""
    state = read_state(PATHS)
    was_up = PATHS.inventory.exists() and state is not None
    count = len(state["hosts"]) if state else None
    yield
    if was_up:
        assert _lab("up", count).returncode in (0, 1)
    else:
        _lab("down")


@needs_root
def test_without_root_one_clear_line() -> None:
    # A new user namespace without a uid map: the lab sees uid 65534 (not root) and has no
    # privilege, yet the kernel still checks files against our own uid, so the checkout and
    # its virtualenv stay readable wherever they are (a clone inside a 0700 folder included),
    # which a switch to user nobody (setpriv --reuid) does not give.
    not_root = ("unshare", "--user")
    proc = _lab("up", prefix=not_root, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1
    assert "needs root" in proc.stderr


@needs_root
@lifecycle
@pytest.mark.usefixtures("restore_fleet")
def test_up_down_idempotent_and_clean() -> None:
    for _ in range(2):
        proc = _lab("up", 2)
        assert proc.returncode == 0, proc.stderr
    assert set(lab_namespaces()) == {
        "hrw-azure",
        "hrw-proxy",
        "hrw-linux-healthy",
        "hrw-linux-healthy-no-um",
    }
    assert PATHS.inventory.exists()
    assert _lab("status").returncode == 0
    for _ in range(2):
        proc = _lab("down")
        assert proc.returncode == 0, proc.stderr
        _assert_nothing_left()
    assert _lab("status").returncode == 1


@needs_root
@lifecycle
@pytest.mark.usefixtures("restore_fleet")
def test_down_removes_leftovers_of_a_crashed_start() -> None:
    assert _lab("down").returncode == 0
    subprocess.run(["ip", "netns", "add", "hrw-crashed"], check=True)
    subprocess.run(["ip", "link", "add", "hrwlab0", "type", "bridge"], check=True)
    PATHS.pids.mkdir(parents=True, exist_ok=True)
    (PATHS.pids / "hrw-crashed.pid").write_text("1\n")  # a pid that is not the lab's
    assert PATHS.inventory.exists() is False
    proc = _lab("down")
    assert proc.returncode == 0, proc.stderr
    _assert_nothing_left()
    assert os.path.exists("/proc/1")


@needs_root
def test_missing_tool_one_clear_line() -> None:
    proc = _lab("up", env={"PATH": "/nonexistent", "LAB_HOSTS": "1"}, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1
    assert "missing tool(s): ip, nft" in proc.stderr
    assert "make setup" in proc.stderr
