"""Worker kinds and the extension-based worker's verdicts on hand-made facts of both platforms,
in the shapes of ``hrw_preflight/facts/ext_schema.py``."""

from __future__ import annotations

from typing import Any

import pytest

from hrw_preflight.facts.ext_schema import (
    ARC_HIS_HOST,
    LINUX_HANDLER,
    NO_IDENTITY_ENDPOINT,
    WINDOWS_HANDLER,
    account_endpoints,
)
from hrw_preflight.facts.kind import derive_kind, describe
from hrw_preflight.facts.model import HostFacts, Section
from hrw_preflight.facts.windows.kind_markers import windows_kind
from hrw_preflight.verdicts import Settings, judge
from hrw_preflight.verdicts.catalogue import load_catalogue
from hrw_preflight.verdicts.certs import load_trusted_cas

ACCOUNT = "https://0f7c.jrds.weu.azure-automation.net/automationAccounts/0f7c"
SETTINGS = Settings(trusted=load_trusted_cas([]))
TOKEN = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.lab-token-never-shown"


def status(state: str = "success", message: str = "Enabled", **extra: Any) -> dict[str, Any]:
    return {
        "seq": 3,
        "file": "/var/lib/waagent/x/status/3.status",
        "status": state,
        "code": 0,
        "operation": "Enable",
        "configuration_applied": "2026-12-01T10:00:00Z",
        "message": message,
        "substatus": [
            {"name": "HybridWorker", "status": state, "code": 0, "message": "worker registered"}
        ],
        **extra,
    }


def extension(platform: str = "linux", installed: bool = True, **extra: Any) -> dict[str, Any]:
    windows = platform == "windows"
    data: dict[str, Any] = {
        "installed": installed,
        "handler": WINDOWS_HANDLER if windows else LINUX_HANDLER,
        "folder": None,
        "version": None,
        "handler_state_kept": not windows,
        "handler_state": None,
        "seq": None,
        "seq_source": None,
        "status": None,
        "automation_account_url": None,
        "account_url_source": None,
        "proxy": None,
        "endpoints": account_endpoints(None, False),
    }
    if installed:
        data.update(
            folder=f"C:\\Packages\\Plugins\\{WINDOWS_HANDLER}\\1.1.13"
            if windows
            else f"/var/lib/waagent/{LINUX_HANDLER}-1.1.13",
            version="1.1.13",
            handler_state=None if windows else "Enabled",
            seq=3,
            seq_source="mrseq",
            status=status(),
            automation_account_url=ACCOUNT,
            account_url_source="settings",
            endpoints=account_endpoints(ACCOUNT, extra.pop("arc", False)),
        )
    data.update(extra)
    return data


def answer(status_code: int | None, **extra: Any) -> dict[str, Any]:
    return {
        "answered": status_code is not None,
        "status": status_code,
        "token_present": False,
        "challenge": None,
        "error": None,
        **extra,
    }


def service(platform: str = "linux", **extra: Any) -> dict[str, Any]:
    linux = platform == "linux"
    data: dict[str, Any] = {
        "name": "hwd" if linux else "HybridWorkerService",
        "exists": True,
        "state": "active" if linux else "Running",
        "start": "enabled" if linux else "Auto",
        "worker_user": "hweautomation" if linux else None,
        "worker_uid": 996 if linux else None,
        "processes": [
            {"pid": 812, "uid": 996, "user": "hweautomation", "args": "/usr/bin/python3 hw.py"}
        ]
        if linux
        else [],
    }
    data.update(extra)
    return data


