"""The probe code the emulator knows how to answer, by fingerprint, and why it may.

The emulator does not run PowerShell. It recognises the suite's bootstrap and each
``#region hrw:<name>`` block of the probe script by SHA-256 and answers only those; a
changed block is unknown code and fails loudly instead of getting made-up answers.

Each fingerprint is a :class:`KnownBlock` that also names the version of the emulator's
answer it was checked against (``answer``, which must equal the version declared next to
the answer code in :mod:`lab.winrm_emulator.ps_sections` or :mod:`lab.winrm_emulator.engine`)
and says ``why`` that answer fits this text. Nothing writes this table: after changing a
probe block, change its answer, raise the answer's version beside it, and edit the entry
here by hand (``python -m lab.winrm_emulator.probe_blocks`` prints the digests that no
longer match). So a changed block fails the tests until its answer changed in the same
commit and the change was explained.
"""

from __future__ import annotations

import hashlib
import re
import sys
from dataclasses import dataclass
from pathlib import Path

PROBE_DIR = Path(__file__).resolve().parents[2] / "hrw_preflight" / "facts" / "windows"


@dataclass(frozen=True)
class KnownBlock:
    """One fingerprinted piece of probe code: its digest, answer version and why it fits."""

    sha256: str
    answer: int
    why: str


BOOTSTRAP = KnownBlock(
    "f6c0e66169cd64964d048eba2ec1595f1255d9163956322d17568fdbdf20dfc4",
    answer=2,
    why=(
        "v2: a second stdin line, the hrw_proxy password (base64, or empty), read into "
        "$HrwProxySecretB64 before the script (engine.run_probe hands it to RunState); "
        "v1: reads the parameter line and the script from stdin and runs it (engine.run_probe)"
    ),
)

