"""The run record (``evidence.json``) and the bundle it belongs to.

A run's folder ``reports/<run-id>/`` holds ``report.html`` (the fleet page), ``checks.html``
(pytest-html's page of every check), ``junit.xml``, ``evidence.json`` and ``SHA256SUMS``.
``evidence.json`` says who ran what, from where, with which tool and catalogue, against which
hosts, with which weakening options, and for every check its outcome, the reason and the
evidence judged. ``SHA256SUMS`` is written last: a folder without it is a
run that never finished. Field reference: ``docs/evidence.md``; schema:
``hrw_preflight/report/schema/evidence.schema.json``.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import platform
import re
import socket
import subprocess
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import hrw_preflight
from hrw_preflight.facts.kind import describe
from hrw_preflight.facts.model import HostFacts
from hrw_preflight.hosts.redact import MASK, Redactor
from hrw_preflight.hosts.targets import Target
from hrw_preflight.report.atomic import REPORT_MODE, sha256sums, write_atomic, write_atomic_chunks
from hrw_preflight.run.case import Case

SCHEMA_VERSION = 1
EVIDENCE = "evidence.json"
SUMS = "SHA256SUMS"
FLEET_PAGE = "report.html"  # the fleet page, rendered from the record (fleet_page.py)
CHECKS_PAGE = "checks.html"  # pytest-html's page: every check with its log and evidence
REPORT_FILES = (FLEET_PAGE, CHECKS_PAGE, "junit.xml")
COMPACT_ABOVE = 20_000  # checks in a record above which evidence.json is written compact
OUTCOMES = ("passed", "failed", "error", "skipped", "waived")
_VERIFIED = ("hosts", "checks")  # the fields a merge takes from verified, redacted shards
# Words that make an option or a mapping key carry a secret ("key" alone is too broad:
# --accept-unknown-host-keys is no secret).
_SECRET_WORDS = {"password", "passwd", "pass", "pwd", "passphrase", "secret", "token"}
_SECRET_KEY_NAMES = re.compile(r"(workspace|shared|primary|secondary)[_-]?key$", re.IGNORECASE)


def utc_timestamp() -> str:
    """Return the current UTC time as ISO 8601 with a ``Z``, the record's time format."""
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _is_secret_name(name: str) -> bool:
    words = {w for w in re.split(r"[^a-z0-9]+", name.lower()) if w}
    return bool(words & _SECRET_WORDS) or bool(_SECRET_KEY_NAMES.search(name))


def redact_data(value: Any, redact: Redactor) -> Any:
    """Return a JSON-ready copy of ``value`` with every string redacted.

    A mapping entry whose key names a secret (``password``, ``token``, ...) loses its value
    entirely, since a redactor run over the value alone cannot see the key that marks it.
    """
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            name = redact(str(key))
            secret = _is_secret_name(name) and isinstance(item, str | bytes | int | float)
            out[name] = MASK if secret and item not in (None, "") else redact_data(item, redact)
        return out
    if isinstance(value, list | tuple):
        return [redact_data(v, redact) for v in value]
    if value is None or isinstance(value, bool | int | float):
        return value
    return redact(str(value))


def safe_command_line(args: list[str] | tuple[str, ...], redact: Redactor) -> list[str]:
    """Return the command line with the values of password-like options dropped and every
    argument redacted (URL passwords, known secrets, ``key=value`` secrets)."""
    out: list[str] = []
    hide_next = False
    for arg in args:
        if hide_next:
            out.append(MASK)
            hide_next = False
            continue
        if arg.startswith("-") and _is_secret_name(arg.split("=", 1)[0]):
            if "=" in arg:
                out.append(arg.split("=", 1)[0] + "=" + MASK)
            else:
                out.append(arg)
                hide_next = True
            continue
        out.append(redact(arg))
    return out


def find_git_root(start: Path) -> Path | None:
    """Return the git work tree that holds ``start`` (a ``.git`` folder or file above it)."""
    for folder in (start, *start.parents):
        if (folder / ".git").exists():
            return folder
    return None


@cache
def git_commit(start: Path | None = None) -> str | None:
    """Return the commit the tool runs from, or None when it is not a git checkout.

    Exists so a record names the exact code that judged the hosts; read-only (``rev-parse``,
    no optional locks), and any failure of git means "unknown", never a crash.
    """
    root = find_git_root(start or Path(hrw_preflight.__file__).resolve().parent)
    if root is None:
        return None
    try:
        done = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--verify", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
            env={**os.environ, "GIT_OPTIONAL_LOCKS": "0"},
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = done.stdout.strip()
    return commit if done.returncode == 0 and re.fullmatch(r"[0-9a-f]{40,64}", commit) else None


