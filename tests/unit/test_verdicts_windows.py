"""Verdicts on recorded Windows facts: output in Windows PowerShell 5.1's shapes, as the lab's
engine produced it for each profile, parsed by the real Windows probe parser."""

from __future__ import annotations

from pathlib import Path

import pytest

from hrw_preflight.facts.model import HostFacts
from hrw_preflight.verdicts import Settings, judge
from hrw_preflight.verdicts.catalogue import load_catalogue
from hrw_preflight.verdicts.certs import load_trusted_cas
from tests.windows_recorded import load_recorded

CHECKS = [(s.id, i) for s in load_catalogue().scenarios if s.applies_to("windows") for i in s.items]
ROLES = ("agentsvc", "jrds", "oms", "ods")
G01 = {f"HRW-G01:{r}" for r in ROLES}
G04 = {f"HRW-G04:{r}" for r in ROLES}
EVENTS = {"HRW-W02:event-4502", "HRW-W03:exit-4294967295", "HRW-W04:sma-15011"} | {
    f"HRW-W04:om-{n}" for n in (2127, 2129, 2133, 2138, 4000, 4001, 4002)
}
R01 = {"HRW-R01:agent-worker"}  # every recording but one is of an agent-based worker, retired
NO_AGENT = {"windows-service-missing"}  # no HealthService: no agent-based worker
# The recordings are of hosts without the extension-based worker (and on no Azure VM or
# Arc): its checks and the extension endpoints of G01/G04 are skipped saying so, but for
# HRW-X04, which looks for leftovers of each kind not installed.
REMNANTS = {"HRW-X04:agent-remnants", "HRW-X04:extension-remnants"}
NO_EXTENSION = (
    {
        f"{s.id}:{i}"
        for s in load_catalogue().scenarios
        if s.applies_to("windows") and s.id.startswith("HRW-X")
        for i in s.items
    }
    | {
        f"HRW-{g}:{r}"
        for g in ("G01", "G04")
        for r in ("ext-jrds", "ext-agentsvc", "arc-his", "arc-login")
    }
) - REMNANTS
AGENT_ONLY = {
    f"{s.id}:{i}"
    for s in load_catalogue().scenarios
    if s.applies_to("windows") and s.kinds == ("agent",)
    for i in s.items
}
# recording -> the checks that fail besides R01. A check errors exactly when a section it
# needs (catalogue `needs`) is unreadable in the recording (but for the skipped ones, and
# EXTRA_ERRORS); everything else must pass.
EXPECTED: dict[str, set[str]] = {
    "windows-healthy": set(),
    "windows-progress-stderr": set(),  # CLIXML progress on stderr is not an error
    "windows-healthservice-stopped": {"HRW-W01:HealthService"},
    # No MMA: no agent-based worker, so no R01 and W01-W04 and the agent endpoints of
    # G01/G04 are skipped (the MMA's configuration cannot be loaded: no workspace).
    # Neither kind of worker: K01 fails.
    "windows-service-missing": {"HRW-K01:installed"},
    "windows-event-4502": {"HRW-W02:event-4502"},
    "windows-sma-4294967295": {"HRW-W03:exit-4294967295", "HRW-W04:sma-15011"},
    "windows-underspec": {"HRW-G02:cpu", "HRW-G02:memory"},
    "windows-resource-pressure": {"HRW-G03:cpu", "HRW-G03:memory"},
    "windows-tls-intercepted": G04,
    "windows-443-blocked": G01 | G04,
    "windows-proxy-no-password": G01 | G04,
    "windows-proxy-unreadable": set(),
    "windows-missing-log": set(),
    "windows-access-denied": set(),
    # The unformattable 4502 cannot be cleared; the 2138 next to it is still found by id.
    "windows-event-unformattable": {"HRW-W04:om-2138"},
    "windows-garbled-json": set(),
    "windows-cut-off": set(),
    "windows-connectivity-errors": G01 | G04,  # refused, timeout, unresolved
    "windows-dotnet-452": {"HRW-I02:dotnet-4.6.2"},
    # SChannel refuses the TLS 1.2-only handshake: the endpoints cannot be reached over TLS.
    "windows-tls12-client-disabled": {"HRW-I02:tls12-client"} | G01 | G04,
    "windows-powershell-4": {"HRW-I02:powershell-5.1"},
    "windows-no-strong-crypto": {"HRW-I02:dotnet-strong-crypto"},
    "windows-clock-ahead": {"HRW-I03:clock"},
}
SMA_CHECKS = {"HRW-W03:exit-4294967295", "HRW-W04:sma-15011"}
EXTRA_ERRORS = {
    # Errors inside a readable section: a fact it holds says the check cannot be judged.
    "windows-proxy-unreadable": G01 | G04,  # probed directly: not the agent's route
    # One missing or unreadable log errors the checks on that log only.
    "windows-missing-log": SMA_CHECKS,
    "windows-access-denied": EVENTS - SMA_CHECKS,
    "windows-event-unformattable": {"HRW-W02:event-4502"},
}
# Spot checks that the derivation above errors what it should.
ERRORING_AT_LEAST = {
    "windows-garbled-json": {"HRW-G02:cpu", "HRW-G02:memory"},
    "windows-cut-off": G01 | G04 | EVENTS,
}


