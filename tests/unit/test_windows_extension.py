"""The Windows probe's extension-based worker sections: parsed from recorded (synthetic)
emulator output and from 5.1-shaped parts, and judged by the HRW-K01/R01/X01-X05 verdicts
for every Windows lab profile through the emulator's engine."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

from hrw_preflight.facts.framing import Unreadable
from hrw_preflight.facts.model import HostFacts
from hrw_preflight.facts.params import ProbeParams
from hrw_preflight.facts.windows import extension
from hrw_preflight.facts.windows.probe import CommandTiming, build_invocation, parse_output
from hrw_preflight.verdicts import Settings, judge
from hrw_preflight.verdicts.catalogue import load_catalogue
from hrw_preflight.verdicts.certs import load_trusted_cas
from tests.windows_recorded import RECORDED_BOUNDARY, load_recorded, recorded_output

ACCOUNT = "HRWLAB\\hrwrunner"
TOKEN = "lab-imds-token-never-printed"


@dataclass(frozen=True)
class _Error:
    error_id: str
    category: str
    message: str


@dataclass(frozen=True)
class _Part:
    text: str
    error: _Error | None = None


def _parts(**values: Any) -> dict[str, _Part]:
    """Return parts as ConvertTo-Json would print each value (None: nothing printed)."""
    return {
        name.replace("_", " "): _Part("" if v is None else json.dumps(v))
        for name, v in values.items()
    }


# --- recorded emulator output ---------------------------------------------------------


def test_recorded_stuck_install_reads_the_status_file() -> None:
    sections = load_recorded("windows-v2-install-stuck")
    ext = sections["extension"].data
    assert ext is not None
    assert ext["installed"] and ext["version"] == "1.1.13" and ext["seq"] == 0
    assert ext["handler_state_kept"] is False
    assert ext["status"] is not None and ext["status"]["status"] == "transitioning"
    # The substatus message is CRLF-separated "[time] text" lines, one object not an array.
    sub = ext["status"]["substatus"]
    assert len(sub) == 1 and "\r\n" in sub[0]["message"] and sub[0]["message"].startswith("[")
    assert ext["automation_account_url"] and ext["account_url_source"] == "settings"
    assert ext["endpoints"]["ext-jrds"] and ".jrds." in ext["endpoints"]["ext-jrds"]
    assert ext["endpoints"]["ext-agentsvc"] == ext["endpoints"]["ext-jrds"].replace(
        ".jrds.", ".agentsvc."
    )
    assert ext["endpoints"]["arc-his"] is None  # not an Arc-enabled server
    service = sections["ext_service"].data
    assert service is not None and (service["state"], service["start"]) == ("Running", "Auto")
    kind = sections["kind"].data
    assert kind is not None and (kind["kind"], kind["place"]) == ("extension", "azure-vm")
    # The extension endpoints were handed to the network block.
    network = sections["network"].data
    assert network is not None
    assert network[ext["endpoints"]["ext-jrds"]]["role"] == "ext-jrds"


def test_recorded_no_identity_keeps_only_the_status_and_error() -> None:
    identity = load_recorded("windows-v2-no-identity")["identity"].data
    assert identity is not None
    assert identity["imds"] == {
        "answered": True,
        "status": 400,
        "token_present": False,
        "challenge": None,
        "error": "invalid_request: Identity not found",
    }
    assert identity["arc"] is None  # not asked without the Arc agent


def test_recorded_arc_host_reads_challenge_acls_and_exits() -> None:
    sections = load_recorded("windows-v2-arc-tokens-acl")
    arc = sections["arc"].data
    assert arc is not None and arc["installed"] and arc["himds_running"]
    identity = sections["identity"].data
    assert identity is not None and identity["arc"] is not None
    assert identity["arc"]["status"] == 401
    assert str(identity["arc"]["challenge"]).startswith("Basic realm=C:\\ProgramData\\")
    acl = sections["arc_acl"].data
    assert acl is not None and acl["account"] == ACCOUNT
    assert acl["tokens"] == {"path": extension.ARC_TOKENS_DIR, "granted_directly": False}
    assert acl["extension_folder"] == {"path": extension.HANDLER_DIR, "granted_directly": True}
    assert len(acl["exit_2148734720"]) == 1
    assert acl["exit_2148734720"][0]["time"].endswith("+00:00")  # from \/Date(ms)\/
    # 5.1's shapes on the wire: NTAccount as {"Value": ...}, rights and types as numbers.
    stdout = recorded_output("windows-v2-arc-tokens-acl")[0].decode("utf-8")
    assert '"IdentityReference":  {' in stdout and '"Value":  "HRWLAB\\\\hrwrunner"' in stdout
    assert '"FileSystemRights":  1179817' in stdout and '"AccessControlType":  0' in stdout
    assert "\\/Date(" in stdout


@pytest.mark.parametrize(
    "name", ["windows-v2-install-stuck", "windows-v2-no-identity", "windows-v2-arc-tokens-acl"]
)
def test_recorded_extension_hosts_carry_no_protected_settings_or_token(name: str) -> None:
    stdout, stderr, _ = recorded_output(name)
    text = (stdout + stderr).decode("utf-8").lower()
    assert "protectedsettings" not in text and "access_token" not in text


def test_recorded_agent_host_has_the_extension_sections_and_no_extension() -> None:
    sections = load_recorded("windows-healthy")
    ext = sections["extension"].data
    assert ext is not None and not ext["installed"] and ext["automation_account_url"] is None
    remnants = sections["remnants"].data
    assert remnants is not None
    assert remnants["agent"] == [extension.V1_KEY] and remnants["extension"] == []
    kind = sections["kind"].data
    assert kind is not None and (kind["kind"], kind["place"]) == ("agent", "none")


# --- 5.1 shapes the recordings do not all show -------------------------------------------


def _entry(who: Any, rights: int, kind: int = 0, inherited: bool = False) -> dict[str, Any]:
    return {
        "IdentityReference": who,
        "FileSystemRights": rights,
        "AccessControlType": kind,
        "IsInherited": inherited,
    }


@pytest.mark.parametrize(
    ("entries", "granted"),
    [
        ([_entry({"Value": ACCOUNT}, 0x120089)], True),
        ([_entry({"Value": "hrwlab\\HRWRUNNER"}, 0x1F01FF)], True),  # names compare caselessly
        ([_entry({"Value": ACCOUNT}, 0x120089, inherited=True)], False),  # inherited only
        ([_entry({"Value": "HRWLAB\\Operators"}, 0x120089)], False),  # via a group only
        ([_entry({"Value": ACCOUNT}, 0x120089), _entry({"Value": ACCOUNT}, 0x1, kind=1)], False),
        ([_entry({"Value": ACCOUNT}, 0x20000)], False),  # ReadPermissions alone is not Read
    ],
)
def test_read_grant_needs_an_own_uninherited_allow_entry(
    entries: list[dict[str, Any]], granted: bool
) -> None:
    grant = extension.grant("arc_acl", "C:\\x", entries, ACCOUNT, extension.READ)
    assert grant == {"path": "C:\\x", "granted_directly": granted}


def test_read_and_execute_needs_execute_too() -> None:
    read_only = [_entry({"Value": ACCOUNT}, 0x120089)]
    grant = extension.grant("arc_acl", "C:\\p", read_only, ACCOUNT, extension.READ_AND_EXECUTE)
    assert grant["granted_directly"] is False


def test_a_missing_sma_log_fails_the_arc_acl_section_with_its_reason() -> None:
    parts = _parts(account={"Account": "", "Arc": False})
    parts["exits"] = _Part(
        "",
        _Error(
            "NoMatchingLogsFound,Microsoft.PowerShell.Commands.GetWinEventCommand",
            "ObjectNotFound",
            'There is not an event log on the localhost computer that matches "Microsoft-SMA".',
        ),
    )
    with pytest.raises(Unreadable, match="There is not an event log"):
        extension.arc_acl(parts)


def test_extension_without_settings_has_no_sequence_or_status() -> None:
    folder = extension.HANDLER_DIR + "\\1.0.9"
    effective = {
        "AccountUrl": None,
        "AccountUrlSource": None,
        "Arc": False,
        "Endpoints": {"ext-jrds": None, "ext-agentsvc": None, "arc-his": None, "arc-login": None},
        "Proxy": None,
    }
    data = extension.extension(
        _parts(
            versions=[{"Name": "1.0.9", "FullName": folder}, {"Name": "1.0.10", "FullName": "x"}],
            settings=None,
            status=None,
            effective=effective,
        )
    )
    assert data["installed"] and data["version"] == "1.0.10"  # versions sort as numbers
    assert (data["seq"], data["status"], data["automation_account_url"]) == (None, None, None)


def test_an_unknown_account_url_source_is_unreadable() -> None:
    effective = {"AccountUrl": "https://x", "AccountUrlSource": "guess", "Endpoints": {}}
    with pytest.raises(Unreadable, match="AccountUrlSource"):
        extension.extension(_parts(versions=None, settings=None, status=None, effective=effective))


def test_identity_answer_must_say_whether_it_answered() -> None:
    with pytest.raises(Unreadable, match="Answered"):
        extension.identity(_parts(imds={"Status": 200}, arc=None))


# --- verdicts on the emulator's answers for every Windows lab profile ------------------


def _windows_profiles() -> list[Any]:
    from lab.fleet import expand_fleet
    from lab.profiles import load_profiles

    return [h for h in expand_fleet(load_profiles()) if h.platform == "windows"]


def _engine_facts(host: Any) -> tuple[HostFacts, bytes]:
    """Return the facts the real parser makes of the engine's answer for a lab host (no
    network: the endpoints do not resolve), and the raw output."""
    from lab.winrm_emulator.config import HostConfig
    from lab.winrm_emulator.engine import run_probe

    profile = host.resolved_profile()
    config = HostConfig(
        name=host.name,
        address="127.0.0.1",
        http_port=0,
        https_port=0,
        tls_cert="",
        tls_key="",
        username="u",
        password="unused",
        workspace_id=host.workspace_id,
        endpoints=host.endpoints,
        resolve={},
        proxy=None,
        profile=profile,
        account_url=host.account_url,
        imds_token=TOKEN,
    )
    credential = profile.get("worker_credential")
    params = ProbeParams(
        connect_timeout_s=0.1,
        worker_credential_account=credential["account"] if credential else None,
    )
    _, stdin = build_invocation(params, RECORDED_BOUNDARY)
    now = datetime.now(UTC)
    out = run_probe(stdin, config, now)
    timing = CommandTiming(now.timestamp() - 1, now.timestamp() + 1)
    sections = parse_output(
        out.stdout, out.stderr, out.exit_code, timing, boundary=RECORDED_BOUNDARY
    )
    return HostFacts(host.name, "windows", sections), out.stdout + out.stderr


KIND_CHECKS = [
    (s.id, item)
    for s in load_catalogue().scenarios
    if s.applies_to("windows") and s.id[:5] in ("HRW-K", "HRW-R", "HRW-X")
    for item in s.items
]


@pytest.mark.parametrize("host", _windows_profiles(), ids=lambda h: h.name)
def test_kind_and_extension_checks_fail_exactly_the_profiles_faults(host: Any) -> None:
    facts, raw = _engine_facts(host)
    assert TOKEN.encode() not in raw
    outcomes = {
        (sid, item): judge(sid, item, facts, Settings(trusted=load_trusted_cas([])))
        for sid, item in KIND_CHECKS
    }
    errors = {k: v.seen for k, v in outcomes.items() if v.outcome == "error"}
    assert not errors
    failing = {sid for (sid, _), v in outcomes.items() if v.outcome == "failed"}
    expected = {s for s in host.profile["expect_failing"] if s[:5] in ("HRW-K", "HRW-R", "HRW-X")}
    assert failing == expected
