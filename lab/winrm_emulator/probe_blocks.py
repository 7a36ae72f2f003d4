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
    "preamble": "2371b507c73d742ca2e23bb94bb7bcaf55dc7a31b77e2470f6ad9ae2e3b2eff9",
    "service": "d607d6622b6a3c123ffb454db5780a509ca76c15be79a258a55d1b60cb2fa77b",
    "hardware": "034afb6dd2f53ac7d7c39a14a7a043e8c5caa46d6cc1a1e6d89f1b7f0370629d",
    "pressure": "b71dbc6f8d78dd5f741dc90f9cd7dfd13f648af87770e775b405db404b87b2ff",
    "prereqs": "bade0d9193628a0e1275524089a839494b419ca46736d3531416e07ae988ed88",
    "clock": "7824589f1d0c92f0cd374bc80a1b7fecd09443950f49a2f9f942715c41488bcb",
    "worker": "fdce085fcec3fb1b4e7b259893988c728f7c9fc9640cabbcc63754e7e48803d6",
    "network": "e68e21ef71a309d1f594df5df1230f490762a4cfd8ccc8f0b20e98b989e638a6",
    "events": "ab237838e6847c3e08982b4604adb39b69270bde83693acdd09cb0bac018d31a",
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