BLOCKS: dict[str, KnownBlock] = {
    "preamble": KnownBlock(
        "cfa08a2ca10a8d1fd1ee23353a2f07a08ddfba57fe81dd079a264cd07908dcaa",
        answer=4,
        why=(
            "v4: adds ConvertFrom-HrwProxyParams (a helper; the worker answer does what it does "
            "in _proxy_from_params); "
            "v3: Test-HrwEndpoint records the sent chain (leaf + ExtraStore, ChainSource) apart "
            "from the built one (BuiltChain, ChainStatus); tls_probe answers those fields and "
            "fails the handshake when SCHANNEL's TLS 1.2 client has Enabled=0; "
            'v2: per-run boundary markers ("$HrwB BEGIN/PART/END/ERROR", RunState.mark); '
            "helpers only; what Test-HrwEndpoint does is re-done for real by tls_probe"
        ),
    ),
    "service": KnownBlock(
        "03325395caab58e302d76b8a3b174116835a1c4d68374bcd8ce6894dc43500cf",
        answer=3,
        why=(
            'v3: per-run boundary markers ("$HrwB BEGIN/PART/END/ERROR", RunState.mark); '
            "Win32_Service filtered to HealthService instead of Get-Service (StartType needs "
            ".NET 4.6.1): the answer prints State/StartMode strings, nothing when absent"
        ),
    ),
    "hardware": KnownBlock(
        "7e21a03b33674ba84f80e87445f3f76a242e72a6d1357c2080e2b1d708b71bd3",
        answer=2,
        why=(
            'v2: per-run boundary markers ("$HrwB BEGIN/PART/END/ERROR", RunState.mark); '
            "Win32_Processor per socket and Win32_ComputerSystem, from cpus/sockets/memory_mb"
        ),
    ),
    "pressure": KnownBlock(
        "a0d505e417a66d7f0a44025edfae3152c5f6314c58f3fe59bc58b2098c101982",
        answer=3,
        why=(
            "v3: CPU load from three raw Win32_PerfRawData_PerfOS_Processor _Total samples "
            "500 ms apart; the answer's idle counter grows by (1 - cpu_load_percent) of each "
            "interval; "
            'v2: per-run boundary markers ("$HrwB BEGIN/PART/END/ERROR", RunState.mark); '
            "Win32_Processor.LoadPercentage per socket and Win32_OperatingSystem memory"
        ),
    ),
    "prereqs": KnownBlock(
        "7023639cda214fc31902e91962cfefa1e1ff2baaca3cc4cac478b0facac4f8a5",
        answer=3,
        why=(
            "v3: adds the strongcrypto part (.NETFramework v4.0.30319 in both registry views)"
            "; the answer prints both keys from dotnet_strong_crypto, strong crypto on by default; "
            'v2: per-run boundary markers ("$HrwB BEGIN/PART/END/ERROR", RunState.mark); '
            "PSVersion, NDP v4 Full Release and the SCHANNEL TLS 1.2 Client values"
        ),
    ),
    "clock": KnownBlock(
        "e6a4f0ee62aaac824796d05f50d800098db0693b9594edc680c98c829ce5ffbc",
        answer=2,
        why=(
            'v2: per-run boundary markers ("$HrwB BEGIN/PART/END/ERROR", RunState.mark); '
            "UtcNow as Unix milliseconds, from the run's time plus clock_offset_s"
        ),
    ),
    "worker": KnownBlock(
        "c04bfbdb5f3a84abc591f10ef3cb7dd2fd4fe039acf0913a509725f2f1f08f8e",
        answer=5,
        why=(
            "v5: hrw_proxy arrives split (host, port, user) with the password from the "
            "bootstrap's stdin line (_proxy_from_params); the agent's proxyUrl/proxyUsername "
            "come from the setting read up to the last '@' (split_agent_proxy); "
            'v4: per-run boundary markers ("$HrwB BEGIN/PART/END/ERROR", RunState.mark); '
            "v3: the effective endpoints add ods (<ws>.ods.opinsights.azure.com), which the "
            "answer derives the same way; v2: "
            "proxy read from the properties proxyUrl/proxyUsername in a strict-mode scope; "
            "the answer checks every COM member the agent part names (com_objects) and "
            "reports an unreadable proxy as ProxyError, keeping the workspaces"
        ),
    ),
    "network": KnownBlock(
        "1e404ca70cee834f8343ef2ae022d8851793a3fab74a2bb236d9d264344af0cd",
        answer=2,
        why=(
            'v2: per-run boundary markers ("$HrwB BEGIN/PART/END/ERROR", RunState.mark); '
            "every endpoint probed for real from the host's namespace (tls_probe.probe_all)"
        ),
    ),
    "events": KnownBlock(
        "a35ff712f724b5377595258a5a9963f02b31d8c71718a65e1820074487ac6f82",
        answer=3,
        why=(
            'v3: per-run boundary markers ("$HrwB BEGIN/PART/END/ERROR", RunState.mark); '
            "Read-HrwEvents formats each message itself (MessageError per event) and drops "
            "NoMatchingEventsFound: the answer prints nothing for no events, the error only "
            "for a missing or denied log, and keeps unformattable events in the SMA scan"
        ),
    ),
    "arc": KnownBlock(
        "6ca9f41f33e0df460bb1b1bfab411128e6b87b26988cde551e0030b97d446dae",
        answer=1,
        why=(
            "v1: Win32_Service himds/ExtensionService/GCArcService (State, StartMode text) and "
            "the AzureConnectedMachineAgent folder, from the profile's place and himds_running"
        ),
    ),
    "extension": KnownBlock(
        "902c5d572685ca13ccc18bec863a7aab005e8b41a6342aab2790f5a9ce5a29a3",
        answer=1,
        why=(
            "v1: handler version folders, the newest RuntimeSettings public settings, element "
            "0 of Status\\<seq>.status and the account endpoints, from win_extension and the "
            "host's account_url; the endpoints join the network block's targets as in the script"
        ),
    ),
    "extservice": KnownBlock(
        "a3a858a3bcbdfb092cbd490f289c6605eeb3b20edc247706f93e2503be4e6e74",
        answer=1,
        why="v1: Win32_Service HybridWorkerService (State, StartMode), nothing when absent",
    ),
    "identity": KnownBlock(
        "ddba2952829d530ebbcdc55304095267e799dac75bffbbb21246152b70a1218f",
        answer=1,
        why=(
            "v1: Invoke-HrwIdentity's summary (Answered, Status, TokenPresent, Challenge, "
            "Error) for IMDS and, on Arc, localhost:40342, from place/imds_identity/himds_running"
        ),
    ),
    "remnants": KnownBlock(
        "b9d8dd5b99dce9edfbd61865afb9193eb6ee44bb08fe56e22c45ce1c1389b527",
        answer=1,
        why=(
            "v1: Test-Path of the V1, V2 and Azure\\HybridWorker keys and the V2 "
            "registrations, from the kinds installed and the profile's remnants"
        ),
    ),
    "arcacl": KnownBlock(
        "74e4fe115a3f2dbfe89f8488e5fcafe7fdc1c1f9414d73534e2e213e53240430",
        answer=1,
        why=(
            "v1: the inventory's account, Get-Acl's Access entries (IdentityReference as "
            "{Value}, rights and type as numbers) of Tokens and the plugin folder on Arc, from "
            "worker_credential; SMA exits 2148734720 through Read-HrwEvents (none: nothing)"
        ),
    ),
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
    expected = BLOCKS.get(name)
    return expected is not None and digest(body) == expected.sha256


def current_digests() -> dict[str, str]:
    """Return the digests of the bootstrap (key ``bootstrap``) and blocks now in the package."""
    # Read as files, not imported: the lab never runs the product's probe code.
    probe = PROBE_DIR / "probe.py"
    found = re.search(r'^BOOTSTRAP = "(.*)"(?:  # .*)?$', probe.read_text(encoding="utf-8"), re.M)
    if found is None:
        raise SystemExit(f"no BOOTSTRAP line in {probe}")
    digests = {"bootstrap": digest(found.group(1).replace('\\"', '"'))}
    script = (PROBE_DIR / "windows_facts.ps1").read_text(encoding="ascii")
    regions, _ = split_regions(script)
    digests.update({name: digest(body) for name, body in regions})
    return digests


def stale_entries() -> list[str]:
    """Return one line per bootstrap or block whose digest differs from its entry here.

    Exists for the maintainer who changed the probe: it says which entries to edit by hand,
    with the new digest, and reminds that the answer and its version change with it.
    """
    known = {"bootstrap": BOOTSTRAP, **BLOCKS}
    lines = []
    for name, sha in current_digests().items():
        entry = known.get(name)
        if entry is None or entry.sha256 != sha:
            lines.append(
                f"{name}: now {sha}; change its answer, raise the answer's version beside it, "
                "then edit this entry (sha256, answer, why) by hand"
            )
    lines += [
        f"{name}: no longer in the probe; remove its entry"
        for name in known.keys() - current_digests().keys()
    ]
    return lines


def main(argv: list[str]) -> int:
    """Print the entries that no longer match the probe; return 1 if any, else 0.

    There is deliberately no option that writes the table: a fingerprint is approved by
    editing it next to a changed answer, never by a command.
    """
    if argv:
        print(
            "probe_blocks takes no options: edit BOOTSTRAP/BLOCKS by hand next to the "
            "changed answer (there is no --write)",
            file=sys.stderr,
        )
        return 2
    stale = stale_entries()
    print("\n".join(stale) if stale else "every fingerprint matches the probe")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
