"""Every verdict on recorded facts: a pass, a fail and malformed or unreadable input."""

from __future__ import annotations

from pathlib import Path

import pytest

from hrw_preflight.facts.ext_schema import EXTENSION_ROLES
from hrw_preflight.facts.linux import probe as linux
from hrw_preflight.facts.model import HostFacts, Section
from hrw_preflight.facts.params import ProbeParams
from hrw_preflight.verdicts import Settings, Verdict, judge
from hrw_preflight.verdicts.catalogue import load_catalogue
from hrw_preflight.verdicts.certs import load_trusted_cas
from tests.linux_samples import (
    AGENTSVC,
    BOUNDARY,
    JRDS,
    ODS,
    OMS,
    LinuxHost,
    Out,
    openssl_ok,
    openssl_timeout,
)
from tests.pki_samples import make_cert


@pytest.fixture(scope="module")
def chains() -> dict[str, list[str]]:
    root = make_cert("Lab Azure Root CA", None, ca=True)
    inter = make_cert("Lab Azure TLS Issuing CA", root, ca=True)
    sans = [
        "*.agentsvc.azure-automation.net",
        "*.azure-automation.net",
        "*.oms.opinsights.azure.com",
        "*.ods.opinsights.azure.com",
    ]
    leaf = make_cert("azure", inter, ca=False, sans=sans)
    forged = make_cert("Microsoft Azure RSA TLS Issuing CA 03", None, ca=True)
    intercepted = make_cert("azure", forged, ca=False, sans=sans)
    return {
        "root": [root.pem],
        "good": [leaf.pem, inter.pem],
        "intercepted": [intercepted.pem, forged.pem],
    }


@pytest.fixture(scope="module")
def settings(chains: dict[str, list[str]], tmp_path_factory: pytest.TempPathFactory) -> Settings:
    path: Path = tmp_path_factory.mktemp("pki") / "trusted.pem"
    path.write_text(chains["root"][0])
    return Settings(trusted=load_trusted_cas([str(path)]))


def linux_facts(
    host: LinuxHost, network: list[str] | None = None, skew_s: float = 0.0
) -> HostFacts:
    sections = linux.parse_facts(
        Out(host.facts_output()), ProbeParams(), host.window(skew_s), boundary=BOUNDARY
    )
    roles = {AGENTSVC: "agentsvc", JRDS: "jrds", OMS: "oms", ODS: "ods"}
    if network is not None:
        sections["network"] = linux.parse_network(Out("\n".join(network)), roles, None)
    return HostFacts("h1", "linux", sections)


def net(chain: list[str], blocked: tuple[str, ...] = ()) -> list[str]:
    lines: list[str] = []
    for host in (AGENTSVC, JRDS, OMS, ODS):
        lines += openssl_timeout(host) if host in blocked else openssl_ok(host, chain)
    return lines


def outcome(sid: str, item: str, facts: HostFacts, settings: Settings) -> str:
    return judge(sid, item, facts, settings).outcome


def _not_passing_by_design(sid: str, item: str, verdict: Verdict) -> bool:
    """Return whether a healthy agent-based host's verdict is meant not to pass: R01 fails
    (the agent-based worker is retired) and the extension's checks and endpoints are skipped
    (no extension-based worker), each saying why."""
    if sid == "HRW-R01":
        return verdict.outcome == "failed" and "retired on 31 August 2024" in verdict.expected
    if sid.startswith("HRW-X") or item in EXTENSION_ROLES:
        return verdict.outcome == "skipped" and bool(verdict.seen)
    return False


def test_healthy_linux_host_passes_everything(
    chains: dict[str, list[str]], settings: Settings
) -> None:
    facts = linux_facts(LinuxHost(), net(chains["good"]))
    # Applies only when the DSC configuration enables no solution; this host enables both.
    not_applicable = {("HRW-L04", "no-workers-without-solution")}
    for scenario in load_catalogue().scenarios:
        if scenario.applies_to("linux"):
            for item in scenario.items:
                verdict = judge(scenario.id, item, facts, settings)
                if _not_passing_by_design(scenario.id, item, verdict):
                    continue
                wanted = "skipped" if (scenario.id, item) in not_applicable else "passed"
                assert verdict.outcome == wanted, (scenario.id, item, verdict)


@pytest.mark.parametrize(
    ("host", "failing"),
    [
        (
            LinuxHost(agent=False),
            {
                ("HRW-L01", "manager"),
                ("HRW-L01", "auto-registered"),
                ("HRW-L01", "user"),
                ("HRW-L02", "omsagent"),
                # Microsoft's DSC test: "worker manager isn't running or is not latest"
                ("HRW-L04", "manager-version"),
            },
        ),
        (
            LinuxHost(owner=(997, "omsagent")),
            {
                ("HRW-L01", "manager"),
                ("HRW-L01", "auto-registered"),
                ("HRW-L01", "user"),
                # `ps -u nxautomation` shows no manager, so Microsoft's test fails too
                ("HRW-L04", "manager-version"),
            },
        ),
        (
            LinuxHost(log_lines=["[2026/11/27 08:00:01] The specified class does not exist.."]),
            {("HRW-L03", "omsconfig-log")},
        ),
        (
            LinuxHost(cpus=1, mem_kb=2 * 1024 * 1024, avail_kb=1024 * 1024),
            {("HRW-G02", "cpu"), ("HRW-G02", "memory")},
        ),
        (LinuxHost(load=3.8, avail_kb=200 * 1024), {("HRW-G03", "cpu"), ("HRW-G03", "memory")}),
        (
            LinuxHost(nxautomation_uid=None),
            {("HRW-L01", "manager"), ("HRW-L01", "auto-registered"), ("HRW-L01", "user")},
        ),
        # Any account can start a process named omsagent; only the omsagent account's counts.
        (LinuxHost(daemon=(1001, "hrwother")), {("HRW-L02", "omsagent")}),
        (LinuxHost(daemon=(0, "root")), {("HRW-L02", "omsagent")}),
        (LinuxHost(omsagent_uid=None), {("HRW-L02", "omsagent")}),
    ],
)
def test_each_fault_fails_exactly_its_checks(
    host: LinuxHost, failing: set[tuple[str, str]], chains: dict[str, list[str]], settings: Settings
) -> None:
    facts = linux_facts(host, net(chains["good"]))
    seen = {
        (s.id, i)
        for s in load_catalogue().scenarios
        if s.applies_to("linux")
        for i in s.items
        if outcome(s.id, i, facts, settings) == "failed"
    }
    assert seen == failing | {("HRW-R01", "agent-worker")}  # every one is agent-based


