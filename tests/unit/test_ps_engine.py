"""The lab emulator's PowerShell engine: 5.1 shapes, the probe round trip, and failures."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from hrw_preflight.facts.model import Section
from hrw_preflight.facts.params import ProbeParams
from hrw_preflight.facts.windows.clixml import decode_stderr
from hrw_preflight.facts.windows.probe import (
    BOOTSTRAP,
    CommandTiming,
    build_invocation,
    collect,
    encode_command,
    params_document,
    parse_output,
    script_text,
)
from lab.winrm_emulator import probe_blocks, ps_sections
from lab.winrm_emulator.clixml_writer import error_stream
from lab.winrm_emulator.config import HostConfig
from lab.winrm_emulator.engine import BOOTSTRAP_ANSWER, run_command, run_probe
from lab.winrm_emulator.probe_blocks import BLOCKS, digest, split_regions
from lab.winrm_emulator.ps_json import PsDate, convert_to_json
from lab.winrm_emulator.ps_sections import ANSWER_VERSIONS, RunState
from tests.windows_recorded import (
    RECORDED_BOUNDARY,
    endpoint_names,
    load_recorded,
    loopback_engine_host,
    record_one,
    workspace_of,
)
from tests.windows_tls_servers import (
    ServerChain,
    black_hole,
    closed_port,
    connect_proxy,
    make_chain,
    tls_server,
)

NAME = "windows-unit"
WS = workspace_of(NAME)
ENDPOINTS = endpoint_names(WS)
FAST = ProbeParams(connect_timeout_s=2.0)


def marks(text: str) -> str:
    """Return ``text`` with the shorthand ``@@HRW-`` markers as the probe prints them."""
    return text.replace("@@HRW-", RECORDED_BOUNDARY + " ")


def make_host(
    profile: dict[str, Any] | None = None,
    resolve: dict[str, str] | None = None,
    proxy: str | None = None,
    port: int = 443,
) -> HostConfig:
    """Return an emulated host on loopback with a healthy profile plus ``profile``."""
    return loopback_engine_host(
        NAME,
        WS,
        ENDPOINTS,
        resolve if resolve is not None else {},
        proxy,
        {**(profile or {}), "endpoint_port": port},
    )


def probe(host: HostConfig, params: ProbeParams = FAST) -> dict[str, Section]:
    """Run the suite's probe against the engine and parse what it printed.

    Times the command the way :func:`collect` does, so the clock section holds data.
    """
    command, stdin = build_invocation(params, RECORDED_BOUNDARY)
    started = time.time()
    output = run_command(command, [], stdin, host)
    timing = CommandTiming(started=started, ended=time.time())
    return parse_output(
        output.stdout, output.stderr, output.exit_code, timing, boundary=RECORDED_BOUNDARY
    )


@pytest.fixture(scope="module")
def azure_chain(tmp_path_factory: pytest.TempPathFactory) -> ServerChain:
    return make_chain(
        tmp_path_factory.mktemp("azure"),
        "Unit Azure Root CA",
        "Unit Azure TLS Issuing CA",
        ["*.azure-automation.net", "*.opinsights.azure.com"],
    )


@pytest.fixture
def azure_port(azure_chain: ServerChain) -> Iterator[int]:
    with tls_server(azure_chain) as port:
        yield port


def everywhere(address: str) -> dict[str, str]:
    return {name: address for name in ENDPOINTS.values()}


# --- ConvertTo-Json 5.1 -----------------------------------------------------------------


def test_convert_to_json_uses_51_layout() -> None:
    text = convert_to_json({"c": [1, 2], "a": {"b": 1}, "e": []})
    assert text == (
        "{\r\n"
        '    "c":  [\r\n'
        "              1,\r\n"
        "              2\r\n"
        "          ],\r\n"
        '    "a":  {\r\n'
        '              "b":  1\r\n'
        "          },\r\n"
        '    "e":  [\r\n'
        "              \r\n"
        "          ]\r\n"
        "}"
    )


def test_convert_to_json_escapes_and_values_like_javascriptserializer() -> None:
    moment = datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)
    text = convert_to_json(
        {"s": 'it\'s <a> & "b"\n', "d": PsDate(moment), "f": 24.0, "g": 0.5, "t": True}
    )
    assert '"s":  "it\\u0027s \\u003ca\\u003e \\u0026 \\"b\\"\\n"' in text
    assert '"d":  "\\/Date(1700000000000)\\/"' in text
    assert '"f":  24,' in text and '"g":  0.5,' in text and '"t":  true' in text


def test_clixml_round_trip_keeps_lines_and_escapes_underscores() -> None:
    lines = ["first _x000D_ literal", "second <line> & more"]
    encoded = error_stream(lines)
    assert encoded.startswith(b"#< CLIXML\r\n<Objs ")
    assert b"_x000D__x000A_</S>" in encoded
    assert decode_stderr(encoded) == "first _x000D_ literal\nsecond <line> & more"


# --- the probe round trip ---------------------------------------------------------------


def test_healthy_round_trip_with_a_real_tls_endpoint(azure_port: int) -> None:
    sections = probe(make_host({"sockets": 2}, everywhere("127.0.0.1"), port=azure_port))
    assert all(section.error is None for section in sections.values())
    assert sections["hardware"].data == {"logical_processors": 2, "memory_bytes": 8 << 30}
    network = sections["network"].data
    assert network is not None and set(network) == set(ENDPOINTS.values())
    for host_name, result in network.items():
        assert (result["tcp"], result["tls"]) == ("ok", "ok")
        leaf = x509.load_pem_x509_certificate(result["chain_pem"][0].encode())
        issuer = x509.load_pem_x509_certificate(result["chain_pem"][1].encode())
        assert leaf.issuer == issuer.subject
        assert "Unit Azure TLS Issuing CA" in issuer.subject.rfc4514_string()
        assert result["role"] in ENDPOINTS and host_name in ENDPOINTS.values()


def test_faulty_profile_round_trip(azure_port: int) -> None:
    profile = {
        "cpus": 1,
        "memory_mb": 2048,
        "memory_available_mb": 100,
        "cpu_load_percent": 95,
        "update_management": False,
        "healthservice": {"exists": True, "status": "Stopped", "start_type": "Disabled"},
        "events": [
            {
                "log": "Operations Manager",
                "id": 4502,
                "provider": "HealthService",
                "level": "Error",
                "minutes_ago": 10,
                "message": "HybridAgent exception",
            },
            {
                "log": "Operations Manager",
                "id": 4502,
                "provider": "HealthService",
                "level": 2,
                "minutes_ago": 60 * 25,
                "message": "too old",
            },
            {
                "log": "Operations Manager",
                "id": 1210,
                "provider": "HealthService",
                "level": 4,
                "minutes_ago": 5,
                "message": "not asked for",
            },
        ],
    }
    sections = probe(make_host(profile, everywhere("127.0.0.1"), port=azure_port))
    assert sections["service"].data == {
        "exists": True,
        "name": "HealthService",
        "state": "Stopped",
        "start_mode": "Disabled",
    }
    assert sections["hardware"].data == {"logical_processors": 1, "memory_bytes": 2 << 30}
    assert sections["pressure"].data == {
        "cpu_load": 0.95,
        "cpu_window_s": 1.0,
        "memory_available_bytes": 100 << 20,
        "memory_total_bytes": 2 << 30,
    }
    worker = sections["worker"].data
    assert worker is not None and not worker["update_management"] and worker["user_worker"]
    events = sections["events"].data
    assert events is not None
    assert [e["message"] for e in events["logs"]["Operations Manager"]] == ["HybridAgent exception"]


def test_prereqs_defaults_round_trip() -> None:
    sections = probe(make_host(None, everywhere("127.0.0.1"), port=closed_port()))
    assert sections["prereqs"].data == {
        "powershell_version": "5.1.17763.2452",
        "dotnet_release": 528040,
        "dotnet_strong_crypto": {
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
        },
        "tls12_client": {"enabled": None, "disabled_by_default": None},
    }
    clock = sections["clock"].data
    assert clock is not None
    assert abs(clock["host_epoch"] - clock["controller_epoch"]) <= clock["uncertainty_s"]


@pytest.mark.parametrize(
    ("profile", "expected"),
    [
        ({"dotnet_release": 379893}, {"dotnet_release": 379893}),
        ({"dotnet_release": None}, {"dotnet_release": None}),
        ({"powershell_version": "4.0"}, {"powershell_version": "4.0"}),
        (
            {"tls12_client_enabled": 0, "tls12_client_disabled_by_default": 1},
            {"tls12_client": {"enabled": 0, "disabled_by_default": 1}},
        ),
        (
            {"tls12_client_disabled_by_default": 0},
            {"tls12_client": {"enabled": None, "disabled_by_default": 0}},
        ),
        (
            {"tls12_client_enabled": 0xFFFFFFFF},
            {"tls12_client": {"enabled": 0xFFFFFFFF, "disabled_by_default": None}},
        ),
    ],
)
def test_prereqs_profile_round_trip(profile: dict[str, Any], expected: dict[str, Any]) -> None:
    sections = probe(make_host(profile, everywhere("127.0.0.1"), port=closed_port()))
    data = sections["prereqs"].data
    assert data is not None
    assert {key: data[key] for key in expected} == expected


def test_a_dword_of_all_ones_is_printed_as_a_signed_int32() -> None:
    command, stdin = build_invocation(FAST, RECORDED_BOUNDARY)
    host = make_host({"tls12_client_enabled": 0xFFFFFFFF}, port=closed_port())
    stdout = run_command(command, [], stdin, host).stdout.decode()
    assert '"Enabled":  -1,\r\n    "DisabledByDefault":  null' in stdout


def test_missing_dotnet_key_prints_nothing_for_its_part() -> None:
    command, stdin = build_invocation(FAST, RECORDED_BOUNDARY)
    host = make_host({"dotnet_release": None}, port=closed_port())
    stdout = run_command(command, [], stdin, host).stdout.decode()
    assert marks("@@HRW-PART dotnet\r\n@@HRW-PART tls12client\r\n@@HRW-PART strongcrypto") in stdout


def test_clock_offset_round_trip() -> None:
    ahead = probe(make_host({"clock_offset_s": 1200}, port=closed_port()))["clock"].data
    assert ahead is not None
    skew = ahead["host_epoch"] - ahead["controller_epoch"]
    assert abs(skew - 1200) <= ahead["uncertainty_s"]
    assert skew - ahead["uncertainty_s"] > 1100
    behind = probe(make_host({"clock_offset_s": -90.5}, port=closed_port()))["clock"].data
    assert behind is not None
    assert abs(behind["host_epoch"] - behind["controller_epoch"] + 90.5) <= behind["uncertainty_s"]


def test_clock_at_a_fixed_time_prints_unix_milliseconds() -> None:
    _, stdin = build_invocation(FAST, RECORDED_BOUNDARY)
    moment = datetime(2026, 11, 27, 9, 0, 0, 123000, tzinfo=UTC)
    host = make_host({"clock_offset_s": 1.5}, port=closed_port())
    stdout = run_probe(stdin, host, moment).stdout.decode()
    block = stdout[
        stdout.index(marks("@@HRW-BEGIN clock")) : stdout.index(marks("@@HRW-END clock"))
    ]
    assert block == marks(
        '@@HRW-BEGIN clock\r\n{\r\n    "UtcUnixMilliseconds":  1795770001623\r\n}\r\n'
    )


def test_missing_service_and_unreadable_logs_round_trip() -> None:
    profile = {
        "healthservice": {"exists": False},
        "event_logs_missing": ["Microsoft-SMA/Operational"],
    }
    sections = probe(make_host(profile), replace(FAST, workspace_id="override-ws"))
    service = sections["service"].data
    assert service is not None and service["exists"] is False
    assert sections["worker"].error is not None
    events = sections["events"].data
    assert events is not None and "Microsoft-SMA/Operational" in events["missing_logs"]
    network = sections["network"].data  # the override still gives endpoints to probe
    assert network is not None
    assert set(network) == {
        "override-ws.agentsvc.azure-automation.net",
        "override-ws.oms.opinsights.azure.com",
        "override-ws.ods.opinsights.azure.com",
    }
    assert {r["detail"] for r in network.values()} == {"No such host is known"}


def test_parameter_overrides_win(azure_port: int) -> None:
    params = replace(FAST, workspace_id="aaaa", endpoints={"jrds": "jrds.example.test"})
    resolve = {"aaaa.agentsvc.azure-automation.net": "127.0.0.1"}
    sections = probe(make_host(None, resolve, port=azure_port), params)
    worker = sections["worker"].data
    assert worker is not None and worker["workspace_id"] == "aaaa"
    assert worker["endpoints"] == {
        "agentsvc": "aaaa.agentsvc.azure-automation.net",
        "jrds": "jrds.example.test",
        "oms": "aaaa.oms.opinsights.azure.com",
        "ods": "aaaa.ods.opinsights.azure.com",
    }
    network = sections["network"].data
    assert network is not None
    assert network["aaaa.agentsvc.azure-automation.net"]["tls"] == "ok"
    assert network["jrds.example.test"]["tcp"] == "unresolved"


def test_blocked_endpoints_cost_one_timeout_not_three() -> None:
    with black_hole("127.0.0.4") as port:
        host = make_host(None, everywhere("127.0.0.4"), port=port)
        started = time.monotonic()
        sections = probe(host, replace(FAST, connect_timeout_s=0.5))
        elapsed = time.monotonic() - started
    network = sections["network"].data
    assert network is not None and {r["tcp"] for r in network.values()} == {"timeout"}
    assert elapsed < 1.2


def test_refused_endpoint() -> None:
    sections = probe(make_host(None, everywhere("127.0.0.1"), port=closed_port()))
    network = sections["network"].data
    assert network is not None and {r["tcp"] for r in network.values()} == {"refused"}
    assert all("actively refused" in r["detail"] for r in network.values())


def test_proxy_with_credentials_from_params(azure_port: int) -> None:
    with connect_proxy(azure_port, "alice", "pa:ss") as proxy_port:
        agent_proxy = f"http://alice:wrong@127.0.0.1:{proxy_port}"
        given = f"http://alice:pa:ss@127.0.0.1:{proxy_port}"  # as the agent reads it
        with_password = probe(make_host(None, {}, agent_proxy), replace(FAST, proxy=given))
        agent_only = probe(make_host(None, {}, agent_proxy))
    network = with_password["network"].data
    assert network is not None
    assert {(r["tcp"], r["tls"]) for r in network.values()} == {("ok", "ok")}
    assert {r["via_proxy"] for r in network.values()} == {f"127.0.0.1:{proxy_port}"}
    worker = with_password["worker"].data
    assert (
        worker is not None and worker["proxy"]["url"] == f"http://alice:***@127.0.0.1:{proxy_port}"
    )
    refused = agent_only["network"].data
    assert refused is not None and {r["tcp"] for r in refused.values()} == {"proxy-refused"}
    for sections in (with_password, agent_only):
        for section in sections.values():
            assert "pa:ss" not in section.raw and "wrong" not in section.raw


def test_params_can_force_no_proxy(azure_port: int) -> None:
    host = make_host(None, everywhere("127.0.0.1"), "http://u:p@127.0.0.1:9", azure_port)
    sections = probe(host, replace(FAST, proxy=""))
    worker, network = sections["worker"].data, sections["network"].data
    assert worker is not None and worker["proxy"] is None
    assert network is not None and {r["tls"] for r in network.values()} == {"ok"}


# --- the agent's COM object: member names are checked, not assumed --------------------------


def _worker_code() -> str:
    regions, _ = split_regions(script_text())
    return dict(regions)["worker"]


def _answer_worker(code: str, host: HostConfig) -> tuple[RunState, Section]:
    """Answer a (possibly edited) worker block directly and parse what it printed."""
    params = params_document(FAST, RECORDED_BOUNDARY)
    state = RunState(host=host, params=params, now=datetime.now(UTC))
    state.code["worker"] = code
    lines = ps_sections.worker(state)
    text = "\r\n".join(lines).encode("utf-8")
    return state, parse_output(text, b"", 0, boundary=RECORDED_BOUNDARY)["worker"]


def test_agent_proxy_is_read_from_the_com_properties() -> None:
    state, worker = _answer_worker(_worker_code(), make_host(None, {}, "http://bob:pw@proxy:3128"))
    assert state.agent is not None and state.agent["ProxyUrl"] == "http://proxy:3128"
    assert state.agent["ProxyUsername"] == "bob" and state.agent["ProxyError"] is None
    assert worker.data is not None and worker.data["proxy"]["url"] == "http://bob:***@proxy:3128"
    assert worker.data["proxy_error"] is None


def test_a_com_method_the_agent_lacks_fails_as_methodnotfound() -> None:
    """The probe's former GetProxyUrl() call: on a real host the whole agent part throws."""
    old = _worker_code().replace(
        "Url      = [string]$config.proxyUrl", "Url      = [string]$config.GetProxyUrl()"
    )
    old = old.replace("Set-StrictMode -Version 2.0", "")
    assert old != _worker_code()
    _, worker = _answer_worker(old, make_host(None, {}, "http://proxy:3128"))
    assert worker.error is not None
    assert "does not contain a method named 'GetProxyUrl'" in worker.error
    assert "MethodNotFound" in worker.raw


