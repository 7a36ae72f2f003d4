"""``python -m hrw_preflight merge OUT SHARD...``: one fleet bundle from the bundles of N shards.

Each shard bundle (the run folder of one ``--hrw-shard K/N`` job) is verified first, and with
``--allowed-signers`` its signature too; the merge is refused, one line per reason naming the
shard, when the shards cannot be joined (:mod:`merge_shards`). Otherwise it writes ``OUT/``
with ``report.html``, ``junit.xml``, ``evidence.json`` (recording the shards and the hashes of
their files) and ``SHA256SUMS`` (signed into ``SHA256SUMS.sig`` with ``--sign-key``), a bundle
that ``verify`` accepts, and returns the exit code a single run over every host would have
had: ``--hrw-waivers`` and ``--hrw-fail-on`` are applied to the merged checks exactly as the
plugin applies them to one run's.

It streams, so a fleet of 10,000 hosts fits in under a gigabyte: each shard is read, judged
and spilled to disk sorted (:mod:`merge_spill`), ``--jobs`` shards at a time in worker
processes, keeping only what the record's head, the gate and the fleet page need
(:mod:`merge_tally`); ``junit.xml`` and ``evidence.json`` are then written as k-way merges of
the spill files, hashed as they are written.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import re
import sys
import tempfile
import threading
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from itertools import repeat
from pathlib import Path
from typing import Any, TextIO

import pytest

from hrw_preflight.hosts.errors import ConfigError
from hrw_preflight.hosts.redact import Redactor
from hrw_preflight.report.atomic import write_atomic_chunks
from hrw_preflight.report.evidence import (
    EVIDENCE,
    FLEET_PAGE,
    SUMS,
    RunInfo,
    build_record,
    record_stream,
    safe_command_line,
    utc_timestamp,
)
from hrw_preflight.report.fleet_page import render_fleet_page
from hrw_preflight.report.gate import GateResult, apply_gate, parse_fail_on
from hrw_preflight.report.merge_junit import junit_document
from hrw_preflight.report.merge_shards import MergeRefused, ShardBundle, check_shards, tool
from hrw_preflight.report.merge_spill import (
    ShardRead,
    ShardSpill,
    merged_cases,
    merged_checks,
    read_shard,
)
from hrw_preflight.report.merge_tally import FleetTally, gate_record, notes
from hrw_preflight.report.signing import SIGNATURE, check_sign_key, sign_sums
from hrw_preflight.report.waivers import Waivers, load_waivers
from hrw_preflight.verdicts.catalogue import Catalogue, load_catalogue

__all__ = ["REFUSED", "MergeRefused", "MergeResult", "main", "merge"]

REFUSED = int(pytest.ExitCode.USAGE_ERROR)  # bad input, as pytest says for a single run
JUNIT = "junit.xml"
_BATCH = 1 << 20  # characters or bytes written (and hashed) at once
# Shards read at once: the two cores of the machines this is measured on, each worker holding
# one shard (about 200 MB at 1,250 hosts).
JOBS = min(2, os.cpu_count() or 1)
_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass
class MergeResult:
    """What a merge wrote and decided: the folder, the gate, the exit code and whether the
    bundle was signed as asked (``sign_error`` says why not)."""

    out: Path
    gate: GateResult
    summary: dict[str, int]
    shards: list[ShardBundle] = field(default_factory=list)
    signed: bool = False
    sign_error: str | None = None

    @property
    def exit(self) -> int:
        """Return the exit code: that of a single run over every host, or 1 when a
        signature was asked for and not made (as in a run)."""
        if self.sign_error is not None and self.gate.exit == 0:
            return int(pytest.ExitCode.TESTS_FAILED)
        return self.gate.exit


def _out_folder(out: Path) -> None:
    if not _RUN_ID.match(out.name):
        raise MergeRefused(
            [f"{out}: the folder's name is the merged run's id: use letters, digits, . _ -"]
        )
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise MergeRefused([f"{out}: exists and is not an empty folder: merge into a new one"])
    out.mkdir(parents=True, exist_ok=True)


def _allowed_signers(path: str | None) -> None:
    if path is not None and not Path(path).is_file():
        raise ConfigError(
            f"--allowed-signers {path}: no such file: give an allowed-signers file "
            "(one '<principal> <key type> <public key>' per line)"
        )


def merge(
    out: str | Path,
    folders: Sequence[str | Path],
    *,
    fail_on: str | None = None,
    waivers_file: str | None = None,
    argv: Sequence[str] = (),
    allowed_signers: str | None = None,
    sign_key: str | None = None,
    jobs: int = JOBS,
) -> MergeResult:
    """Merge the shard bundles in ``folders`` into the new bundle ``out``; return the result.
    ``jobs`` shards are read at a time.

    Raises MergeRefused (lines naming each shard and reason) or ConfigError (a bad
    ``fail_on``, waiver file, allowed-signers file or signing key, one line) before anything
    is written to ``out``.
    """
    severity = parse_fail_on(fail_on)
    catalogue = load_catalogue()
    waivers = (
        load_waivers(waivers_file, {s.id for s in catalogue.scenarios}) if waivers_file else None
    )
    _allowed_signers(allowed_signers)
    if sign_key is not None:
        check_sign_key(sign_key, option="--sign-key")
    tally = FleetTally()
    with tempfile.TemporaryDirectory(prefix="hrw-merge-") as spill_dir:
        spills: list[ShardSpill] = []
        problems: list[str] = []
        for read in _read_shards(folders, Path(spill_dir), waivers, allowed_signers, jobs):
            problems.extend(read.refused)
            tally.absorb(read.tally)
            if read.spill is not None:
                spills.append(read.spill)
        if problems:
            raise MergeRefused(problems)
        problems = check_shards([s.shard for s in spills], catalogue)
        if problems:
            raise MergeRefused(problems)
        target = Path(out)
        if any(target.resolve() == s.shard.folder.resolve() for s in spills):
            raise MergeRefused([f"{out}: is one of the shards: merge into a new folder"])
        _out_folder(target)
        spills.sort(key=lambda s: s.shard.index)
        result = _write(target, spills, catalogue, severity, waivers, argv, tally)
    if sign_key is not None:
        try:
            write_atomic_chunks(target / SIGNATURE, [sign_sums(target / SUMS, sign_key)])
            result.signed = True
        except ConfigError as exc:
            result.sign_error = str(exc)
    return result


def _read_shards(
    folders: Sequence[str | Path],
    spills: Path,
    waivers: Waivers | None,
    allowed_signers: str | None,
    jobs: int,
) -> list[ShardRead]:
    """Return what reading each shard gave, in the order ``folders`` are given; ``jobs``
    shards at a time, in worker processes (none when ``jobs`` is 1).

    Why processes: verifying and spilling a shard is all CPU (JSON, the schema, XML), and
    shards are independent. A worker holds one shard at a time.
    """
    paths = [Path(f) for f in folders]
    if jobs <= 1 or len(paths) <= 1:
        return [read_shard(p, n, spills, waivers, allowed_signers) for n, p in enumerate(paths)]
    context = multiprocessing.get_context(_start_method())
    try:
        with ProcessPoolExecutor(max_workers=min(jobs, len(paths)), mp_context=context) as pool:
            return list(
                pool.map(
                    read_shard,
                    paths,
                    range(len(paths)),
                    repeat(spills),
                    repeat(waivers),
                    repeat(allowed_signers),
                )
            )
    except BrokenProcessPool:  # a worker could not start, or was killed: read them here
        return _read_shards(folders, spills, waivers, allowed_signers, 1)


def _start_method() -> str | None:
    """Return how worker processes are started: forked when this process runs one thread
    (the command line), as it then starts at once with nothing to import again; else from a
    fork server, since a fork can catch another thread holding a lock the worker then waits
    on forever (pytest-xdist's workers run such threads)."""
    methods = multiprocessing.get_all_start_methods()
    try:
        threads = len(os.listdir("/proc/self/task"))
    except OSError:
        threads = threading.active_count()
    if threads == 1 and "fork" in methods:
        return "fork"
    return "forkserver" if "forkserver" in methods else None


def _hashed(chunks: Iterable[str] | Iterable[bytes], digest: Any) -> Iterator[bytes]:
    """Yield ``chunks`` as bytes, about a megabyte at a time, feeding each to ``digest`` on
    its way to the file (so SHA256SUMS needs no second read of what was written)."""
    batch: list[Any] = []
    size = 0
    for chunk in chunks:
        batch.append(chunk)
        size += len(chunk)
        if size >= _BATCH:
            yield _fed(batch, digest)
            batch, size = [], 0
    if batch:
        yield _fed(batch, digest)


def _fed(batch: list[Any], digest: Any) -> bytes:
    data = "".join(batch).encode("utf-8") if isinstance(batch[0], str) else b"".join(batch)
    digest.update(data)
    return data


def _write(
    out: Path,
    spills: Sequence[ShardSpill],
    catalogue: Catalogue,
    fail_on: Any,
    waivers: Waivers | None,
    argv: Sequence[str],
    tally: FleetTally,
) -> MergeResult:
    """Write the merged bundle from the spilled shards (in shard order) and the tally."""
    redact = Redactor()
    shards = [s.shard for s in spills]
    gate = apply_gate(tally.pytest_exit(), tally.gate_failures(), fail_on)
    ref = shards[0].record
    hosts: dict[str, Any] = {}
    sources: dict[str, Any] = {}
    run_weakened: list[str] = []
    for shard in shards:
        hosts.update(shard.record.get("hosts", {}))
        sources.update(shard.record.get("inventory", {}).get("sources", {}))
        for line in shard.record.get("weakened", {}).get("run", []):
            if line not in run_weakened:
                run_weakened.append(line)
    options = dict(ref.get("options") or {})
    options.update(fail_on=fail_on, waivers=waivers.source if waivers else None)
    inventory = dict(ref.get("inventory") or {})
    inventory["sources"] = dict(sorted(sources.items()))
    info = RunInfo(
        run_id=out.name,
        started_at=min(str(s.record["started_at"]) for s in shards),
        command_line=safe_command_line(["python", "-m", "hrw_preflight", *argv], redact),
        inventory=inventory,
        run_weakened=run_weakened,
        catalogue_version=int(ref["catalogue"]["version"]),
        catalogue_sha256=str(ref["catalogue"]["sha256"]),
        options=options,
    )
    record = build_record(
        info,
        status="complete",
        status_reason=None,
        finished_at=utc_timestamp(),
        hosts=dict(sorted(hosts.items())),
        checks=[],
        files=[FLEET_PAGE, JUNIT],
        gate=gate_record(gate),
        waivers=tally.waivers_record(waivers),
        redact=redact,
        merged=_merged(shards),
        verified=True,
    )
    record["summary"] = tally.summary()
    digests = {name: hashlib.sha256() for name in (FLEET_PAGE, JUNIT, EVIDENCE)}
    cases = sum(s.case_count for s in spills)
    junit = junit_document([s.cases for s in spills], cases, merged_cases(spills))
    write_atomic_chunks(out / JUNIT, _hashed(junit, digests[JUNIT]))
    page_record = dict(record, checks=tally.page_checks())
    page = render_fleet_page(page_record, catalogue.scenarios, notes(record, gate, waivers), redact)
    del page_record
    write_atomic_chunks(out / FLEET_PAGE, _hashed([page], digests[FLEET_PAGE]))
    del page
    evidence = record_stream(record, merged_checks(spills), tally.checks, redact)
    write_atomic_chunks(out / EVIDENCE, _hashed(evidence, digests[EVIDENCE]))
    # Last, as a run seals its bundle: its presence says the bundle was finished.
    sums = "".join(f"{digests[n].hexdigest()}  {n}\n" for n in (FLEET_PAGE, JUNIT, EVIDENCE))
    write_atomic_chunks(out / SUMS, [sums])
    return MergeResult(out, gate, dict(record["summary"]), list(shards))


def _merged(shards: Sequence[ShardBundle]) -> dict[str, Any]:
    """Return the record's ``merged``: the split, and per shard what pins its bundle."""
    return {
        "shard_total": shards[0].total,
        "host_list_sha256": shards[0].host_list,
        "shards": [
            {
                "index": s.index,
                "run_id": s.record["run_id"],
                "folder": str(s.folder),
                "started_at": s.record["started_at"],
                "finished_at": s.record["finished_at"],
                "operator": s.record["operator"],
                "tool": tool(s.record),
                "hosts": len(s.record.get("hosts", {})),
                "checks": s.checks,
                "gate": s.record.get("gate"),
                "sha256sums": s.sums_sha256,
                "files": dict(sorted(s.sums.items())),
                "signature": s.signature,
            }
            for s in shards
        ],
    }


def main(
    out: str,
    folders: Sequence[str],
    *,
    fail_on: str | None,
    waivers_file: str | None,
    argv: Sequence[str],
    allowed_signers: str | None = None,
    sign_key: str | None = None,
    jobs: int = JOBS,
    stream: TextIO | None = None,
) -> int:
    """Run the merge, print what it did (or one line per refusal) and return the exit code:
    that of a single run over every host, or 4 when the shards cannot be merged."""
    err = stream or sys.stderr
    outp = stream or sys.stdout
    try:
        result = merge(
            out,
            folders,
            fail_on=fail_on,
            waivers_file=waivers_file,
            argv=argv,
            allowed_signers=allowed_signers,
            sign_key=sign_key,
            jobs=jobs,
        )
    except MergeRefused as exc:
        for line in exc.lines:
            print(f"REFUSED {line}", file=err)
        return REFUSED
    except ConfigError as exc:
        print(f"REFUSED {exc}", file=err)
        return REFUSED
    counts = ", ".join(f"{n} {k}" for k, n in result.summary.items() if n) or "no checks"
    print(
        f"merged {len(result.shards)} shards into {result.out}/ ({counts}); "
        f"SHA256SUMS covers report.html, junit.xml, {EVIDENCE}",
        file=outp,
    )
    if allowed_signers is not None:
        principals = sorted({str((s.signature or {}).get("principal")) for s in result.shards})
        print(
            f"every shard is signed by an allowed signer ({', '.join(principals)}, "
            f"{allowed_signers})",
            file=outp,
        )
    if result.signed:
        print(f"bundle: signed, {result.out}/{SIGNATURE} (ssh-keygen -Y, hrw-preflight)", file=outp)
    elif result.sign_error is not None:
        print(f"bundle: NOT signed, {result.sign_error}", file=err)
    gate = result.gate
    if gate.fail_on is not None:
        print(
            f"gate --hrw-fail-on {gate.fail_on}: {gate.counted} failure(s) counted, "
            f"{gate.ignored} below {gate.fail_on} ignored; exit {gate.exit}",
            file=outp,
        )
    return result.exit