@cache
def probe_scripts() -> dict[str, str]:
    """Return the sha256 of every probe script shipped with the tool, by file name.

    The scripts are the commands run on the hosts; their hashes pin what was asked.
    """
    found: dict[str, str] = {}
    for package in ("hrw_preflight.facts.linux", "hrw_preflight.facts.windows"):
        for entry in resources.files(package).iterdir():
            if entry.name.endswith((".sh", ".ps1")):
                found[entry.name] = sha256_bytes(entry.read_bytes())
    return dict(sorted(found.items()))


def sha256_bytes(data: bytes) -> str:
    """Return the hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def file_sha256(path: str) -> str | None:
    """Return the hex SHA-256 of file ``path``, or None when it cannot be read.

    Exists so a record pins what a file option held (trusted CAs), not just its path,
    which differs between CI agents.
    """
    try:
        return sha256_bytes(Path(path).read_bytes())
    except OSError:
        return None


def operator() -> dict[str, str]:
    """Return who ran the suite and from which machine."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry and no LOGNAME/USER (some containers)
        user = str(os.getuid()) if hasattr(os, "getuid") else "unknown"
    return {"user": user, "hostname": socket.gethostname()}


def worker_kind_record(facts: HostFacts | None) -> dict[str, Any]:
    """Return the host's worker kind as the record keeps it: the kinds installed, where it
    runs, the one-line text the terminal and the HTML matrix show, and why it is unknown."""
    section = facts.section("kind") if facts is not None else None
    data = section.data if section is not None else None
    if data is None:
        return {
            "kind": None,
            "agent": None,
            "extension": None,
            "place": None,
            "text": "unknown",
            "error": section.error if section is not None else "the host was not probed",
        }
    return {
        "kind": data.get("kind"),
        "agent": data.get("agent"),
        "extension": data.get("extension"),
        "place": data.get("place"),
        "text": describe(data),
        "error": None,
    }


def host_facts_record(target: Target, facts: HostFacts | None, redact: Redactor) -> dict[str, Any]:
    """Return what the record keeps about one host: how it was reached, what the probe found
    about its worker, and how many remote commands it took; redacted."""
    record: dict[str, Any] = {
        "platform": target.platform,
        "connection": target.connection,
        "address": target.address,
        "port": target.port,
        "user": target.user,
        "source": target.source,
        "weakened": target.weakened(),
        "connect_error": None,
        "commands": None,
        "worker": None,
        "worker_error": None,
        "worker_kind": worker_kind_record(facts),
        "sections_taken_at": {},
    }
    if facts is not None:
        worker = facts.sections.get("worker")
        record.update(
            connect_error=facts.connect_error,
            commands=facts.commands,
            worker=worker.data if worker is not None else None,
            worker_error=(
                worker.error
                if worker is not None
                else None
                if facts.connect_error
                else "the probe returned no worker section"
            ),
            sections_taken_at={n: s.taken_at for n, s in sorted(facts.sections.items())},
        )
    result: dict[str, Any] = redact_data(record, redact)
    return result


def case_record(case: Case, with_host: bool = True) -> dict[str, Any]:
    """Return what a check's record needs from its judged case: verdict, evidence, times.

    Travels on the pytest report (also from xdist workers to the controller), so it holds
    plain, redacted data only. ``with_host`` adds the host's facts record, which a process
    needs to send once per host only.
    """
    verdict = case.verdict
    text, cut = case.report_evidence
    names = verdict.sections or case.scenario.needs
    return {
        "verdict": verdict.outcome,
        "seen": case.redact(verdict.seen),
        "expected": case.redact(verdict.expected),
        "evidence": text,
        "evidence_truncated": cut,
        "taken_at": {n: case.facts.section(n).taken_at for n in names},
        "host_facts": (
            host_facts_record(case.target, case.facts, case.redact) if with_host else None
        ),
    }


