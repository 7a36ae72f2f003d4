"""Ed25519 keys in OpenSSH format, made in-process (no ssh-keygen call per host)."""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from lab.pki import write_private


def write_keypair(private_path: Path, comment: str) -> str:
    """Write a new ed25519 key (mode 600) and its ``.pub``; return the public key line."""
    key = ed25519.Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode()
    )
    write_private(private_path, private)
    line = f"{public} {comment}"
    private_path.with_name(private_path.name + ".pub").write_text(line + "\n", encoding="utf-8")
    return line


def public_key_of(private_path: Path) -> str:
    """Return the ``ssh-ed25519 AAAA...`` public key of an existing OpenSSH private key."""
    key = serialization.load_ssh_private_key(private_path.read_bytes(), password=None)
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode()
    )
