"""The Windows probe: its invocation, and parsing recorded and malformed PowerShell 5.1 output."""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass

import pytest
from cryptography import x509

from hrw_preflight.facts.params import ProbeParams
from hrw_preflight.facts.windows.clixml import decode_stderr
from hrw_preflight.facts.windows.probe import (
    BOOTSTRAP,
    COMMAND_PREFIX,
    SECTIONS,
    CommandTiming,
    build_invocation,
    collect,
    parse_output,
    script_text,
)
from hrw_preflight.hosts.proxy_conf import ProxyFormatError
from lab.winrm_emulator.clixml_writer import error_stream
from tests.windows_recorded import (
    PROXY_SECRET,
    RECORDED_AT,
    RECORDED_BOUNDARY,
    load_recorded,
    recorded_names,
    recorded_output,
    recorded_timing,
)

# Which sections each recording must leave unreadable; all others must hold data.
UNREADABLE = {
    # The extension-based worker's sections after the network block are cut off too.
    "windows-cut-off": {"network", "events", "ext_service", "identity", "remnants", "arc_acl"},
    # The Microsoft-SMA exits of HRW-X05 cannot be read either.
    "windows-missing-log": {"arc_acl"},
    # No MMA on an extension-only host: its COM configuration cannot be loaded.
    "windows-v2-install-stuck": {"worker"},
    "windows-v2-no-identity": {"worker"},
    "windows-v2-arc-tokens-acl": {"worker"},
    "windows-garbled-json": {"hardware"},
    "windows-service-missing": {"worker", "network"},
    "windows-unknown-command": set(SECTIONS)
    - {"service"},  # the engine stops at the first unknown block
}
HEALTHY_CRYPTO = {
    "64-bit": {
        "key": "HKLM\\SOFTWARE\\Microsoft\\.NETFramework\\v4.0.30319",
        "exists": True,
        "sch_use_strong_crypto": 1,
        "system_default_tls_versions": 1,
    },
    "32-bit": {
        "key": "HKLM\\SOFTWARE\\WOW6432Node\\Microsoft\\.NETFramework\\v4.0.30319",
        "exists": True,
        "sch_use_strong_crypto": 1,
        "system_default_tls_versions": 1,
    },
}
HEALTHY_PREREQS = {
    "powershell_version": "5.1.17763.2452",
    "dotnet_release": 528040,
    "dotnet_strong_crypto": HEALTHY_CRYPTO,
    "tls12_client": {"enabled": None, "disabled_by_default": None},
}
TIMING = CommandTiming(started=1795770000.0, ended=1795770003.0)


def _decoded_command(command: str) -> str:
    assert command.startswith(COMMAND_PREFIX)
    return base64.b64decode(command[len(COMMAND_PREFIX) :]).decode("utf-16-le")


def marks(text: str) -> str:
    """Return ``text`` with the shorthand markers ``@@HRW-BEGIN`` etc. as the probe prints
    them in the recordings: the recorded boundary, a space, the keyword."""
    return text.replace("@@HRW-", RECORDED_BOUNDARY + " ")


def _block(name: str, body: str) -> str:
    return marks(f"@@HRW-BEGIN {name}\r\n{body}\r\n@@HRW-END {name}\r\n")


def _with_block(recording: str, name: str, body: str) -> bytes:
    """Return a recording's stdout with the block ``name`` replaced by ``body``."""
    stdout = recorded_output(recording)[0].decode("utf-8")
    start = stdout.index(marks(f"@@HRW-BEGIN {name}"))
    end = stdout.index(marks(f"@@HRW-END {name}")) + len(marks(f"@@HRW-END {name}\r\n"))
    return (stdout[:start] + _block(name, body) + stdout[end:]).encode("utf-8")


# --- invocation -----------------------------------------------------------------------


def test_command_line_is_short_and_runs_the_bootstrap() -> None:
    command, _ = build_invocation(ProbeParams(), RECORDED_BOUNDARY)
    assert len(command) < 8191
    assert _decoded_command(command) == BOOTSTRAP


def test_stdin_is_the_parameter_line_then_the_script_verbatim() -> None:
    params = ProbeParams(lookback_hours=6, connect_timeout_s=2.5, workspace_id="ws-1")
    _, stdin = build_invocation(params, RECORDED_BOUNDARY)
    first, secret, script = stdin.decode("ascii").split("\r\n", 2)
    document = json.loads(base64.b64decode(first))
    assert script == script_text() and secret == ""  # no proxy password to give
    assert document["lookback_hours"] == 6.0
    assert document["connect_timeout_ms"] == 2500
    assert document["workspace_id"] == "ws-1"
    assert {q["log"] for q in document["event_logs"]} == {
        "Operations Manager",
        "Microsoft-SMA/Operational",
    }


