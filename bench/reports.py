"""``python -m bench.reports``: how the reports scale, measured on this machine.

- **merge**: ``python -m hrw_preflight merge`` of synthetic shard bundles (``bench/synth.py``)
  of 2,000 and 10,000 hosts: wall time and peak memory (PSS of its process tree), against
  the targets 60 s and 1 GiB at 10,000 hosts;
- **render**: the fleet page (``report.html``) in headless Chromium: its size and the time
  until the matrix and the failures are laid out, as the page itself records it
  (``data-rendered-ms``: ``performance.now()`` after the load event and a forced layout,
  i.e. from navigation start), median of :data:`RENDERS` loads, and the whole Chromium
  process's wall time; for one 200-host run (a real lab run's folder with ``--run-report``,
  as ``bench.run`` passes it, else a synthetic one) against 10 MB and 2 s, and for the merged
  2,000-host bundle against 20 MB and 3 s.

It prints every figure and writes them as a section of ``bench/results.md`` (replacing the
section a previous run wrote; the rest of the file stays).
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench.measure import run_measured
from bench.synth import make_fleet

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
RENDERS = 3
BEGIN = "<!-- bench.reports: begin -->"
END = "<!-- bench.reports: end -->"
MB = 1_000_000
MIB = 1024 * 1024


@dataclass(frozen=True)
class Render:
    """One page's size and render times in headless Chromium."""

    label: str
    page: Path
    size: int
    rendered_ms: float
    wall_s: float
    target_mb: float
    target_s: float

    def row(self) -> str:
        """Return the Markdown table row, with whether each target was met."""
        ok = self.size <= self.target_mb * MB and self.rendered_ms <= self.target_s * 1000
        return (
            f"| {self.label} | {self.size / MB:.2f} | {self.rendered_ms / 1000:.2f} | "
            f"{self.wall_s:.2f} | {self.target_mb:g} MB, {self.target_s:g} s | "
            f"{'met' if ok else 'MISSED'} |"
        )


@dataclass(frozen=True)
class Merge:
    """One merge's figures."""

    hosts: int
    shards: int
    checks: int
    seconds: float
    cpu_seconds: float
    peak_bytes: int
    returncode: int
    load: str  # the machine's 1-minute load average when the merge started

    def row(self) -> str:
        """Return the Markdown table row; the 60 s / 1 GiB target applies at 10,000 hosts."""
        target = self.hosts >= 10_000
        ok = self.seconds < 60 and self.peak_bytes < 1024 * MIB
        verdict = ("met" if ok else "MISSED") if target else "-"
        return (
            f"| {self.hosts} | {self.shards} | {self.checks} | {self.seconds:.1f} | "
            f"{self.cpu_seconds:.1f} | {self.peak_bytes / MIB:.0f} | {self.load} | "
            f"{'60 s, 1 GiB' if target else '-'} | {verdict} |"
        )


def chromium() -> str:
    """Return the Chromium binary (Debian's ``chromium``, installed by ``make setup``)."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        raise SystemExit("bench.reports: chromium is not installed: run make setup (as root)")
    return found


def render_once(page: Path, profile: Path) -> tuple[float, float]:
    """Return (the page's own data-rendered-ms, Chromium's wall seconds) for one load."""
    argv = [
        chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--no-first-run", f"--user-data-dir={profile}", "--dump-dom", page.as_uri(),
    ]  # fmt: skip
    started = time.monotonic()
    done = subprocess.run(argv, capture_output=True, timeout=300, check=False)
    wall = time.monotonic() - started
    found = re.search(rb'data-rendered-ms="(\d+)"', done.stdout[:4096])
    if found is None:
        raise SystemExit(
            f"bench.reports: {page} did not record its render time (rc {done.returncode})"
        )
    return float(found.group(1)), wall


def measure_render(label: str, page: Path, target_mb: float, target_s: float, work: Path) -> Render:
    """Return the median of :data:`RENDERS` loads of ``page`` (after one warm-up load)."""
    profile = work / "chromium-profile"
    render_once(page, profile)  # warm-up: the first start of Chromium reads its own files
    loads = [render_once(page, profile) for _ in range(RENDERS)]
    return Render(
        label,
        page,
        page.stat().st_size,
        statistics.median(ms for ms, _ in loads),
        statistics.median(wall for _, wall in loads),
        target_mb,
        target_s,
    )


def wait_for_quiet(below: float | None, at_most_s: float) -> None:
    """Wait until the machine's 1-minute load average is under ``below`` (no wait when
    None), at most ``at_most_s`` seconds.

    Why: the machine is shared, and a merge measured while others' work takes the cores is
    measured slower than it is; the figure's row says what the load was either way.
    """
    if below is None:
        return
    deadline = time.monotonic() + at_most_s
    while float(load_average()) >= below and time.monotonic() < deadline:
        print(f"bench.reports: load {load_average()}, waiting for under {below:g}", flush=True)
        time.sleep(15)


def measure_merge(
    hosts: int, shards: int, work: Path, quiet_below: float | None = None, wait_s: float = 0
) -> tuple[Merge, Path]:
    """Generate ``hosts`` synthetic hosts in ``shards`` shards, merge them (once the load
    average is under ``quiet_below``, waiting at most ``wait_s``); return the figures and
    the merged folder."""
    folders = make_fleet(work / f"fleet-{hosts}", hosts, shards)
    out = work / f"merged-{hosts}"
    argv = [PY, "-m", "hrw_preflight", "merge", str(out), *map(str, folders)]
    wait_for_quiet(quiet_below, wait_s)
    load = load_average()
    measured = run_measured(argv, ROOT)
    if measured.returncode not in (0, 1):
        raise SystemExit(f"bench.reports: merge failed: {measured.output_tail}")
    checks = sum(1 for _ in re.finditer(rb'"nodeid"', (out / "evidence.json").read_bytes()))
    figures = Merge(
        hosts,
        shards,
        checks,
        measured.seconds,
        measured.cpu_seconds,
        measured.peak_rss_bytes,
        measured.returncode,
        load,
    )
    shutil.rmtree(work / f"fleet-{hosts}")
    return figures, out


def load_average() -> str:
    """Return the 1-minute load average: the machine is shared, and figures taken while
    others' work runs on the same cores are slower than the code."""
    return Path("/proc/loadavg").read_text(encoding="ascii").split()[0]


