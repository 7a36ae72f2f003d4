"""Which shard bundles a merge may join: each one sound (and signed, when asked), all of one
run split N ways, each host in exactly its own shard.

The merge is refused, one line per reason naming the shard, when a bundle fails ``verify`` or
is no shard's, is not signed by an allowed signer (``--allowed-signers``), a shard is missing
or given twice, a host is in two shards or in the wrong one, or the shards differ in what
decides a verdict: catalogue, tool, options (thresholds, timeouts, look-back, trusted CAs,
workspace, selection, waivers) or inventory (the hash of the full host list).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hrw_preflight.hosts.shards import host_list_sha256, shard_of
from hrw_preflight.report.atomic import sha256_file
from hrw_preflight.report.evidence import EVIDENCE, SUMS
from hrw_preflight.report.signing import SIGNATURE, verify_sums
from hrw_preflight.report.verify import verify_bundle
from hrw_preflight.verdicts.catalogue import Catalogue

# Options in a shard's record that change what a check concludes; every shard must agree.
VERDICT_OPTIONS = (
    "connect_timeout_s",
    "command_timeout_s",
    "accept_unknown_host_keys",
    "lookback_hours",
    "endpoint_timeout_s",
    "min_cpus",
    "min_memory_gb",
    "max_cpu_load",
    "min_memory_available_pct",
    "trusted_ca_sha256",
    "workspace_id",
    "markexpr",
    "keyword",
)
WAIVER_FIELDS = ("scenario", "hosts", "justification", "owner", "expires")
SHOWN = 10  # lines of one kind of host problem before "... and N more"
_SUMS_LINE = re.compile(r"^([0-9a-fA-F]{64}) [ *](.+)$")


class MergeRefused(Exception):
    """The shards cannot be merged; ``lines`` says why, one line per reason."""

    def __init__(self, lines: Sequence[str]) -> None:
        super().__init__("\n".join(lines))
        self.lines = list(lines)


@dataclass
class ShardBundle:
    """One verified shard bundle: its folder, record, the hashes its SHA256SUMS lists and,
    when it was checked, who signed it.

    ``record`` holds the shard's checks until they are spilled; from then on ``checks`` is
    their number and the record keeps everything else (hosts, options, ...).
    """

    folder: Path
    record: dict[str, Any]
    sums: dict[str, str]
    sums_sha256: str
    signature: dict[str, str] | None = None  # {"principal", "sha256"} of SHA256SUMS.sig
    checks: int = 0

    @property
    def index(self) -> int:
        """Return the shard's 1-based index."""
        return int(self.record["shard"]["index"])

    @property
    def total(self) -> int:
        """Return how many shards the run was split into."""
        return int(self.record["shard"]["total"])

    @property
    def name(self) -> str:
        """Return how refusal lines name this shard: its folder and ``(shard K/N)``."""
        return f"{self.folder} (shard {self.index}/{self.total})"

    @property
    def host_list(self) -> str:
        """Return the recorded hash of the full, unsharded host list ("" if none)."""
        return str((self.record.get("inventory") or {}).get("host_list_sha256") or "")


def _read_sums(folder: Path) -> dict[str, str]:
    """Return file name -> SHA-256 from a verified bundle's SHA256SUMS."""
    listed = {}
    for line in (folder / SUMS).read_text(encoding="utf-8").splitlines():
        match = _SUMS_LINE.match(line)
        if match:
            listed[match.group(2)] = match.group(1).lower()
    return listed


def _signature(folder: Path, allowed_signers: str) -> dict[str, str]:
    """Return the principal and hash of the shard's good signature, or raise MergeRefused.

    Checked before the bundle is read at all: a shard that cannot show who sealed it is
    not parsed.
    """
    signature = folder / SIGNATURE
    if not signature.is_file():
        raise MergeRefused(
            [
                f"{folder}: not signed (no {SIGNATURE}): with --allowed-signers every shard "
                f"must be signed; run the shards with --hrw-sign-key and a key listed in "
                f"{allowed_signers}"
            ]
        )
    check = verify_sums(folder / SUMS, signature, allowed_signers)
    if not check.ok:
        raise MergeRefused([f"{folder}: not signed by an allowed signer: {check.detail}"])
    return {"principal": check.detail, "sha256": sha256_file(signature)}


