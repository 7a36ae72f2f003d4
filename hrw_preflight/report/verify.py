"""``python -m hrw_preflight verify reports/<run-id>``: is this bundle intact and complete?

Checks every file named in ``SHA256SUMS`` against its hash, that the bundle's required files
are listed, that ``evidence.json`` matches the schema and records a complete run, that its
summary counts match its checks and that ``junit.xml`` gives every check the same outcome.
With ``--allowed-signers FILE`` it also requires a good ``SHA256SUMS.sig`` by a key of that
file. Prints one line per problem and exits 1 if there is any, else prints one OK line and
exits 0. Files in the folder that ``SHA256SUMS`` does not list are reported as warnings only.

What an OK proves: without a signature, only that the files agree with the hashes and with
each other, so they were not damaged or edited by someone who left ``SHA256SUMS`` alone;
anyone able to write the folder can rewrite a file and its hash. With a signature checked
against ``--allowed-signers``, also that the hashes were signed by that principal's key, so
the files are the ones that key's holder sealed.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hrw_preflight.hosts.errors import ConfigError
from hrw_preflight.report.atomic import sha256_file
from hrw_preflight.report.crosscheck import junit_problems, summary_problems
from hrw_preflight.report.evidence import EVIDENCE, SUMS, schema_errors
from hrw_preflight.report.signing import SIGNATURE, verify_sums

_LINE = re.compile(r"^(?P<digest>[0-9a-fA-F]{64}) [ *](?P<name>.+)$")
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass
class Verdict:
    """What verify found: problems (fail the bundle), warnings (do not) and a summary."""

    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    summary: str = ""
    # The parsed evidence.json, for a caller that reads the record next (the merge), so a
    # large record is parsed once; only with verify_bundle(keep_record=True).
    record: dict[str, Any] | None = field(default=None, repr=False, compare=False)

    @property
    def ok(self) -> bool:
        """Return True when the bundle has no problem (warnings allowed)."""
        return not self.problems


def _read_sums(path: Path, verdict: Verdict) -> dict[str, str]:
    listed: dict[str, str] = {}
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        verdict.problems.append(f"{SUMS}: cannot be read ({exc.__class__.__name__})")
        return listed
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        match = _LINE.match(line)
        name = match.group("name") if match else ""
        # A listed path outside the folder could make verify vouch for some other file.
        if match is None or not _SAFE_NAME.match(name) or name == SUMS:
            verdict.problems.append(f"{SUMS}: line {number} is not '<sha256>  <file name>'")
            continue
        if name in listed:
            verdict.problems.append(f"{SUMS}: {name} is listed twice")
        listed[name] = match.group("digest").lower()
    return listed


def _check_evidence(path: Path, verdict: Verdict) -> dict[str, Any] | None:
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        verdict.problems.append(f"{EVIDENCE}: not readable JSON ({exc.__class__.__name__})")
        return None
    for line in schema_errors(record):
        verdict.problems.append(f"{EVIDENCE}: does not match the schema at {line}")
    return record if isinstance(record, dict) else None


def _check_signature(base: Path, allowed_signers: str | None, verdict: Verdict) -> str:
    """Check ``SHA256SUMS.sig`` when asked to; return what the OK line says about it."""
    signature = base / SIGNATURE
    if allowed_signers is None:
        if signature.is_file():
            verdict.warnings.append(
                f"{SIGNATURE}: present but not checked: give --allowed-signers FILE to "
                "prove who produced the bundle"
            )
        return "unsigned: the hashes show the files agree, not who wrote them"
    if not signature.is_file():
        verdict.problems.append(
            f"{SIGNATURE}: missing: the bundle is not signed, so it cannot show who produced it"
        )
        return ""
    check = verify_sums(base / SUMS, signature, allowed_signers)
    if not check.ok:
        verdict.problems.append(f"{SIGNATURE}: {check.detail}")
        return ""
    return f"signed by {check.detail}"


def verify_bundle(
    folder: str | Path,
    allowed_signers: str | None = None,
    *,
    keep_record: bool = False,
    junit: bool = True,
) -> Verdict:
    """Return the verdict on the bundle in ``folder`` (a run folder or ``reports/latest``);
    with ``allowed_signers``, its signature must be good and by one of those keys.

    ``keep_record`` keeps the parsed ``evidence.json`` in the verdict. ``junit=False``
    leaves out the comparison of ``junit.xml`` with the record: for the merge, which reads
    each shard's ``junit.xml`` once, as a stream, and compares it there
    (:func:`crosscheck.case_outcome`, :func:`crosscheck.outcome_problems`); the comparison's
    lines would come last but for the "incomplete" line, which fails the bundle anyway.
    """
    verdict = Verdict()
    base = Path(folder)
    if not base.is_dir():
        verdict.problems.append(f"{folder}: not a folder: pass a run folder reports/<run-id>")
        return verdict
    sums = base / SUMS
    if not sums.is_file():
        verdict.problems.append(
            f"{SUMS}: missing: the run never finished writing its bundle "
            "(killed, or still running); it is not evidence"
        )
        return verdict
    listed = _read_sums(sums, verdict)
    for name, digest in listed.items():
        path = base / name
        if not path.is_file():
            verdict.problems.append(f"{name}: missing (listed in {SUMS})")
        elif sha256_file(path) != digest:
            verdict.problems.append(f"{name}: changed since the run (sha256 does not match {SUMS})")
    signed = _check_signature(base, allowed_signers, verdict)
    ours = {SUMS, SIGNATURE}
    for extra in sorted(
        p.name for p in base.iterdir() if p.name not in listed and p.name not in ours
    ):
        verdict.warnings.append(f"{extra}: not listed in {SUMS} (not part of the evidence)")
    if EVIDENCE not in listed:
        verdict.problems.append(f"{EVIDENCE}: not listed in {SUMS}")
        return verdict
    if not (base / EVIDENCE).is_file():
        return verdict
    record = _check_evidence(base / EVIDENCE, verdict)
    if record is None:
        return verdict
    for name in record.get("files") or []:
        if isinstance(name, str) and name not in listed:
            verdict.problems.append(f"{name}: recorded by {EVIDENCE} but not listed in {SUMS}")
    verdict.problems.extend(summary_problems(record))
    if keep_record:
        verdict.record = record
    if junit and "junit.xml" in listed and (base / "junit.xml").is_file():
        verdict.problems.extend(junit_problems(base / "junit.xml", record))
    run_id = record.get("run_id")
    if record.get("status") != "complete":
        reason = record.get("status_reason") or "no reason recorded"
        verdict.problems.append(
            f"{EVIDENCE}: run {run_id} is incomplete ({reason}): "
            "an interrupted run is not evidence; run the suite again"
        )
    if isinstance(run_id, str) and run_id != base.resolve().name:
        verdict.warnings.append(
            f"{EVIDENCE}: run id {run_id} differs from the folder name "
            f"{base.resolve().name} (renamed copy?)"
        )
    shard = record.get("shard")
    if isinstance(shard, dict):
        verdict.warnings.append(
            f"{EVIDENCE}: run {run_id} is shard {shard.get('index')} of {shard.get('total')}: "
            "it checked only its share of the hosts; the fleet's result is the merge of all "
            "shards (python -m hrw_preflight merge OUT SHARD...)"
        )
    summary = record.get("summary")
    counts = (
        ", ".join(f"{v} {k}" for k, v in summary.items() if v) if isinstance(summary, dict) else ""
    )
    verdict.summary = (
        f"run {run_id}: {len(listed)} files match SHA256SUMS and agree with each other, "
        f"status {record.get('status')}" + (f" ({counts})" if counts else "") + f"; {signed}"
    )
    return verdict


def main(folder: str, out: Any = None, allowed_signers: str | None = None) -> int:
    """Verify ``folder``, print one line per problem or warning, and return the exit code
    (2 for unusable input such as a missing allowed-signers file)."""
    stream = out or sys.stdout
    try:
        verdict = verify_bundle(folder, allowed_signers)
    except ConfigError as exc:
        print(f"verify: {exc}", file=sys.stderr)
        return 2
    for line in verdict.problems:
        print(f"FAIL {line}", file=stream)
    for line in verdict.warnings:
        print(f"WARN {line}", file=stream)
    if verdict.ok:
        print(f"OK {folder}: {verdict.summary}", file=stream)
        return 0
    return 1
