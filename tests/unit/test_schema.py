"""One fact schema for both platforms (issue 9 item 2): the parsers' output, the emulator's
recorded answers and the Linux samples all have the declared shapes; a shape error is that
section's error naming the section and the field; docs/design.md shows the schema as it is."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hrw_preflight.facts.linux import probe as linux
from hrw_preflight.facts.model import HostFacts, Section
from hrw_preflight.facts.params import ProbeParams
from hrw_preflight.facts.schema import (
    SCHEMA,
    Unreadable,
    check_shape,
    conform,
    fact_table,
    section_data,
)
from hrw_preflight.facts.windows.probe import SECTIONS as WINDOWS_SECTIONS
from tests.linux_samples import BOUNDARY, OMS, LinuxHost, Out, openssl_ok, openssl_timeout
from tests.pki_samples import make_cert
from tests.windows_recorded import load_recorded, recorded_names

DESIGN = Path(__file__).resolve().parents[2] / "docs" / "design.md"
LINUX_HOSTS = {
    "healthy": LinuxHost(),
    "proxy": LinuxHost(proxy="http://corp:S3cret@10.1.2.3:3128"),
    "no-workers": LinuxHost(auto=False, user=False, agent=False, nxautomation_uid=None),
    "log-missing": LinuxHost(log_state="missing", missing_tools=("openssl", "curl")),
    "class-missing": LinuxHost(log_lines=["The specified class does not exist.."]),
}


def _data_sections(sections: dict[str, Section]) -> dict[str, Section]:
    return {n: s for n, s in sections.items() if s.data is not None}


def test_design_doc_fact_table_is_the_schema() -> None:
    text = DESIGN.read_text(encoding="utf-8")
    start = text.index("<!-- fact table: generated from hrw_preflight/facts/schema.py -->\n")
    end = text.index("<!-- end of fact table -->")
    shown = text[text.index("\n", start) + 1 : end]
    assert shown == fact_table(), "run: python -m hrw_preflight.facts.schema, paste in design.md"


def test_every_section_the_probes_produce_is_declared_for_its_platform() -> None:
    linux_names = {*linux.FACT_SECTIONS, "network", "kind"}
    assert linux_names <= {n for n, s in SCHEMA.items() if "linux" in s.platforms}
    windows_names = {*WINDOWS_SECTIONS, "kind"}
    assert windows_names <= {n for n, s in SCHEMA.items() if "windows" in s.platforms}


@pytest.mark.parametrize("name", recorded_names())
def test_recorded_windows_answers_have_the_declared_shapes(name: str) -> None:
    # The recordings are the lab emulator's answers: an emulator or parser drift fails here.
    sections = load_recorded(name)
    for section in sections.values():
        assert "unexpected shape" not in str(section.error), section.error
    for found in _data_sections(sections).values():
        check_shape(found.data, SCHEMA[found.name].shape, "")
    if name == "windows-healthy":
        assert set(_data_sections(sections)) == {*WINDOWS_SECTIONS, "kind"}


@pytest.mark.parametrize("name", sorted(LINUX_HOSTS))
def test_linux_sample_answers_have_the_declared_shapes(name: str) -> None:
    host = LINUX_HOSTS[name]
    sections = linux.parse_facts(
        Out(host.facts_output()), ProbeParams(), host.window(), boundary=BOUNDARY
    )
    leaf = make_cert("azure", None, ca=False, sans=[OMS])
    network = Out("\n".join([*openssl_ok(OMS, [leaf.pem]), *openssl_timeout("x.example")]))
    sections["network"] = linux.parse_network(network, {OMS: "oms", "x.example": "jrds"}, None)
    assert set(_data_sections(sections)) >= {*linux.FACT_SECTIONS, "network"}
    for found in sections.values():
        check_shape(found.data, SCHEMA[found.name].shape, "")


def test_shared_sections_have_the_same_keys_on_both_platforms() -> None:
    windows = load_recorded("windows-healthy")
    linux_sections = linux.parse_facts(
        Out(LinuxHost().facts_output()), ProbeParams(), LinuxHost().window(), boundary=BOUNDARY
    )
    for name in ("hardware", "pressure", "worker", "clock"):
        mine, theirs = linux_sections[name].data, windows[name].data
        assert mine is not None and theirs is not None
        required = SCHEMA[name].shape.__required_keys__
        assert required <= set(mine) and required <= set(theirs), name


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        (
            "hardware",
            {"logical_processors": "2", "memory_bytes": 1},
            "field 'logical_processors' is a string ('2'), expected an integer",
        ),
        ("hardware", {"logical_processors": True, "memory_bytes": 1}, "expected an integer"),
        ("hardware", {"logical_processors": 2}, "field 'memory_bytes' is missing"),
        (
            "hardware",
            {"logical_processors": 2, "memory_bytes": 1, "sockets": 1},
            "field 'sockets' is not in the schema",
        ),
        (
            "network",
            {
                "h": {
                    "role": "x",
                    "via_proxy": None,
                    "tcp": "ok",
                    "tls": "ok",
                    "detail": "",
                    "chain_pem": [],
                }
            },
            "field 'h.role' is 'x', expected 'agentsvc' or 'jrds' or 'oms'",
        ),
        (
            "events",
            {"lookback_hours": 24, "logs": {"Operations Manager": [{"id": 1}]}},
            "field 'logs.Operations Manager[0].provider' is missing",
        ),
        ("worker", [], "field '' is a list, expected an object"),
        ("mystery", {}, "section 'mystery' is not declared in hrw_preflight/facts/schema.py"),
    ],
)
def test_a_shape_error_is_the_sections_error_naming_the_field(
    name: str, data: Any, message: str
) -> None:
    found = conform(Section(name, data, raw="raw text"))
    assert found.data is None and found.raw == "raw text"
    assert message in str(found.error) and name in str(found.error)


def test_a_drifted_windows_answer_is_an_error_not_a_pass() -> None:
    # The parser boundary checks the shape: a probe or emulator that drifts cannot pass.
    stdout_section = load_recorded("windows-healthy")["service"]
    assert stdout_section.data is not None
    drifted = conform(Section("service", {**stdout_section.data, "state": 4}))
    assert drifted.data is None
    assert "field 'state' is an integer (4), expected a string or null" in str(drifted.error)


def test_section_data_is_the_data_or_unreadable() -> None:
    facts = HostFacts("h", "linux", {"hardware": Section("hardware", {"logical_processors": 2})})
    assert section_data(facts, "hardware") == {"logical_processors": 2}
    with pytest.raises(Unreadable, match="could not read clock"):
        section_data(facts, "clock")


def _windows_profiles() -> list[Any]:
    from lab.profiles import load_profiles

    return [p for p in load_profiles().ordered() if p.platform == "windows"]


@pytest.mark.parametrize("profile", _windows_profiles(), ids=lambda p: p.name)
def test_the_emulator_answers_every_lab_profile_in_the_declared_shapes(profile: Any) -> None:
    # The emulator answers from each lab profile; whatever it says must parse into the
    # declared shapes (endpoints point at a closed loopback port: the network is not the point).
    from hrw_preflight.facts.windows.probe import build_invocation, parse_output
    from lab.winrm_emulator.engine import run_command
    from tests.windows_recorded import (
        RECORDED_BOUNDARY,
        endpoint_names,
        loopback_engine_host,
        workspace_of,
    )
    from tests.windows_tls_servers import closed_port

    workspace = workspace_of(profile.name)
    names = endpoint_names(workspace)
    values = {k: v for k, v in profile.as_dict().items() if k not in ("name", "platform")}
    values["endpoint_port"] = closed_port()
    host = loopback_engine_host(
        profile.name, workspace, names, dict.fromkeys(names.values(), "127.0.0.1"), None, values
    )
    command, stdin = build_invocation(ProbeParams(connect_timeout_s=0.5), RECORDED_BOUNDARY)
    output = run_command(command, [], stdin, host)
    sections = parse_output(
        output.stdout, output.stderr, output.exit_code, boundary=RECORDED_BOUNDARY
    )
    for section in sections.values():
        assert "unexpected shape" not in str(section.error), section.error
    assert {n for n, s in sections.items() if s.data is not None} >= {
        "service",
        "hardware",
        "pressure",
        "events",
        "network",
    }
    # A host with only the extension-based worker has no MMA to read the worker from.
    worker = sections["worker"]
    assert worker.data is not None or "Microsoft Monitoring Agent installed" in str(worker.error)