def test_a_misspelt_property_in_the_strict_scope_keeps_the_workspaces() -> None:
    misspelt = _worker_code().replace("$config.proxyUsername", "$config.proxyUser")
    assert misspelt != _worker_code()
    state, worker = _answer_worker(misspelt, make_host(None, {}, "http://proxy:3128"))
    assert state.agent is not None and state.agent["Workspaces"] == [WS]
    assert worker.data is not None and worker.data["workspace_id"] == WS
    assert worker.data["endpoints"]["agentsvc"] == ENDPOINTS["agentsvc"]
    assert worker.data["proxy"] is None
    assert "The property 'proxyUser' cannot be found" in worker.data["proxy_error"]
    assert "PropertyNotFoundStrict" in worker.data["proxy_error"]


def test_a_misspelt_property_outside_strict_mode_reads_as_null_like_powershell() -> None:
    lenient = _worker_code().replace("Set-StrictMode -Version 2.0", "")
    lenient = lenient.replace("$config.proxyUrl", "$config.proxyAddress")
    state, _ = _answer_worker(lenient, make_host(None, {}, "http://proxy:3128"))
    assert state.agent is not None and state.agent["ProxyUrl"] == ""
    assert state.agent["ProxyError"] is None


def test_member_names_bind_case_insensitively_as_in_powershell() -> None:
    cased = _worker_code().replace("$config.GetCloudWorkspaces()", "$config.getcloudworkspaces()")
    state, worker = _answer_worker(cased, make_host(None, {}, None))
    assert worker.error is None and state.agent is not None and state.agent["Workspaces"] == [WS]