def load_shard(folder: Path, allowed_signers: str | None = None) -> ShardBundle:
    """Return the verified shard bundle in ``folder``, its checks included, or raise
    MergeRefused naming it; with ``allowed_signers``, its signature must be good and by one
    of those keys."""
    signed = None
    if allowed_signers is not None and (folder / SUMS).is_file():
        signed = _signature(folder, allowed_signers)
    # junit.xml is compared with the record as the merge streams it (merge_spill): a shard's
    # files are read once. A bundle without SHA256SUMS fails here: nothing was signed.
    verdict = verify_bundle(folder, keep_record=True, junit=False)
    if not verdict.ok:
        verdict = verify_bundle(folder)  # every line `verify` prints, in its order
        raise MergeRefused(refusal(folder, verdict.problems))
    record = verdict.record
    if record is None:  # pragma: no cover - a sound bundle's record was read
        raise MergeRefused([f"{folder}: not a sound bundle: {EVIDENCE} was not read"])
    shard = record.get("shard")
    if not isinstance(shard, dict) or not record.get("inventory", {}).get("host_list_sha256"):
        raise MergeRefused(
            [
                f"{folder}: not a shard's bundle (its evidence.json names no shard): merge the "
                "bundles of runs made with --hrw-shard K/N (or the CI's shard variables)"
            ]
        )
    sums = _read_sums(folder)
    return ShardBundle(folder, record, sums, sha256_file(folder / SUMS), signed)


def refusal(folder: Path, problems: Sequence[str]) -> list[str]:
    """Return the refusal lines for a shard bundle that ``verify`` finds ``problems`` in."""
    return [f"{folder}: not a sound bundle: {p}" for p in problems]


def waiver_entries(record: dict[str, Any]) -> list[dict[str, Any]]:
    """Return the waiver entries a shard ran with, sorted, in the fields that decide."""
    waivers = record.get("waivers") or {}
    entries = waivers.get("entries") or []
    return sorted(
        ({k: e.get(k) for k in WAIVER_FIELDS} for e in entries if isinstance(e, dict)),
        key=lambda e: [str(e[k]) for k in WAIVER_FIELDS],
    )


def tool(record: dict[str, Any]) -> dict[str, Any]:
    """Return the parts of a record's ``tool`` that must be equal across shards."""
    found = record.get("tool") or {}
    return {k: found.get(k) for k in ("version", "git_commit", "probe_scripts")}


def _more(lines: list[str], what: str) -> list[str]:
    if len(lines) <= SHOWN:
        return lines
    return [*lines[:SHOWN], f"... and {len(lines) - SHOWN} more {what}"]


def check_shards(shards: Sequence[ShardBundle], catalogue: Catalogue) -> list[str]:
    """Return one line per reason the shards cannot be merged (empty: they can).

    The first shard given is the reference the others are compared with.
    """
    if not shards:
        return ["no shard bundles given: pass the run folder of every shard"]
    ref = shards[0]
    lines: list[str] = []
    seen_folders: dict[Path, ShardBundle] = {}
    by_index: dict[int, ShardBundle] = {}
    for shard in shards:
        where = shard.folder.resolve()
        if where in seen_folders:
            lines.append(f"{shard.name}: given twice: pass each shard's bundle once")
            continue
        seen_folders[where] = shard
        if shard.total != ref.total:
            lines.append(
                f"{shard.name}: split into {shard.total} shards, but {ref.name} into "
                f"{ref.total}: every shard must come from one split (same N)"
            )
            continue
        if shard.index in by_index:
            lines.append(
                f"{shard.name}: shard {shard.index}/{shard.total} is also "
                f"{by_index[shard.index].folder}: pass each shard's bundle once"
            )
            continue
        by_index[shard.index] = shard
        lines.extend(_compare(shard, ref, catalogue if shard is ref else None))
    given = sorted(by_index)
    for index in range(1, ref.total + 1):
        if index not in by_index:
            lines.append(
                f"shard {index}/{ref.total}: missing (given: "
                f"{', '.join(str(i) for i in given) or 'none'}): pass the bundles of all "
                f"{ref.total} shards"
            )
    lines.extend(_host_problems(list(by_index.values())))
    if not lines:
        union = [h for s in by_index.values() for h in s.record.get("hosts", {})]
        if host_list_sha256(union) != ref.host_list:
            lines.append(
                f"the {len(union)} hosts of the shards do not make up their inventory's host "
                f"list (sha256 {ref.host_list[:12]}...): a shard's record lost hosts"
            )
    return lines


