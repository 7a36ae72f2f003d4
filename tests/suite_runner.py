"""Running the real scenario tests through pytester against recorded facts.

No host is contacted: ``probe_host`` is replaced for the in-process run; everything else
(targets, parametrisation, verdicts, reports, evidence) is real. Shared by the plugin, evidence,
gate, waiver, verify and JUnit tests.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

import hrw_preflight.facts.collector
from hrw_preflight.facts.linux import probe as linux
from hrw_preflight.facts.model import HostFacts, Section
from hrw_preflight.facts.params import ProbeParams
from hrw_preflight.facts.windows.kind_markers import windows_kind
from hrw_preflight.hosts.targets import Target
from hrw_preflight.verdicts.catalogue import load_catalogue
from tests.linux_samples import BOUNDARY, LinuxHost, Out

SUITE = Path(__file__).resolve().parents[1] / "tests_infra"
SECRET = "Winrm-Pa55word!"
PLUGINS = ("-p", "hrw_preflight.plugin")
EVIDENCE_FILE = "evidence.json"
Facts = Mapping[str, HostFacts | Callable[[Target], HostFacts]]


def windows_sections(state: str = "Running") -> dict[str, Section]:
    """Return Windows facts in the suite's shapes (what the Windows parser produces, the
    derived kind section included)."""
    sections = {
        "service": Section(
            "service",
            {"exists": True, "name": "HealthService", "state": state, "start_mode": "Auto"},
            raw=f"State {state} pw={SECRET}",
        ),
        "events": Section(
            "events",
            {
                "lookback_hours": 24.0,
                "logs": {"Operations Manager": [], "Microsoft-SMA/Operational": []},
            },
        ),
        "hardware": Section("hardware", {"logical_processors": 4, "memory_bytes": 16 * 1024**3}),
        "pressure": Section(
            "pressure",
            {
                "cpu_load": 0.1,
                "memory_available_bytes": 8 * 1024**3,
                "memory_total_bytes": 16 * 1024**3,
            },
        ),
        "worker": Section(
            "worker",
            {
                "workspace_id": None,
                "update_management": False,
                "user_worker": False,
                "endpoints": {},
            },
        ),
        "network": Section("network", {}),
    }
    sections["kind"] = windows_kind(sections)
    return sections


# The scenarios whose outcomes on the recorded hosts these tests know; selecting them by name
# (not by a prefix such as "HRW-L") keeps counts fixed when a scenario is added.
LINUX_CHECKS = "HRW-L01 or HRW-L02 or HRW-L03"
WINDOWS_CHECKS = "HRW-W01 or HRW-W02 or HRW-W03 or HRW-W04"


def deselected_count(platform: str, selected: tuple[str, ...]) -> int:
    """Return how many tests pytest reports deselected when ``-k`` picks the scenarios
    ``selected`` on one host of ``platform``: the other scenarios' checks on that host, plus
    one per scenario of the other platform (its empty parameter set is dropped as deselected).

    Why: derived from the catalogue, never pinned, so a new scenario does not break a test.
    """
    scenarios = load_catalogue().scenarios
    others = sum(len(s.items) for s in scenarios if s.applies_to(platform) and s.id not in selected)
    return others + sum(not s.applies_to(platform) for s in scenarios)


def local_facts(host: LinuxHost) -> HostFacts:
    """Return facts of a Linux host named ``local`` from its recorded probe output."""
    sections = linux.parse_facts(Out(host.facts_output()), ProbeParams(), boundary=BOUNDARY)
    sections["network"] = Section("network", {})
    return HostFacts("local", "linux", sections)


def run_suite(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    facts: Facts,
    args: list[str],
    *,
    interrupted: bool = False,
) -> pytest.RunResult:
    """Run the real scenario tests in-process against recorded facts; return the result.

    ``interrupted``: the run is expected to end by Ctrl-C, which pytester would otherwise
    re-raise into this test session.
    """
    for path in SUITE.glob("test_*.py"):
        if not (pytester.path / path.name).exists():
            pytester.makepyfile(**{path.stem: path.read_text()})

    def fake_probe(target: Target, host: object, params: ProbeParams) -> HostFacts:
        found = facts[target.name]
        return found(target) if callable(found) else found

    monkeypatch.setattr(hrw_preflight.facts.collector, "probe_host", fake_probe)
    return pytester.runpytest_inprocess(
        *PLUGINS,
        "-p",
        "no:cacheprovider",
        "-rs",
        "--hrw-reports",
        str(pytester.path / "reports"),
        *args,
        no_reraise_ctrlc=interrupted,
    )


def run_folders(pytester: pytest.Pytester) -> list[Path]:
    """Return the run folders under reports/, oldest first."""
    return sorted(p for p in (pytester.path / "reports").iterdir() if not p.is_symlink())


def latest(pytester: pytest.Pytester) -> Path:
    """Return the folder reports/latest points at."""
    return (pytester.path / "reports" / "latest").resolve()


def load_evidence(folder: Path) -> dict[str, Any]:
    """Return the parsed evidence.json of a run folder."""
    record: dict[str, Any] = json.loads((folder / EVIDENCE_FILE).read_text())
    return record


def local_inventory(pytester: pytest.Pytester, *names: str) -> Path:
    """Write an inventory of hosts reached with ``ansible_connection: local``; return its path."""
    inventory = pytester.path / "inv.yml"
    hosts = "".join(f"    {name}:\n      ansible_connection: local\n" for name in names)
    inventory.write_text(f"all:\n  hosts:\n{hosts}")
    return inventory


def windows_inventory(pytester: pytest.Pytester) -> Path:
    """Write an inventory with one Windows host whose password is SECRET; return its path."""
    inventory = pytester.path / "inv.yml"
    inventory.write_text(
        "all:\n  hosts:\n    win1:\n      ansible_host: 192.0.2.7\n"
        "      ansible_connection: winrm\n      ansible_user: svc\n"
        f"      ansible_password: '{SECRET}'\n"
    )
    return inventory
