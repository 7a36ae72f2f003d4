"""Synthetic run bundles for the report and merge benches: N hosts, split into K shards.

``python -m bench.synth OUT --hosts 2000 --shards 4`` writes ``OUT/shard-<k>/``, each a
bundle (``report.html``, ``junit.xml``, ``evidence.json``, ``SHA256SUMS``) that
``python -m hrw_preflight verify`` accepts and ``merge`` joins; ``--shards 0`` writes one
unsharded run bundle ``OUT/run/``. Hosts repeat the lab's profiles (``lab/profiles/*.yaml``):
host ``i`` is ``<profile>-<i>`` and fails exactly its profile's ``expect_failing`` scenarios,
so a synthetic fleet has the lab's mix of faults. Each check carries evidence of the size a
lab run records (about :data:`EVIDENCE_PASSED` characters for a pass, :data:`EVIDENCE_FAILED`
for a failure), with the host's own workspace id in it, so no two hosts' texts are equal.

Exists so the merge and the fleet page can be measured at fleet sizes the lab cannot run on
one machine (2,000 and 10,000 hosts), from bundles of exactly the shape real shards have.
"""

from __future__ import annotations

import argparse
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from hrw_preflight.facts.kind import describe
from hrw_preflight.hosts.redact import Redactor
from hrw_preflight.hosts.shards import host_list_sha256, shard_of
from hrw_preflight.report.atomic import write_atomic
from hrw_preflight.report.evidence import (
    CheckResult,
    RunInfo,
    build_record,
    reason_text,
    write_bundle,
)
from hrw_preflight.report.fleet_page import render_fleet_page
from hrw_preflight.verdicts.catalogue import Catalogue, Scenario, load_catalogue

ROOT = Path(__file__).resolve().parent.parent
PROFILES = ROOT / "lab" / "profiles"
EVIDENCE_PASSED = 900
EVIDENCE_FAILED = 1800
WHEN = "2026-12-01T12:00:00Z"
KIND = {"kind": "agent", "agent": True, "extension": False, "place": "none", "error": None}


@dataclass(frozen=True)
class Profile:
    """A lab profile's name, platform and the scenarios its hosts fail."""

    name: str
    platform: str
    failing: frozenset[str]


def lab_profiles() -> list[Profile]:
    """Return the lab's profiles, sorted by name (the order hosts repeat them in)."""
    found = []
    for path in sorted(PROFILES.glob("*.yaml")):
        if path.name.startswith("_"):
            continue
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        found.append(
            Profile(
                str(doc.get("name") or path.stem),
                str(doc.get("platform") or "linux"),
                frozenset(doc.get("expect_failing") or ()),
            )
        )
    return found


def host_names(count: int, profiles: Sequence[Profile]) -> list[tuple[str, Profile]]:
    """Return ``count`` (host name, profile) pairs repeating ``profiles``."""
    return [
        (f"{profiles[i % len(profiles)].name}-{i}", profiles[i % len(profiles)])
        for i in range(count)
    ]