def _compare(shard: ShardBundle, ref: ShardBundle, catalogue: Catalogue | None) -> list[str]:
    """Return the reasons ``shard`` cannot be merged with ``ref`` (and, for the reference
    itself, with this tool's catalogue)."""
    lines = []
    rec, base = shard.record, ref.record
    cat, base_cat = rec.get("catalogue") or {}, base.get("catalogue") or {}
    if catalogue is not None and cat.get("sha256") != catalogue.sha256:
        lines.append(
            f"{shard.name}: catalogue v{cat.get('version')} sha256:"
            f"{str(cat.get('sha256'))[:12]} is not this tool's (v{catalogue.version} sha256:"
            f"{catalogue.sha256[:12]}): merge with the hrw-preflight version the shards ran"
        )
    if shard is ref:
        return lines
    if cat != base_cat:
        lines.append(
            f"{shard.name}: catalogue v{cat.get('version')} sha256:{str(cat.get('sha256'))[:12]}"
            f" differs from {ref.name}'s v{base_cat.get('version')} sha256:"
            f"{str(base_cat.get('sha256'))[:12]}: run every shard from the same catalogue"
        )
    if tool(rec) != tool(base):
        mine, theirs = tool(rec), tool(base)
        what = ", ".join(k for k in mine if mine[k] != theirs[k])
        lines.append(
            f"{shard.name}: tool ({what}) differs from {ref.name}'s: run every shard from the "
            "same hrw-preflight commit"
        )
    options, base_options = rec.get("options") or {}, base.get("options") or {}
    changed = [
        f"{k} {options.get(k)!r} (not {base_options.get(k)!r})"
        for k in VERDICT_OPTIONS
        if options.get(k) != base_options.get(k)
    ]
    if waiver_entries(rec) != waiver_entries(base):
        changed.append("waivers (another waiver file's entries)")
    if changed:
        lines.append(
            f"{shard.name}: options that change verdicts differ from {ref.name}: "
            f"{'; '.join(changed)}: run every shard with the same options"
        )
    if shard.host_list != ref.host_list:
        lines.append(
            f"{shard.name}: host list sha256:{shard.host_list[:12]} differs from {ref.name}'s "
            f"sha256:{ref.host_list[:12]}: the shards come from different inventories or "
            "host patterns"
        )
    return lines


def _host_problems(shards: Sequence[ShardBundle]) -> list[str]:
    owner: dict[str, ShardBundle] = {}
    twice, misplaced = [], []
    for shard in shards:
        for host in shard.record.get("hosts", {}):
            if host in owner:
                twice.append(
                    f"host {host}: in {owner[host].name} and in {shard.name}: a host belongs "
                    "to one shard"
                )
                continue
            owner[host] = shard
            if shard_of(host, shard.total) != shard.index:
                misplaced.append(
                    f"{shard.name}: host {host} belongs to shard "
                    f"{shard_of(host, shard.total)}/{shard.total}: the shard was split "
                    "differently (another hrw-preflight version?)"
                )
    return _more(twice, "hosts in two shards") + _more(misplaced, "misplaced hosts")
