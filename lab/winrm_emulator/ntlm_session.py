"""NTLM on the server side: the acceptor, its credential file and WinRM message sealing.

pyspnego's pure-Python NTLM acceptor looks users up in the file named by the environment
variable ``NTLM_USER_FILE`` (lines ``DOMAIN:USER:PASSWORD``). :class:`CredentialFile` owns that
file for the process: a private directory, mode 600, removed again when the last server that
registered a user stops (and at interpreter exit as a fallback).

Over plain HTTP, WinRM seals every SOAP envelope with the NTLM session keys and frames it as
``multipart/encrypted; protocol="application/HTTP-SPNEGO-session-encrypted"`` ([MS-WSMV]
2.2.9.1.1). :func:`seal_body` and :func:`unseal_body` produce and read exactly the framing
pywinrm's ``winrm/encryption.py`` uses: a 4-byte little-endian signature length, the 16-byte
signature, then the RC4-sealed message.
"""

from __future__ import annotations

import atexit
import hashlib
import os
import re
import shutil
import struct
import tempfile
import threading
from dataclasses import dataclass, field

import spnego
import spnego.exceptions
from spnego.channel_bindings import GssChannelBindings

PROTOCOL = "application/HTTP-SPNEGO-session-encrypted"
BOUNDARY = b"--Encrypted Boundary"
ENCRYPTED_CONTENT_TYPE = f'multipart/encrypted;protocol="{PROTOCOL}";boundary="Encrypted Boundary"'
_LENGTH = re.compile(rb"Length=(\d+)")


class AuthenticationFailed(Exception):
    """The client's NTLM tokens did not prove it knows the configured password."""


class EncryptionError(Exception):
    """An encrypted body was malformed, tampered with or sealed with another session."""


