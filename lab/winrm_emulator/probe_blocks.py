"""The probe code the emulator knows how to answer, by fingerprint.

The emulator does not run PowerShell. It recognises the suite's bootstrap and each
``#region hrw:<name>`` block of the probe script by SHA-256 and answers only those; a
changed block is unknown code and fails loudly instead of getting made-up answers.
After an intended change to the probe, print the new table with
``python -m lab.winrm_emulator.probe_blocks`` (``--write`` stores it here).
"""

from __future__ import annotations

import hashlib
import re
import sys
from pathlib import Path

PROBE_DIR = Path(__file__).resolve().parents[2] / "hrw_preflight" / "facts" / "windows"

BOOTSTRAP_SHA256 = "925d0d4cbd00a92d4cf45eb4ff55800c525af2a5251742ebb22cded11e9b8dd6"

BLOCK_SHA256: dict[str, str] = {
    "preamble": "2420761936dd82917b600013f72251ba71ce0c6c7cc58f536fe34bdead09d037",
    "service": "40d9c7f3578dcbb91a5ea188728f4a71987404b13619d7ce412bf89be81410cf",
    "hardware": "7e21a03b33674ba84f80e87445f3f76a242e72a6d1357c2080e2b1d708b71bd3",
    "pressure": "7ff162cf28108e34068f8321e38d73567607a742427e12f2318356a7b278626b",
    "prereqs": "c84a8da1b1fdb30c00cba01d0f8fb23a7e67f718ff83d42ad2bf4e4483e235b3",
    "clock": "e6a4f0ee62aaac824796d05f50d800098db0693b9594edc680c98c829ce5ffbc",
    "worker": "9c124d5f886b57e6a10f2cf2e25c5df9c13c590db5afbe1c5cf4e4f5c96f0049",
    "network": "1e404ca70cee834f8343ef2ae022d8851793a3fab74a2bb236d9d264344af0cd",
    "events": "fc4b961ff0167026778b8acf0525596a0aa3208f43108f30e98a298ffe2b526f",
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


def current_table() -> str:
    """Return the fingerprint constants of the probe now in the package, as Python source."""
    # Read as files, not imported: the lab never runs the product's probe code.
    probe = PROBE_DIR / "probe.py"
    found = re.search(r'^BOOTSTRAP = "(.*)"$', probe.read_text(encoding="utf-8"), re.M)
    if found is None:
        raise SystemExit(f"no BOOTSTRAP line in {probe}")
    bootstrap = found.group(1).replace('\\"', '"')
    lines = [f'BOOTSTRAP_SHA256 = "{digest(bootstrap)}"', "", "BLOCK_SHA256: dict[str, str] = {"]
    script = (PROBE_DIR / "windows_facts.ps1").read_text(encoding="ascii")
    regions, _ = split_regions(script)
    lines += [f'    "{name}": "{digest(body)}",' for name, body in regions]
    return "\n".join([*lines, "}"])


def main(argv: list[str]) -> None:
    """Print the current fingerprints; with ``--write``, store them in this module."""
    table = current_table()
    if "--write" not in argv:
        print(table)
        return
    path = Path(__file__)
    source = path.read_text(encoding="utf-8")
    start = source.index("BOOTSTRAP_SHA256 = ")
    end = source.index("}", source.index("BLOCK_SHA256: dict")) + 1
    path.write_text(source[:start] + table + source[end:], encoding="utf-8")
    print(f"updated {path}")


if __name__ == "__main__":
    main(sys.argv[1:])
