"""The Linux probe's extension-based worker sections: parsed from linux_facts.sh's output in
its real framing, then judged, and the real script's identity request run against a fake
curl to show a token never leaves the host."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from hrw_preflight.facts.linux import probe as linux
from hrw_preflight.facts.model import HostFacts
from hrw_preflight.facts.params import ProbeParams
from hrw_preflight.verdicts import Settings, judge
from hrw_preflight.verdicts.certs import load_trusted_cas
from tests.linux_samples import (
    ACCOUNT_URL,
    BOUNDARY,
    EXT_DIR,
    Extension,
    LinuxHost,
    Out,
)

SETTINGS = Settings(trusted=load_trusted_cas([]))
SCRIPT = Path(linux.__file__).with_name("linux_facts.sh")
TOKEN = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.fake-curl-token-never-shown"


# The checks an extension-based Linux host answers from its own facts.
EXTENSION_CHECKS = [
    ("HRW-K01", "installed"),
    ("HRW-R01", "agent-worker"),
    ("HRW-X01", "handler-state"),
    ("HRW-X01", "status"),
    ("HRW-X02", "running"),
    ("HRW-X02", "start"),
    ("HRW-X02", "worker-user"),
    ("HRW-X03", "identity"),
    ("HRW-X04", "agent-remnants"),
]


def facts_of(host: LinuxHost, params: ProbeParams | None = None) -> HostFacts:
    sections = linux.parse_facts(
        Out(host.facts_output()), params or ProbeParams(), host.window(), boundary=BOUNDARY
    )
    return HostFacts("h", "linux", sections)


def v2(**extra: object) -> LinuxHost:
    """Return an extension-based Azure VM without the agent-based worker."""
    fields: dict[str, object] = {"agent_installed": False, "ext": Extension(), "imds": 200}
    fields.update(extra)
    return LinuxHost(**fields)  # type: ignore[arg-type]


def outcome(sid: str, item: str, facts: HostFacts) -> str:
    return judge(sid, item, facts, SETTINGS).outcome


def test_healthy_extension_host_is_read_and_passes() -> None:
    facts = facts_of(v2())
    kind = facts.sections["kind"].data
    assert kind is not None and kind["kind"] == "extension" and kind["place"] == "azure-vm"
    ext = facts.sections["extension"].data
    assert ext is not None and ext["handler_state"] == "Enabled" and ext["seq"] == 3
    assert ext["automation_account_url"] == ACCOUNT_URL
    assert ext["endpoints"]["ext-jrds"] == "0f7c.jrds.eus.azure-automation.net"
    assert "MIIB-encrypted" not in facts.sections["extension"].raw  # protected part never kept
    for sid, item in EXTENSION_CHECKS:
        assert outcome(sid, item, facts) == "passed", (sid, item)
    assert outcome("HRW-L01", "manager", facts) == "skipped"
    assert outcome("HRW-X04", "extension-remnants", facts) == "skipped"


@pytest.mark.parametrize(
    ("host", "failing"),
    [
        (v2(ext=Extension(status="error", message="Enable failed")), {("HRW-X01", "status")}),
        (v2(ext=Extension(status="transitioning")), {("HRW-X01", "status")}),
        (v2(ext=Extension(handler_state="Installed")), {("HRW-X01", "handler-state")}),
        (
            v2(ext=Extension(hwd=("loaded", "inactive", "disabled"), hwe_running=False)),
            {("HRW-X02", "running"), ("HRW-X02", "start"), ("HRW-X02", "worker-user")},
        ),
        (v2(imds=400), {("HRW-X03", "identity")}),
        (v2(imds=None), {("HRW-X03", "identity")}),
        (v2(imds=None, arc=True, himds_running=False), {("HRW-X03", "identity")}),
        (
            v2(remnants=("remnant_agent=/home/nxautomation/state/worker.conf",)),
            {("HRW-X04", "agent-remnants")},
        ),
    ],
)
def test_each_extension_fault_fails_its_check(
    host: LinuxHost, failing: set[tuple[str, str]]
) -> None:
    facts = facts_of(host)

    assert {c for c in EXTENSION_CHECKS if outcome(*c, facts) == "failed"} == failing


def test_arc_host_passes_with_the_challenge() -> None:
    facts = facts_of(v2(imds=None, arc=True))
    kind = facts.sections["kind"].data
    assert kind is not None and kind["place"] == "arc"
    assert outcome("HRW-X03", "identity", facts) == "passed"
    ext = facts.sections["extension"].data
    assert ext is not None and ext["endpoints"]["arc-his"] == "gbl.his.arc.azure.com"


def test_migrating_host_fails_r01_only_among_kind_checks() -> None:
    facts = facts_of(LinuxHost(ext=Extension(), imds=200))
    kind = facts.sections["kind"].data
    assert kind is not None and kind["kind"] == "both"
    assert outcome("HRW-R01", "agent-worker", facts) == "failed"
    assert outcome("HRW-X01", "status", facts) == "passed"
    assert outcome("HRW-L01", "manager", facts) == "passed"


def test_no_worker_fails_k01_and_skips_both_kinds() -> None:
    facts = facts_of(LinuxHost(agent_installed=False, agent=False))
    assert outcome("HRW-K01", "installed", facts) == "failed"
    assert outcome("HRW-L02", "omsagent", facts) == "skipped"
    assert outcome("HRW-X02", "running", facts) == "skipped"
    assert outcome("HRW-G01", "ext-jrds", facts) == "skipped"
    assert outcome("HRW-G01", "agentsvc", facts) == "skipped"


def test_account_url_option_gives_an_image_its_endpoints() -> None:
    url = "https://9a9a.jrds.weu.azure-automation.net/automationAccounts/9a9a"
    facts = facts_of(
        LinuxHost(agent_installed=False, agent=False),
        ProbeParams(automation_account_url=url),
    )
    ext = facts.sections["extension"].data
    assert ext is not None and ext["account_url_source"] == "override"
    assert ext["endpoints"]["ext-agentsvc"] == "9a9a.agentsvc.weu.azure-automation.net"


def test_unreadable_waagent_is_an_error_never_not_installed() -> None:
    facts = facts_of(LinuxHost(agent_installed=False, agent=False, waagent="denied"))
    assert "not readable" in str(facts.sections["extension"].error)
    assert outcome("HRW-K01", "installed", facts) == "error"


def test_linked_handler_state_is_an_error() -> None:
    host = v2(files_rc={f"{EXT_DIR}/config/HandlerState": "symlink"})
    facts = facts_of(host)
    assert "symbolic link" in str(facts.sections["extension"].error)
    assert outcome("HRW-X01", "status", facts) == "error"


def test_systemd_that_does_not_answer_is_an_error() -> None:
    ext = Extension(hwd=("System has not been booted with systemd", "", ""))
    facts = facts_of(v2(ext=ext))
    assert outcome("HRW-X02", "running", facts) == "error"


def _run_script_with_fake_curl(tmp_path: Path, response: str) -> str:
    """Run the real linux_facts.sh on this machine (read-only) with a curl on PATH that
    prints ``response`` as an HTTP answer, and return its output."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "curl"
    fake.write_text(f"#!/bin/sh\ncat <<'EOF'\n{response}\nEOF\n")
    fake.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ.get('PATH', '/usr/bin:/bin')}"}
    result = subprocess.run(
        ["sh", "-c", SCRIPT.read_text(), "hrw-facts", BOUNDARY, "1024"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    return result.stdout


def test_a_token_is_dropped_on_the_host_by_the_real_script(tmp_path: Path) -> None:
    response = (
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n"
        f'{{"access_token":"{TOKEN}","expires_in":"86399","token_type":"Bearer"}}'
    )
    output = _run_script_with_fake_curl(tmp_path, response)
    assert TOKEN not in output
    sections = linux.parse_facts(Out(output), ProbeParams(), None, boundary=BOUNDARY)
    identity = sections["identity"].data
    assert identity is not None
    assert identity["imds"]["status"] == 200 and identity["imds"]["token_present"] is True
    assert all(TOKEN not in s.raw and TOKEN not in repr(s.data) for s in sections.values())


def test_the_real_script_reports_imds_errors_and_challenges(tmp_path: Path) -> None:
    response = (
        "HTTP/1.1 400 Bad Request\r\nWWW-Authenticate: Basic realm=/var/opt/azcmagent/t.key\r\n"
        '\r\n{"error":"invalid_request","error_description":"Identity not found"}'
    )
    output = _run_script_with_fake_curl(tmp_path, response)
    sections = linux.parse_facts(Out(output), ProbeParams(), None, boundary=BOUNDARY)
    identity = sections["identity"].data
    assert identity is not None
    imds = identity["imds"]
    assert imds["status"] == 400 and not imds["token_present"]
    assert "Identity not found" in str(imds["error"])
    assert imds["challenge"] == "Basic realm=/var/opt/azcmagent/t.key"
