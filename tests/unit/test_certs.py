"""Tests for the Azure CA list and the certificate-chain judgement."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from hrw_preflight.hosts.errors import ConfigError
from hrw_preflight.verdicts.ca_list import CAEntry, parse_ca_csv, read_ca_csv, shipped_ca_list
from hrw_preflight.verdicts.certs import (
    ChainUnreadable,
    TrustedCAs,
    judge_chain,
    load_trusted_cas,
    name_matches,
    thumbprint,
)
from tests.pki_samples import Issued, make_cert

SERVER = "0b7e3c5e-1111-4222-8333-444455556666.agentsvc.azure-automation.net"


@pytest.fixture(scope="module")
def pki() -> dict[str, Issued]:
    """Return a small PKI: root -> intermediate -> leaf, plus an interception CA."""
    root = make_cert("Lab Azure Root CA", None, ca=True)
    inter = make_cert("Lab Azure TLS Issuing CA", root, ca=True)
    leaf = make_cert("agentsvc", inter, ca=False, sans=["*.agentsvc.azure-automation.net"])
    proxy_ca = make_cert("Microsoft Azure RSA TLS Issuing CA 03", None, ca=True)
    proxy_leaf = make_cert("agentsvc", proxy_ca, ca=False, sans=["*.agentsvc.azure-automation.net"])
    return {
        "root": root,
        "inter": inter,
        "leaf": leaf,
        "proxy_ca": proxy_ca,
        "proxy_leaf": proxy_leaf,
    }


@pytest.fixture(scope="module")
def lab_trusted(pki: dict[str, Issued], tmp_path_factory: pytest.TempPathFactory) -> TrustedCAs:
    """Return the shipped list plus the lab root, loaded from a PEM file like the lab's."""
    path = tmp_path_factory.mktemp("pki") / "trusted-cas.pem"
    path.write_text(pki["root"].pem)
    return load_trusted_cas([str(path)])


def test_full_chain_anchors_at_extra_root(pki: dict[str, Issued], lab_trusted: TrustedCAs) -> None:
    chain = [pki["leaf"].pem, pki["inter"].pem, pki["root"].pem]
    verdict = judge_chain(chain, lab_trusted, SERVER)
    assert verdict.ok, verdict.reason
    assert verdict.anchor == f"Lab Azure Root CA ({thumbprint(pki['root'].cert)})"
    assert verdict.subjects == [
        "CN=agentsvc",
        "CN=Lab Azure TLS Issuing CA",
        "CN=Lab Azure Root CA",
    ]


def test_root_not_sent_is_verified_against_held_extra_ca(
    pki: dict[str, Issued], lab_trusted: TrustedCAs
) -> None:
    verdict = judge_chain([pki["leaf"].pem, pki["inter"].pem], lab_trusted, SERVER)
    assert verdict.ok, verdict.reason
    assert verdict.anchor is not None and "Lab Azure Root CA" in verdict.anchor


def test_unordered_chain_is_followed_by_signature(
    pki: dict[str, Issued], lab_trusted: TrustedCAs
) -> None:
    chain = [pki["leaf"].pem, pki["root"].pem, pki["inter"].pem]
    assert judge_chain(chain, lab_trusted, SERVER).ok


def test_intermediate_on_the_azure_list_anchors_without_root(pki: dict[str, Issued]) -> None:
    thumb = thumbprint(pki["inter"].cert)
    trusted = TrustedCAs(trusted={thumb: "Microsoft Azure RSA TLS Issuing CA 07"}, removed={})
    verdict = judge_chain([pki["leaf"].pem, pki["inter"].pem], trusted, SERVER)
    assert verdict.ok
    assert verdict.anchor == f"Microsoft Azure RSA TLS Issuing CA 07 ({thumb})"
    assert verdict.reason == f"issued by {verdict.anchor}"


def test_interception_ca_with_microsoft_name_fails(
    pki: dict[str, Issued], lab_trusted: TrustedCAs
) -> None:
    chain = [pki["proxy_leaf"].pem, pki["proxy_ca"].pem]
    verdict = judge_chain(chain, lab_trusted, SERVER)
    assert not verdict.ok
    assert verdict.anchor is None
    thumb = thumbprint(pki["proxy_ca"].cert)
    assert verdict.reason == (
        "issuer 'Microsoft Azure RSA TLS Issuing CA 03' carries a Microsoft name but its "
        f"thumbprint {thumb} is not on the Azure CA list: TLS inspection?"
    )


def test_interception_ca_not_sent_still_names_the_suspect(
    pki: dict[str, Issued], lab_trusted: TrustedCAs
) -> None:
    verdict = judge_chain([pki["proxy_leaf"].pem], lab_trusted, SERVER)
    assert not verdict.ok
    assert "'Microsoft Azure RSA TLS Issuing CA 03' carries a Microsoft name" in verdict.reason
    assert verdict.reason.endswith("TLS inspection?")


