"""The report bench's parts: synthetic bundles that verify and merge accept, the section it
writes into bench/results.md, and the render time a page records in headless Chromium."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from bench.reports import BEGIN, END, render_once, write_section
from bench.synth import lab_profiles, make_fleet
from hrw_preflight.report.merge import merge
from hrw_preflight.report.verify import verify_bundle


def test_synthetic_shards_verify_merge_and_show_the_lab_mix(tmp_path: Path) -> None:
    profiles = lab_profiles()
    hosts = 2 * len(profiles)
    folders = make_fleet(tmp_path / "fleet", hosts, 3)
    assert [f.name for f in folders] == ["shard-1", "shard-2", "shard-3"]
    for folder in folders:
        verdict = verify_bundle(folder)
        assert verdict.ok, verdict.problems
    result = merge(tmp_path / "merged", folders)
    assert result.exit == 1  # the lab's faulty profiles fail their scenarios
    assert verify_bundle(tmp_path / "merged").ok
    record = json.loads((tmp_path / "merged" / "evidence.json").read_text())
    assert len(record["hosts"]) == hosts
    failing = {
        (c["host"].rsplit("-", 1)[0], c["scenario_id"])
        for c in record["checks"]
        if c["outcome"] == "failed"
    }
    assert failing == {(p.name, s) for p in profiles for s in p.failing}
    page = (tmp_path / "merged" / "report.html").read_text()
    rows = [int(n) for n in re.findall(r'<tr data-n="(\d+)"', page)]
    # Two hosts per profile; profiles with the same outcomes share a row.
    assert sum(rows) == hosts and len(rows) < len(profiles)


def test_an_unsharded_synthetic_run_verifies(tmp_path: Path) -> None:
    [run] = make_fleet(tmp_path, 5, 0)
    verdict = verify_bundle(run)
    assert verdict.ok and not verdict.warnings, (verdict.problems, verdict.warnings)


def test_the_section_replaces_its_previous_run_and_keeps_the_rest(tmp_path: Path) -> None:
    results = tmp_path / "results.md"
    results.write_text("# bench\n\n| suite table |\n")
    write_section(results, f"{BEGIN}\nfirst\n{END}\n")
    write_section(results, f"{BEGIN}\nsecond\n{END}\n")
    assert results.read_text() == f"# bench\n\n| suite table |\n\n{BEGIN}\nsecond\n{END}\n"


def test_a_fleet_page_records_when_it_was_laid_out(tmp_path: Path) -> None:
    if shutil.which("chromium") is None and shutil.which("chromium-browser") is None:
        pytest.skip("chromium is not installed (make setup installs it)")
    [run] = make_fleet(tmp_path / "run", 3, 0)
    ms, wall = render_once(run / "report.html", tmp_path / "profile")
    assert 0 < ms < wall * 1000
