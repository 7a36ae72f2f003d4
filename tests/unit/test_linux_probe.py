"""The Linux probe's parser, on output in the exact shape the shell scripts print."""

from __future__ import annotations

from hrw_preflight.facts.linux import probe as linux
from hrw_preflight.facts.model import Section
from hrw_preflight.facts.params import ProbeParams
from tests.linux_samples import (
    AGENTSVC,
    BOUNDARY,
    JRDS,
    ODS,
    OMS,
    WS,
    LinuxHost,
    Out,
    openssl_ok,
    openssl_timeout,
)


def parse(host: LinuxHost) -> dict[str, Section]:
    return linux.parse_facts(Out(host.facts_output()), ProbeParams(), boundary=BOUNDARY)


def test_healthy_host_discovers_workspace_endpoints_and_workers() -> None:
    worker = parse(LinuxHost()).get("worker")
    assert worker is not None and worker.data is not None
    assert worker.data["workspace_id"] == WS
    assert worker.data["endpoints"] == {
        "agentsvc": AGENTSVC,
        "jrds": JRDS,
        "oms": OMS,
        "ods": ODS,
    }
    assert worker.data["update_management"] and worker.data["user_worker"]
    assert worker.data["version"] == "1.7.4.0"


def test_processes_hardware_and_pressure_are_parsed() -> None:
    sections = parse(LinuxHost(cpus=1, load=1.8))
    procs = sections["processes"].data
    assert procs is not None and procs["users"] == {"nxautomation": 998, "omsagent": 997}
    assert {p["pid"] for p in procs["processes"]} == {411, 8567, 8593, 8595}
    assert sections["hardware"].data == {"logical_processors": 1, "memory_bytes": 8 * 1024**3}
    pressure = sections["pressure"].data
    assert pressure is not None and pressure["cpu_load"] == 1.8


def test_proxy_password_never_enters_the_data() -> None:
    worker = parse(LinuxHost(proxy="http://corp:S3cret!@10.1.2.3:3128")).get("worker")
    assert worker is not None and worker.data is not None
    assert worker.data["proxy"] == {
        "url": "http://corp:***@10.1.2.3:3128",
        "host": "10.1.2.3",
        "port": 3128,
        "has_credentials": True,
        "path": "/etc/opt/microsoft/omsagent/proxy.conf",
    }
    assert "S3cret" not in str(worker.data)


def test_unreadable_proxy_conf_makes_worker_an_error() -> None:
    host = LinuxHost(proxy="", files_rc={"/etc/opt/microsoft/omsagent/proxy.conf": "denied"})
    worker = parse(host)["worker"]
    assert worker.data is None and "proxy.conf" in str(worker.error)


def test_denied_log_is_an_error_and_missing_log_is_recorded() -> None:
    assert parse(LinuxHost(log_state="denied"))["omsconfig_log"].data is None
    missing = parse(LinuxHost(log_state="missing"))["omsconfig_log"].data
    assert missing is not None and missing["exists"] is False


def test_garbled_or_truncated_output_errors_every_section() -> None:
    text = LinuxHost().facts_output()
    cut = linux.parse_facts(Out(text[: len(text) // 2]), ProbeParams(), boundary=BOUNDARY)
    assert all(s.data is None for s in cut.values())
    failed = linux.parse_facts(
        Out("", rc=1, stderr="sh: 1: cannot fork"), ProbeParams(), boundary=BOUNDARY
    )
    assert "cannot fork" in str(failed["worker"].error)


def test_garbled_ps_line_is_an_error() -> None:
    text = LinuxHost(replacements=((" 8567 ", "\x00garbage\n 8567 "),)).facts_output()
    assert linux.parse_facts(Out(text), ProbeParams(), boundary=BOUNDARY)["processes"].data is None


def test_network_output_is_split_per_endpoint() -> None:
    lines = openssl_ok(AGENTSVC, ["-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----"])
    lines += openssl_timeout(OMS)
    lines.insert(2, f"{OMS}|interleaved line")
    roles = {AGENTSVC: "agentsvc", OMS: "oms", JRDS: "jrds"}
    section = linux.parse_network(Out("\n".join(lines)), roles, None)
    assert section.data is not None
    assert section.data[AGENTSVC]["tcp"] == "ok" and section.data[AGENTSVC]["tls"] == "ok"
    assert len(section.data[AGENTSVC]["chain_pem"]) == 1
    assert section.data[OMS]["tcp"] == "timeout"
    assert section.data[JRDS]["tcp"] == "error"  # no output at all: never a pass


def test_proxy_refusal_and_missing_openssl() -> None:
    refused = linux.parse_network(
        Out(f"{OMS}|CONNECTED(00000003)\n{OMS}|s_client: HTTP CONNECT failed: 407\n{OMS}|@@RC 1"),
        {OMS: "oms"},
        "10.0.0.3:3128",
    )
    assert refused.data is not None and refused.data[OMS]["tcp"] == "proxy-refused"
    assert linux.parse_network(Out("@@HRW-NO-OPENSSL\n"), {OMS: "oms"}, None).data is None


def test_overrides_replace_discovered_endpoints_and_proxy() -> None:
    worker = parse(LinuxHost(proxy="http://10.1.2.3:3128"))["worker"].data
    params = ProbeParams(endpoints={"jrds": "jrds.example.test"}, proxy="")
    roles, proxy, creds = linux.network_plan(linux.effective_worker(worker, params), params)
    assert roles == {AGENTSVC: "agentsvc", "jrds.example.test": "jrds", OMS: "oms", ODS: "ods"}
    assert proxy is None and creds == ""
    _, proxy, _ = linux.network_plan(worker, ProbeParams())
    assert proxy == "10.1.2.3:3128"


def test_workspace_override_gives_endpoints_to_an_image_without_agent() -> None:
    params = ProbeParams(workspace_id="11111111-2222-3333-4444-555555555555")
    effective = linux.effective_worker(None, params)
    assert effective is not None
    assert effective["endpoints"] == {
        "agentsvc": "11111111-2222-3333-4444-555555555555.agentsvc.azure-automation.net",
        "oms": "11111111-2222-3333-4444-555555555555.oms.opinsights.azure.com",
        "ods": "11111111-2222-3333-4444-555555555555.ods.opinsights.azure.com",
    }
    assert linux.effective_worker(None, ProbeParams()) is None


def test_proxy_credentials_are_read_from_the_proxy_conf_that_exists() -> None:
    legacy = "/etc/opt/microsoft/omsagent/conf/proxy.conf"
    text = LinuxHost(file_bodies={legacy: "http://u:p@10.1.2.3:3128\n"}).facts_output()
    worker = linux.parse_facts(Out(text), ProbeParams(), boundary=BOUNDARY)["worker"].data
    _, proxy, creds = linux.network_plan(worker, ProbeParams())
    assert proxy == "10.1.2.3:3128" and creds == legacy


def test_both_platforms_receive_the_same_endpoint_overrides() -> None:
    from hrw_preflight.facts.windows.probe import params_document

    params = ProbeParams(workspace_id="ws-1", endpoints={"jrds": "j.example", "oms": "o.example"})
    expected = {"agentsvc": "ws-1.agentsvc.azure-automation.net", "oms": "o.example",
                "ods": "ws-1.ods.opinsights.azure.com", "jrds": "j.example"}  # fmt: skip
    assert params.endpoint_overrides == expected
    assert params_document(params, BOUNDARY)["endpoints"] == expected
    effective = linux.effective_worker(None, params)
    assert effective is not None and effective["endpoints"] == expected