def facts(
    platform: str = "linux",
    *,
    agent: list[str] | None = None,
    ext: dict[str, Any] | None = None,
    arc: dict[str, Any] | None = None,
    imds: dict[str, Any] | None = None,
    arc_answer: dict[str, Any] | None = None,
    svc: dict[str, Any] | None = None,
    remnants: dict[str, list[str]] | None = None,
    acl: dict[str, Any] | None = None,
    network: dict[str, Any] | None = None,
) -> HostFacts:
    """Return a host's facts: by default an extension-based Azure VM whose IMDS hands out a
    token (seen only as 'a token was present')."""
    arc_data = arc or {"installed": False, "markers": [], "himds_running": None, "himds": "-"}
    sections = {
        "extension": Section("extension", ext if ext is not None else extension(platform)),
        "ext_service": Section("ext_service", svc or service(platform)),
        "arc": Section("arc", arc_data),
        "identity": Section(
            "identity",
            {
                "imds": imds or answer(200, token_present=True),
                "arc": arc_answer,
            },
        ),
        "remnants": Section("remnants", remnants or {"agent": [], "extension": []}),
        "worker": Section(
            "worker",
            {
                "workspace_id": None,
                "update_management": False,
                "user_worker": False,
                "endpoints": {},
            },
        ),
        "network": Section("network", network or {}),
    }
    if platform == "windows":
        sections["arc_acl"] = Section(
            "arc_acl",
            acl
            or {"account": None, "tokens": None, "extension_folder": None, "exit_2148734720": []},
        )
    sections["kind"] = derive_kind(agent or [], None, sections)
    return HostFacts("h", platform, sections)  # type: ignore[arg-type]


def verdict(sid: str, item: str, host: HostFacts) -> Any:
    return judge(sid, item, host, SETTINGS)


ARC = {"installed": True, "markers": ["/opt/azcmagent"], "himds_running": True, "himds": "running"}
CHALLENGE = "Basic realm=/var/opt/azcmagent/tokens/9b1c.key"


# --- kinds --------------------------------------------------------------------------------


@pytest.mark.parametrize("platform", ["linux", "windows"])
def test_kind_of_each_combination(platform: str) -> None:
    both = facts(platform, agent=["omsadmin.conf"])
    assert both.sections["kind"].data["kind"] == "both"  # type: ignore[index]
    none = facts(platform, ext=extension(platform, installed=False), imds=answer(None))
    data = none.sections["kind"].data
    assert data is not None and data["kind"] == "none" and data["place"] == "none"
    arc = facts(platform, arc=ARC, arc_answer=answer(401, challenge=CHALLENGE))
    assert describe(arc.sections["kind"].data) == "extension-based on Arc"
    vm = facts(platform)
    assert describe(vm.sections["kind"].data) == "extension-based on Azure VM"


def test_kind_unreadable_when_nothing_tells_it() -> None:
    section = derive_kind(None, "omsadmin.conf: permission denied", {})
    assert section.data is None and "permission denied" in str(section.error)


def test_agent_scenario_on_extension_host_is_skipped_and_the_other_way_round() -> None:
    ext_only = facts("linux")
    skip = verdict("HRW-L01", "manager", ext_only)
    assert skip.outcome == "skipped" and "agent-based worker" in skip.seen
    assert "extension-based on Azure VM" in skip.seen
    agent_only = facts("linux", agent=["oms.conf"], ext=extension(installed=False))
    skip = verdict("HRW-X01", "status", agent_only)
    assert skip.outcome == "skipped" and "extension-based worker" in skip.seen


def test_unknown_kind_is_an_error_never_a_skip() -> None:
    host = facts("linux")
    host.sections["kind"] = Section.failed("kind", "omsadmin.conf: permission denied")
    result = verdict("HRW-L02", "omsagent", host)
    assert result.outcome == "error" and "permission denied" in result.seen


def test_windows_probe_without_extension_sections_skips_saying_so() -> None:
    sections = {
        "service": Section("service", {"exists": True, "name": "HealthService"}),
        "worker": Section("worker", {"version": None}),
    }
    host = HostFacts("w", "windows", {**sections, "kind": windows_kind(sections)})
    for sid, item in (
        ("HRW-X01", "status"),
        ("HRW-X05", "tokens-read"),
        ("HRW-X04", "agent-remnants"),
    ):
        result = verdict(sid, item, host)
        assert result.outcome == "skipped" and "windows probe does not read" in result.seen