def test_a_missing_com_class_is_nocomclassidentified() -> None:
    sections = probe(make_host({"healthservice": {"exists": False}}))
    raw = sections["worker"].raw
    assert "NoCOMClassIdentified,Microsoft.PowerShell.Commands.NewObjectCommand" in raw
    assert "REGDB_E_CLASSNOTREG" in raw and "CannotLoadComObjectType" not in raw
    misnamed = _worker_code().replace("'AgentConfigManager.MgmtSvcCfg'", "'AgentConfig.Mgmt'")
    _, worker = _answer_worker(misnamed, make_host())
    assert worker.error is not None and "80040154 Class not registered" in worker.error


def test_recordings_match_what_the_engine_answers_now(tmp_path: Path) -> None:
    stdout, stderr, rc = record_one("windows-sma-4294967295", tmp_path)
    fresh = parse_output(stdout, stderr, rc, boundary=RECORDED_BOUNDARY)
    recorded = load_recorded("windows-sma-4294967295")
    for name in ("service", "hardware", "pressure", "prereqs", "events"):
        assert fresh[name].data == recorded[name].data
        assert fresh[name].raw == recorded[name].raw
    assert fresh["clock"].raw == recorded["clock"].raw
    for name in ("windows-clock-ahead", "windows-tls12-client-disabled"):
        stdout, stderr, rc = record_one(name, tmp_path)
        assert (
            parse_output(stdout, stderr, rc, boundary=RECORDED_BOUNDARY)["prereqs"].raw
            == load_recorded(name)["prereqs"].raw
        )
        assert (
            parse_output(stdout, stderr, rc, boundary=RECORDED_BOUNDARY)["clock"].raw
            == load_recorded(name)["clock"].raw
        )