def test_hostile_inventory_values_never_reach_the_script_text() -> None:
    hostile = "x'; Remove-Item -Recurse C:\\ ; '"
    params = ProbeParams(workspace_id=hostile, endpoints={"agentsvc": hostile})
    command, stdin = build_invocation(params, RECORDED_BOUNDARY)
    first, _, script = stdin.decode("ascii").split("\r\n", 2)
    assert hostile not in script and hostile not in command
    assert json.loads(base64.b64decode(first))["endpoints"] == {
        "agentsvc": hostile,
        "oms": f"{hostile}.oms.opinsights.azure.com",
        "ods": f"{hostile}.ods.opinsights.azure.com",
    }
    # A proxy the agent would not accept is refused before anything is sent.
    with pytest.raises(ProxyFormatError, match=r"^inventory value hrw_proxy: ") as info:
        build_invocation(ProbeParams(proxy=hostile), RECORDED_BOUNDARY)
    assert "Remove-Item" not in str(info.value)


def test_the_proxy_password_is_in_no_script_text_and_no_parameter() -> None:
    """Script block logging (4104) records script text, module logging (4103) the values
    bound to parameters (the script block's, ConvertFrom-Json's): the password travels on
    its own stdin line, which the bootstrap reads with a .NET call into a variable."""
    password = "a#b/c? d:'e\"f"
    params = ProbeParams(proxy=f"http://px:{password}@10.0.0.3:3128")
    command, stdin = build_invocation(params, RECORDED_BOUNDARY)
    first, secret, script = stdin.decode("ascii").split("\r\n", 2)
    document = base64.b64decode(first).decode("utf-8")
    for logged in (command, script, first, document, BOOTSTRAP):
        assert password not in logged and "a#b" not in logged
    assert json.loads(document)["proxy"] == {"host": "10.0.0.3", "port": 3128, "user": "px"}
    assert base64.b64decode(secret).decode("utf-8") == password
    assert "$HrwProxySecretB64=$i.ReadLine()" in BOOTSTRAP


def test_script_is_ascii_so_the_console_encoding_cannot_mangle_it() -> None:
    script_text().encode("ascii")


@dataclass
class _Result:
    stdout_bytes: bytes
    stderr_bytes: bytes
    rc: int


def _boundary_of(stdin: bytes) -> str:
    """Return the boundary the controller put in a probe run's parameter line."""
    return str(json.loads(base64.b64decode(stdin.split(b"\r\n", 1)[0]))["boundary"])


def _reframed(stdout: bytes, stdin: bytes) -> bytes:
    """Return a recording as the host would print it for the run started with ``stdin``."""
    return stdout.replace(RECORDED_BOUNDARY.encode(), _boundary_of(stdin).encode())


def test_collect_asks_the_host_exactly_one_command() -> None:
    calls: list[tuple[str, bytes]] = []
    stdout, stderr, rc = recorded_output("windows-healthy")

    def run(command: str, stdin: bytes) -> _Result:
        calls.append((command, stdin))
        return _Result(_reframed(stdout, stdin), stderr, rc)

    before = time.time()
    sections = collect(run, ProbeParams())
    after = time.time()
    assert len(calls) == 1
    assert calls[0] == build_invocation(ProbeParams(), _boundary_of(calls[0][1]))
    assert sections["hardware"].data == {"logical_processors": 2, "memory_bytes": 8589934592}
    clock = sections["clock"].data
    assert clock is not None and clock["host_epoch"] == RECORDED_AT.timestamp()
    assert before - 0.001 <= clock["controller_epoch"] <= after + 0.001
    assert 1.0 <= clock["uncertainty_s"] <= 1.0 + (after - before) / 2 + 0.001


def test_collect_times_the_command_around_the_one_call(monkeypatch: pytest.MonkeyPatch) -> None:
    ticks = iter([100.0, 104.0])  # time.time() just before and just after the command
    monkeypatch.setattr("hrw_preflight.facts.windows.probe.time.time", lambda: next(ticks))
    calls: list[str] = []
    stdout, stderr, rc = recorded_output("windows-clock-ahead")

    def run(command: str, stdin: bytes) -> _Result:
        calls.append(command)
        return _Result(_reframed(stdout, stdin), stderr, rc)

    clock = collect(run, ProbeParams())["clock"].data
    assert len(calls) == 1
    assert clock is not None
    assert (clock["controller_epoch"], clock["uncertainty_s"]) == (102.0, 3.0)