@dataclass
class CheckResult:
    """One check's entry in the record, built on the controller from its reports."""

    nodeid: str
    host: str | None
    scenario_id: str | None
    item: str | None
    severity: str | None
    outcome: str
    reason: str
    evidence: str = ""
    evidence_truncated: bool = False
    taken_at: dict[str, str] = field(default_factory=dict)
    waiver: dict[str, str] | None = None
    expired_waiver: dict[str, str] | None = None
    duration_s: float = 0.0

    @property
    def expired_waiver_text(self) -> str:
        """Return the note for a failure an expired waiver would have covered ("" if none)."""
        w = self.expired_waiver
        if not w:
            return ""
        return (
            f"waiver for {w['scenario']} on {w['hosts']} (owner {w['owner']}) expired on "
            f"{w['expires']}: not applied"
        )

    def as_dict(self) -> dict[str, Any]:
        """Return the JSON shape of this check (see docs/evidence.md)."""
        return {
            "nodeid": self.nodeid,
            "scenario_id": self.scenario_id,
            "item": self.item,
            "host": self.host,
            "severity": self.severity,
            "outcome": self.outcome,
            "reason": self.reason,
            "waiver": self.waiver,
            "expired_waiver": self.expired_waiver,
            "evidence": self.evidence,
            "evidence_truncated": self.evidence_truncated,
            "taken_at": self.taken_at,
            "duration_s": round(self.duration_s, 3),
        }


def reason_text(seen: str, expected: str) -> str:
    """Return the one-line reason of a verdict: what was seen and, if any, what was expected."""
    return f"seen: {seen}; expected: {expected}" if expected else seen


@dataclass
class RunInfo:
    """Run-level facts the record needs, gathered by the plugin."""

    run_id: str
    started_at: str
    command_line: list[str]
    inventory: dict[str, Any]
    run_weakened: list[str]
    catalogue_version: int
    catalogue_sha256: str
    options: dict[str, Any] = field(default_factory=dict)
    shard: dict[str, Any] | None = None  # {"index", "total", "source"} of a sharded run


def build_record(
    info: RunInfo,
    *,
    status: str,
    status_reason: str | None,
    finished_at: str | None,
    hosts: dict[str, dict[str, Any]],
    checks: list[CheckResult],
    files: list[str],
    gate: dict[str, Any] | None,
    waivers: dict[str, Any] | None,
    redact: Redactor,
    merged: dict[str, Any] | None = None,
    verified: bool = False,
) -> dict[str, Any]:
    """Return the whole run record, redacted, in the shape of the evidence schema.

    ``merged`` is set on the record that ``python -m hrw_preflight merge`` writes: the
    shards it joined and the hashes of their files. ``verified`` says the hosts and checks
    come from verified records that the runs which knew the secrets already redacted (a
    merge's redactor knows none), so they are not walked again: at 10,000 hosts that walk
    is most of a merge's time. Everything else (the merge's own command line, options,
    waivers and shard table) is redacted here.
    """
    summary = dict.fromkeys(OUTCOMES, 0)
    for check in checks:
        summary[check.outcome] = summary.get(check.outcome, 0) + 1
    record: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "run_id": info.run_id,
        "status": status,
        "status_reason": status_reason,
        "started_at": info.started_at,
        "finished_at": finished_at,
        "operator": operator(),
        "tool": {
            "name": "hrw-preflight",
            "version": hrw_preflight.__version__,
            "git_commit": git_commit(),
            "python": platform.python_version(),
            "probe_scripts": probe_scripts(),
        },
        "catalogue": {"version": info.catalogue_version, "sha256": info.catalogue_sha256},
        "command_line": info.command_line,
        "inventory": info.inventory,
        "shard": info.shard,
        "merged": merged,
        "options": info.options,
        "weakened": {
            "run": info.run_weakened,
            "hosts": {
                name: h.get("weakened", []) for name, h in hosts.items() if h.get("weakened")
            },
        },
        "gate": gate,
        "waivers": waivers,
        "files": files,
        "summary": summary,
        "hosts": hosts,
        "checks": [c.as_dict() for c in checks],
    }
    if not verified:
        result: dict[str, Any] = redact_data(record, redact)
        return result
    own = redact_data({k: v for k, v in record.items() if k not in _VERIFIED}, redact)
    return {k: record[k] if k in _VERIFIED else own[k] for k in record}


def dump_record(record: dict[str, Any], redact: Redactor) -> str:
    """Return the record as JSON text, with the registered secret values masked once more
    over the whole text.

    The record's fields were each redacted (values, keys, and values under secret-named
    keys); this last pass makes sure no known password reaches the file whatever field it
    hid in. The patterns are not run again: every one of them matches within a line, and
    each field already went through them. If the pass would break the JSON, the
    field-by-field redaction stands.
    """
    # Indented for reading by eye; a large (merged) record is written compact: Python's
    # JSON encoder is C code only without indentation, 5x faster at 200,000 checks.
    indent = 2 if len(record.get("checks") or ()) <= COMPACT_ABOVE else None
    text = json.dumps(record, indent=indent, ensure_ascii=False, sort_keys=False) + "\n"
    again = redact.mask_known(text)
    if again != text:
        try:
            json.loads(again)
        except ValueError:
            return text
        return again
    return text


