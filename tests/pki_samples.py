"""Small certificate chains for tests, made with cryptography: roots, intermediates, leaves,
and forgeries (a claimed issuer that did not sign)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

Key = ec.EllipticCurvePrivateKey

# What a CA and a TLS server certificate carry unless a test says otherwise.
CA_USAGE = x509.KeyUsage(
    digital_signature=True,
    content_commitment=False,
    key_encipherment=False,
    data_encipherment=False,
    key_agreement=False,
    key_cert_sign=True,
    crl_sign=True,
    encipher_only=False,
    decipher_only=False,
)
LEAF_USAGE = x509.KeyUsage(
    digital_signature=True,
    content_commitment=False,
    key_encipherment=False,
    data_encipherment=False,
    key_agreement=False,
    key_cert_sign=False,
    crl_sign=False,
    encipher_only=False,
    decipher_only=False,
)
SERVER_AUTH = (ExtendedKeyUsageOID.SERVER_AUTH,)
_DEFAULT: object = object()


@dataclasses.dataclass(frozen=True)
class Issued:
    """A certificate and the key that can sign with it."""

    cert: x509.Certificate
    key: Key

    @property
    def pem(self) -> str:
        return self.cert.public_bytes(serialization.Encoding.PEM).decode()


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_cert(
    cn: str,
    issuer: Issued | None,
    *,
    ca: bool,
    sans: list[str] | None = None,
    key: Key | None = None,
    issuer_name: str | None = None,
    signing_key: Key | None = None,
    days: tuple[int, int] = (-1, 30),
    key_usage: x509.KeyUsage | object | None = _DEFAULT,
    eku: tuple[x509.ObjectIdentifier, ...] | object | None = _DEFAULT,
    path_length: int | None = None,
) -> Issued:
    """Return a certificate for ``cn`` issued by ``issuer`` (self-signed when None).

    ``issuer_name``/``signing_key`` forge the issuer: the name claimed and the key that
    actually signs can differ from ``issuer``'s. By default a CA carries keyUsage
    keyCertSign and a leaf keyUsage digitalSignature and extendedKeyUsage serverAuth, as
    real ones do; ``key_usage``/``eku`` None leaves the extension out, a value replaces it.
    """
    own_key = key or ec.generate_private_key(ec.SECP256R1())
    claimed = _name(issuer_name) if issuer_name else (issuer.cert.subject if issuer else _name(cn))
    signer = signing_key or (issuer.key if issuer else own_key)
    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(claimed)
        .public_key(own_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now + timedelta(days=days[0]))
        .not_valid_after(now + timedelta(days=days[1]))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=path_length), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(own_key.public_key()), False)
    )
    usage = (CA_USAGE if ca else LEAF_USAGE) if key_usage is _DEFAULT else key_usage
    if isinstance(usage, x509.KeyUsage):
        builder = builder.add_extension(usage, critical=True)
    usages = (None if ca else SERVER_AUTH) if eku is _DEFAULT else eku
    if isinstance(usages, tuple):
        builder = builder.add_extension(x509.ExtendedKeyUsage(list(usages)), critical=False)
    if issuer is not None and signing_key is None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()), False
        )
    if sans is not None:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(s) for s in sans]), critical=False
        )
    return Issued(builder.sign(signer, hashes.SHA256()), own_key)