def table(
    merges: list[Merge], renders: list[Render], run_source: str, load: str, command: str
) -> str:
    """Return the Markdown section with every figure."""
    lines = [
        BEGIN,
        "## Reports at fleet scale",
        "",
        f"Run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; command: "
        f"`{command}` (also the last step of `make bench`). Synthetic shard "
        "bundles from `bench/synth.py` (the lab's profiles repeated, lab-sized evidence). "
        f"200-host run: {run_source}. 1-minute load average of this 2-core machine: {load}.",
        "",
        "| hosts | shards | checks | merge wall s | merge CPU s | merge peak memory MiB "
        "| load at start | target | |",
        "|---:|---:|---:|---:|---:|---:|---:|---|---|",
        *(m.row() for m in merges),
        "",
        "| report.html of | size MB | on screen s (in page) | Chromium process s | target | |",
        "|---|---:|---:|---:|---|---|",
        *(r.row() for r in renders),
        "",
        "On screen: `performance.now()` when the load event fired and the page was laid out "
        "(the matrix and the failures), as the page records it in `data-rendered-ms`; median "
        f"of {RENDERS} loads in `chromium --headless --dump-dom` after one warm-up. Chromium "
        "process: the whole headless run (start, load, dump, exit). Merge: wall time, CPU "
        "time (user + system, the merge's and its worker processes') and peak PSS of "
        "`python -m hrw_preflight merge` over the synthetic shards (its default --jobs); "
        "load at start: the machine's 1-minute load average when that merge began (the wall "
        "time carries whatever else ran).",
        END,
    ]
    return "\n".join(lines) + "\n"


def write_section(path: Path, section: str) -> None:
    """Replace this bench's section in ``path`` (or append it) and keep the rest."""
    text = path.read_text(encoding="utf-8") if path.is_file() else ""
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        tail = rest.split(END, 1)[1].lstrip("\n")
        text = head + section + tail
    else:
        text = text.rstrip("\n") + ("\n\n" if text else "") + section
    path.write_text(text, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    """Measure, print and record the report figures; exit 0 (figures, not a gate)."""
    parser = argparse.ArgumentParser(prog="python -m bench.reports", description=__doc__)
    parser.add_argument("--sizes", default="2000,10000", help="merged fleet sizes")
    parser.add_argument("--shards", type=int, default=8)
    parser.add_argument("--run-report", type=Path, help="a 200-host run's folder (lab)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results.md")
    parser.add_argument(
        "--quiet-below",
        type=float,
        default=None,
        metavar="LOAD",
        help="before each merge, wait until the 1-minute load average is under LOAD",
    )
    parser.add_argument(
        "--wait", type=float, default=900, metavar="S", help="wait at most S seconds for it"
    )
    args = parser.parse_args(argv)
    merges: list[Merge] = []
    renders: list[Render] = []
    load_at_start = load_average()
    with tempfile.TemporaryDirectory(prefix="hrw-bench-reports-") as tmp:
        work = Path(tmp)
        if args.run_report is not None:
            page, source = args.run_report / "report.html", f"lab run `{args.run_report.name}`"
        else:
            [run] = make_fleet(work / "single", 200, 0)
            page, source = run / "report.html", "synthetic (no --run-report given)"
        renders.append(measure_render("one 200-host run", page, 10, 2, work))
        print(renders[-1].row(), flush=True)
        for hosts in (int(s) for s in args.sizes.split(",") if s):
            merge, out = measure_merge(hosts, args.shards, work, args.quiet_below, args.wait)
            merges.append(merge)
            print(merge.row(), flush=True)
            if hosts == 2000:
                renders.append(
                    measure_render(f"merged {hosts}-host bundle", out / "report.html", 20, 3, work)
                )
                print(renders[-1].row(), flush=True)
            shutil.rmtree(out)
    load = f"{load_at_start} at the start, {load_average()} at the end"
    command = "python -m bench.reports"
    if args.quiet_below is not None:
        command += f" --quiet-below {args.quiet_below:g}"
    section = table(merges, renders, source, load, command)
    print(section)
    write_section(args.out, section)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