def record_chunks(record: dict[str, Any], redact: Redactor) -> Iterator[str]:
    """Return the pieces of ``evidence.json``: :func:`dump_record`'s text at once for a
    record of up to :data:`COMPACT_ABOVE` checks; above, compact JSON one check at a time,
    each masked as dump_record masks the whole text, so a merged 10,000-host record is never
    held in memory as one text."""
    checks = record.get("checks") or []
    if len(checks) <= COMPACT_ABOVE or list(record)[-1] != "checks":
        yield dump_record(record, redact)
        return
    each = (json.dumps(check, ensure_ascii=False) for check in checks)
    yield from record_stream(record, each, len(checks), redact)


def record_stream(
    head: dict[str, Any], checks: Iterable[str], count: int, redact: Redactor
) -> Iterator[str]:
    """Return the pieces of ``evidence.json`` for the record ``head`` (whose last key is
    ``checks``, its value ignored) holding ``count`` checks that ``checks`` yields one by
    one as compact JSON: the same text :func:`record_chunks` writes for the whole record.

    Exists for the merge, whose checks come from spill files and never are in memory all
    at once; a record small enough to be indented (:data:`COMPACT_ABOVE`) is put together
    and written as :func:`dump_record` writes it.
    """
    if count <= COMPACT_ABOVE:
        record = dict(head)
        record["checks"] = [json.loads(c) for c in checks]
        yield dump_record(record, redact)
        return
    rest = {k: v for k, v in head.items() if k != "checks"}
    text = _masked(json.dumps(rest, ensure_ascii=False), redact)
    yield text[:-1] + ', "checks": ['  # the head's closing brace comes after the checks
    for index, check in enumerate(checks):
        yield ("," if index else "") + _masked(check, redact)
    yield "]}\n"


def _masked(text: str, redact: Redactor) -> str:
    """Return JSON ``text`` with the known secrets masked, unless that breaks the JSON."""
    again = redact.mask_known(text)
    if again == text:
        return text
    try:
        json.loads(again)
    except ValueError:
        return text
    return again


def write_bundle(
    run_dir: Path, record: dict[str, Any], redact: Redactor, *, seal: bool = True
) -> list[str]:
    """Write ``evidence.json`` and, when ``seal``, ``SHA256SUMS``; return the hashed names.

    ``SHA256SUMS`` covers the report files present in the folder and ``evidence.json``; it
    is written last and atomically, so its presence marks a finished bundle. Every file of
    the bundle ends with mode 0640 (:data:`REPORT_MODE`): pytest-html and junitxml write
    theirs with the process's umask, usually world-readable.
    """
    for name in REPORT_FILES:
        if (run_dir / name).is_file():
            os.chmod(run_dir / name, REPORT_MODE)
    write_atomic_chunks(run_dir / EVIDENCE, record_chunks(record, redact))
    if not seal:
        return []
    names = [n for n in (*REPORT_FILES, EVIDENCE) if (run_dir / n).is_file()]
    write_atomic(run_dir / SUMS, sha256sums(run_dir, names))
    return names


@cache
def load_schema() -> dict[str, Any]:
    """Return the evidence JSON Schema shipped with the tool."""
    text = resources.files("hrw_preflight.report").joinpath("schema", "evidence.schema.json")
    schema: dict[str, Any] = json.loads(text.read_text("utf-8"))
    return schema


@cache
def _fast_validator() -> Callable[[Any], Any]:
    """Return the schema compiled to Python by fastjsonschema (raises on the first error)."""
    import fastjsonschema

    validate: Callable[[Any], Any] = fastjsonschema.compile(load_schema())
    return validate


def schema_errors(record: Any) -> list[str]:
    """Return one line per place where ``record`` breaks the evidence schema (empty: valid).

    A valid record is accepted by fastjsonschema's compiled validator (a 10,000-host merged
    record in about a second, where jsonschema takes minutes); only a record it rejects is
    walked again by jsonschema, which names every place that is wrong.
    """
    import jsonschema  # type: ignore[import-untyped]

    try:
        _fast_validator()(record)
    except ValueError:  # fastjsonschema's errors; caught by base class, as pytester may
        pass  # import the module anew while the compiled validator keeps the first one
    else:
        return []

    validator = jsonschema.Draft202012Validator(load_schema())
    lines = []
    for error in sorted(validator.iter_errors(record), key=lambda e: list(e.absolute_path)):
        where = "/".join(str(p) for p in error.absolute_path) or "(top level)"
        lines.append(f"{where}: {error.message[:200]}")
    return lines