# --- recorded outputs -----------------------------------------------------------------


@pytest.mark.parametrize("name", recorded_names())
def test_recording_yields_every_section_readable_or_failed_as_expected(name: str) -> None:
    sections = load_recorded(name)
    assert list(sections) == [*SECTIONS, "kind"]  # kind is derived from the others
    failed = {n for n, s in sections.items() if s.error is not None and n != "kind"}
    assert failed == UNREADABLE.get(name, set())
    for section in sections.values():
        assert (section.data is None) == (section.error is not None)


@pytest.mark.parametrize("name", recorded_names())
def test_recording_never_carries_the_proxy_secret(name: str) -> None:
    stdout, stderr, _ = recorded_output(name)
    assert PROXY_SECRET.encode() not in stdout + stderr
    for section in load_recorded(name).values():
        assert PROXY_SECRET not in json.dumps(section.data) + section.raw


def test_healthy_recording() -> None:
    sections = load_recorded("windows-healthy")
    assert sections["service"].data == {
        "exists": True,
        "name": "HealthService",
        "state": "Running",
        "start_mode": "Auto",
    }
    assert sections["hardware"].data == {"logical_processors": 2, "memory_bytes": 8 << 30}
    assert sections["pressure"].data == {
        "cpu_load": 0.1,
        "cpu_window_s": 1.0,
        "memory_available_bytes": 6 << 30,
        "memory_total_bytes": 8 << 30,
    }
    worker = sections["worker"].data
    assert worker is not None
    ws = worker["workspace_id"]
    assert worker["endpoints"] == {
        "agentsvc": f"{ws}.agentsvc.azure-automation.net",
        "jrds": "eus-jobruntimedata-prod-su1.azure-automation.net",
        "oms": f"{ws}.oms.opinsights.azure.com",
        "ods": f"{ws}.ods.opinsights.azure.com",
    }
    assert worker["update_management"] and worker["user_worker"]
    assert worker["version"] == "7.3.1418.0" and worker["proxy"] is None
    network = sections["network"].data
    assert network is not None and set(network) == set(worker["endpoints"].values())
    for result in network.values():
        assert (result["tcp"], result["tls"], result["via_proxy"]) == ("ok", "ok", None)
        issuers = [
            x509.load_pem_x509_certificate(pem.encode()).issuer.rfc4514_string()
            for pem in result["chain_pem"]
        ]
        assert issuers[:2] == ["CN=Lab Azure TLS Issuing CA", "CN=Lab Azure Root CA"]
    events = sections["events"].data
    assert events == {
        "lookback_hours": 24.0,
        "logs": {"Operations Manager": [], "Microsoft-SMA/Operational": []},
        "missing_logs": {},
        "unreadable_logs": {},
    }


def test_healthy_prereqs_and_clock() -> None:
    sections = load_recorded("windows-healthy")
    assert sections["prereqs"].data == HEALTHY_PREREQS
    assert '"Version":  "5.1.17763.2452"' in sections["prereqs"].raw
    clock = sections["clock"].data
    assert clock is not None
    assert clock["host_epoch"] == RECORDED_AT.timestamp()
    assert clock["controller_epoch"] == pytest.approx(RECORDED_AT.timestamp() - 0.2)
    assert clock["uncertainty_s"] == pytest.approx(2.0)
    assert all(isinstance(v, float) for v in clock.values())


def test_recording_controller_window_is_the_manifests() -> None:
    timing = recorded_timing("windows-healthy")
    assert timing.ended - timing.started == pytest.approx(2.0)
    assert timing.midpoint == pytest.approx(RECORDED_AT.timestamp() - 0.2)


def test_every_recording_is_labelled_synthetic_where_it_lives() -> None:
    """No real PowerShell made these files; the manifest and a README next to them say so."""
    from tests.windows_recorded import DATA

    manifest = json.loads((DATA / "manifest.json").read_text(encoding="utf-8"))
    assert set(manifest) == set(recorded_names())
    assert all(entry["origin"].startswith("synthetic:") for entry in manifest.values())
    assert "synthetic" in (DATA / "README.md").read_text(encoding="utf-8").splitlines()[0]