# --- what the engine refuses --------------------------------------------------------------


def _encoded(code: str) -> str:
    return f"powershell -NoProfile -NonInteractive -EncodedCommand {encode_command(code)}"


def test_unknown_powershell_command_is_command_not_found_clixml() -> None:
    output = run_command(_encoded("Get-Foo -Bar 1"), [], b"", make_host())
    assert output.exit_code == 1 and output.stdout == b""
    assert output.stderr.startswith(b"#< CLIXML\r\n")
    text = decode_stderr(output.stderr)
    assert text.startswith(
        "Get-Foo : The term 'Get-Foo' is not recognized as the name of a cmdlet, function, "
        "script file, or operable program. Check the spelling of the name, or if a path was "
        "included, verify that the path is correct and try again."
    )
    assert "FullyQualifiedErrorId : CommandNotFoundException" in text


def test_unknown_cmd_command_gets_cmd_exe_text() -> None:
    output = run_command("frobnicate", ["/all"], b"", make_host())
    assert output.exit_code == 9009
    assert output.stderr == (
        b"'frobnicate' is not recognized as an internal or external command,\r\n"
        b"operable program or batch file.\r\n"
    )


def test_trivial_commands() -> None:
    host = make_host()
    assert run_command("hostname", [], b"", host).stdout == f"{NAME}\r\n".encode()
    assert run_command("echo", ["ok"], b"", host).stdout == b"ok\r\n"
    assert run_command("echo ok", [], b"", host).stdout == b"ok\r\n"
    assert run_command(_encoded("echo ok"), [], b"", host).stdout == b"ok\r\n"
    split = run_command("powershell", ["-EncodedCommand", encode_command("hostname")], b"", host)
    assert split.stdout == f"{NAME}\r\n".encode()