def test_same_names_other_key_fails_as_forged(
    pki: dict[str, Issued], lab_trusted: TrustedCAs
) -> None:
    impostor = make_cert("Lab Azure TLS Issuing CA", pki["root"], ca=True)
    chain = [pki["leaf"].pem, impostor.pem, pki["root"].pem]
    verdict = judge_chain(chain, lab_trusted, SERVER)
    assert not verdict.ok
    assert "signature does not verify" in verdict.reason
    assert "forged or mismatched chain" in verdict.reason


def test_claiming_a_trusted_extra_ca_without_its_key_fails(
    pki: dict[str, Issued], lab_trusted: TrustedCAs
) -> None:
    other = ec.generate_private_key(ec.SECP256R1())
    forged = make_cert(
        "agentsvc",
        None,
        ca=False,
        sans=["*.agentsvc.azure-automation.net"],
        issuer_name="Lab Azure Root CA",
        signing_key=other,
    )
    verdict = judge_chain([forged.pem], lab_trusted, SERVER)
    assert not verdict.ok
    assert "names trusted CA 'Lab Azure Root CA'" in verdict.reason


def test_removed_ca_is_named_with_its_date(pki: dict[str, Issued]) -> None:
    thumb = thumbprint(pki["inter"].cert)
    entry = CAEntry("removed", "Microsoft RSA TLS CA 01", "", "8 Oct 2024", thumb)
    trusted = TrustedCAs(trusted={}, removed={thumb: entry})
    verdict = judge_chain([pki["leaf"].pem, pki["inter"].pem], trusted, SERVER)
    assert not verdict.ok
    assert verdict.reason == (
        f"issued by Microsoft RSA TLS CA 01 ({thumb}), removed from the Azure CA list on 8 Oct 2024"
    )


def test_extra_file_makes_a_removed_ca_trusted_again(
    pki: dict[str, Issued], tmp_path: Path
) -> None:
    path = tmp_path / "extra.pem"
    path.write_text(pki["inter"].pem)
    trusted = load_trusted_cas([str(path)])
    assert judge_chain([pki["leaf"].pem], trusted, SERVER).ok


def test_name_mismatch_fails(pki: dict[str, Issued], lab_trusted: TrustedCAs) -> None:
    chain = [pki["leaf"].pem, pki["inter"].pem]
    verdict = judge_chain(chain, lab_trusted, "ws.oms.opinsights.azure.com")
    assert not verdict.ok
    assert verdict.reason == (
        "the certificate's names (*.agentsvc.azure-automation.net) do not cover "
        "'ws.oms.opinsights.azure.com'"
    )
    assert verdict.anchor is not None  # the chain was fine, only the name was not


def test_expired_leaf_fails(pki: dict[str, Issued], lab_trusted: TrustedCAs) -> None:
    old = make_cert("agentsvc", pki["inter"], ca=False, sans=[SERVER], days=(-30, -1))
    verdict = judge_chain([old.pem, pki["inter"].pem], lab_trusted, SERVER)
    assert not verdict.ok
    assert "expired on" in verdict.reason


def test_untrusted_self_signed_without_vendor_name(lab_trusted: TrustedCAs) -> None:
    selfsigned = make_cert("corp-proxy", None, ca=True, sans=[SERVER])
    verdict = judge_chain([selfsigned.pem], lab_trusted, SERVER)
    assert not verdict.ok
    assert verdict.reason.startswith("the chain ends in self-signed 'corp-proxy'")


def test_empty_chain_is_not_ok(lab_trusted: TrustedCAs) -> None:
    verdict = judge_chain([], lab_trusted, SERVER)
    assert (verdict.ok, verdict.reason, verdict.subjects) == (False, "no certificate received", [])


@pytest.mark.parametrize(
    "pem",
    [
        "not a certificate",
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        "-----BEGIN CERTIFICATE-----\nMIIB\u00e9\n-----END CERTIFICATE-----\n",
    ],
)
def test_garbled_pem_raises_chain_unreadable(pem: str, lab_trusted: TrustedCAs) -> None:
    with pytest.raises(ChainUnreadable, match="certificate 0"):
        judge_chain([pem], lab_trusted, SERVER)


@pytest.mark.parametrize(
    ("pattern", "host", "expected"),
    [
        ("*.agentsvc.azure-automation.net", "ws.agentsvc.azure-automation.net", True),
        ("*.agentsvc.azure-automation.net", "WS.AgentSvc.Azure-Automation.NET.", True),
        ("*.agentsvc.azure-automation.net", "a.b.agentsvc.azure-automation.net", False),
        ("*.agentsvc.azure-automation.net", "agentsvc.azure-automation.net", False),
        ("*.net", "azure.net", False),
        ("a*.example.net", "ab.example.net", False),
        ("ws.oms.opinsights.azure.com", "ws.oms.opinsights.azure.com", True),
        ("ws.oms.opinsights.azure.com", "xws.oms.opinsights.azure.com", False),
        ("10.213.0.2", "10.213.0.2", True),
        ("10.213.0.2", "10.213.0.20", False),
        ("", "", False),
    ],
)
def test_name_matches(pattern: str, host: str, expected: bool) -> None:
    assert name_matches(pattern, host) is expected


