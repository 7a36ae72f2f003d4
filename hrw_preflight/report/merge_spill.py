"""Spill files: each shard's checks and JUnit cases, judged and sorted, on disk until the
merged files are written as one k-way merge of them.

A merge reads each shard on its own (:func:`read_shard`, in a worker process when it reads
several at once): the shard is verified, its checks judged against the merge's waivers,
counted into a :class:`FleetTally`, sorted by node id and written one per line as
``<node id>\\t<the check as compact JSON>``; its JUnit cases, sorted by (classname, name), as
a ``<bytes>\\t<classname>\\t<name>`` line followed by the case's XML (:func:`spill_shard`).
Keys are escaped (:func:`escape_key`) so a tab or newline in one cannot break a line; JSON
has neither. Only the shard's record without its checks is kept. The merged
``evidence.json`` and ``junit.xml`` are then ``heapq.merge`` of the spill files
(:func:`merged_checks`, :func:`merged_cases`): the order one sort of every shard's checks
together gives, equal keys in shard order.
"""

from __future__ import annotations

import heapq
import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from operator import itemgetter
from pathlib import Path

from hrw_preflight.report.crosscheck import outcome_problems, recorded_outcomes, unreadable
from hrw_preflight.report.merge_junit import REWRITE_FIELDS, CaseKey, ShardCases, shard_cases
from hrw_preflight.report.merge_shards import MergeRefused, ShardBundle, load_shard, refusal
from hrw_preflight.report.merge_tally import FleetTally, judge
from hrw_preflight.report.waivers import Waivers

# A check's text may hold a lone surrogate (escaped in the shard's JSON, so valid there);
# the spill passes it through unchanged, for the final file to deal with as before.
_ERRORS = "surrogatepass"
_ESCAPED = re.compile(r"\\(.)")
_UNESCAPE = {"\\": "\\", "t": "\t", "n": "\n"}


def escape_key(text: str) -> str:
    """Return ``text`` with backslash, tab and newline escaped, so it fits in one field of a
    tab-separated line (:func:`unescape_key` reverses it)."""
    if "\\" in text:
        text = text.replace("\\", "\\\\")
    if "\t" in text:
        text = text.replace("\t", "\\t")
    if "\n" in text:
        text = text.replace("\n", "\\n")
    return text


def unescape_key(text: str) -> str:
    """Return the text that :func:`escape_key` escaped into ``text``."""
    if "\\" not in text:
        return text
    return _ESCAPED.sub(lambda m: _UNESCAPE[m.group(1)], text)


@dataclass
class ShardSpill:
    """One shard's bundle with its checks and JUnit cases spilled to disk, sorted."""

    shard: ShardBundle
    checks: Path
    junit: Path
    cases: ShardCases  # its counts and times (the cases themselves are in ``junit``)
    case_count: int

    def read_checks(self) -> Iterator[tuple[str, str]]:
        """Yield ``(node id, the check as compact JSON)`` in node id order."""
        with open(self.checks, encoding="utf-8", newline="\n", errors=_ERRORS) as handle:
            for line in handle:
                key, text = line.split("\t", 1)
                yield unescape_key(key), text[:-1]

    def read_cases(self) -> Iterator[tuple[CaseKey, bytes]]:
        """Yield ``((classname, name), the case's XML)`` in (classname, name) order."""
        with open(self.junit, "rb") as handle:
            while header := handle.readline():
                size, classname, name = header[:-1].decode("utf-8").split("\t")
                yield (unescape_key(classname), unescape_key(name)), handle.read(int(size))


def spill_shard(
    shard: ShardBundle, waivers: Waivers | None, tally: FleetTally, folder: Path, number: int
) -> ShardSpill:
    """Judge, count and spill the checks and JUnit cases of ``shard`` (whose record still
    holds its checks) into ``folder``, under names made from ``number``; return where they
    went. The record loses its checks here: only their number is kept.

    Raises MergeRefused when the shard's ``junit.xml`` cannot be read, or, listed in its
    SHA256SUMS, disagrees with its record (the comparison ``verify`` makes).
    """
    listed = "junit.xml" in shard.sums
    recorded = recorded_outcomes(shard.record) if listed else {}
    data = shard.record.pop("checks", None) or []
    shard.checks = len(data)
    checks = [judge(c, waivers) for c in data]
    del data
    tally.add(shard.index, checks)
    checks.sort(key=itemgetter("nodeid"))  # a shard's checks come sorted; this makes sure
    path = folder / f"{number}.checks"
    with open(path, "w", encoding="utf-8", newline="\n", errors=_ERRORS) as handle:
        handle.writelines(
            f"{escape_key(c['nodeid'])}\t{json.dumps(c, ensure_ascii=False)}\n" for c in checks
        )
    # What a JUnit case's rewrite needs of each check; the checks themselves (their evidence
    # most of a shard's memory) are let go before junit.xml is read.
    by_key = {
        (c["host"], c["scenario_id"], c["item"]): {f: c[f] for f in REWRITE_FIELDS} for c in checks
    }
    del checks
    try:
        cases = shard_cases(shard.folder / "junit.xml", by_key, waivers)
    except (OSError, ET.ParseError) as exc:
        raise MergeRefused(refusal(shard.folder, [unreadable(exc)])) from exc
    del by_key
    if listed and (problems := outcome_problems(cases.outcomes, recorded)):
        raise MergeRefused(refusal(shard.folder, problems))
    cases.outcomes = {}
    junit = folder / f"{number}.junit"
    with open(junit, "wb") as handle:
        for (classname, name), xml in cases.cases:
            key = f"{len(xml)}\t{escape_key(classname)}\t{escape_key(name)}\n"
            handle.write(key.encode("utf-8"))
            handle.write(xml)
    count = len(cases.cases)
    cases.cases = []  # on disk now
    return ShardSpill(shard, path, junit, cases, count)


@dataclass
class ShardRead:
    """What reading one shard gave: its spill (None when refused), what it counted, and the
    lines saying why it was refused."""

    spill: ShardSpill | None
    tally: FleetTally
    refused: list[str]


def read_shard(
    folder: Path, number: int, spills: Path, waivers: Waivers | None, allowed_signers: str | None
) -> ShardRead:
    """Verify the shard bundle in ``folder`` and spill it into ``spills`` (its signature
    checked against ``allowed_signers`` when given); return what it gave.

    Exists as one call so a worker process can read a shard whole and hand back only its
    head and counts: the shard's checks never cross between processes.
    """
    tally = FleetTally()
    try:
        shard = load_shard(folder, allowed_signers)
        return ShardRead(spill_shard(shard, waivers, tally, spills, number), tally, [])
    except MergeRefused as exc:
        return ShardRead(None, tally, exc.lines)


def merged_checks(spills: Sequence[ShardSpill]) -> Iterator[str]:
    """Yield every spilled check as compact JSON, in node id order across the shards
    (``spills`` in shard order, which decides between equal node ids)."""
    for _, text in heapq.merge(*(s.read_checks() for s in spills), key=itemgetter(0)):
        yield text


def merged_cases(spills: Sequence[ShardSpill]) -> Iterator[bytes]:
    """Yield every spilled JUnit case in (classname, name) order across the shards."""
    for _, xml in heapq.merge(*(s.read_cases() for s in spills), key=itemgetter(0)):
        yield xml
