"""Nothing in report.html runs as script: host names, test ids, extras' names and the
environment table reach the page as text. Checked by opening the report in real headless
Chromium (Debian's ``chromium``, installed by ``make setup``) and reading the DOM it built."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from hrw_preflight.facts.model import HostFacts
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
    report = latest(pytester) / "report.html"
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
