"""The merged ``junit.xml``: every shard's test cases in one test suite, in (classname, name)
order, written case by case.

A shard's ``junit.xml`` is read once, as a stream of test cases (:func:`shard_cases`): a case
whose outcome the merge's waivers changed is rewritten (its property ``outcome`` and its
``<failure>`` or ``<skipped>``), every case is kept as its own XML text, and the shard's
cases are sorted, to be spilled to disk (:mod:`merge_spill`). The merged document is the k-way
merge of the spill files between one ``<testsuite>`` head and its end
(:func:`junit_document`), so no shard's tree and no fleet's worth of cases is held at once.
"""

from __future__ import annotations

import io
import re
import xml.etree.ElementTree as ET
import xml.parsers.expat as expat
from array import array
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hrw_preflight.report.crosscheck import Key, outcome_of
from hrw_preflight.report.evidence import utc_timestamp
from hrw_preflight.report.waivers import Waivers

CaseKey = tuple[str, str]  # (classname, name): the order of the merged cases
CheckKey = tuple[str | None, str | None, str | None]  # (host, scenario_id, item)
Check = Mapping[str, Any]  # a check as the merged record holds it (these fields at least:)
REWRITE_FIELDS = ("outcome", "waiver", "scenario_id", "host", "reason")
_CASES = "@@hrw-preflight-cases@@"


def properties(case: ET.Element) -> dict[str | None, str | None]:
    """Return a test case's properties by name, as the file has them (None where a name or
    value is missing)."""
    return {p.get("name"): p.get("value") for p in case.iter("property")}


def _text(values: Mapping[str | None, str | None], name: str) -> str | None:
    """Return property ``name`` as text ("None" when it has no value), None when absent."""
    return str(values[name]) if name in values else None


def set_outcome(case: ET.Element, check: Check, waivers: Waivers | None) -> None:
    """Rewrite one test case whose outcome the merge's waivers changed (``check`` as the
    merged record holds it): its ``outcome`` property, and a ``<skipped>`` (waived) or
    ``<failure>`` (no longer waived) element."""
    outcome = check["outcome"]
    for prop in case.iter("property"):
        if prop.get("name") == "outcome":
            prop.set("value", outcome)
    for child in list(case):
        if child.tag in ("failure", "skipped"):
            case.remove(child)
    if outcome == "waived" and waivers is not None and check["waiver"]:
        active = waivers.active_for(check["scenario_id"] or "", check["host"] or "")
        text = active.text() if active is not None else "waived"
        ET.SubElement(case, "skipped", {"type": "pytest.xfail", "message": text})
    elif outcome == "failed":
        failure = ET.SubElement(case, "failure", {"message": check["reason"][:500]})
        failure.text = check["reason"]


# A case can be copied from the shard's file when the file holds nothing a case's text could
# depend on outside itself or hide markup in: no DOCTYPE (entities), comment, CDATA section or
# processing instruction but the XML declaration, no namespaces, UTF-8 (or ASCII) text.
_DECLARATION = re.compile(rb"""<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")


def _copyable(data: bytes) -> bool:
    """Return whether the test cases of JUnit text ``data`` can be copied as they stand."""
    if b"<!" in data or b"xmlns" in data or data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return False
    text = data.removeprefix(b"\xef\xbb\xbf")
    if text.count(b"<?") > (1 if text.startswith(b"<?xml") else 0):
        return False
    encoding = _DECLARATION.match(text)
    return not encoding or encoding.group(1).lower() in (b"utf-8", b"utf8", b"us-ascii", b"ascii")


class _Unusual(Exception):
    """The JUnit file holds a test case inside a test case: ElementTree reads it."""


@dataclass
class _Case:
    """A test case as the scan saw it: where its text starts and ends, its attributes, its
    properties (name -> value, as the file has them) and its child elements' tags."""

    start: int
    depth: int
    attributes: dict[str, str]
    values: dict[str | None, str | None] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    end: int = 0


def _scan(data: bytes, take: Callable[[_Case], None]) -> None:
    """Hand every test case of JUnit text ``data`` to ``take`` as its end is read; raises
    ``expat.ExpatError`` for text that is not XML and _Unusual for nested test cases.

    Exists for speed: expat's callbacks see each element once, without the tree ElementTree
    builds (at 400,000 cases, half the merge's JUnit time).
    """
    parser = expat.ParserCreate()
    depth = 0
    current: _Case | None = None

    def start(name: str, attributes: dict[str, str]) -> None:
        nonlocal depth, current
        depth += 1
        if current is None:
            if name == "testcase":
                current = _Case(parser.CurrentByteIndex, depth, attributes)
            return
        if name == "testcase":
            raise _Unusual
        if depth == current.depth + 1:
            current.tags.append(name)
        if name == "property":
            current.values[attributes.get("name")] = attributes.get("value")

    def end(name: str) -> None:
        nonlocal depth, current
        if current is not None and depth == current.depth:
            # At "</testcase"; after an empty element tag, the text after its "/>".
            at = parser.CurrentByteIndex
            current.end = data.index(b">", at) + 1 if data.startswith(b"</testcase", at) else at
            take(current)
            current = None
        depth -= 1

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.Parse(data, True)


@dataclass
class ShardCases:
    """One shard's test cases, each as XML, sorted, what the suite's head needs of them, and
    each check's outcome as the shard's JUnit said it (for ``verify``'s comparison)."""

    cases: list[tuple[CaseKey, bytes]] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)  # child element tags: failure, ...
    times: array[float] = field(default_factory=lambda: array("d"))  # in document order
    outcomes: dict[Key, tuple[str, str]] = field(default_factory=dict)