def test_shipped_list_is_cached_and_split_by_status() -> None:
    assert shipped_ca_list() is shipped_ca_list()
    trusted = load_trusted_cas([])
    # DigiCert Global Root G2 is current; Baltimore CyberTrust Root was removed.
    assert trusted.trusted["DF3C24F9BFD666761B268073FE06D1CC8D4F82A4"] == "DigiCert Global Root G2"
    baltimore = trusted.removed["D4DE20D05E66FC53FE1A50882C78DB2852CAE474"]
    assert (baltimore.name, baltimore.removed_on) == ("Baltimore CyberTrust Root", "8 Oct 2024")
    assert not set(trusted.trusted) & set(trusted.removed)


@pytest.mark.parametrize(
    "bundle_name",
    ["DigiCert_Global_Root_G2.crt", "DigiCert_Global_Root_CA.crt", "DigiCert_Global_Root_G3.crt"],
)
def test_system_roots_match_the_shipped_thumbprints(bundle_name: str) -> None:
    path = Path("/usr/share/ca-certificates/mozilla") / bundle_name
    if not path.exists():
        pytest.skip(f"{path} is not installed")
    cert = x509.load_pem_x509_certificate(path.read_bytes())
    trusted = load_trusted_cas([])
    assert thumbprint(cert) in trusted.trusted


def test_missing_extra_file_is_a_config_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.pem"
    with pytest.raises(ConfigError, match=f"trusted CA file {missing}: cannot read it"):
        load_trusted_cas([str(missing)])


def test_malformed_extra_file_is_a_config_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pem"
    bad.write_text("-----BEGIN CERTIFICATE-----\nzzzz\n-----END CERTIFICATE-----\n")
    with pytest.raises(ConfigError, match=f"trusted CA file {bad}: no readable PEM"):
        load_trusted_cas([str(bad)])


HEADER = "status,name,parent,removed_on,sha1_thumbprint\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "the header must be"),
        ("status,name\n", "the header must be"),
        (HEADER + "current,X,,,A8985D3A65E5E5C4B2D7D66D40C6DD2FB19C5436\n", "line 2: status"),
        (HEADER + "current-root,X,,,A898\n", "line 2: 'A898' is not a SHA-1"),
        (HEADER + "current-root,X,,\n", "line 2: expected 5 columns"),
        (HEADER + "\ncurrent-root,,,,A8985D3A65E5E5C4B2D7D66D40C6DD2FB19C5436\n", "line 3"),
    ],
)
def test_malformed_ca_csv_names_file_and_line(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=f"CA list my.csv.*{message}"):
        parse_ca_csv(text, "my.csv")


def test_ca_csv_accepts_colon_thumbprints(tmp_path: Path) -> None:
    path = tmp_path / "list.csv"
    path.write_text(
        HEADER + "current-root,R,,,a8:98:5d:3a:65:e5:e5:c4:b2:d7:d6:6d:40:c6:dd:2f:b1:9c:54:36\n"
    )
    (entry,) = read_ca_csv(path)
    assert entry.thumbprint == "A8985D3A65E5E5C4B2D7D66D40C6DD2FB19C5436"
    assert entry.trusted


def test_missing_ca_csv_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"CA list .*nope\.csv: cannot read it"):
        read_ca_csv(tmp_path / "nope.csv")


def test_interception_ca_named_even_below_a_proxy_root(tmp_path: Path) -> None:
    proxy_root = make_cert("Corp Proxy Root", None, ca=True)
    ms_named = make_cert("Microsoft Azure RSA TLS Issuing CA 03", proxy_root, ca=True)
    leaf = make_cert("agentsvc", ms_named, ca=False, sans=[SERVER])
    verdict = judge_chain([leaf.pem, ms_named.pem, proxy_root.pem], load_trusted_cas([]), SERVER)
    assert not verdict.ok
    assert verdict.reason == (
        "issuer 'Microsoft Azure RSA TLS Issuing CA 03' carries a Microsoft name but its "
        f"thumbprint {thumbprint(ms_named.cert)} is not on the Azure CA list: TLS inspection?"
    )


def test_trusted_cas_are_cached_and_read_only(tmp_path: Path, pki: dict[str, Issued]) -> None:
    path = tmp_path / "ca.pem"
    path.write_text(pki["root"].pem)
    first = load_trusted_cas([str(path)])
    assert load_trusted_cas([str(path)]) is first
    with pytest.raises(TypeError):
        first.trusted["00"] = "x"  # type: ignore[index]
