"""A check's reported file, line and name are pytest's own, though looked up once per
test function."""

from __future__ import annotations

import pytest

from tests.linux_samples import LinuxHost
from tests.suite_runner import local_facts, run_suite

pytest_plugins = ["pytester"]

COMPARING_PLUGIN = """
import pytest

def pytest_collection_finish(session):
    checked = 0
    for item in session.items:
        if "hrw_case" not in getattr(item, "fixturenames", ()):
            continue
        ours, pytests = item.reportinfo(), type(item).reportinfo(item)
        assert ours == pytests, (ours, pytests)
        assert item.reportinfo.func.__name__ == "_reportinfo"
        checked += 1
    session.config.stash[pytest.StashKey[int]()] = checked
    print(f"reportinfo compared for {checked} checks")
"""


def test_reportinfo_matches_pytests(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(comparing=COMPARING_PLUGIN)
    pytester.syspathinsert()
    facts = {"local": local_facts(LinuxHost())}
    result = run_suite(pytester, monkeypatch, facts, ["--hosts=local://", "-p", "comparing", "-s"])
    found = [line for line in result.outlines if "reportinfo compared for" in line]
    assert found and int(found[0].split()[3]) >= 40
    assert result.ret in (0, 1)  # the run itself went on (checks passed or failed)