def test_cpu_load_comes_from_the_deltas_of_the_raw_processor_counter() -> None:
    """Idle time (an inverse timer) over elapsed time, first to last sample, not an average
    of instants: 0.6 s idle of 2 s over two uneven intervals is 70% busy."""
    samples = (
        "@@HRW-PART processor\r\n"
        '[{"Name": "_Total", "PercentProcessorTime": 1000000, "Timestamp_Sys100NS": 50000000},'
        ' {"Name": "_Total", "PercentProcessorTime": 1000000, "Timestamp_Sys100NS": 55000000},'
        ' {"Name": "_Total", "PercentProcessorTime": 7000000, "Timestamp_Sys100NS": 70000000}]\r\n'
        "@@HRW-PART os\r\n"
        '{"FreePhysicalMemory": 1024, "TotalVisibleMemorySize": 4096}'
    )
    stdout = _with_block("windows-healthy", "pressure", samples)
    data = parse_output(stdout, b"", 0, boundary=RECORDED_BOUNDARY)["pressure"].data
    assert data == {
        "cpu_load": 0.7,
        "cpu_window_s": 2.0,
        "memory_available_bytes": 1 << 20,
        "memory_total_bytes": 4 << 20,
    }


def test_old_dotnet_host_still_reads_its_service_start_mode() -> None:
    """.NET 4.5.2 has no ServiceController.StartType; Win32_Service reads there too."""
    sections = load_recorded("windows-dotnet-452")
    assert sections["service"].data == {
        "exists": True,
        "name": "HealthService",
        "state": "Running",
        "start_mode": "Auto",
    }
    assert '"StartMode":  "Auto"' in sections["service"].raw
    assert "Get-Service -Name" not in script_text() and "'StartType'" not in script_text()


def test_old_dotnet_recording() -> None:
    data = load_recorded("windows-dotnet-452")["prereqs"].data
    assert data == {**HEALTHY_PREREQS, "dotnet_release": 379893}


def test_tls12_client_disabled_recording() -> None:
    data = load_recorded("windows-tls12-client-disabled")["prereqs"].data
    assert data is not None
    assert data["tls12_client"] == {"enabled": 0, "disabled_by_default": 1}
    assert data["dotnet_release"] == 528040


def test_powershell_4_recording() -> None:
    data = load_recorded("windows-powershell-4")["prereqs"].data
    assert data == {**HEALTHY_PREREQS, "powershell_version": "4.0"}


def test_clock_20_minutes_ahead_recording() -> None:
    clock = load_recorded("windows-clock-ahead")["clock"].data
    assert clock is not None
    skew = clock["host_epoch"] - clock["controller_epoch"]
    assert skew == pytest.approx(1200.2)
    assert skew - clock["uncertainty_s"] > 1190
    healthy = load_recorded("windows-healthy")["clock"].data
    assert healthy is not None
    assert abs(healthy["host_epoch"] - healthy["controller_epoch"]) <= healthy["uncertainty_s"]


def _prereqs_body(dotnet: str = "", tls: str = "", shell: str = '{"Version": "5.1"}') -> str:
    """Return a prereqs block body with the given part texts (empty: printed nothing)."""
    lines = ["@@HRW-PART powershell", shell, "@@HRW-PART dotnet", dotnet, "@@HRW-PART tls12client"]
    crypto = [
        "@@HRW-PART strongcrypto",
        '[{"Key": "SOFTWARE\\\\Microsoft\\\\.NETFramework\\\\v4.0.30319", "Exists": false},'
        ' {"Key": "SOFTWARE\\\\WOW6432Node\\\\Microsoft\\\\.NETFramework\\\\v4.0.30319",'
        ' "Exists": true, "SchUseStrongCrypto": -1, "SystemDefaultTlsVersions": null}]',
    ]
    return "\r\n".join(line for line in [*lines, tls, *crypto] if line)


def test_absent_registry_keys_and_values_are_none_not_errors() -> None:
    body = _prereqs_body(dotnet="", tls='{"Enabled": null, "DisabledByDefault": 0}', shell="")
    section = parse_output(
        _with_block("windows-healthy", "prereqs", body), b"", 0, boundary=RECORDED_BOUNDARY
    )["prereqs"]
    assert section.error is None
    assert section.data == {
        "powershell_version": None,
        "dotnet_release": None,
        "dotnet_strong_crypto": {
            "64-bit": {
                "key": "HKLM\\SOFTWARE\\Microsoft\\.NETFramework\\v4.0.30319",
                "exists": False,
                "sch_use_strong_crypto": None,
                "system_default_tls_versions": None,
            },
            "32-bit": {
                "key": "HKLM\\SOFTWARE\\WOW6432Node\\Microsoft\\.NETFramework\\v4.0.30319",
                "exists": True,
                "sch_use_strong_crypto": 0xFFFFFFFF,
                "system_default_tls_versions": None,
            },
        },
        "tls12_client": {"enabled": None, "disabled_by_default": 0},
    }


