"""Nothing in report.html (the fleet page) or checks.html (pytest-html's) runs as script:
host names, test ids, extras' names, the environment table and every text of the run record
reach the pages as text. Checked by opening the report in real headless
Chromium (Debian's ``chromium``, installed by ``make setup``) and reading the DOM it built."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from hrw_preflight.facts.model import HostFacts
from hrw_preflight.report.fleet_page import render_fleet_page
from hrw_preflight.verdicts.catalogue import load_catalogue
from tests.linux_samples import LinuxHost
from tests.suite_runner import latest, local_facts, run_suite

pytest_plugins = ["pytester"]

# No ',' (--hosts splits on it), no ':', '/', '?', '@' (host spec syntax), no quotes.
HOST = "w1<img src=x alt=PWNED onerror=document.title=this.alt>"
META = "<img src=x alt=META onerror=document.body.id=this.alt>"


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.skip("chromium is not installed (make setup installs it)")
    return found


def open_in_chromium(page: Path, screenshot: Path | None = None) -> str:
    """Return the DOM Chromium built for ``page`` after its scripts ran."""
    base = [
        chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        f"--user-data-dir={page.parent / 'chromium-profile'}",
        "--virtual-time-budget=5000",
    ]
    if screenshot is not None:
        subprocess.run(
            [*base, "--window-size=1400,1800", f"--screenshot={screenshot}", page.as_uri()],
            capture_output=True,
            timeout=120,
            check=True,
        )
    done = subprocess.run(
        [*base, "--dump-dom", page.as_uri()], capture_output=True, timeout=120, check=True
    )
    return done.stdout.decode("utf-8", "replace")


def test_markup_in_host_names_and_environment_never_runs(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    facts = local_facts(LinuxHost(agent=False))
    hostile = HostFacts(HOST, "linux", facts.sections)
    run_suite(
        pytester,
        monkeypatch,
        {HOST: hostile},
        [f"--hosts=paramiko://{HOST}", "-k", "HRW-L02 or HRW-G02", "--metadata", "ci", META],
    )
    report = latest(pytester) / "checks.html"
    shot = pytester.path / "report.png"  # looked at by hand when this test was written
    dom = open_in_chromium(report, screenshot=shot)
    assert "<title" in dom and "results-table" in dom  # the page was built by its script
    assert "PWNED</title>" not in dom, "a host name ran script (document.title was set)"
    assert 'alt="PWNED"' not in dom and 'alt="META"' not in dom, "markup became elements"
    assert 'id="META"' not in dom, "an environment value ran script"
    # Shown as text instead: the matrix, the results table and the environment table.
    assert dom.count("w1&lt;img src=x alt=PWNED onerror=document.title=this.alt&gt;") >= 3
    assert "&lt;img src=x alt=META onerror=document.body.id=this.alt&gt;" in dom
    assert shot.stat().st_size > 10_000
    fleet = open_in_chromium(latest(pytester) / "report.html")
    assert "data-rendered-ms=" in fleet, "the fleet page's own script did not run"
    assert "PWNED</title>" not in fleet and 'alt="PWNED"' not in fleet
    assert "w1&lt;img src=x alt=PWNED onerror=document.title=this.alt&gt;" in fleet


def _hostile(tag: str) -> str:
    """Return markup that, if it became elements, would mark the DOM with ``tag``."""
    img = f"<img src=x alt={tag} onerror=document.body.id=this.alt>"
    return f"{img}<script>document.title='{tag}'</script>"


def test_every_text_of_the_fleet_page_stays_text(tmp_path: Path) -> None:
    scenarios = load_catalogue().scenarios
    sid = "HRW-L02"
    host = _hostile("HOST")
    record = {
        "run_id": _hostile("RUNID"),
        "status": "complete",
        "status_reason": _hostile("STATUS"),
        "started_at": _hostile("START"),
        "finished_at": "2026-12-01T00:00:00Z",
        "operator": {"user": _hostile("USER"), "hostname": _hostile("FROM")},
        "command_line": ["pytest", _hostile("ARGV")],
        "tool": {"version": "1", "git_commit": _hostile("COMMIT")},
        "catalogue": {"version": 1},
        "inventory": {"host_count": 2},
        "shard": None,
        "merged": {
            "shard_total": 1,
            "shards": [
                {
                    "index": 1,
                    "run_id": _hostile("SHARD"),
                    "operator": {"user": "u", "hostname": _hostile("SHARDHOST")},
                    "started_at": "x",
                    "hosts": 2,
                    "checks": 3,
                }
            ],
        },
        "gate": {"exit": 1},
        "summary": {"failed": 1, "error": 1, "waived": 1},
        "hosts": {
            host: {"platform": "linux", "worker_kind": {"text": _hostile("KIND")}},
            "down": {"platform": "linux", "connect_error": _hostile("DOWN")},
        },
        "checks": [
            {
                "host": host,
                "scenario_id": sid,
                "item": _hostile("ITEM"),
                "outcome": "failed",
                "reason": _hostile("REASON"),
                "evidence": _hostile("EVIDENCE") + "</pre></details></td></tr>",
                "expired_waiver": {
                    "scenario": sid,
                    "hosts": _hostile("WHOSTS"),
                    "owner": "o",
                    "expires": "2020-01-01",
                },
            },
            {"host": "down", "scenario_id": sid, "item": "i", "outcome": "error", "reason": "r"},
            {
                "host": host,
                "scenario_id": "HRW-L03",
                "item": "i",
                "outcome": "waived",
                "reason": "r",
                "waiver": {"justification": _hostile("WHY"), "owner": "o", "expires": "2099-01-01"},
            },
        ],
    }
    page = tmp_path / "report.html"
    page.write_text(render_fleet_page(record, scenarios, [_hostile("NOTE")], lambda t: t))
    dom = open_in_chromium(page)
    assert "data-rendered-ms=" in dom, "the page's own script did not run (CSP hash?)"
    tags = "HOST RUNID STATUS START USER FROM ARGV COMMIT SHARD SHARDHOST KIND DOWN ITEM"
    tags += " REASON EVIDENCE WHOSTS WHY NOTE"
    for tag in tags.split():
        assert f'id="{tag}"' not in dom and f'alt="{tag}"' not in dom, f"{tag} became markup"
        assert f"<title>{tag}" not in dom, f"{tag} ran script"
        assert f"alt={tag} onerror=document.body.id=this.alt&gt;" in dom, f"{tag} not shown"
    assert "<title>hrw-preflight run &lt;img" in dom
    assert '<td class="kind">' in dom  # two kinds (one unknown): the matrix has the column
