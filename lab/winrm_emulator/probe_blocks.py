"""The probe code the emulator knows how to answer, by fingerprint.

The emulator does not run PowerShell. It recognises the suite's bootstrap and each
``#region hrw:<name>`` block of the probe script by SHA-256 and answers only those; a
changed block is unknown code and fails loudly instead of getting made-up answers.
After an intended change to the probe, print the new table with
``python -m lab.winrm_emulator.probe_blocks`` and paste it below.
"""

from __future__ import annotations

import hashlib
import re

BOOTSTRAP_SHA256 = "f5bfa0a8c4ad0d8fa26a4de61c0f0b3f89b20bfc5a5c5fbd6b8f3c6b2d6c5f9b"

BLOCK_SHA256: dict[str, str] = {
    "preamble": "",
    "service": "",
    "hardware": "",
    "pressure": "",
    "worker": "",
    "network": "",
    "events": "",
}

_REGION = re.compile(r"^#region hrw:(?P<name>[a-z]+)\s*$")
_END = re.compile(r"^#endregion hrw:(?P<name>[a-z]+)\s*$")


def normalise(text: str) -> str:
    """Return ``text`` with CRLF line ends and trailing blanks removed (what we fingerprint)."""
    return "\n".join(line.rstrip() for line in text.replace("\r\n", "\n").split("\n")).strip()


def digest(text: str) -> str:
    """Return the SHA-256 hex digest of the normalised ``text``."""
    return hashlib.sha256(normalise(text).encode("utf-8")).hexdigest()


def split_regions(script: str) -> tuple[list[tuple[str, str]], list[str]]:
    """Return the script's ``(name, body)`` regions in order, and any code outside them.

    Comment and blank lines outside regions are ignored; anything else is returned in the
    second list so the caller can refuse it.
    """
    regions: list[tuple[str, str]] = []
    stray: list[str] = []
    current: str | None = None
    body: list[str] = []
    for line in script.replace("\r\n", "\n").split("\n"):
        start, end = _REGION.match(line), _END.match(line)
        if current is None and start:
            current, body = start.group("name"), []
        elif current is not None and end and end.group("name") == current:
            regions.append((current, "\n".join(body)))
            current = None
        elif current is not None:
            body.append(line)
        elif line.strip() and not line.lstrip().startswith("#"):
            stray.append(line)
    if current is not None:
        stray.extend(body)
    return regions, stray


def known_block(name: str, body: str) -> bool:
    """Return True when ``body`` is exactly the block ``name`` the emulator can answer."""
    expected = BLOCK_SHA256.get(name)
    return bool(expected) and digest(body) == expected


def main() -> None:
    """Print the fingerprints of the probe currently in the package, ready to paste."""
    from hrw_preflight.probes.windows import BOOTSTRAP, script_text

    print(f'BOOTSTRAP_SHA256 = "{digest(BOOTSTRAP)}"\n')
    print("BLOCK_SHA256: dict[str, str] = {")
    regions, _ = split_regions(script_text())
    for name, body in regions:
        print(f'    "{name}": "{digest(body)}",')
    print("}")


if __name__ == "__main__":
    main()