def test_user_worker_process_missing_fails_only_that_item(
    chains: dict[str, list[str]], settings: Settings
) -> None:
    host = LinuxHost(
        replacements=(
            (" 8595 998", " 8595 998 x"),
            ("diy/worker.conf managed", "diy/NOT-worker.conf managed"),
        )
    )
    text = host.facts_output()
    facts = HostFacts("h", "linux", linux.parse_facts(Out(text), ProbeParams(), boundary=BOUNDARY))
    assert outcome("HRW-L01", "user", facts, settings) == "failed"
    assert outcome("HRW-L01", "manager", facts, settings) == "passed"


def test_configuration_driven_skips_carry_a_reason(settings: Settings) -> None:
    facts = linux_facts(LinuxHost(auto=False, user=False), [])
    verdict = judge("HRW-L01", "auto-registered", facts, settings)
    assert verdict.outcome == "skipped" and "Update Management" in verdict.seen
    assert outcome("HRW-L01", "user", facts, settings) == "skipped"
    assert outcome("HRW-G01", "jrds", facts, settings) == "skipped"


def test_network_faults(chains: dict[str, list[str]], settings: Settings) -> None:
    blocked = linux_facts(LinuxHost(), net(chains["good"], blocked=(AGENTSVC, JRDS, OMS, ODS)))
    assert outcome("HRW-G01", "oms", blocked, settings) == "failed"
    assert outcome("HRW-G04", "oms", blocked, settings) == "failed"
    intercepted = linux_facts(LinuxHost(), net(chains["intercepted"]))
    assert outcome("HRW-G01", "oms", intercepted, settings) == "passed"
    verdict = judge("HRW-G04", "oms", intercepted, settings)
    assert verdict.outcome == "failed" and "Microsoft" in verdict.seen


def test_unreadable_or_malformed_facts_are_errors_never_passes(settings: Settings) -> None:
    unreadable = HostFacts(
        "h",
        "linux",
        {
            n: Section.failed(n, "permission denied")
            for n in ("worker", "processes", "omsconfig_log", "hardware", "pressure", "network")
        },
    )
    malformed = HostFacts(
        "h",
        "linux",
        {
            "hardware": Section("hardware", {"logical_processors": "two"}),
            "pressure": Section("pressure", {"cpu_load": "high"}),
            "processes": Section("processes", {"procs": []}),
            "worker": Section("worker", {"endpoints": {}}),
            "network": Section("network", {}),
            "omsconfig_log": Section("omsconfig_log", {"exists": True}),
        },
    )
    unreachable = HostFacts("h", "linux", connect_error="ssh failed: Connection timed out")
    for facts in (unreadable, malformed, unreachable):
        for scenario in load_catalogue().scenarios:
            if scenario.applies_to("linux"):
                for item in scenario.items:
                    assert outcome(scenario.id, item, facts, settings) == "error", (
                        scenario.id,
                        item,
                    )


def test_garbled_chain_is_an_error(settings: Settings) -> None:
    bad = ["-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----"]
    facts = linux_facts(LinuxHost(), net(bad))
    assert outcome("HRW-G04", "agentsvc", facts, settings) == "error"


def test_thresholds_are_configurable(chains: dict[str, list[str]], settings: Settings) -> None:
    facts = linux_facts(LinuxHost(cpus=2), net(chains["good"]))
    strict = Settings(trusted=settings.trusted, min_logical_processors=4)
    assert outcome("HRW-G02", "cpu", facts, strict) == "failed"
    assert outcome("HRW-G02", "cpu", facts, settings) == "passed"


def test_missing_tool_fails_only_its_item(settings: Settings) -> None:
    facts = linux_facts(LinuxHost(missing_tools=("sudo", "python3")))
    assert outcome("HRW-I01", "sudo", facts, settings) == "failed"
    assert outcome("HRW-I01", "python", facts, settings) == "passed"  # python2 is there
    none = linux_facts(LinuxHost(missing_tools=("python3", "python2", "python")))
    assert judge("HRW-I01", "python", none, settings).seen.startswith("none of python3")


def test_clock_skew_counts_the_measurement_uncertainty(settings: Settings) -> None:
    assert outcome("HRW-I03", "clock", linux_facts(LinuxHost(), skew_s=60), settings) == "passed"
    assert outcome("HRW-I03", "clock", linux_facts(LinuxHost(), skew_s=900.5), settings) == (
        "passed"
    )  # within the +/- 1.2 s the measurement cannot rule out
    behind = judge("HRW-I03", "clock", linux_facts(LinuxHost(), skew_s=-1200), settings)
    assert behind.outcome == "failed" and "1200 s behind" in behind.seen
    no_window = HostFacts(
        "h",
        "linux",
        linux.parse_facts(Out(LinuxHost().facts_output()), ProbeParams(), boundary=BOUNDARY),
    )
    assert outcome("HRW-I03", "clock", no_window, settings) == "error"
