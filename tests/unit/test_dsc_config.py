"""Parsing the agent's DSC configuration (Current.mof) and certificate (oms.crt) as the Linux
probe sends them: base64 of the file's bytes, in the encodings the agent writes."""

from __future__ import annotations

import codecs

import pytest

from hrw_preflight.facts.linux import dsc_config
from hrw_preflight.facts.linux import probe as linux
from hrw_preflight.facts.model import Section
from hrw_preflight.facts.params import ProbeParams
from tests.linux_samples import (
    BOUNDARY,
    CURRENT_MOF,
    WS,
    LinuxHost,
    Out,
    current_mof,
    oms_crt,
    thumbprint,
)


def sections(host: LinuxHost) -> dict[str, Section]:
    return linux.parse_facts(Out(host.facts_output()), ProbeParams(), boundary=BOUNDARY)


def settings_of(mof: bytes) -> Section:
    return sections(LinuxHost(mof=mof))["dsc_config"]


@pytest.mark.parametrize(
    ("data", "encoding"),
    [
        (current_mof(encoding="utf-16-le"), "utf-16-le"),
        (current_mof(encoding="utf-8"), "utf-8"),
        (current_mof(encoding="utf-16-le")[2:], "utf-16-le"),  # no byte-order mark
        (codecs.BOM_UTF8 + current_mof(encoding="utf-8"), "utf-8"),
    ],
    ids=["utf-16-le-bom", "utf-8", "utf-16-le-no-bom", "utf-8-bom"],
)
def test_resource_settings_are_read_in_every_encoding_the_agent_writes(
    data: bytes, encoding: str
) -> None:
    section = settings_of(data)
    assert section.error is None and section.data is not None
    assert section.data["exists"] and section.data["encoding"] == encoding
    assert section.data["settings"] == {
        "workspace_id": WS,
        "azure_dns_agent_svc_zone": "azure-automation.net",
        "updates_enabled": True,
        "automation_enabled": True,
    }


def test_solutions_come_from_the_configuration() -> None:
    data = settings_of(current_mof(updates=False, automation=True)).data
    assert data is not None and data["settings"]["updates_enabled"] is False
    assert data["settings"]["automation_enabled"] is True


def test_missing_configuration_is_recorded_and_denied_is_an_error() -> None:
    missing = sections(LinuxHost(mof_state="missing"))["dsc_config"]
    assert missing.data == {
        "path": dsc_config.CURRENT_MOF,
        "exists": False,
        "encoding": None,
        "settings": None,
    }
    denied = sections(LinuxHost(mof_state="denied"))["dsc_config"]
    assert denied.data is None and "permission denied" in str(denied.error)


def test_a_configuration_without_the_worker_resource_has_no_settings() -> None:
    text = 'instance of MSFT_nxFileResource\n{\n ResourceSettings = "[]";\n};\n'
    section = settings_of(text.encode("utf-16-le"))
    assert section.data is not None and section.data["settings"] is None


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\xff\xfe" + b"\x00\xd8", "neither UTF-16-LE nor UTF-8"),  # lone surrogate
        (b"instance of x \xff\xfe\xfd", "neither UTF-16-LE nor UTF-8"),
        (
            b"instance of MSFT_nxOMSAutomationWorkerResource\n{\n ResourceSettings = "
            b'"[{\\"WorkspaceId\\": ";\n};\n',
            "not JSON",
        ),
        (
            b'instance of MSFT_nxOMSAutomationWorkerResource\n{\n ModuleName = "x";\n};\n',
            "no ResourceSettings",
        ),
        (
            b"instance of MSFT_nxOMSAutomationWorkerResource\n{\n ResourceSettings = "
            b'"[{\\"WorkspaceId\\":\\"w\\",\\"Solutions\\":{}}]";\n};\n',
            "Solutions.Updates.Enabled",
        ),
    ],
    ids=["bad-utf16", "bad-utf8", "bad-json", "no-settings", "no-solutions"],
)
def test_garbled_configuration_is_an_error_that_says_why(data: bytes, reason: str) -> None:
    section = settings_of(data)
    assert section.data is None and reason in str(section.error)


def test_a_symlinked_configuration_is_an_error_and_the_worker_section_stays_readable() -> None:
    host = LinuxHost(files_rc={CURRENT_MOF: "symlink"})
    parsed = sections(host)
    assert parsed["dsc_config"].data is None and "symbolic link" in str(parsed["dsc_config"].error)
    assert parsed["worker"].data is not None


def test_a_certificate_file_holding_a_key_never_reaches_facts_or_evidence() -> None:
    key = (
        "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----\n"
    )
    host = LinuxHost(file_bodies={"/etc/opt/microsoft/omsagent/certs/oms.crt": key})
    cert = sections(host)["oms_cert"]
    assert cert.data is None and "private key" in str(cert.error)
    assert "MIIEvQ" not in cert.raw


def test_certificate_thumbprint_is_computed_on_the_controller() -> None:
    cert = sections(LinuxHost())["oms_cert"]
    assert cert.data is not None and cert.data["exists"]
    assert cert.data["sha1"] == thumbprint(oms_crt("current"))
    assert len(cert.data["sha1"]) == 40 and cert.data["sha1"].isupper()
    missing = sections(LinuxHost(cert="missing"))["oms_cert"]
    assert missing.data is not None and missing.data["exists"] is False
    with pytest.raises(dsc_config.DscConfigError, match="no PEM certificate"):
        dsc_config.cert_thumbprint(b"-----BEGIN CERTIFICATE-----\nxx\n-----END CERTIFICATE-----\n")


def test_worker_facts_for_the_dsc_test() -> None:
    worker = sections(LinuxHost(auto=False))["worker"].data
    assert worker is not None
    assert worker["primary_workspace_id"] == WS
    assert worker["oms_conf"] == {
        "exists": True,
        "worker_conf_section": True,
        "auto_registered": False,
        "manually_registered": True,
    }
    assert worker["auto_worker_conf"] == {"exists": False, "jrds_cert_thumbprint": None}
    registered = sections(LinuxHost())["worker"].data
    assert registered is not None
    assert registered["auto_worker_conf"]["jrds_cert_thumbprint"] == thumbprint(oms_crt())


def test_probe_never_reads_the_certificate_key() -> None:
    script = linux._script("linux_facts.sh")
    assert "/oms.crt" in script and "oms.key" not in script
