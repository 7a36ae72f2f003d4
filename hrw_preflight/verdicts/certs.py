"""Judge a TLS certificate chain a worker received: is it issued by a CA Azure uses?

An agent behind a TLS-inspecting proxy receives the proxy's certificates instead of
Microsoft's and fails (event 4502 on Windows). The probe records the chain the host
actually received; :func:`judge_chain` walks it from the leaf up, checking every
signature, until it reaches a certificate whose SHA-1 thumbprint is on the Azure CA list
(or among the operator's extra trusted CAs). Names are never trusted: a proxy CA called
"Microsoft Azure RSA TLS Issuing CA 03" with an unknown thumbprint is reported as likely
TLS inspection. The path so found is then validated as a TLS client validates it, with
cryptography's ``x509.verification`` (:mod:`hrw_preflight.verdicts.tls_path`): every issuer
a CA allowed to sign certificates, path lengths, serverAuth on the leaf, the host name,
validity. A chain that reaches an Azure CA by thumbprint but that no TLS client would accept
(a leaf signed by a certificate that is not a CA, a leaf for client authentication) fails.
"""

from __future__ import annotations

import functools
import ipaddress
import time
from collections import OrderedDict
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import ExtensionOID, NameOID

from hrw_preflight.hosts.errors import ConfigError
from hrw_preflight.verdicts.ca_list import CAEntry, shipped_ca_list
from hrw_preflight.verdicts.tls_path import path_problem

# Names an interception CA likes to borrow; used only to word the verdict.
_VENDOR_WORDS = ("Microsoft", "DigiCert", "Baltimore", "GeoTrust")


class ChainUnreadable(ValueError):
    """The received chain is not valid PEM; the caller reports an error, not a failure."""


@dataclass(frozen=True)
class TrustedCAs:
    """The CAs a chain may end in.

    ``trusted`` maps thumbprint -> name for the current Azure CAs and the extra CAs;
    ``removed`` holds CAs Azure no longer uses; ``extra_certs`` are the extra CA
    certificates themselves, so a chain whose top certificate they issued can be verified.
    """

    trusted: Mapping[str, str]
    removed: Mapping[str, CAEntry]
    extra_certs: tuple[x509.Certificate, ...] = ()
    extra_files: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class ChainJudgement:
    """The verdict on one received chain.

    ``anchor`` is "name (thumbprint)" of the trusted CA the chain ended in, ``subjects``
    the received certificates' subjects, leaf first, for evidence.
    """

    ok: bool
    reason: str
    anchor: str | None
    subjects: list[str]


def thumbprint(cert: x509.Certificate) -> str:
    """Return the certificate's SHA-1 thumbprint in the CA list's form (upper-case hex)."""
    # SHA-1 here is an identifier the CA list uses, not a security primitive.
    return cert.fingerprint(hashes.SHA1()).hex().upper()


def load_trusted_cas(extra_files: list[str]) -> TrustedCAs:
    """Return the shipped Azure CA list plus the CA certificates in ``extra_files`` (PEM).

    Extra files are configuration (``hrw_trusted_ca_file``; the lab's
    ``.lab/pki/trusted-cas.pem``); a missing, empty or malformed one raises ConfigError
    naming the file. Results are cached per list of files: every host of a run shares them.
    """
    return _load_trusted_cas(tuple(extra_files))


@functools.lru_cache(maxsize=32)
def _load_trusted_cas(extra_files: tuple[str, ...]) -> TrustedCAs:
    """Return :func:`load_trusted_cas`'s result for a hashable tuple of files."""
    entries = shipped_ca_list()
    trusted = {e.thumbprint: e.name for e in entries if e.trusted}
    removed = {e.thumbprint: e for e in entries if not e.trusted}
    extras: list[x509.Certificate] = []
    for path in extra_files:
        for cert in _read_pem_file(path):
            extras.append(cert)
            trusted[thumbprint(cert)] = _common_name(cert.subject)
            removed.pop(thumbprint(cert), None)
    # Read-only views: the cached instance is shared by every caller.
    return TrustedCAs(
        trusted=MappingProxyType(trusted),
        removed=MappingProxyType(removed),
        extra_certs=tuple(extras),
        extra_files=extra_files,
    )