def test_a_different_bootstrap_is_not_run_as_the_probe() -> None:
    _, stdin = build_invocation(FAST, RECORDED_BOUNDARY)
    other = BOOTSTRAP.replace("ReadToEnd()", "ReadToEnd().Trim()")
    output = run_command(_encoded(other), [], stdin, make_host())
    assert output.exit_code == 1 and f"{RECORDED_BOUNDARY} BEGIN".encode() not in output.stdout
    assert output.stderr.startswith(b"#< CLIXML")


def test_a_changed_probe_block_fails_loudly_after_the_blocks_before_it() -> None:
    command, stdin = build_invocation(FAST, RECORDED_BOUNDARY)
    changed = stdin.replace(b"Select-Object -Property @('TotalPhysicalMemory')", b"Get-Bogus")
    output = run_command(command, [], changed, make_host())
    assert output.exit_code == 1
    assert output.stdout.startswith(marks("@@HRW-BEGIN service\r\n").encode())
    assert marks("@@HRW-BEGIN hardware").encode() not in output.stdout
    assert "The term 'Get-Bogus' is not recognized" in decode_stderr(output.stderr)
    reworded = stdin.replace(b"Read-HrwEvents $filter 200", b"Read-HrwEvents $filter 300")
    text = decode_stderr(run_command(command, [], reworded, make_host()).stderr)
    assert "probe block 'events' differs" in text


