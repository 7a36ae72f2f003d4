"""The lab's certificate authorities and server certificates (``.lab/pki/``).

Three independent trust domains:

* Azure: ``Lab Azure Root CA`` -> ``Lab Azure TLS Issuing CA`` -> one leaf for every
  endpoint name. The suite trusts these two CAs as extras (``trusted-cas.pem``).
* Proxy: a CA named ``Microsoft Azure RSA TLS Issuing CA 03``, the intercepting proxy's. It
  carries a Microsoft name on purpose: a check that trusts names instead of thumbprints
  would accept it.
* WinRM: a CA for the emulated Windows hosts' HTTPS listeners (``winrm-ca.pem``).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

AZURE_ROOT_CN = "Lab Azure Root CA"
AZURE_ISSUING_CN = "Lab Azure TLS Issuing CA"
PROXY_CA_CN = "Microsoft Azure RSA TLS Issuing CA 03"
WINRM_CA_CN = "Lab WinRM CA"
AZURE_SANS = (
    "*.agentsvc.azure-automation.net",
    "*.azure-automation.net",
    "*.oms.opinsights.azure.com",
    "*.ods.opinsights.azure.com",
    # The extension-based worker's account endpoints (lab region eus) and the Arc endpoints.
    "*.jrds.eus.azure-automation.net",
    "*.agentsvc.eus.azure-automation.net",
    "gbl.his.arc.azure.com",
    "login.microsoftonline.com",
)

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


def _name(common_name: str, organization: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def rsa_key() -> rsa.RSAPrivateKey:
    """Return a new 2048-bit RSA key (the size Azure's own TLS certificates use)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def ec_key() -> ec.EllipticCurvePrivateKey:
    """Return a new P-256 key: cheap to make, for the many per-host WinRM certificates."""
    return ec.generate_private_key(ec.SECP256R1())


def _validity() -> tuple[dt.datetime, dt.datetime]:
    now = dt.datetime.now(dt.UTC)
    return now - dt.timedelta(days=1), now + dt.timedelta(days=365)


def make_ca(
    common_name: str,
    organization: str,
    key: PrivateKey,
    issuer: tuple[x509.Certificate, PrivateKey] | None = None,
    path_length: int | None = None,
) -> x509.Certificate:
    """Return a CA certificate for ``key``, self-signed or signed by ``issuer`` (cert, key)."""
    subject = _name(common_name, organization)
    issuer_cert, issuer_key = issuer if issuer else (None, key)
    not_before, not_after = _validity()
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_cert.subject if issuer_cert else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
    )
    if issuer_cert is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), False
        )
    return builder.sign(issuer_key, hashes.SHA256())


def make_leaf(
    dns_names: list[str],
    ip_addresses: list[str],
    key: PrivateKey,
    issuer: tuple[x509.Certificate, PrivateKey],
) -> x509.Certificate:
    """Return a TLS server certificate for the given names/addresses, signed by ``issuer``."""
    issuer_cert, issuer_key = issuer
    common_name = dns_names[0] if dns_names else ip_addresses[0]
    if len(common_name) > 64:  # X.509 caps a CN at 64 characters; the SAN carries the full name
        common_name = "*." + common_name.split(".", 1)[1]
    sans: list[x509.GeneralName] = [x509.DNSName(n) for n in dns_names]
    sans += [x509.IPAddress(ipaddress.ip_address(a)) for a in ip_addresses]
    not_before, not_after = _validity()
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(issuer_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), False
        )
        .sign(issuer_key, hashes.SHA256())
    )


def cert_pem(cert: x509.Certificate) -> bytes:
    """Return the certificate as PEM bytes."""
    return cert.public_bytes(serialization.Encoding.PEM)


def key_pem(key: PrivateKey) -> bytes:
    """Return the private key as unencrypted PKCS#8 PEM bytes."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` readable by its owner only (keys, passwords)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.chmod(path, 0o600)


def load_key(path: Path) -> PrivateKey:
    """Return the RSA or EC private key stored at ``path``."""
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise ValueError(f"{path}: not an RSA or EC key")
    return key


@dataclass(frozen=True)
class PkiFiles:
    """Paths of the PKI files the lab's services and the suite read."""

    directory: Path

    @property
    def trusted_cas(self) -> Path:
        """Return the bundle of the two lab Azure CAs."""
        return self.directory / "trusted-cas.pem"

    @property
    def azure_root(self) -> Path:
        """Return the lab Azure root CA certificate."""
        return self.directory / "azure-root-ca.pem"

    @property
    def azure_chain(self) -> Path:
        """Return the endpoint's chain as served: leaf then issuing CA."""
        return self.directory / "azure-endpoint-chain.pem"

    @property
    def azure_key(self) -> Path:
        """Return the endpoint leaf's private key."""
        return self.directory / "azure-endpoint.key"

    @property
    def proxy_ca(self) -> Path:
        """Return the intercepting proxy's CA certificate."""
        return self.directory / "proxy-ca.pem"

    @property
    def proxy_ca_key(self) -> Path:
        """Return the proxy CA's private key."""
        return self.directory / "proxy-ca.key"

    @property
    def winrm_ca(self) -> Path:
        """Return the WinRM CA certificate."""
        return self.directory / "winrm-ca.pem"

    @property
    def winrm_ca_key(self) -> Path:
        """Return the WinRM CA's private key."""
        return self.directory / "winrm-ca.key"


def create_pki(directory: Path) -> PkiFiles:
    """Create the Azure, proxy and WinRM CAs and the Azure endpoint leaf; return their paths."""
    files = PkiFiles(directory)
    directory.mkdir(parents=True, exist_ok=True)
    root_key, issuing_key, leaf_key = rsa_key(), rsa_key(), rsa_key()
    root = make_ca(AZURE_ROOT_CN, "Hybrid Worker Lab", root_key, path_length=1)
    issuing = make_ca(
        AZURE_ISSUING_CN, "Hybrid Worker Lab", issuing_key, issuer=(root, root_key), path_length=0
    )
    leaf = make_leaf(list(AZURE_SANS), [], leaf_key, (issuing, issuing_key))
    files.azure_root.write_bytes(cert_pem(root))
    files.trusted_cas.write_bytes(cert_pem(root) + cert_pem(issuing))
    files.azure_chain.write_bytes(cert_pem(leaf) + cert_pem(issuing))
    write_private(files.azure_key, key_pem(leaf_key))

    proxy_key = rsa_key()
    proxy_ca = make_ca(PROXY_CA_CN, "Microsoft Corporation", proxy_key, path_length=0)
    files.proxy_ca.write_bytes(cert_pem(proxy_ca))
    write_private(files.proxy_ca_key, key_pem(proxy_key))

    winrm_key = ec_key()
    winrm_ca = make_ca(WINRM_CA_CN, "Hybrid Worker Lab", winrm_key, path_length=0)
    files.winrm_ca.write_bytes(cert_pem(winrm_ca))
    write_private(files.winrm_ca_key, key_pem(winrm_key))
    return files


def issue_winrm_cert(
    files: PkiFiles, name: str, address: str, cert_path: Path, key_path: Path
) -> None:
    """Write a WinRM HTTPS certificate (SAN = host name and IP) and its key for one host."""
    ca_cert = x509.load_pem_x509_certificate(files.winrm_ca.read_bytes())
    ca_key = load_key(files.winrm_ca_key)
    key = ec_key()
    cert = make_leaf([name], [address], key, (ca_cert, ca_key))
    cert_path.write_bytes(cert_pem(cert))
    write_private(key_path, key_pem(key))