def _read_pem_file(path: str) -> list[x509.Certificate]:
    """Return the certificates in PEM file ``path`` or raise ConfigError naming it."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(
            f"trusted CA file {path}: cannot read it ({exc.strerror}): check the path"
        ) from exc
    try:
        return x509.load_pem_x509_certificates(data)
    except ValueError as exc:
        raise ConfigError(
            f"trusted CA file {path}: no readable PEM certificate in it: "
            "give a file of -----BEGIN CERTIFICATE----- blocks"
        ) from exc


@functools.lru_cache(maxsize=1024)
def _load_pem(pem: str) -> tuple[x509.Certificate, ...]:
    """Return the certificates in one PEM text (parsed once: every check of every host
    behind the same endpoint or proxy receives the same certificates)."""
    return tuple(x509.load_pem_x509_certificates(pem.encode("ascii")))


def parse_chain(chain_pem: Sequence[str]) -> list[x509.Certificate]:
    """Return the certificates of a received chain, in order; garbled PEM -> ChainUnreadable."""
    certs: list[x509.Certificate] = []
    for index, pem in enumerate(chain_pem):
        try:
            certs.extend(_load_pem(pem))
        except (ValueError, UnicodeEncodeError) as exc:
            raise ChainUnreadable(
                f"certificate {index} of the received chain is not readable PEM: {exc}"
            ) from exc
    return certs


# (chain, server name, id of the trusted set, minute) -> (the trusted set, judgement).
_JUDGED: OrderedDict[tuple[Hashable, ...], tuple[TrustedCAs, ChainJudgement]] = OrderedDict()
_JUDGED_SIZE = 512


def judge_chain(chain_pem: list[str], trusted: TrustedCAs, server_name: str) -> ChainJudgement:
    """Return :func:`judge_chain_now` for these arguments, remembered for the minute.

    Why: a fleet's hosts mostly receive the same few chains, and each of a host's endpoint
    checks asks again; verifying every signature and policy each time was a large part of
    the controller's verdict work. A judgement is reused only for the same chain, name and
    trusted set within the same wall-clock minute, so a certificate that expires during a
    run is judged expired from the next minute on.
    """
    key = (tuple(chain_pem), server_name, id(trusted), int(time.time() // 60))
    hit = _JUDGED.get(key)
    if hit is not None and hit[0] is trusted:
        _JUDGED.move_to_end(key)
        return hit[1]
    judgement = judge_chain_now(chain_pem, trusted, server_name)
    if len(_JUDGED) >= _JUDGED_SIZE:
        _JUDGED.popitem(last=False)
    # The trusted set is kept with the judgement, so its id cannot be reused by another.
    _JUDGED[key] = (trusted, judgement)
    return judgement


def judge_chain_now(chain_pem: list[str], trusted: TrustedCAs, server_name: str) -> ChainJudgement:
    """Return whether ``chain_pem`` (as received, leaf first) is fit for ``server_name``.

    The chain passes when every certificate from the leaf up is directly issued by the
    next one until a certificate whose thumbprint is trusted (or one issued by an extra
    trusted CA we hold), the certificates on that path are in their validity period and
    the leaf's names cover ``server_name``.
    """
    certs = parse_chain(chain_pem)
    subjects = [cert.subject.rfc4514_string() for cert in certs]
    if not certs:
        return ChainJudgement(False, "no certificate received", None, subjects)

    path, found, failure = _walk(certs, trusted)
    if failure is not None:
        return ChainJudgement(False, failure, None, subjects)
    assert found is not None  # _walk gives an anchor whenever it gives no failure
    anchor_cert, anchor = found

    now = datetime.now(UTC)
    for cert in path:
        if now > cert.not_valid_after_utc:
            return ChainJudgement(
                False,
                f"certificate '{_common_name(cert.subject)}' expired on "
                f"{cert.not_valid_after_utc:%Y-%m-%d}",
                anchor,
                subjects,
            )
        if now < cert.not_valid_before_utc:
            return ChainJudgement(
                False,
                f"certificate '{_common_name(cert.subject)}' is not valid before "
                f"{cert.not_valid_before_utc:%Y-%m-%d}",
                anchor,
                subjects,
            )

    names = leaf_names(certs[0])
    if not any(name_matches(pattern, server_name) for pattern in names):
        shown = ", ".join(names) or "none"
        return ChainJudgement(
            False,
            f"the certificate's names ({shown}) do not cover '{server_name}'",
            anchor,
            subjects,
        )
    problem = path_problem(path, anchor_cert, certs[1:], server_name, now)
    if problem is not None:
        return ChainJudgement(False, problem, anchor, subjects)
    return ChainJudgement(True, f"issued by {anchor}", anchor, subjects)


Anchor = tuple[x509.Certificate, str]


def _walk(
    certs: list[x509.Certificate], trusted: TrustedCAs
) -> tuple[list[x509.Certificate], Anchor | None, str | None]:
    """Return (path walked, anchor, failure reason); exactly one of anchor/failure is set.

    The anchor is the trusted certificate the path ends in (the last one walked, or an extra
    CA we hold that issued it) and its "name (thumbprint)".
    """
    path: list[x509.Certificate] = []
    current = certs[0]
    remaining = list(certs[1:])
    while True:
        path.append(current)
        thumb = thumbprint(current)
        if thumb in trusted.trusted:
            return path, (current, f"{trusted.trusted[thumb]} ({thumb})"), None
        if thumb in trusted.removed:
            entry = trusted.removed[thumb]
            return (
                path,
                None,
                (
                    f"issued by {entry.name} ({thumb}), removed from the Azure CA list on "
                    f"{entry.removed_on or 'an unknown date'}"
                ),
            )
        issuer = _find_issuer(current, remaining)
        if issuer is not None:
            remaining.remove(issuer)
            current = issuer
            continue
        same_name = [c for c in remaining if c.subject == current.issuer]
        if same_name:
            return (
                path,
                None,
                (
                    f"'{_common_name(current.subject)}' names '{_common_name(current.issuer)}' "
                    "as issuer, but its signature does not verify against the received "
                    "certificate of that name: forged or mismatched chain"
                ),
            )
        if current.issuer == current.subject and _signed_by(current, current):
            return path, None, _untrusted_top(path, self_signed=True)
        for ca in trusted.extra_certs:
            if ca.subject == current.issuer and _signed_by(current, ca):
                ca_thumb = thumbprint(ca)
                return path, (ca, f"{trusted.trusted[ca_thumb]} ({ca_thumb})"), None
        if any(ca.subject == current.issuer for ca in trusted.extra_certs):
            return (
                path,
                None,
                (
                    f"'{_common_name(current.subject)}' names trusted CA "
                    f"'{_common_name(current.issuer)}' as issuer, but the signature does not "
                    "verify against that CA: forged or mismatched chain"
                ),
            )
        return path, None, _untrusted_top(path, self_signed=False)


def _untrusted_top(path: list[x509.Certificate], *, self_signed: bool) -> str:
    """Return the reason for a chain walked along ``path`` without reaching a trusted CA.

    A received CA certificate that borrows a Microsoft/DigiCert name is the likely
    interception CA, so it is named with its thumbprint wherever it sits on the path.
    """
    top = path[-1]
    received_cas = [cert for cert in path[1:] if _is_ca(cert)]
    if self_signed or _is_ca(top):
        received_cas.append(top)
    for cert in received_cas:
        vendor = _vendor_name(cert.subject)
        if vendor:
            return (
                f"issuer '{_common_name(cert.subject)}' carries a {vendor} name but its "
                f"thumbprint {thumbprint(cert)} is not on the Azure CA list: TLS inspection?"
            )
    thumb = thumbprint(top)
    subject = _common_name(top.subject)
    if self_signed:
        return f"the chain ends in self-signed '{subject}' ({thumb}), not on the Azure CA list"
    issuer = _common_name(top.issuer)
    vendor = _vendor_name(top.issuer)
    if vendor:
        return (
            f"issuer '{issuer}' carries a {vendor} name but no certificate of it was received "
            f"and it is not a CA we hold (chain ends at '{subject}', {thumb}): TLS inspection?"
        )
    return (
        f"the chain ends at '{subject}' ({thumb}), issued by '{issuer}', which is neither "
        "on the Azure CA list nor an extra trusted CA"
    )


def _find_issuer(
    cert: x509.Certificate, candidates: list[x509.Certificate]
) -> x509.Certificate | None:
    """Return the received certificate that directly issued ``cert``, preferring order."""
    for candidate in candidates:
        if candidate.subject == cert.issuer and _signed_by(cert, candidate):
            return candidate
    return None


def _signed_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """Return True when ``issuer`` directly issued ``cert`` (names and signature)."""
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _is_ca(cert: x509.Certificate) -> bool:
    """Return True when the certificate's basic constraints say it is a CA."""
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def _vendor_name(name: x509.Name) -> str | None:
    """Return the vendor (Microsoft, DigiCert, ...) whose name ``name`` carries, if any."""
    text = name.rfc4514_string().lower()
    return next((word for word in _VENDOR_WORDS if word.lower() in text), None)