def _evidence(host: str, scenario: Scenario, item: str, size: int) -> str:
    workspace = uuid.uuid5(uuid.NAMESPACE_DNS, f"{host}.hrw-lab")
    head = (
        f"== section {scenario.needs[0] if scenario.needs else 'worker'} of {host} "
        f"(workspace {workspace}) for {scenario.id} [{item}] ==\n"
    )
    line = f"{workspace} {host} {scenario.id} {item} probe output line\n"
    return (head + line * (size // len(line) + 1))[:size]


def host_checks(host: str, profile: Profile, catalogue: Catalogue) -> list[CheckResult]:
    """Return the checks of one synthetic host: its profile's scenarios fail, others pass
    (the user worker of every tenth Linux host is skipped: not registered)."""
    checks = []
    number = int(host.rsplit("-", 1)[1])
    for scenario in catalogue.scenarios:
        if scenario.platform not in ("both", profile.platform):
            continue
        if "agent" not in scenario.kinds and scenario.id not in profile.failing:
            continue  # synthetic hosts are agent-based workers but for their profile's fault
        for item in scenario.items:
            outcome = "failed" if scenario.id in profile.failing else "passed"
            if scenario.id == "HRW-L01" and item == "user" and number % 10 == 0:
                outcome = "skipped"
            failed = outcome == "failed"
            reason = (
                reason_text(f"{item} not healthy on {host}", "healthy")
                if failed
                else f"{item} healthy"
                if outcome == "passed"
                else "no user worker registered"
            )
            checks.append(
                CheckResult(
                    nodeid=f"tests_infra/test_synth.py::test_{scenario.id}[{host}:{scenario.id}:{item}]",
                    host=host,
                    scenario_id=scenario.id,
                    item=item,
                    severity=scenario.severity,
                    outcome=outcome,
                    reason=reason,
                    evidence=_evidence(
                        host, scenario, item, EVIDENCE_FAILED if failed else EVIDENCE_PASSED
                    ),
                    taken_at={n: WHEN for n in scenario.needs},
                    duration_s=0.001,
                )
            )
    return checks


def host_record(host: str, profile: Profile) -> dict[str, Any]:
    """Return a host's record entry as a lab run writes it."""
    windows = profile.platform == "windows"
    workspace = str(uuid.uuid5(uuid.NAMESPACE_DNS, f"{host}.hrw-lab"))
    return {
        "platform": profile.platform,
        "connection": "winrm" if windows else "ssh",
        "address": host,
        "port": 5986 if windows else 22,
        "user": "hrw",
        "source": "inventory",
        "weakened": [],
        "connect_error": None,
        "commands": 1 if windows else 2,
        "worker": {
            "workspace_id": workspace,
            "version": "1.0",
            "update_management": True,
            "user_worker": True,
            "proxy": None,
            "endpoints": {
                "agentsvc": f"{workspace}.agentsvc.azure-automation.net",
                "jrds": "eus-jobruntimedata-prod-su1.azure-automation.net",
                "oms": f"{workspace}.oms.opinsights.azure.com",
            },
        },
        "worker_error": None,
        "worker_kind": dict(KIND, text=describe(KIND)),
        "sections_taken_at": {},
    }


def junit(checks: Sequence[CheckResult]) -> bytes:
    """Return a JUnit document for ``checks`` with the properties the merge reads, laid out
    as a run's (one element a line, as the plugin's ``rewrite_junit`` writes it)."""
    suite = ET.Element("testsuite", {"name": "pytest", "tests": str(len(checks))})
    for check in checks:
        case = ET.SubElement(
            suite,
            "testcase",
            {"classname": check.host or "", "name": check.nodeid.split("::")[-1], "time": "0"},
        )
        props = ET.SubElement(case, "properties")
        for name in ("scenario_id", "host", "severity", "item", "outcome"):
            ET.SubElement(props, "property", {"name": name, "value": str(getattr(check, name))})
        if check.outcome == "failed":
            ET.SubElement(case, "failure", {"message": check.reason[:500]}).text = check.reason
        elif check.outcome == "skipped":
            ET.SubElement(case, "skipped", {"message": check.reason})
    root = ET.Element("testsuites")
    root.append(suite)
    ET.indent(root, space="")
    return bytes(ET.tostring(root, encoding="utf-8", xml_declaration=True))


def write_run(
    folder: Path,
    hosts: Sequence[tuple[str, Profile]],
    all_names: Sequence[str],
    catalogue: Catalogue,
    shard: tuple[int, int] | None,
) -> Path:
    """Write one bundle for ``hosts`` into ``folder`` (its name is the run id); return it."""
    folder.mkdir(parents=True)
    redact = Redactor()
    checks = sorted(
        (c for name, profile in hosts for c in host_checks(name, profile, catalogue)),
        key=lambda c: c.nodeid,
    )
    info = RunInfo(
        run_id=folder.name,
        started_at=WHEN,
        command_line=["pytest", "tests_infra", "--hosts=ansible://all"],
        inventory={
            "hosts": "ansible://all",
            "ansible_inventory": "inventories/synthetic.yml",
            "sources": {name: "inventory" for name, _ in hosts},
            "host_count": len(all_names),
            "host_list_sha256": host_list_sha256(all_names),
        },
        run_weakened=[],
        catalogue_version=catalogue.version,
        catalogue_sha256=catalogue.sha256,
        options={"endpoint_timeout_s": 5.0, "lookback_hours": 24.0},
        shard=None
        if shard is None
        else {"index": shard[0], "total": shard[1], "source": "--hrw-shard"},
    )
    failed = sum(1 for c in checks if c.outcome == "failed")
    record = build_record(
        info,
        status="complete",
        status_reason=None,
        finished_at=WHEN,
        hosts={name: host_record(name, profile) for name, profile in hosts},
        checks=checks,
        files=["report.html", "junit.xml"],
        gate={
            "fail_on": None,
            "counted": failed,
            "ignored": 0,
            "pytest_exit": 1 if failed else 0,
            "exit": 1 if failed else 0,
        },
        waivers=None,
        redact=redact,
    )
    write_atomic(folder / "junit.xml", junit(checks))
    write_atomic(folder / "report.html", render_fleet_page(record, catalogue.scenarios, [], redact))
    write_bundle(folder, record, redact)
    return folder


def make_fleet(out: Path, hosts: int, shards: int) -> list[Path]:
    """Write the bundles of a synthetic fleet of ``hosts`` hosts into ``out``: ``shards``
    shard bundles (``shard-<k>``), or one run bundle (``run``) when ``shards`` is 0."""
    catalogue = load_catalogue()
    fleet = host_names(hosts, lab_profiles())
    names = [name for name, _ in fleet]
    if shards == 0:
        return [write_run(out / "run", fleet, names, catalogue, None)]
    folders = []
    for index in range(1, shards + 1):
        mine = [(n, p) for n, p in fleet if shard_of(n, shards) == index]
        folders.append(write_run(out / f"shard-{index}", mine, names, catalogue, (index, shards)))
    return folders


def main(argv: Sequence[str] | None = None) -> int:
    """Write a synthetic fleet's bundles and print their folders."""
    parser = argparse.ArgumentParser(prog="python -m bench.synth", description=__doc__)
    parser.add_argument("out", type=Path, help="a new folder for the bundles")
    parser.add_argument("--hosts", type=int, default=2000)
    parser.add_argument("--shards", type=int, default=4, help="0: one unsharded run")
    args = parser.parse_args(argv)
    if args.out.exists() and any(args.out.iterdir()):
        parser.error(f"{args.out} exists and is not empty: give a new folder")
    for folder in make_fleet(args.out, args.hosts, args.shards):
        print(folder)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