def test_a_dword_of_all_ones_reads_as_the_registry_shows_it() -> None:
    body = _prereqs_body(dotnet='{"Release": 528040}', tls='{"Enabled": -1}')
    data = parse_output(
        _with_block("windows-healthy", "prereqs", body), b"", 0, boundary=RECORDED_BOUNDARY
    )["prereqs"].data
    assert data is not None
    assert data["tls12_client"] == {"enabled": 0xFFFFFFFF, "disabled_by_default": None}


def test_clock_without_the_controllers_timing_is_an_error() -> None:
    stdout, stderr, rc = recorded_output("windows-healthy")
    untimed = parse_output(stdout, stderr, rc, boundary=RECORDED_BOUNDARY)["clock"]
    assert untimed.data is None and untimed.error is not None
    assert "controller's time" in untimed.error and "UtcUnixMilliseconds" in untimed.raw
    timed = parse_output(stdout, stderr, rc, TIMING, boundary=RECORDED_BOUNDARY)["clock"].data
    assert timed == {
        "host_epoch": RECORDED_AT.timestamp(),
        "controller_epoch": 1795770001.5,
        "uncertainty_s": 2.5,
    }


def test_stopped_and_missing_service() -> None:
    stopped = load_recorded("windows-healthservice-stopped")["service"].data
    assert stopped is not None and (stopped["state"], stopped["start_mode"]) == ("Stopped", "Auto")
    missing = load_recorded("windows-service-missing")
    assert missing["service"].data == {
        "exists": False,
        "name": "HealthService",
        "state": None,
        "start_mode": None,
    }
    assert missing["service"].raw == ""  # Win32_Service with no match prints nothing
    assert "AgentConfigManager.MgmtSvcCfg" in str(missing["worker"].error)
    assert "no endpoint to probe" in str(missing["network"].error)


def test_a_single_event_is_read_although_51_writes_it_as_an_object() -> None:
    stdout = recorded_output("windows-event-4502")[0].decode()
    assert marks('@@HRW-PART log Operations Manager\r\n{\r\n    "Id":  4502') in stdout
    events = load_recorded("windows-event-4502")["events"].data
    assert events is not None
    (event,) = events["logs"]["Operations Manager"]
    assert (event["id"], event["level"], event["provider"]) == (4502, 2, "Health Service Modules")
    assert event["message_error"] is None
    assert event["time"] == "2026-11-27T08:40:00+00:00"
    assert "HybridAgent" in event["message"]


def test_sma_log_merges_id_query_and_message_scan_within_the_window() -> None:
    events = load_recorded("windows-sma-4294967295")["events"].data
    assert events is not None
    sma = events["logs"]["Microsoft-SMA/Operational"]
    assert [(e["id"], e["time"]) for e in sma] == [
        (15102, "2026-11-27T08:30:00+00:00"),
        (15011, "2026-11-27T08:25:00+00:00"),
    ]
    assert "Win32 Process Exited with code [4294967295]" in sma[0]["message"]


def test_a_missing_or_unreadable_log_is_its_own_outcome_not_the_sections() -> None:
    """The other log stays readable; the missing one is told apart from a denied one."""
    missing = load_recorded("windows-missing-log")["events"]
    assert missing.data is not None and "NoMatchingLogsFound" in missing.raw
    assert missing.data["missing_logs"] == {
        "Microsoft-SMA/Operational": "the event log 'Microsoft-SMA/Operational' does not exist "
        "on the host"
    }
    assert missing.data["unreadable_logs"] == {}
    assert list(missing.data["logs"]) == ["Operations Manager"]
    denied = load_recorded("windows-access-denied")["events"].data
    assert denied is not None and denied["missing_logs"] == {}
    assert denied["unreadable_logs"] == {
        "Operations Manager": "event log 'Operations Manager' cannot be read: "
        "Attempted to perform an unauthorized operation."
    }
    assert "Microsoft-SMA/Operational" in denied["logs"]


def test_no_matching_events_prints_nothing_and_reads_as_an_empty_log() -> None:
    healthy = load_recorded("windows-healthy")["events"]
    assert f"PART log Operations Manager\n{RECORDED_BOUNDARY} PART" in healthy.raw
    assert healthy.data is not None and healthy.data["logs"]["Operations Manager"] == []