@dataclass
class CredentialFile:
    """The process-wide NTLM user file pyspnego's acceptor reads.

    Several servers may run in one process (tests); each registers its user. Two servers that
    want the same user name with different passwords cannot share one file, so that is refused.
    """

    _lock: threading.Lock = field(default_factory=threading.Lock)
    _users: dict[str, tuple[str, int]] = field(default_factory=dict)
    _dir: str | None = None

    @property
    def path(self) -> str | None:
        """Return the file's path while any user is registered, else None."""
        return None if self._dir is None else os.path.join(self._dir, "ntlm-users")

    def register(self, username: str, password: str) -> None:
        """Add ``username`` (any domain) to the file; refuse a clash with another password."""
        if ":" in username or ":" in password or "\n" in username + password:
            raise ValueError("NTLM user name and password must not contain ':' or newlines")
        key = username.lower()
        with self._lock:
            known = self._users.get(key)
            if known is not None and known[0] != password:
                raise ValueError(f"user {username!r} is already served with another password")
            self._users[key] = (password, 1 if known is None else known[1] + 1)
            self._write()

    def unregister(self, username: str) -> None:
        """Drop one registration of ``username``; delete the file when none is left."""
        key = username.lower()
        with self._lock:
            known = self._users.get(key)
            if known is None:
                return
            if known[1] > 1:
                self._users[key] = (known[0], known[1] - 1)
            else:
                del self._users[key]
            if self._users:
                self._write()
            else:
                self.remove()

    def remove(self) -> None:
        """Delete the file and its directory and unset ``NTLM_USER_FILE``."""
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None
        os.environ.pop("NTLM_USER_FILE", None)

    def _write(self) -> None:
        if self._dir is None:
            self._dir = tempfile.mkdtemp(prefix="winrm-emulator-")  # mode 700
        path = os.path.join(self._dir, "ntlm-users")
        # pyspnego looks the user up under the domain the client sends; a Windows local
        # account answers to both USER (no domain) and .\USER, so list it under both.
        lines = [
            f"{domain}:{user}:{password}"
            for user, (password, _) in self._users.items()
            for domain in ("", ".")
        ]
        fd = os.open(path + ".tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write("\n".join(lines) + "\n")
        os.replace(path + ".tmp", path)
        os.environ["NTLM_USER_FILE"] = path


CREDENTIALS = CredentialFile()
atexit.register(CREDENTIALS.remove)


def tls_channel_bindings(cert_der: bytes) -> GssChannelBindings:
    """Return the ``tls-server-end-point`` bindings (RFC 5929) for the server certificate.

    requests_ntlm sends them over HTTPS; checking them is what Windows' CBT hardening does.
    Certificates signed with SHA-256 or weaker hash with SHA-256, as RFC 5929 says.
    """
    from cryptography import x509

    cert = x509.load_der_x509_certificate(cert_der)
    algorithm = cert.signature_hash_algorithm
    name = algorithm.name if algorithm is not None else "sha256"
    if name in ("md5", "sha1"):
        name = "sha256"
    digest = hashlib.new(name, cert_der).digest()
    return GssChannelBindings(application_data=b"tls-server-end-point:" + digest)


class NtlmAcceptor:
    """One NTLM server context: authenticates one TCP connection and then seals its messages."""

    def __init__(self, expected_user: str, channel_bindings: GssChannelBindings | None) -> None:
        self._expected_user = expected_user
        self._context = spnego.server(
            protocol="ntlm",
            options=spnego.NegotiateOptions.use_ntlm,
            channel_bindings=channel_bindings,
        )

    @property
    def complete(self) -> bool:
        """Return True once the client's Authenticate message has been accepted."""
        return bool(self._context.complete)

    def step(self, token: bytes) -> bytes | None:
        """Consume one client token; return the challenge to send back, or None when done.

        Raises :class:`AuthenticationFailed` for a wrong password, an unknown user or a token
        that is not NTLM (a SPNEGO-wrapped Kerberos token, say).
        """
        if not token.startswith(b"NTLMSSP\x00"):
            raise AuthenticationFailed("token is not NTLM")
        try:
            answer = self._context.step(token)
        except spnego.exceptions.SpnegoError as exc:
            raise AuthenticationFailed(type(exc).__name__) from None
        if self._context.complete:
            principal = self._context.client_principal or ""
            user = principal.rsplit("\\", 1)[-1]
            if user.lower() != self._expected_user.lower():
                raise AuthenticationFailed("user not served by this host")
        return answer

    def seal(self, message: bytes) -> bytes:
        """Return ``message`` encrypted and framed as one WinRM multipart/encrypted body."""
        wrapped = self._context.wrap_winrm(message)
        stream = struct.pack("<i", len(wrapped.header)) + wrapped.header + wrapped.data
        return (
            BOUNDARY + b"\r\n"
            b"\tContent-Type: " + PROTOCOL.encode() + b"\r\n"
            b"\tOriginalContent: type=application/soap+xml;charset=UTF-8;Length="
            + str(len(message)).encode()
            + b"\r\n"
            + BOUNDARY
            + b"\r\n\tContent-Type: application/octet-stream\r\n"
            + stream
            + BOUNDARY
            + b"--\r\n"
        )

    def unseal(self, body: bytes) -> bytes:
        """Return the SOAP envelope inside a multipart/encrypted body from the client."""
        head_marker = BOUNDARY + b"\r\n"
        if not body.startswith(head_marker):
            raise EncryptionError("body does not start with the encrypted boundary")
        header_end = body.find(head_marker, len(head_marker))
        if header_end < 0:
            raise EncryptionError("body has no encrypted payload part")
        length_match = _LENGTH.search(body[len(head_marker) : header_end])
        if length_match is None:
            raise EncryptionError("encrypted body does not declare its original length")
        payload = body[header_end + len(head_marker) :]
        octet_header = b"\tContent-Type: application/octet-stream\r\n"
        if not payload.startswith(octet_header):
            raise EncryptionError("encrypted payload lacks its octet-stream header")
        payload = payload[len(octet_header) :]
        trailer = BOUNDARY + b"--\r\n"
        if payload.endswith(trailer):
            payload = payload[: -len(trailer)]
        if len(payload) < 4:
            raise EncryptionError("encrypted payload is truncated")
        (signature_length,) = struct.unpack("<i", payload[:4])
        if not 0 < signature_length <= len(payload) - 4:
            raise EncryptionError("encrypted payload has a bad signature length")
        signature = payload[4 : 4 + signature_length]
        sealed = payload[4 + signature_length :]
        try:
            message = self._context.unwrap_winrm(signature, sealed)
        except spnego.exceptions.SpnegoError as exc:
            raise EncryptionError(f"signature check failed ({type(exc).__name__})") from None
        if len(message) != int(length_match.group(1)):
            raise EncryptionError("decrypted length does not match the declared length")
        return message