def shard_cases(
    source: Path, checks: Mapping[CheckKey, Check], waivers: Waivers | None
) -> ShardCases:
    """Return the test cases of the shard's JUnit file ``source``, each as XML, sorted by
    (classname, name), and what the merged suite's head needs of them. Raises OSError or
    ``ET.ParseError`` when the file cannot be read.

    ``checks`` are the shard's checks as the merge judged them, by (host, scenario, item):
    a case whose ``outcome`` property differs from its check's is rewritten (ElementTree
    writes it); every other case is copied from the file as it stands, which for a file
    ElementTree wrote (every shard's) are the bytes ElementTree would write. A file that
    cannot be copied from (:func:`_copyable`) is read and written by ElementTree, case by
    case, so its tree is never held whole.
    """
    data = source.read_bytes()
    if _copyable(data):
        try:
            return _copied(data, checks, waivers)
        except (_Unusual, expat.ExpatError):
            pass  # ElementTree reads it, and says why it cannot, as verify does
    return _parsed(data, checks, waivers)


def _copied(data: bytes, checks: Mapping[CheckKey, Check], waivers: Waivers | None) -> ShardCases:
    """Return the shard's cases as :func:`_scan` finds them in ``data``: each copied, or
    rewritten."""
    found = ShardCases()

    def take(case: _Case) -> None:
        values, tags = case.values, case.tags
        if (outcome := outcome_of(values, set(tags))) is not None:  # as the shard wrote it
            found.outcomes[outcome[0]] = outcome[1]
        host, scenario, item = (_text(values, n) for n in ("host", "scenario_id", "item"))
        check = checks.get((host, scenario, item))
        xml = data[case.start : case.end] + b"\n"
        if check is not None and _text(values, "outcome") != check["outcome"]:
            element = ET.fromstring(xml)
            set_outcome(element, check, waivers)
            element.tail = "\n"
            xml = ET.tostring(element, encoding="utf-8")
            tags = [child.tag for child in element]
        found.counts.update(tags)
        found.times.append(float(case.attributes.get("time") or 0))
        key = (case.attributes.get("classname", ""), case.attributes.get("name", ""))
        found.cases.append((key, xml))

    _scan(data, take)
    found.cases.sort(key=lambda c: c[0])
    return found


def _parsed(data: bytes, checks: Mapping[CheckKey, Check], waivers: Waivers | None) -> ShardCases:
    """Return the shard's cases as ElementTree reads and writes them, one case at a time."""
    found = ShardCases()
    inside = 0  # test cases open around this point: one within another is written with it
    for event, case in ET.iterparse(io.BytesIO(data), events=("start", "end")):
        if case.tag != "testcase":
            continue
        inside += 1 if event == "start" else -1
        if event == "start":
            continue
        values = properties(case)
        if (outcome := outcome_of(values, {child.tag for child in case})) is not None:
            found.outcomes[outcome[0]] = outcome[1]
        host, scenario, item = (_text(values, n) for n in ("host", "scenario_id", "item"))
        check = checks.get((host, scenario, item))
        if check is not None and _text(values, "outcome") != check["outcome"]:
            set_outcome(case, check, waivers)
        found.counts.update(child.tag for child in case)
        found.times.append(float(case.get("time") or 0))
        case.tail = "\n"
        key = (case.get("classname", ""), case.get("name", ""))
        found.cases.append((key, ET.tostring(case, encoding="utf-8")))
        if not inside:
            case.clear()  # its text is in ``cases`` now; the tree keeps an empty element
    found.cases.sort(key=lambda c: c[0])
    return found


def junit_document(
    shards: Sequence[ShardCases], total: int, cases: Iterable[bytes]
) -> Iterator[bytes]:
    """Yield the merged ``junit.xml``: one ``hrw-preflight`` test suite of ``total`` test
    cases, ``cases``, with counts and time added up over ``shards`` (in shard order)."""
    counts: Counter[str] = Counter()
    seconds = 0.0
    for shard in shards:
        counts.update(shard.counts)
        for time in shard.times:  # summed one by one, in shard order: the same float always
            seconds += time
    suite = ET.Element(
        "testsuite",
        {
            "name": "hrw-preflight",
            "errors": str(counts["error"]),
            "failures": str(counts["failure"]),
            "skipped": str(counts["skipped"]),
            "tests": str(total),
            "time": f"{seconds:.3f}",
            "timestamp": utc_timestamp(),
        },
    )
    suite.text = _CASES  # where the cases go
    root = ET.Element("testsuites")
    root.append(suite)
    head, tail = ET.tostring(root, encoding="utf-8", xml_declaration=True).split(
        _CASES.encode("ascii")
    )
    yield head + b"\n"
    yield from cases
    yield tail + b"\n"
