"""A judged check's evidence text: masked first, then bounded."""

from __future__ import annotations

from hrw_preflight.facts.model import HostFacts, Section
from hrw_preflight.hosts.redact import Redactor
from hrw_preflight.hosts.selection import parse_hosts_option
from hrw_preflight.hosts.targets import HostDefaults
from hrw_preflight.run.case import EVIDENCE_CHARS, Case
from hrw_preflight.verdicts import Verdict
from hrw_preflight.verdicts.catalogue import load_catalogue

SECRET = "Sw0rdfish-Secret"


def case_with_raw(raw: str) -> Case:
    [target] = parse_hosts_option(["ssh://root@h1"], [], HostDefaults())
    facts = HostFacts("h1", "linux", {"clock": Section("clock", {"epoch": 1}, raw=raw)})
    verdict = Verdict("passed", "clock read", sections=("clock",))
    scenario = load_catalogue().get("HRW-I03")
    return Case(target, scenario, "clock", facts, verdict, Redactor([SECRET]))


def test_a_secret_across_the_cut_is_masked_not_halved() -> None:
    header = len(case_with_raw("z").evidence) - 1
    raw = "x" * (EVIDENCE_CHARS - header - 8) + SECRET + "y" * 100  # unmasked, it straddles
    evidence, cut = case_with_raw(raw).report_evidence
    assert cut and SECRET[:2] not in evidence and "***" in evidence
    assert evidence.endswith("more chars not kept)")


def test_the_report_cut_is_the_only_cut() -> None:
    # A second, larger limit (16,000 characters per section) used to cut the evidence first,
    # and its marker never reached a report, which keeps 8,000.
    raw = "a" * 20_000 + "THE-END"
    case = case_with_raw(raw)
    assert case.evidence.endswith("THE-END")
    evidence, cut = case.report_evidence
    assert cut and evidence.count("more chars") == 1
    assert evidence.endswith(f"... ({len(case.evidence) - EVIDENCE_CHARS} more chars not kept)")


def test_sections_are_masked_and_headed() -> None:
    evidence = case_with_raw(f"line one\npassword={SECRET}\n").evidence
    assert evidence.startswith("[clock] taken ") and "(read)" in evidence
    assert SECRET not in evidence and "password=***" in evidence