@pytest.mark.parametrize("platform", ["linux", "windows"])
def test_k01_fails_only_when_no_worker_of_either_kind(platform: str) -> None:
    assert verdict("HRW-K01", "installed", facts(platform)).outcome == "passed"
    none = facts(platform, ext=extension(platform, installed=False))
    failed = verdict("HRW-K01", "installed", none)
    assert failed.outcome == "failed" and "no hybrid worker of either kind" in failed.seen
    agent = facts(
        platform, agent=["service HealthService"], ext=extension(platform, installed=False)
    )
    assert verdict("HRW-K01", "installed", agent).outcome == "passed"


def test_k01_is_not_an_image_check() -> None:
    assert "image" not in load_catalogue().get("HRW-K01").profiles


@pytest.mark.parametrize("platform", ["linux", "windows"])
def test_r01_fails_with_the_retirement_date_and_the_remnants(platform: str) -> None:
    migrating = facts(
        platform, agent=["/var/opt/microsoft/omsagent/state/automationworker/oms.conf"]
    )
    result = verdict("HRW-R01", "agent-worker", migrating)
    assert result.outcome == "failed"
    assert "31 August 2024" in result.expected and "oms.conf" in result.seen
    assert "migration under way" in result.seen
    remediation = load_catalogue().get("HRW-R01").remediation
    assert "Remove-HybridRunbookWorker" in remediation and "--deregister" in remediation
    assert verdict("HRW-R01", "agent-worker", facts(platform)).outcome == "passed"


# --- X01 ----------------------------------------------------------------------------------


def test_x01_healthy_linux_extension_passes_both_items() -> None:
    host = facts("linux")
    assert verdict("HRW-X01", "handler-state", host).outcome == "passed"
    result = verdict("HRW-X01", "status", host)
    assert result.outcome == "passed" and "worker registered" in result.seen


def test_x01_handler_state_not_enabled_fails() -> None:
    host = facts("linux", ext=extension(handler_state="FailedUpgrade"))
    result = verdict("HRW-X01", "handler-state", host)
    assert result.outcome == "failed" and "FailedUpgrade" in result.seen


def test_x01_error_status_shows_message_and_substatus() -> None:
    bad = status("error", "Enable failed", code=1)
    bad["substatus"][0].update(status="error", message="Invalid Authorization Token")
    result = verdict("HRW-X01", "status", facts("linux", ext=extension(status=bad)))
    assert result.outcome == "failed"
    assert "Enable failed" in result.seen and "Invalid Authorization Token" in result.seen


@pytest.mark.parametrize("platform", ["linux", "windows"])
def test_x01_transitioning_is_the_stuck_scenario(platform: str) -> None:
    host = facts(platform, ext=extension(platform, status=status("transitioning", "Installing")))
    result = verdict("HRW-X01", "status", host)
    assert result.outcome == "failed" and "stuck" in result.seen
    assert "extension_shim.sh" in load_catalogue().get("HRW-X01").remediation


def test_x01_windows_keeps_no_handler_state_file() -> None:
    host = facts("windows")
    skip = verdict("HRW-X01", "handler-state", host)
    assert skip.outcome == "skipped" and "HandlerState" in skip.seen
    assert verdict("HRW-X01", "status", host).outcome == "passed"


def test_x01_no_status_yet_or_no_settings_fails() -> None:
    assert verdict("HRW-X01", "status", facts(ext=extension(status=None))).outcome == "failed"
    no_seq = facts(ext=extension(seq=None, status=None))
    assert "no settings" in verdict("HRW-X01", "status", no_seq).seen


def test_x01_unreadable_extension_is_an_error() -> None:
    host = facts("linux")
    host.sections["extension"] = Section.failed("extension", "HandlerState: permission denied")
    # The kind still says the extension is installed when the folder was seen; here the
    # whole section is unreadable, so the kind cannot say and the check is an error.
    host.sections["kind"] = derive_kind([], None, host.sections)
    assert verdict("HRW-X01", "status", host).outcome == "error"


# --- X02 ----------------------------------------------------------------------------------


def test_x02_linux_active_enabled_with_hweautomation_processes() -> None:
    host = facts("linux")
    for item in ("running", "start", "worker-user"):
        assert verdict("HRW-X02", item, host).outcome == "passed", item


