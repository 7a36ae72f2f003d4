"""Tests for the Azure CA list and the certificate-chain judgement."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

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


def _usage(**allowed: bool) -> x509.KeyUsage:
    flags = dict.fromkeys(
        (
            "digital_signature",
            "content_commitment",
            "key_encipherment",
            "data_encipherment",
            "key_agreement",
            "key_cert_sign",
            "crl_sign",
            "encipher_only",
            "decipher_only",
        ),
        False,
    )
    flags.update(allowed)
    return x509.KeyUsage(**flags)


SANS = ["*.agentsvc.azure-automation.net"]


def _azure_listed(*anchors: Issued) -> TrustedCAs:
    """Trust ``anchors`` by thumbprint, as the shipped Azure CA list trusts its CAs."""
    return TrustedCAs(
        trusted={
            thumbprint(a.cert): f"Microsoft Azure TLS Issuing CA {i}" for i, a in enumerate(anchors)
        },
        removed={},
    )


def _vectors(pki: dict[str, Issued]) -> dict[str, tuple[list[str], str]]:
    """Return each way a chain that reaches a trusted CA can still be wrong: the chain (leaf
    first) and the words its failure must carry."""
    inter, root = pki["inter"], pki["root"]
    not_ca = make_cert("Corp Web Server", inter, ca=False, sans=["corp.example.net"])
    signed_by_not_ca = make_cert("agentsvc", not_ca, ca=False, sans=SANS)
    no_cert_sign = make_cert(
        "Lab Signing Only CA", inter, ca=True, key_usage=_usage(digital_signature=True)
    )
    signed_by_no_cert_sign = make_cert("agentsvc", no_cert_sign, ca=False, sans=SANS)
    zero = make_cert("Lab Path Zero CA", root, ca=True, path_length=0)
    below_zero = make_cert("Lab Below Zero CA", zero, ca=True)
    past_path_length = make_cert("agentsvc", below_zero, ca=False, sans=SANS)
    client_only = make_cert(
        "agentsvc", inter, ca=False, sans=SANS, eku=(ExtendedKeyUsageOID.CLIENT_AUTH,)
    )
    other_host = make_cert("other", inter, ca=False, sans=["portal.example.net"])
    expired = make_cert("agentsvc", inter, ca=False, sans=SANS, days=(-30, -1))
    not_yet = make_cert("agentsvc", inter, ca=False, sans=SANS, days=(2, 30))
    other_key = ec.generate_private_key(ec.SECP256R1())
    bad_signature = make_cert(
        "agentsvc",
        None,
        ca=False,
        sans=SANS,
        issuer_name="Lab Azure TLS Issuing CA",
        signing_key=other_key,
    )
    ms_named = make_cert("Microsoft Azure RSA TLS Issuing CA 03", None, ca=True)
    intercepted = make_cert("agentsvc", ms_named, ca=False, sans=SANS)
    return {
        "issuer not a CA": (
            [signed_by_not_ca.pem, not_ca.pem, inter.pem],
            "'Corp Web Server' issued 'agentsvc' but is not a CA (basicConstraints CA:FALSE)",
        ),
        "issuer without keyCertSign": (
            [signed_by_no_cert_sign.pem, no_cert_sign.pem, inter.pem],
            "does not allow signing certificates (no keyCertSign)",
        ),
        "path length exceeded": (
            [past_path_length.pem, below_zero.pem, zero.pem, root.pem],
            "'Lab Path Zero CA' allows 0 intermediate CA(s) below it",
        ),
        "leaf for client authentication": (
            [client_only.pem, inter.pem],
            "lacks serverAuth",
        ),
        "wrong host name": ([other_host.pem, inter.pem], "do not cover"),
        "expired": ([expired.pem, inter.pem], "expired on"),
        "not yet valid": ([not_yet.pem, inter.pem], "is not valid before"),
        "bad signature": (
            [bad_signature.pem, inter.pem],
            "signature does not verify",
        ),
        "Microsoft-named CA not on the list": (
            [intercepted.pem, ms_named.pem],
            "carries a Microsoft name but its thumbprint",
        ),
    }


VECTORS = [
    "issuer not a CA",
    "issuer without keyCertSign",
    "path length exceeded",
    "leaf for client authentication",
    "wrong host name",
    "expired",
    "not yet valid",
    "bad signature",
    "Microsoft-named CA not on the list",
]


@pytest.mark.parametrize("name", VECTORS)
def test_each_way_a_chain_can_be_wrong_fails(name: str, pki: dict[str, Issued]) -> None:
    chain, words = _vectors(pki)[name]
    # The Azure list trusts the intermediate (and the root) by thumbprint, as it does
    # Microsoft's issuing CAs: reaching one must not be enough.
    verdict = judge_chain(chain, _azure_listed(pki["inter"], pki["root"]), SERVER)
    assert not verdict.ok
    assert words in verdict.reason


def test_a_well_formed_chain_to_a_listed_issuing_ca_passes(pki: dict[str, Issued]) -> None:
    verdict = judge_chain([pki["leaf"].pem, pki["inter"].pem], _azure_listed(pki["inter"]), SERVER)
    assert verdict.ok, verdict.reason


def test_a_leaf_without_extended_key_usage_passes_as_tls_clients_accept_it(
    pki: dict[str, Issued],
) -> None:
    no_eku = make_cert("agentsvc", pki["inter"], ca=False, sans=SANS, eku=None)
    verdict = judge_chain([no_eku.pem, pki["inter"].pem], _azure_listed(pki["inter"]), SERVER)
    assert verdict.ok, verdict.reason


def test_a_ca_without_key_usage_may_sign_as_rfc_5280_says(pki: dict[str, Issued]) -> None:
    bare = make_cert("Lab Bare CA", pki["inter"], ca=True, key_usage=None)
    leaf = make_cert("agentsvc", bare, ca=False, sans=SANS)
    chain = [leaf.pem, bare.pem, pki["inter"].pem]
    verdict = judge_chain(chain, _azure_listed(pki["inter"]), SERVER)
    assert verdict.ok, verdict.reason


def test_what_the_readable_checks_miss_the_path_validation_catches(
    pki: dict[str, Issued],
) -> None:
    # A leaf whose only name is its CN: the name check's legacy fallback accepts it, a TLS
    # client's path validation does not.
    host = "jrds.azure-automation.net"
    cn_only = make_cert(host, pki["inter"], ca=False)
    verdict = judge_chain([cn_only.pem, pki["inter"].pem], _azure_listed(pki["inter"]), host)
    assert not verdict.ok
    assert "does not validate as a TLS client validates it" in verdict.reason


def test_a_chain_is_verified_once_per_minute_and_trusted_set(
    pki: dict[str, Issued], lab_trusted: TrustedCAs, monkeypatch: pytest.MonkeyPatch
) -> None:
    import hrw_preflight.verdicts.certs as certs

    calls: list[str] = []
    real = certs.judge_chain_now

    def counting(chain: list[str], trusted: TrustedCAs, name: str) -> certs.ChainJudgement:
        calls.append(name)
        return real(chain, trusted, name)

    monkeypatch.setattr(certs, "judge_chain_now", counting)
    now = [1_000_000.0]
    monkeypatch.setattr("hrw_preflight.verdicts.certs.time.time", lambda: now[0])
    chain = [pki["leaf"].pem, pki["inter"].pem, pki["root"].pem]
    first = judge_chain(chain, lab_trusted, SERVER)
    assert judge_chain(list(chain), lab_trusted, SERVER) == first and len(calls) == 1
    other = load_trusted_cas([])  # the shipped list only: the lab root is not in it
    assert not judge_chain(chain, other, SERVER).ok and len(calls) == 2
    assert judge_chain(chain, lab_trusted, "other." + SERVER) != first and len(calls) == 3
    now[0] += 60  # a new minute: judged again (a certificate may have expired since)
    assert judge_chain(chain, lab_trusted, SERVER) == first and len(calls) == 4