def _common_name(name: x509.Name) -> str:
    """Return the name's CN, or its full RFC 4514 form when it has none."""
    cns = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    if cns:
        value = cns[0].value
        return value if isinstance(value, str) else value.decode("utf-8", "replace")
    return name.rfc4514_string()


def leaf_names(cert: x509.Certificate) -> list[str]:
    """Return the names a leaf certificate is valid for.

    Its subjectAltName DNS names and IP addresses; the subject CN only when the
    certificate has no subjectAltName, as older clients still accept.
    """
    try:
        san = cert.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME).value
    except x509.ExtensionNotFound:
        cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        return [str(cns[0].value)] if cns else []
    assert isinstance(san, x509.SubjectAlternativeName)
    names: list[str] = list(san.get_values_for_type(x509.DNSName))
    names += [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]
    return names


def name_matches(pattern: str, server_name: str) -> bool:
    """Return True when certificate name ``pattern`` covers ``server_name`` (RFC 6125).

    A wildcard is accepted only as the whole left-most label and stands for exactly one
    label: ``*.example.net`` covers ``a.example.net`` but neither ``example.net`` nor
    ``a.b.example.net``. IP addresses must match exactly.
    """
    host = server_name.strip().rstrip(".").lower()
    pattern = pattern.strip().rstrip(".").lower()
    if not host or not pattern:
        return False
    try:
        return ipaddress.ip_address(host) == ipaddress.ip_address(pattern)
    except ValueError:
        pass
    if pattern.startswith("*."):
        suffix = pattern[2:]
        if "*" in suffix or suffix.count(".") < 1:
            return False
        first, dot, rest = host.partition(".")
        return bool(first) and bool(dot) and rest == suffix
    return "*" not in pattern and host == pattern