def test_x02_linux_stopped_disabled_and_no_user() -> None:
    host = facts("linux", svc=service(state="inactive", start="disabled", processes=[]))
    assert "inactive" in verdict("HRW-X02", "running", host).seen
    assert verdict("HRW-X02", "start", host).outcome == "failed"
    assert verdict("HRW-X02", "worker-user", host).outcome == "failed"
    nouser = facts("linux", svc=service(worker_uid=None))
    assert "does not exist" in verdict("HRW-X02", "worker-user", nouser).seen


def test_x02_processes_of_another_user_do_not_count() -> None:
    other = [{"pid": 9, "uid": 0, "user": "root", "args": "/usr/bin/python3 hw.py"}]
    host = facts("linux", svc=service(processes=other))
    assert verdict("HRW-X02", "worker-user", host).outcome == "failed"


def test_x02_windows_service_running_auto() -> None:
    host = facts("windows")
    assert verdict("HRW-X02", "running", host).outcome == "passed"
    assert verdict("HRW-X02", "start", host).outcome == "passed"
    assert verdict("HRW-X02", "worker-user", host).outcome == "skipped"
    stopped = facts("windows", svc=service("windows", state="Stopped", start="Manual"))
    assert verdict("HRW-X02", "running", stopped).outcome == "failed"
    assert "Manual" in verdict("HRW-X02", "start", stopped).seen
    missing = facts("windows", svc=service("windows", exists=False))
    assert "not installed" in verdict("HRW-X02", "running", missing).seen


# --- X03 ----------------------------------------------------------------------------------


@pytest.mark.parametrize("platform", ["linux", "windows"])
def test_x03_azure_vm_token_answered(platform: str) -> None:
    result = verdict("HRW-X03", "identity", facts(platform))
    assert result.outcome == "passed" and "discarded on the host" in result.seen
    assert TOKEN not in repr(result)


def test_x03_azure_vm_without_system_identity_fails() -> None:
    imds = answer(400, error="invalid_request: Identity not found")
    result = verdict("HRW-X03", "identity", facts(imds=imds))
    assert result.outcome == "failed" and "Identity not found" in result.seen
    assert "Invalid Authorization Token" in result.seen


@pytest.mark.parametrize("platform", ["linux", "windows"])
def test_x03_arc_challenge_passes_and_stopped_himds_fails(platform: str) -> None:
    good = facts(platform, arc=ARC, imds=answer(None), arc_answer=answer(401, challenge=CHALLENGE))
    assert verdict("HRW-X03", "identity", good).outcome == "passed"
    stopped = dict(ARC, himds_running=False, himds="not running")
    bad = facts(platform, arc=stopped, imds=answer(None), arc_answer=answer(None, error="refused"))
    result = verdict("HRW-X03", "identity", bad)
    assert result.outcome == "failed" and "himds is not running" in result.seen
    no_challenge = facts(platform, arc=ARC, arc_answer=answer(200))
    assert verdict("HRW-X03", "identity", no_challenge).outcome == "failed"


def test_x03_neither_azure_nor_arc_quotes_the_article() -> None:
    host = facts(imds=answer(None, error="Network is unreachable"))
    result = verdict("HRW-X03", "identity", host)
    assert result.outcome == "failed" and NO_IDENTITY_ENDPOINT in result.seen


# --- X04 ----------------------------------------------------------------------------------


@pytest.mark.parametrize("platform", ["linux", "windows"])
def test_x04_remnants_without_their_kind_fail(platform: str) -> None:
    agent_left = ["/home/nxautomation/state/worker.conf"]
    ext_left = ["/home/hweautomation/state"]
    host = facts(
        platform,
        ext=extension(platform, installed=False),
        remnants={"agent": agent_left, "extension": ext_left},
    )
    a = verdict("HRW-X04", "agent-remnants", host)
    e = verdict("HRW-X04", "extension-remnants", host)
    assert a.outcome == "failed" and agent_left[0] in a.seen
    assert e.outcome == "failed" and ext_left[0] in e.seen