def erroring(facts: HostFacts) -> set[str]:
    """Return the checks whose needed sections are unreadable in ``facts``."""
    unreadable = {name for name, section in facts.sections.items() if section.data is None}
    return {
        f"{s.id}:{item}"
        for s in load_catalogue().scenarios
        if s.applies_to("windows") and unreadable & set(s.needs)
        for item in s.items
    }


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Trust the CA that issued the recordings' healthy chain (the recordings' own lab CA)."""
    chain = load_recorded("windows-healthy")["network"].data
    assert chain is not None
    top = next(iter(chain.values()))["chain_pem"][-1]
    path: Path = tmp_path_factory.mktemp("pki") / "recording-ca.pem"
    path.write_text(top)
    return Settings(trusted=load_trusted_cas([str(path)]))


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_recorded_profile_gives_exactly_its_outcomes(name: str, settings: Settings) -> None:
    facts = HostFacts(name, "windows", load_recorded(name))
    outcomes = {f"{sid}:{item}": judge(sid, item, facts, settings) for sid, item in CHECKS}
    no_agent = name in NO_AGENT
    failing = EXPECTED[name] if no_agent else EXPECTED[name] | R01
    # The agent's registry key is in use where the agent is installed: no remnant to judge.
    # (judged only once the remnants section was read).
    read = facts.sections["remnants"].data is not None
    in_use = {"HRW-X04:agent-remnants"} if read and not no_agent else set()
    skipping = NO_EXTENSION | in_use | (AGENT_ONLY | G01 | G04 if no_agent else set())
    errors = erroring(facts) - skipping | EXTRA_ERRORS.get(name, set())
    assert errors >= ERRORING_AT_LEAST.get(name, set())
    assert {k for k, v in outcomes.items() if v.outcome == "failed"} == failing
    assert {k for k, v in outcomes.items() if v.outcome == "error"} == errors
    assert {k for k, v in outcomes.items() if v.outcome == "skipped"} == skipping
    assert all(
        v.outcome == "passed" for k, v in outcomes.items() if k not in failing | errors | skipping
    ), outcomes
    for key in NO_EXTENSION:
        assert "does not read" not in outcomes[key].seen, (key, outcomes[key].seen)


def test_failure_texts_say_what_was_seen(settings: Settings) -> None:
    stopped = HostFacts("w", "windows", load_recorded("windows-healthservice-stopped"))
    seen = judge("HRW-W01", "HealthService", stopped, settings).seen
    assert seen == "HealthService State Stopped, StartMode Auto"
    event = HostFacts("w", "windows", load_recorded("windows-event-4502"))
    seen = judge("HRW-W02", "event-4502", event, settings).seen
    assert "1 event(s)" in seen and "4502" in seen
    intercepted = HostFacts("w", "windows", load_recorded("windows-tls-intercepted"))
    assert "thumbprint" in judge("HRW-G04", "oms", intercepted, settings).seen


def test_unknown_command_answer_errors_every_check_after_it(settings: Settings) -> None:
    """The engine fails the first block it does not know, as PowerShell would stop there:
    the service block before it was answered, everything after it is an error."""
    facts = HostFacts("w", "windows", load_recorded("windows-unknown-command"))
    outcomes = {(sid, item): judge(sid, item, facts, settings).outcome for sid, item in CHECKS}
    assert outcomes.pop(("HRW-W01", "HealthService")) == "passed"
    assert outcomes.pop(("HRW-K01", "installed")) == "passed"  # HealthService was read
    assert outcomes.pop(("HRW-R01", "agent-worker")) == "failed"
    skipped = {f"{sid}:{item}" for (sid, item), o in outcomes.items() if o == "skipped"}
    # The extension section comes after the unknown block: whether the extension-based
    # worker is installed is unknown, so its checks error too instead of being skipped.
    assert skipped == set()
    assert {o for k, o in outcomes.items() if f"{k[0]}:{k[1]}" not in skipped} == {"error"}


def test_an_unreadable_agent_proxy_is_an_error_that_says_why(settings: Settings) -> None:
    facts = HostFacts("w", "windows", load_recorded("windows-proxy-unreadable"))
    worker = facts.sections["worker"].data
    assert worker is not None and worker["workspace_id"] and worker["proxy"] is None
    verdict = judge("HRW-G01", "agentsvc", facts, settings)
    assert verdict.outcome == "error"
    assert "proxy setting could not be read" in verdict.seen
    assert "PropertyNotFoundStrict" in verdict.seen


def test_missing_log_and_unformattable_event_say_why(settings: Settings) -> None:
    missing = HostFacts("w", "windows", load_recorded("windows-missing-log"))
    verdict = judge("HRW-W03", "exit-4294967295", missing, settings)
    assert "'Microsoft-SMA/Operational' does not exist on the host" in verdict.seen
    assert "not installed" in verdict.seen
    odd = HostFacts("w", "windows", load_recorded("windows-event-unformattable"))
    verdict = judge("HRW-W02", "event-4502", odd, settings)
    assert "could not format (The specified resource type cannot be found" in verdict.seen
    assert judge("HRW-W03", "exit-4294967295", odd, settings).outcome == "passed"


def test_cpu_load_says_what_was_measured_on_windows(settings: Settings) -> None:
    facts = HostFacts("w", "windows", load_recorded("windows-resource-pressure"))
    verdict = judge("HRW-G03", "cpu", facts, settings)
    assert verdict.outcome == "failed"
    assert verdict.seen == "all processors busy 0.97 of the time over 1 s (_Total processor time)"


def test_strong_crypto_is_judged_in_both_registry_views(settings: Settings) -> None:
    facts = HostFacts("w", "windows", load_recorded("windows-no-strong-crypto"))
    verdict = judge("HRW-I02", "dotnet-strong-crypto", facts, settings)
    assert verdict.outcome == "failed"
    assert verdict.seen == (
        "64-bit: SchUseStrongCrypto=1, SystemDefaultTlsVersions=None; "
        "32-bit: SchUseStrongCrypto=None, SystemDefaultTlsVersions=None"
    )
    healthy = HostFacts("w", "windows", load_recorded("windows-healthy"))
    assert judge("HRW-I02", "dotnet-strong-crypto", healthy, settings).outcome == "passed"


def test_tls12_client_disabled_fails_the_handshake_as_schannel_does(settings: Settings) -> None:
    facts = HostFacts("w", "windows", load_recorded("windows-tls12-client-disabled"))
    verdict = judge("HRW-G01", "agentsvc", facts, settings)
    assert verdict.outcome == "failed"
    assert "do not possess a common algorithm" in verdict.seen
    network = facts.sections["network"].data
    assert network is not None
    assert {(r["tcp"], r["tls"]) for r in network.values()} == {("ok", "failed")}