def test_code_outside_the_known_blocks_is_refused() -> None:
    command, stdin = build_invocation(FAST, RECORDED_BOUNDARY)
    output = run_command(command, [], stdin + b"\r\nInvoke-Sneaky\r\n", make_host())
    assert output.exit_code == 1
    assert "'Invoke-Sneaky' is not recognized" in decode_stderr(output.stderr)


def test_unreadable_parameter_line_fails_like_frombase64string() -> None:
    _, stdin = build_invocation(FAST, RECORDED_BOUNDARY)
    broken = b"!!!" + stdin
    output = run_probe(broken, make_host())
    assert output.exit_code == 1 and output.stdout == b""
    assert "FromBase64String" in decode_stderr(output.stderr)


def test_engine_knows_the_probe_in_this_tree() -> None:
    """Fails when the probe changed without the emulator learning the new version."""
    stale = "\n".join(probe_blocks.stale_entries())
    assert digest(BOOTSTRAP) == probe_blocks.BOOTSTRAP.sha256, stale
    regions, stray = split_regions(script_text())
    assert not stray
    assert {name: digest(body) for name, body in regions} == {
        name: entry.sha256 for name, entry in BLOCKS.items()
    }, stale
    encoded = base64.b64decode(
        build_invocation(FAST, RECORDED_BOUNDARY)[0].rsplit(" ", 1)[1]
    ).decode("utf-16-le")
    assert encoded == BOOTSTRAP