def test_x04_files_of_an_installed_kind_are_not_remnants() -> None:
    host = facts(agent=["oms.conf"], remnants={"agent": ["x"], "extension": ["y"]})
    assert verdict("HRW-X04", "agent-remnants", host).outcome == "skipped"
    assert verdict("HRW-X04", "extension-remnants", host).outcome == "skipped"
    clean = facts(ext=extension(installed=False))
    assert verdict("HRW-X04", "agent-remnants", clean).outcome == "passed"


# --- X05 ----------------------------------------------------------------------------------


def _acl(direct: bool, events: list[dict[str, str]] | None = None) -> dict[str, Any]:
    return {
        "account": "CONTOSO\\svc-runbooks",
        "tokens": {
            "path": "C:\\ProgramData\\AzureConnectedMachineAgent\\Tokens",
            "granted_directly": direct,
        },
        "extension_folder": {
            "path": f"C:\\Packages\\Plugins\\{WINDOWS_HANDLER}",
            "granted_directly": True,
        },
        "exit_2148734720": events or [],
    }


def test_x05_arc_custom_credential_grants() -> None:
    arc = {"arc": ARC, "arc_answer": answer(401, challenge=CHALLENGE)}
    good = facts("windows", acl=_acl(True), **arc)  # type: ignore[arg-type]
    for item in ("tokens-read", "extension-read-execute", "exit-2148734720"):
        assert verdict("HRW-X05", item, good).outcome == "passed", item
    event = {
        "time": "2026-12-01T09:00:00Z",
        "message": "Win32 Process Exited with code [2148734720]",
    }
    bad = facts("windows", acl=_acl(False, [event]), **arc)  # type: ignore[arg-type]
    assert "no Read entry of its own" in verdict("HRW-X05", "tokens-read", bad).seen
    assert verdict("HRW-X05", "exit-2148734720", bad).outcome == "failed"


def test_x05_skips_off_arc_and_without_custom_credential() -> None:
    assert verdict("HRW-X05", "tokens-read", facts("windows")).outcome == "skipped"
    arc = facts("windows", arc=ARC, arc_answer=answer(401, challenge=CHALLENGE))
    skip = verdict("HRW-X05", "tokens-read", arc)
    assert skip.outcome == "skipped" and "system account" in skip.seen


# --- G01 / G04 extension endpoints ---------------------------------------------------------


def test_account_endpoints_from_the_automation_account_url() -> None:
    ends = account_endpoints(ACCOUNT, True)
    assert ends["ext-jrds"] == "0f7c.jrds.weu.azure-automation.net"
    assert ends["ext-agentsvc"] == "0f7c.agentsvc.weu.azure-automation.net"
    assert ends["arc-his"] == ARC_HIS_HOST
    assert account_endpoints(ACCOUNT, False)["arc-login"] is None


def test_g01_judges_extension_endpoints_and_skips_agent_ones_on_extension_host() -> None:
    ok: dict[str, Any] = {
        "tcp": "ok",
        "tls": "ok",
        "detail": "",
        "chain_pem": [],
        "via_proxy": None,
    }
    blocked: dict[str, Any] = {
        "tcp": "timeout",
        "tls": "not-attempted",
        "detail": "",
        "chain_pem": [],
        "via_proxy": None,
    }
    host = facts(
        network={
            "0f7c.jrds.weu.azure-automation.net": ok,
            "0f7c.agentsvc.weu.azure-automation.net": blocked,
        }
    )
    assert verdict("HRW-G01", "ext-jrds", host).outcome == "passed"
    assert verdict("HRW-G01", "ext-agentsvc", host).outcome == "failed"
    skip = verdict("HRW-G01", "agentsvc", host)
    assert skip.outcome == "skipped" and "no agent-based worker" in skip.seen
    arc_skip = verdict("HRW-G01", "arc-his", host)
    assert arc_skip.outcome == "skipped" and "not an Arc-enabled server" in arc_skip.seen


def test_g01_no_worker_and_no_account_url_skips_extension_endpoints() -> None:
    host = facts(ext=extension(installed=False))
    skip = verdict("HRW-G04", "ext-jrds", host)
    assert skip.outcome == "skipped" and "--hrw-automation-account-url" in skip.seen