def test_an_event_whose_message_cannot_be_formatted_keeps_the_log() -> None:
    data = load_recorded("windows-event-unformattable")["events"].data
    assert data is not None
    ops = data["logs"]["Operations Manager"]
    assert [(e["id"], e["message_error"] is not None) for e in ops] == [(4502, True), (2138, False)]
    assert ops[0]["message"] == "" and "resource type cannot be found" in ops[0]["message_error"]
    assert ops[1]["message"] == "The proxy server asked for credentials."


def test_connectivity_errors_keep_each_endpoints_own_status() -> None:
    sections = load_recorded("windows-connectivity-errors")
    worker, network = sections["worker"].data, sections["network"].data
    assert worker is not None and network is not None
    statuses = {role: network[host]["tcp"] for role, host in worker["endpoints"].items()}
    assert statuses == {
        "agentsvc": "refused",
        "oms": "timeout",
        "jrds": "unresolved",
        "ods": "unresolved",
    }
    assert all(r["tls"] == "not-attempted" and not r["chain_pem"] for r in network.values())
    blocked = load_recorded("windows-443-blocked")["network"].data
    assert blocked is not None and {r["tcp"] for r in blocked.values()} == {"timeout"}


def test_intercepting_proxy_chain_and_masked_credentials() -> None:
    sections = load_recorded("windows-tls-intercepted")
    worker, network = sections["worker"].data, sections["network"].data
    assert worker is not None and network is not None
    proxy = worker["proxy"]
    assert proxy["url"] == f"http://labproxy:***@127.0.0.1:{proxy['port']}"
    assert proxy["has_credentials"] is True
    for result in network.values():
        assert result["via_proxy"] == f"127.0.0.1:{proxy['port']}"
        leaf = x509.load_pem_x509_certificate(result["chain_pem"][0].encode())
        assert "Microsoft Azure RSA TLS Issuing CA 03" in leaf.issuer.rfc4514_string()


def test_proxy_without_a_readable_password_is_proxy_refused_with_advice() -> None:
    network = load_recorded("windows-proxy-no-password")["network"].data
    assert network is not None
    for result in network.values():
        assert result["tcp"] == "proxy-refused"
        assert "407" in result["detail"] and "hrw_proxy" in result["detail"]


def test_underspec_and_pressure() -> None:
    underspec = load_recorded("windows-underspec")["hardware"].data
    assert underspec == {"logical_processors": 1, "memory_bytes": 2 << 30}
    pressure = load_recorded("windows-resource-pressure")["pressure"].data
    assert pressure is not None and pressure["cpu_load"] == 0.97
    assert pressure["memory_available_bytes"] == 256 << 20


def test_garbled_cut_off_and_failed_runs_say_why() -> None:
    garbled = load_recorded("windows-garbled-json")["hardware"]
    assert garbled.error is not None and garbled.error.startswith("garbled JSON in the hardware")
    assert garbled.raw.startswith(marks("@@HRW-PART processor"))
    cut = load_recorded("windows-cut-off")
    assert cut["network"].error == "the probe output of the network section was cut off"
    assert cut["network"].raw.startswith("[\n    {") and RECORDED_BOUNDARY not in cut["network"].raw
    unknown = load_recorded("windows-unknown-command")["worker"].error
    assert unknown is not None and "exit code 1" in unknown
    assert "The term 'Get-ComputerInfo' is not recognized" in unknown


def test_progress_records_on_stderr_are_ignored() -> None:
    _, stderr, _ = recorded_output("windows-progress-stderr")
    assert stderr.startswith(b"#< CLIXML") and decode_stderr(stderr) == ""
    assert all(s.error is None for s in load_recorded("windows-progress-stderr").values())


# --- malformed output -----------------------------------------------------------------


def test_nothing_printed_fails_every_section_with_powershells_complaint() -> None:
    stderr = error_stream(['Exception calling "FromBase64String": bad input', "At line:1"])
    sections = parse_output(b"", stderr, 1, boundary=RECORDED_BOUNDARY)
    assert sections.pop("kind").error is not None  # derived from nothing readable
    for name, section in sections.items():
        assert section.error == (
            f"the probe printed no {name} section (exit code 1): "
            'Exception calling "FromBase64String": bad input'
        )


