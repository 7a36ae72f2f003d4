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
from array import array
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hrw_preflight.report.crosscheck import Key, outcome_of
from hrw_preflight.report.evidence import utc_timestamp
from hrw_preflight.report.waivers import Waivers

CaseKey = tuple[str, str]  # (classname, name): the order of the merged cases
CheckKey = tuple[str | None, str | None, str | None]  # (host, scenario_id, item)
Check = Mapping[str, Any]  # a check as the merged record holds it
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


# Copying a case's bytes from the shard's file is safe when every "<testcase" in it starts a
# test case element: no comment, CDATA section, DOCTYPE (entities) or processing instruction
# but the XML declaration, no namespaces, and UTF-8 (or ASCII) text.
_START = re.compile(rb"<testcase[\s/>]")
_START_TAG = re.compile(rb"""<testcase(?:\s+[^\s=/>]+\s*=\s*(?:"[^"]*"|'[^']*'))*\s*(/?)>""")
_END_TAG = re.compile(rb"</testcase\s*>")
_DECLARATION = re.compile(rb"""<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")


def _case_starts(data: bytes) -> list[int] | None:
    """Return where each test case's start tag is in ``data``, or None when its cases must
    be serialized from the parsed tree instead of copied (see above)."""
    if b"<!" in data or b"xmlns" in data or data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return None
    declared = data.startswith(b"<?xml") or data.startswith(b"\xef\xbb\xbf<?xml")
    if data.count(b"<?") > (1 if declared else 0):
        return None
    encoding = _DECLARATION.match(data.removeprefix(b"\xef\xbb\xbf"))
    if encoding and encoding.group(1).lower() not in (b"utf-8", b"utf8", b"us-ascii", b"ascii"):
        return None
    return [m.start() for m in _START.finditer(data)]


def _copied(data: bytes, starts: list[int], index: int) -> bytes | None:
    """Return the bytes of the ``index``-th test case of ``data``, or None when it holds a
    test case of its own (then the ends no longer pair with the starts)."""
    tag = _START_TAG.match(data, starts[index])
    if tag is None:
        return None
    if tag.group(1):  # <testcase ... />
        return data[starts[index] : tag.end()]
    end = _END_TAG.search(data, tag.end())
    if end is None or (index + 1 < len(starts) and starts[index + 1] < end.start()):
        return None
    return data[starts[index] : end.end()]


@dataclass
class ShardCases:
    """One shard's test cases, serialized and sorted, what the suite's head needs of them,
    and each check's outcome as the shard's JUnit said it (for ``verify``'s comparison)."""

    cases: list[tuple[CaseKey, bytes]] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)  # child element tags: failure, ...
    times: array[float] = field(default_factory=lambda: array("d"))  # in document order
    outcomes: dict[Key, tuple[str, str]] = field(default_factory=dict)


def shard_cases(
    source: Path, checks: Mapping[CheckKey, Check], waivers: Waivers | None
) -> ShardCases:
    """Return the test cases of the shard's JUnit file ``source``, each as XML, sorted by
    (classname, name); parsed as a stream, so the shard's tree is never held whole. Raises
    OSError or ``ET.ParseError`` when the file cannot be read.

    A case is copied from the file as it stands, unless it is rewritten or the file is
    unusual (:func:`_case_starts`): then ElementTree serializes it. For a file ElementTree
    wrote (every shard's), both give the same bytes; copying is about twice as fast.

    ``checks`` are the shard's checks as the merge judged them, by (host, scenario, item):
    a case whose ``outcome`` property differs from its check's is rewritten.
    """
    found = ShardCases()
    data = source.read_bytes()
    starts = _case_starts(data)
    index = 0
    for _, case in ET.iterparse(io.BytesIO(data), events=("end",)):
        if case.tag != "testcase":
            continue
        values = properties(case)
        tags = [child.tag for child in case]
        if (outcome := outcome_of(values, set(tags))) is not None:  # as the shard wrote it
            found.outcomes[outcome[0]] = outcome[1]
        host, scenario, item = (_text(values, n) for n in ("host", "scenario_id", "item"))
        check = checks.get((host, scenario, item))
        copied = None
        if starts is not None:
            copied = _copied(data, starts, index)
            if copied is None:
                starts = None  # nested test cases: serialize this one and the rest
        index += 1
        if check is not None and _text(values, "outcome") != check["outcome"]:
            set_outcome(case, check, waivers)
            copied = None
            tags = [child.tag for child in case]
        found.counts.update(tags)
        found.times.append(float(case.get("time") or 0))
        case.tail = "\n"
        xml = copied + b"\n" if copied is not None else ET.tostring(case, encoding="utf-8")
        found.cases.append(((case.get("classname", ""), case.get("name", "")), xml))
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
