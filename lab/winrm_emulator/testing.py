"""Helpers to run the emulator in-process on loopback, for tests of it and of its clients.

:func:`throwaway_tls` makes a short-lived self-signed certificate for 127.0.0.1;
:func:`loopback_host` builds a :class:`HostConfig` on ephemeral loopback ports;
:func:`echo_engine` is an engine double that shows exactly what the transport delivered.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from lab.winrm_emulator.config import HostConfig
from lab.winrm_emulator.engine_api import CommandOutput, ProcessInput


@dataclass(frozen=True)
class TlsFiles:
    """PEM files of a self-signed server certificate and its key."""

    cert: Path
    key: Path


def throwaway_tls(directory: Path, common_name: str = "127.0.0.1") -> TlsFiles:
    """Write a one-day self-signed certificate for ``common_name`` (and 127.0.0.1) and key.

    The certificate is its own CA, so a client can trust exactly it via ``ca_trust_path``.
    """
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName(common_name), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    files = TlsFiles(directory / f"{common_name}.crt", directory / f"{common_name}.key")
    files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    files.key.chmod(0o600)
    return files


def loopback_host(
    tls: TlsFiles,
    username: str,
    password: str,
    profile: dict[str, Any] | None = None,
    name: str = "windows-test",
) -> HostConfig:
    """Return a host config serving on 127.0.0.1 with ports chosen by the kernel."""
    return HostConfig(
        name=name,
        address="127.0.0.1",
        http_port=0,
        https_port=0,
        tls_cert=str(tls.cert),
        tls_key=str(tls.key),
        username=username,
        password=password,
        workspace_id="00000000-0000-0000-0000-000000000000",
        endpoints={
            "agentsvc": "agentsvc.invalid",
            "jrds": "jrds.invalid",
            "oms": "oms.invalid",
            "ods": "ods.invalid",
        },
        resolve={},
        proxy=None,
        profile=profile or {},
    )


def echo_engine(
    command: str, arguments: list[str], stdin: ProcessInput, host: HostConfig
) -> CommandOutput:
    """Return the command line then the stdin on stdout, the arguments on stderr, exit code 7.

    Why: a transport test can then check every part of a command crossed the wire intact.
    Stdin is read only if the client sends some before asking for output (a real process
    that reads stdin would wait for it).
    """
    read = getattr(stdin, "read_stdin_if_sent", stdin.read_stdin)
    data: bytes = read()
    return CommandOutput(
        stdout=f"{command}\n".encode() + data,
        stderr=" ".join(arguments).encode(),
        exit_code=7,
    )
