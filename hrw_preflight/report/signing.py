"""Sign a bundle's ``SHA256SUMS`` with an SSH key, and check such a signature.

``SHA256SUMS`` shows that the files match the hashes it lists, nothing more: whoever can
write the run folder can change a file and write new hashes. A signature made with the
operator's (or the CI's) SSH key ties the hashes to that key, so a bundle changed after the
run no longer verifies unless the changer also holds the key. It is the same mechanism git
uses for SSH-signed commits: ``ssh-keygen -Y sign`` with the namespace ``hrw-preflight`` over
``SHA256SUMS``, checked with ``ssh-keygen -Y verify`` against an allowed-signers file
(principal, key per line; see ssh-keygen(1), "ALLOWED SIGNERS").
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from hrw_preflight.hosts.errors import ConfigError

NAMESPACE = "hrw-preflight"
SIGNATURE = "SHA256SUMS.sig"
_TIMEOUT_S = 30


@dataclass(frozen=True)
class SignatureCheck:
    """What ``ssh-keygen -Y verify`` said: ``ok``, and the principal or the reason."""

    ok: bool
    detail: str


def _ssh_keygen(args: list[str], stdin: bytes) -> subprocess.CompletedProcess[bytes]:
    """Run ssh-keygen without a terminal (a passphrase prompt must fail, never hang)."""
    try:
        return subprocess.run(
            ["ssh-keygen", *args],
            input=stdin,
            capture_output=True,
            timeout=_TIMEOUT_S,
            check=False,
            start_new_session=True,
        )
    except FileNotFoundError as exc:
        raise ConfigError(
            "ssh-keygen is not installed: install openssh-client to sign or check bundles"
        ) from exc
    except subprocess.TimeoutExpired as exc:
        raise ConfigError(f"ssh-keygen did not finish within {_TIMEOUT_S} s") from exc


def _first_line(data: bytes) -> str:
    text = data.decode("utf-8", "replace").strip()
    return text.splitlines()[0] if text else "no message"


def check_sign_key(path: str, option: str = "--hrw-sign-key") -> None:
    """Raise ConfigError (one line, naming ``option``) unless ``path`` is an SSH private key
    usable without a passphrase prompt; called when the run (or merge) starts, so a bad key
    stops it before any host is probed instead of leaving an unsigned bundle at the end."""
    key = Path(path)
    if not key.is_file():
        raise ConfigError(f"{option} {path}: no such file: give an SSH private key")
    # -y prints the public half; -P "" makes an encrypted key fail instead of prompting.
    done = _ssh_keygen(["-y", "-P", "", "-f", str(key)], b"")
    if done.returncode != 0:
        raise ConfigError(
            f"{option} {path}: not an SSH private key usable without a passphrase "
            f"({_first_line(done.stderr)}): give an unencrypted key file readable by this user"
        )


def sign_sums(sums: Path, key: str) -> bytes:
    """Return the SSH signature of file ``sums`` (namespace ``hrw-preflight``) made with
    private key ``key``; ConfigError with ssh-keygen's reason when it cannot sign."""
    done = _ssh_keygen(["-Y", "sign", "-n", NAMESPACE, "-f", key], sums.read_bytes())
    if done.returncode != 0 or b"BEGIN SSH SIGNATURE" not in done.stdout:
        raise ConfigError(f"signing {sums.name} failed: {_first_line(done.stderr)}")
    return done.stdout


def verify_sums(sums: Path, signature: Path, allowed_signers: str) -> SignatureCheck:
    """Return whether ``signature`` is a good ``hrw-preflight`` signature over ``sums`` by a
    key of ``allowed_signers``, with the principal it names or why it is not."""
    if not Path(allowed_signers).is_file():
        raise ConfigError(
            f"--allowed-signers {allowed_signers}: no such file: give an allowed-signers file "
            "(one '<principal> <key type> <public key>' per line)"
        )
    found = _ssh_keygen(["-Y", "find-principals", "-s", str(signature), "-f", allowed_signers], b"")
    principals = found.stdout.decode("utf-8", "replace").split()
    if found.returncode != 0 or not principals:
        return SignatureCheck(
            False, f"signed by a key that is not in {allowed_signers} ({_first_line(found.stderr)})"
        )
    data = sums.read_bytes()
    for principal in principals:
        done = _ssh_keygen(
            [
                "-Y",
                "verify",
                "-f",
                allowed_signers,
                "-I",
                principal,
                "-n",
                NAMESPACE,
                "-s",
                str(signature),
            ],
            data,
        )
        if done.returncode == 0:
            return SignatureCheck(True, principal)
    return SignatureCheck(
        False,
        f"the signature does not verify over {sums.name} for {', '.join(principals)}: "
        "SHA256SUMS was changed after it was signed",
    )
