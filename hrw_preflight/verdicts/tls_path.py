"""Validate a received chain's path as a TLS client does, once its anchor is known.

:func:`hrw_preflight.verdicts.certs.judge_chain` finds the Azure CA (by thumbprint) a chain
ends in. That alone accepts chains no TLS client would: a leaf signed by a certificate that
is not a CA, by a CA whose key usage forbids signing certificates, past a CA's path length,
or a leaf made for client authentication. :func:`path_problem` names such a defect in words
an operator can act on, then has cryptography's ``x509.verification`` (the Web PKI path
validation of RFC 5280 and the CA/Browser Forum profile) validate the whole path from the
leaf to that anchor, so nothing the readable checks miss passes.

Where this differs from cryptography's Web PKI defaults, it is to judge as a TLS client
(OpenSSL, SChannel) does rather than as a CA auditor: authority and subject key identifiers
may be absent, and a CA without a keyUsage extension may sign (RFC 5280: no extension, no
restriction); a keyUsage that is present must allow keyCertSign. A leaf's extendedKeyUsage,
when it has one, must include serverAuth; a leaf without the extension is accepted, as
OpenSSL, SChannel and cryptography's own defaults accept it (every certificate of Azure's
endpoints carries serverAuth).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from cryptography import x509
from cryptography.x509 import verification
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_AGNOSTIC = verification.Criticality.AGNOSTIC
# cryptography appends the certificate's repr, which says nothing an operator can use.
_REPR = re.compile(r"\s*\(encountered processing <Certificate\(.*?\)>\)")


def _cn(cert: x509.Certificate) -> str:
    """Return the certificate's subject CN, or its whole subject when it has none."""
    cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if cns:
        value = cns[0].value
        return value if isinstance(value, str) else value.decode("utf-8", "replace")
    return cert.subject.rfc4514_string()


def _extension(cert: x509.Certificate, kind: type[Any]) -> Any:
    """Return the value of the certificate's extension of type ``kind``, or None."""
    try:
        return cert.extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None


def _issuer_problem(cert: x509.Certificate, below: x509.Certificate, depth: int) -> str | None:
    """Return why ``cert`` may not have issued ``below``, which has ``depth`` intermediate CAs
    under it down to the leaf (0 when ``below`` is the leaf), or None."""
    issued = f"'{_cn(cert)}' issued '{_cn(below)}'"
    constraints = _extension(cert, x509.BasicConstraints)
    if constraints is None or not constraints.ca:
        flag = "no basicConstraints" if constraints is None else "basicConstraints CA:FALSE"
        return f"{issued} but is not a CA ({flag}): a TLS client rejects this chain"
    usage = _extension(cert, x509.KeyUsage)
    if usage is not None and not usage.key_cert_sign:
        return (
            f"{issued} but its keyUsage does not allow signing certificates (no keyCertSign): "
            "a TLS client rejects this chain"
        )
    if constraints.path_length is not None and depth > constraints.path_length:
        return (
            f"'{_cn(cert)}' allows {constraints.path_length} intermediate CA(s) below it "
            f"(pathLenConstraint) but the chain has {depth}: a TLS client rejects this chain"
        )
    return None


def _leaf_problem(leaf: x509.Certificate) -> str | None:
    """Return why ``leaf`` is not a TLS server certificate, or None."""
    constraints = _extension(leaf, x509.BasicConstraints)
    if constraints is not None and constraints.ca:
        return f"the server's certificate '{_cn(leaf)}' is a CA certificate, not a server's"
    usages = _extension(leaf, x509.ExtendedKeyUsage)
    if usages is not None and ExtendedKeyUsageOID.SERVER_AUTH not in usages:
        names = ", ".join(getattr(oid, "_name", oid.dotted_string) for oid in usages) or "none"
        return (
            f"the server's certificate '{_cn(leaf)}' is not for TLS servers: its "
            f"extendedKeyUsage ({names}) lacks serverAuth"
        )
    return None


def _ca_key_usage(policy: Any, cert: x509.Certificate, usage: x509.KeyUsage | None) -> None:
    """Accept a CA without keyUsage; one that has it must allow keyCertSign."""
    if usage is not None and not usage.key_cert_sign:
        raise ValueError("keyUsage does not allow keyCertSign")


def _server_auth(policy: Any, cert: x509.Certificate, usages: x509.ExtendedKeyUsage | None) -> None:
    """Require serverAuth in the leaf's extendedKeyUsage when it has one."""
    if usages is not None and ExtendedKeyUsageOID.SERVER_AUTH not in usages:
        raise ValueError("extendedKeyUsage lacks serverAuth")


def _policies() -> tuple[verification.ExtensionPolicy, verification.ExtensionPolicy]:
    """Return the (CA, leaf) extension policies described in the module docstring."""
    ca = (
        verification.ExtensionPolicy.webpki_defaults_ca()
        .may_be_present(x509.AuthorityKeyIdentifier, _AGNOSTIC, None)
        .may_be_present(x509.SubjectKeyIdentifier, _AGNOSTIC, None)
        .may_be_present(x509.KeyUsage, _AGNOSTIC, _ca_key_usage)
    )
    leaf = (
        verification.ExtensionPolicy.webpki_defaults_ee()
        .may_be_present(x509.AuthorityKeyIdentifier, _AGNOSTIC, None)
        .may_be_present(x509.ExtendedKeyUsage, _AGNOSTIC, _server_auth)
    )
    return ca, leaf


def _subject(server_name: str) -> x509.DNSName | x509.IPAddress:
    """Return the name the server must be valid for, as the verifier takes it."""
    name = server_name.strip().rstrip(".")
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def path_problem(
    path: Sequence[x509.Certificate],
    anchor: x509.Certificate,
    received: Sequence[x509.Certificate],
    server_name: str,
    now: datetime,
) -> str | None:
    """Return why a TLS client would reject the chain, or None when it validates.

    ``path`` is the path found from the leaf (first) up by signatures, ``anchor`` the trusted
    certificate it ends in (its last certificate, or an extra CA held that issued it),
    ``received`` the other certificates the server sent (candidates for intermediates).
    """
    full = list(path) if path[-1] is anchor else [*path, anchor]
    for index in range(1, len(full)):
        problem = _issuer_problem(full[index], full[index - 1], index - 1)
        if problem is not None:
            return problem
    problem = _leaf_problem(full[0])
    if problem is not None:
        return problem
    ca_policy, leaf_policy = _policies()
    try:
        verifier = (
            verification.PolicyBuilder()
            .store(verification.Store([anchor]))
            .time(now)
            .extension_policies(ca_policy=ca_policy, ee_policy=leaf_policy)
            .build_server_verifier(_subject(server_name))
        )
        verifier.verify(full[0], list(received))
    except verification.VerificationError as exc:
        detail = _REPR.sub("", str(exc)).removeprefix("validation failed: ")
        return f"the chain does not validate as a TLS client validates it: {detail}"
    except ValueError as exc:
        return f"the server name '{server_name}' cannot be checked: {exc}"
    return None
