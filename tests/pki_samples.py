"""Small certificate chains for tests, made with cryptography: roots, intermediates, leaves,
and forgeries (a claimed issuer that did not sign)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

Key = ec.EllipticCurvePrivateKey


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
) -> Issued:
    """Return a certificate for ``cn`` issued by ``issuer`` (self-signed when None).

    ``issuer_name``/``signing_key`` forge the issuer: the name claimed and the key that
    actually signs can differ from ``issuer``'s.
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
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if sans is not None:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(s) for s in sans]), critical=False
        )
    return Issued(builder.sign(signer, hashes.SHA256()), own_key)