def test_byte_order_mark_and_lf_line_ends_are_accepted() -> None:
    stdout, stderr, rc = recorded_output("windows-healthy")
    relaxed = b"\xef\xbb\xbf" + stdout.replace(b"\r\n", b"\n")
    assert (
        parse_output(relaxed, stderr, rc, boundary=RECORDED_BOUNDARY)["service"].data
        == parse_output(stdout, stderr, rc, boundary=RECORDED_BOUNDARY)["service"].data
    )


@pytest.mark.parametrize(
    ("section", "body", "reason"),
    [
        ("service", '{"Name": "HealthService", "State": "Sideways", "StartMode": "Auto"}', "State"),
        ("service", '{"Name": "HealthService", "State": "Running", "StartMode": 2}', "StartMode"),
        ("service", '{"Name": "HealthService", "State": "Running"}', "StartMode"),
        ("service", "@@HRW-ERROR\r\nnot json", "garbled JSON in the service section"),
        ("service", '["a", "b"]', "expected JSON objects"),
        (
            "service",
            '@@HRW-ERROR\r\n{"ErrorId": "CouldNotGetService", "Category": "x", "Message": "RPC"}',
            "service section: RPC",
        ),
        (
            "pressure",
            "@@HRW-PART processor\r\n"
            '{"Name": "_Total", "PercentProcessorTime": 5, "Timestamp_Sys100NS": 9}\r\n'
            "@@HRW-PART os\r\n"
            '{"FreePhysicalMemory": 1, "TotalVisibleMemorySize": 2}',
            "1 processor sample(s), need 2 or more",
        ),
        (
            "pressure",
            "@@HRW-PART processor\r\n"
            '[{"PercentProcessorTime": 5, "Timestamp_Sys100NS": 9},'
            ' {"PercentProcessorTime": 6, "Timestamp_Sys100NS": 9}]\r\n'
            "@@HRW-PART os\r\n"
            '{"FreePhysicalMemory": 1, "TotalVisibleMemorySize": 2}',
            "processor counter samples do not advance",
        ),
        (
            "hardware",
            '@@HRW-PART processor\r\n{"DeviceID": "CPU0", "NumberOfLogicalProcessors": 2}',
            "part 'computersystem') is missing",
        ),
        (
            "network",
            '{"Host": "h", "Role": "agentsvc", "ViaProxy": null, "Tcp": "ok", "Tls": "ok",'
            ' "Detail": "", "Chain": ["@@not base64@@"]}',
            "not base64",
        ),
        (
            "network",
            '{"Host": "h", "Role": "agentsvc", "Tcp": "maybe", "Tls": "ok", "Chain": []}',
            "malformed endpoint result",
        ),
        (
            "events",
            '@@HRW-PART window\r\n{"LookbackHours": 24}\r\n'
            "@@HRW-PART log Operations Manager\r\n"
            '{"Id": 4502, "ProviderName": "p", "Level": 2, "TimeCreated": "yesterday"}\r\n'
            "@@HRW-PART log Microsoft-SMA/Operational",
            "unreadable TimeCreated",
        ),
        (
            "events",
            '@@HRW-PART window\r\n{"LookbackHours": 24}\r\n@@HRW-PART log Operations Manager',
            "'Microsoft-SMA/Operational' log was not queried",
        ),
        (
            "prereqs",
            _prereqs_body(
                dotnet="@@HRW-ERROR\r\n"
                '{"ErrorId": "System.Security.SecurityException,'
                'Microsoft.PowerShell.Commands.GetItemPropertyCommand",'
                ' "Category": "PermissionDenied",'
                ' "Message": "Requested registry access is not allowed."}'
            ),
            "prereqs section (part 'dotnet'): Requested registry access is not allowed.",
        ),
        ("prereqs", _prereqs_body(tls='{"Enabled": 0, "Disab'), "garbled JSON in the prereqs"),
        ("prereqs", _prereqs_body(dotnet='{"Release": "528040"}'), "Release is not an integer"),
        ("prereqs", _prereqs_body(shell='{"Version": 5.1}'), "PSVersion is not a version"),
        ("prereqs", _prereqs_body(dotnet='[{"Release": 1}, {"Release": 2}]'), "expected one"),
        (
            "prereqs",
            '@@HRW-PART dotnet\r\n{"Release": 528040}\r\n@@HRW-PART tls12client',
            "part 'powershell') is missing",
        ),
        ("clock", '{"UtcUnixMilliseconds": 17957', "garbled JSON in the clock section"),
        ("clock", '{"UtcUnixMilliseconds": "soon"}', "UtcUnixMilliseconds is not a number"),
        ("clock", "", "the host printed no time"),
        (
            "clock",
            '@@HRW-ERROR\r\n{"ErrorId": "RuntimeException", "Category": "InvalidOperation",'
            ' "Message": "Cannot convert value"}',
            "clock section: Cannot convert value",
        ),
    ],
)
def test_malformed_section_is_failed_with_its_raw_text(
    section: str, body: str, reason: str
) -> None:
    stdout = _with_block("windows-healthy", section, body)
    result = parse_output(stdout, b"", 0, TIMING, boundary=RECORDED_BOUNDARY)[section]
    assert result.data is None and result.error is not None
    assert reason in result.error
    assert result.raw == marks(body).replace("\r\n", "\n")


