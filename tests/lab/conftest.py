"""Fixtures for the lab's own tests: they run against the running lab fleet, as root.

Every test here is marked ``lab``. They are skipped unless the lab is up (``inventories/lab.yml``
exists) and we are root; ``test_lifecycle.py`` brings the lab up and down itself and is
skipped unless ``LAB_LIFECYCLE=1``.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest
import yaml

from lab.fleet import Host, expand_fleet
from lab.paths import LabPaths
from lab.profiles import load_profiles
from tests.lab import suite_run

PATHS = LabPaths()
HERE = Path(__file__).resolve().parent
# Where a failing lab test's suite reports are kept (outside .lab/, which lab down removes,
# and outside pytest's temporary folders, which later runs delete).
KEPT_REPORTS = suite_run.ROOT / "reports" / "lab-test-failures"
_RUNS_BY_MODULE: dict[str, list[Path]] = {}
_RUNS_BEFORE = pytest.StashKey[int]()


def _lab_hosts() -> list[Host]:
    """Return the running fleet (rebuilt from the inventory's size), or [] when it is down."""
    if not PATHS.inventory.exists() or os.geteuid() != 0:
        return []
    groups = yaml.safe_load(PATHS.inventory.read_text(encoding="utf-8"))["all"]["children"]
    names = [n for g in ("linux", "windows") for n in (groups[g]["hosts"] or {})]
    hosts = expand_fleet(load_profiles(), len(names))
    if sorted(h.name for h in hosts) != sorted(names):
        raise pytest.UsageError(f"{PATHS.inventory} does not match the fleet; run make lab-up")
    return hosts


HOSTS = _lab_hosts()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark this directory's tests ``lab``; skip them when the lab is down or we are not root."""
    for item in items:
        if HERE not in Path(str(item.fspath)).resolve().parents:
            continue
        item.add_marker(pytest.mark.lab)
        if Path(str(item.fspath)).name == "test_lifecycle.py":
            continue
        if os.geteuid() != 0:
            item.add_marker(pytest.mark.skip(reason="lab tests need root"))
        elif not PATHS.inventory.exists():
            item.add_marker(pytest.mark.skip(reason="lab is down (no inventories/lab.yml)"))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrize ``linux_host``/``windows_host``/``any_host`` over the running fleet."""
    wanted = {"linux_host": "linux", "windows_host": "windows", "any_host": None}
    for fixture, platform in wanted.items():
        if fixture in metafunc.fixturenames:
            chosen = [h for h in HOSTS if platform is None or h.platform == platform]
            metafunc.parametrize(fixture, chosen, ids=[h.name for h in chosen])


@pytest.fixture(scope="session")
def lab_paths() -> LabPaths:
    """Return the lab's paths."""
    return PATHS


@pytest.fixture(scope="session")
def lab_state() -> dict[str, Any]:
    """Return the running lab's state file (host list, passwords, proxy URL)."""
    from lab.control import read_state

    state = read_state(PATHS)
    if state is None:
        pytest.skip("lab state file is missing")
    return state


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Count the suite runs so far, before the item's fixtures make any."""
    item.stash[_RUNS_BEFORE] = len(suite_run.REPORT_DIRS)


def _note_runs(item: pytest.Item, before: int) -> None:
    """Remember the suite runs made while ``item`` (or a fixture it set up) ran."""
    made = suite_run.REPORT_DIRS[before:]
    if made:
        _RUNS_BY_MODULE.setdefault(item.nodeid.split("::")[0], []).extend(made)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Keep the report folders of the suite runs behind a failing lab test, and say where.

    Why: the suite's reports hold every verdict with the raw probe output it judged; a
    failure seen once under load (a false failure) can only be explained from them.
    """
    report = yield
    _note_runs(item, item.stash.get(_RUNS_BEFORE, len(suite_run.REPORT_DIRS)))
    item.stash[_RUNS_BEFORE] = len(suite_run.REPORT_DIRS)
    runs = [p for p in _RUNS_BY_MODULE.get(item.nodeid.split("::")[0], []) if p.exists()]
    if report.failed and runs:
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", item.nodeid)[-120:]
        target = KEPT_REPORTS / f"{stamp}-{safe}"
        for index, folder in enumerate(runs):
            shutil.copytree(folder, target / f"run{index}", symlinks=True, dirs_exist_ok=True)
        report.sections.append(
            ("hrw-preflight", f"the suite reports of this test are kept in {target}")
        )
    return report