def test_each_fingerprint_names_the_version_of_the_answer_beside_its_code() -> None:
    """A fingerprint is approved only together with its answer: both versions must agree.

    Changing a block means a new digest, which means editing its entry by hand, whose
    ``answer`` must then equal the version raised beside the changed answer code.
    """
    assert {name: entry.answer for name, entry in BLOCKS.items()} == ANSWER_VERSIONS
    assert probe_blocks.BOOTSTRAP.answer == BOOTSTRAP_ANSWER
    for name, entry in {"bootstrap": probe_blocks.BOOTSTRAP, **BLOCKS}.items():
        assert len(entry.why.split()) >= 4, f"{name}: say why the answer fits this block"


def test_fingerprints_cannot_be_approved_by_a_command(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """--write is gone: the tool only reports, and reports a changed block as stale."""
    source = Path(probe_blocks.__file__).read_text(encoding="utf-8")
    assert probe_blocks.main(["--write"]) == 2
    assert "no --write" in capsys.readouterr().err
    assert Path(probe_blocks.__file__).read_text(encoding="utf-8") == source
    assert probe_blocks.main([]) == 0
    changed = {**probe_blocks.current_digests(), "service": "0" * 64}
    monkeypatch.setattr(probe_blocks, "current_digests", lambda: changed)
    assert probe_blocks.main([]) == 1
    assert "service: now 0000" in capsys.readouterr().out


def test_probe_over_the_emulators_winrm_https_in_one_command(
    tmp_path: Path, azure_port: int
) -> None:
    """The whole path: suite backend -> WinRM (NTLM over HTTPS) -> engine -> parser."""
    from hrw_preflight.hosts.winrm_backend import WinRMBackend, WinRMSettings
    from lab.winrm_emulator.server import create_server
    from lab.winrm_emulator.testing import throwaway_tls

    tls = throwaway_tls(tmp_path)
    host = replace(
        make_host(None, everywhere("127.0.0.1"), port=azure_port),
        tls_cert=str(tls.cert),
        tls_key=str(tls.key),
    )
    with create_server(host, run_command) as server:
        settings = WinRMSettings(
            host="127.0.0.1",
            port=server.https_port,
            user=host.username,
            password=host.password,
            ca_trust_path=str(tls.cert),
        )
        backend = WinRMBackend(settings)
        try:
            sections = collect(lambda command, stdin: backend.run(command, stdin=stdin), FAST)
            assert backend.commands_run == 1
        finally:
            backend.close()
    assert all(section.error is None for section in sections.values())
    network = sections["network"].data
    assert network is not None and {r["tls"] for r in network.values()} == {"ok"}