def test_other_shapes_51_and_7_can_produce_are_read() -> None:
    events = (
        '@@HRW-PART window\r\n{"LookbackHours": 1.5}\r\n'
        "@@HRW-PART log Operations Manager\r\n"
        '[{"Id": 2138, "ProviderName": "HealthService", "Level": 3,'
        ' "TimeCreated": "2026-11-27T08:00:00+01:00", "Message": null},'
        ' {"Id": 4000, "ProviderName": "HealthService", "Level": 2,'
        ' "TimeCreated": "\\/Date(1795766400000)\\/", "Message": "dns"}]\r\n'
        "@@HRW-PART log Microsoft-SMA/Operational\r\n"
        "@@HRW-ERROR\r\n"
        '{"ErrorId": "NoMatchingEventsFound,Microsoft.PowerShell.Commands.GetWinEventCommand",'
        ' "Category": "ObjectNotFound", "Message": "No events were found"}'
    )
    stdout = _with_block("windows-healthy", "events", events)
    sections = parse_output(stdout, b"", 0, boundary=RECORDED_BOUNDARY)
    assert sections["service"].data is not None and sections["service"].data["state"] == "Running"
    data = sections["events"].data
    assert data is not None and data["lookback_hours"] == 1.5
    ops = data["logs"]["Operations Manager"]
    assert [(e["id"], e["time"], e["message"]) for e in ops] == [
        (4000, "2026-11-27T08:00:00+00:00", "dns"),
        (2138, "2026-11-27T07:00:00+00:00", ""),
    ]
    assert data["logs"]["Microsoft-SMA/Operational"] == []


def test_a_wrapped_chain_array_is_unwrapped() -> None:
    healthy = recorded_output("windows-healthy")[0].decode()
    start = healthy.index(marks("@@HRW-BEGIN network")) + len(marks("@@HRW-BEGIN network\r\n"))
    results = json.loads(healthy[start : healthy.index(marks("@@HRW-END network"))])
    for result in results:
        result["Chain"] = {"value": result["Chain"], "Count": len(result["Chain"])}
    stdout = _with_block("windows-healthy", "network", json.dumps(results))
    wrapped = parse_output(stdout, b"", 0, boundary=RECORDED_BOUNDARY)["network"].data
    assert wrapped == load_recorded("windows-healthy")["network"].data


def test_the_chain_judged_is_what_the_server_sent_unless_only_the_leaf_came_back() -> None:
    """Windows builds its own chain (ChainElements); the sent one (leaf + ExtraStore) is
    judged, and the built one only when the host reported nothing beyond the leaf."""
    healthy = recorded_output("windows-healthy")[0].decode()
    start = healthy.index(marks("@@HRW-BEGIN network")) + len(marks("@@HRW-BEGIN network\r\n"))
    results = json.loads(healthy[start : healthy.index(marks("@@HRW-END network"))])
    sent = results[0]["Chain"]
    assert results[0]["ChainSource"] == "sent" and len(sent) == 2
    results[0].update(
        Chain=sent[:1],
        ChainSource="leaf-only",
        BuiltChain=[*sent, sent[1]],
        ChainStatus=["UntrustedRoot"],
        PolicyErrors="RemoteCertificateChainErrors",
    )
    stdout = _with_block("windows-healthy", "network", json.dumps(results))
    network = parse_output(stdout, b"", 0, boundary=RECORDED_BOUNDARY)["network"].data
    assert network is not None
    first = network[results[0]["Host"]]
    assert first["chain_source"] == "built" and len(first["chain_pem"]) == 3
    assert first["chain_status"] == ["UntrustedRoot"]
    assert first["policy_errors"] == "RemoteCertificateChainErrors"
    assert "(certificate policy: RemoteCertificateChainErrors)" in first["detail"]
    second = network[results[1]["Host"]]
    assert second["chain_source"] == "sent" and second["chain_pem"] == second["chain_built_pem"]
