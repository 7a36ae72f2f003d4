"""The registry, the catalogue and everything derived from them agree.

A scenario in the catalogue without a registered verdict, a verdict without a catalogue
entry, a check without its generated test, and a README table that no longer matches the
catalogue each fail a test here.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from hrw_preflight.__main__ import main
from hrw_preflight.facts.model import HostFacts
from hrw_preflight.hosts.errors import ConfigError
from hrw_preflight.report.scenario_tables import README, render_tables, rewrite, update_readme
from hrw_preflight.verdicts import Settings, Verdict, judge
from hrw_preflight.verdicts.base import passed
from hrw_preflight.verdicts.catalogue import load_catalogue, parse_catalogue
from hrw_preflight.verdicts.registry import check, registered_checks

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "hrw_preflight" / "verdicts" / "catalogue.yaml"


def test_every_catalogue_scenario_has_a_verdict() -> None:
    missing = {s.id for s in load_catalogue().scenarios} - set(registered_checks())
    assert not missing, f"catalogue scenarios without a @check verdict: {sorted(missing)}"


def test_every_verdict_has_a_catalogue_entry() -> None:
    extra = set(registered_checks()) - {s.id for s in load_catalogue().scenarios}
    assert not extra, f"@check verdicts without a catalogue entry: {sorted(extra)}"


def test_every_check_has_exactly_one_generated_test_in_tests_infra() -> None:
    tests: dict[str, list[str]] = {}
    for path in sorted((ROOT / "tests_infra").glob("test_*.py")):
        module = importlib.import_module(f"tests_infra.{path.stem}")
        for name, obj in vars(module).items():
            for mark in getattr(obj, "pytestmark", []):
                if name.startswith("test_") and mark.name == "scenario":
                    tests.setdefault(mark.args[0], []).append(f"{path.name}::{name}")
    checks = registered_checks()
    assert {sid: len(where) for sid, where in tests.items()} == dict.fromkeys(checks, 1), tests
    for sid, [where] in tests.items():
        assert where == f"test_{checks[sid].module}.py::test_{checks[sid].name}"


def test_registering_a_scenario_twice_is_refused() -> None:
    sid = next(iter(registered_checks()))
    with pytest.raises(RuntimeError, match=f"{sid} is registered twice"):

        @check(sid)
        def again(facts: HostFacts, item: str, settings: Settings) -> Verdict:
            return passed("", "")


def test_registered_judge_turns_malformed_facts_into_an_error() -> None:
    facts = HostFacts("h", "linux", {})
    verdict = registered_checks()["HRW-L02"].judge(facts, "omsagent", None)  # type: ignore[arg-type]
    assert verdict.outcome == "error" and "processes" in verdict.seen


def test_judging_an_unregistered_scenario_names_it() -> None:
    with pytest.raises(ConfigError, match="no verdict is registered for HRW-X99"):
        judge("HRW-X99", "x", HostFacts("h", "linux", {}), None)  # type: ignore[arg-type]


def test_readme_tables_are_generated_from_the_catalogue() -> None:
    assert update_readme(README, load_catalogue(), check=True), (
        "README.md's scenario tables are stale: run python -m hrw_preflight docs"
    )
    rows = [line for line in README.read_text().splitlines() if line.startswith("| HRW-")]
    for scenario in load_catalogue().scenarios:
        assert sum(row.startswith(f"| {scenario.id} |") for row in rows) == 1, scenario.id


def test_docs_check_fails_on_a_stale_table_and_the_rewrite_fixes_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    readme = tmp_path / "README.md"
    stale = README.read_text().replace("| HRW-G02 | both |", "| HRW-G02-old | both |")
    readme.write_text(stale)
    assert main(["docs", "--check", str(readme)]) == 1
    assert "out of date" in capsys.readouterr().err
    assert main(["docs", str(readme)]) == 0
    assert main(["docs", "--check", str(readme)]) == 0
    assert readme.read_text() == README.read_text()


def test_missing_markers_are_a_one_line_error() -> None:
    with pytest.raises(ConfigError, match="generated: scenarios"):
        rewrite("no markers here\n", render_tables(load_catalogue()))


def _broken(old: str, new: str) -> str:
    text = SHIPPED.read_text()
    assert old in text
    return text.replace(old, new, 1)


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("    description: >-\n", "    descr: >-\n", "missing keys \\['description'\\]"),
        ("    severity_rationale: >-\n", "    severity_rationale: ''\n    x: >-\n", "unknown"),
        ("    references:\n", "    references: []\n    refs:\n", "unknown keys"),
        (
            '      - title: "Troubleshoot Hybrid Runbook Workers: Runbook execution fails"\n',
            '      - title: "elsewhere"\n',
            None,
        ),
        ("  url: https://learn", "  local: somewhere.md\n  url: https://learn", "article must"),
    ],
)
def test_catalogue_loader_validates_the_new_fields(old: str, new: str, message: str | None) -> None:
    text = _broken(old, new)
    if message is None:  # a title change alone is fine: the URL is what is checked
        assert parse_catalogue(text).scenarios
        return
    with pytest.raises(ConfigError, match=message):
        parse_catalogue(text)


def test_article_section_must_be_among_the_references() -> None:
    url = "https://learn.microsoft.com/azure/automation/troubleshoot/hybrid-runbook-worker"
    text = _broken(
        f"        url: {url}#scenario-runbook-execution-fails\n",
        "        url: https://learn.microsoft.com/elsewhere\n",
    )
    with pytest.raises(ConfigError, match="HRW-G01: references must include the article section"):
        parse_catalogue(text)


def test_every_scenario_carries_description_rationale_and_references() -> None:
    catalogue = load_catalogue()
    for s in catalogue.scenarios:
        assert s.description and s.severity_rationale and s.references, s.id
        assert all(r.url.startswith("https://") for r in s.references)


def test_catalogue_names_no_file_outside_the_project() -> None:
    # The article used to carry `local: shared/reference/...`, a path not in the repository.
    assert "local:" not in SHIPPED.read_text()
