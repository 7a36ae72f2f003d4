"""``python -m bench.run``: the suite against lab fleets of growing size, side by side with
the textbook testinfra baseline and the transport floor, in the same run.

For each fleet size it starts the lab with ``LAB_HOSTS=N`` (mixed Linux and Windows, the
lab's profiles repeated), then measures three runs against the same hosts:

- **suite**: ``pytest tests_infra`` as an operator runs it (``--hrw-parallel P``);
- **floor**: one trivial command per host over the same transports (``bench/floor.py``),
  ``P`` hosts at once, the same parallelism as the suite;
- **textbook**: ``bench/textbook/`` with testinfra's own backends and ``pytest -n W``
  (capped to the sizes up to ``--textbook-max``: it grows far slower than the others).

Then one more fleet (``--clean-hosts``, 200 by default) without the profiles whose endpoints
drop TCP 443 (``LAB_WITHOUT``), suite and floor only.

It prints and writes a Markdown table to ``bench/results.md``: wall time, remote commands
per host, peak memory (PSS) of the controller's process tree, and the machine it ran on,
then the issue-13 targets judged from those rows (``bench/targets.py``).
Then ``bench.reports`` adds the reports' figures (merge at 2,000 and 10,000 synthetic hosts,
the fleet page's size and render time, the 200-host page being this run's own). When done
it leaves the lab up with the default fleet, as it found it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bench import reports as bench_reports
from bench.measure import Measured, run_measured
from bench.targets import judge_targets, targets_table

ROOT = Path(__file__).resolve().parent.parent
INVENTORY = ROOT / "inventories" / "lab.yml"
PY = sys.executable
# The lab's profiles whose endpoints drop TCP 443 (LAB_WITHOUT globs), and how the table
# names the fleet that leaves them out.
BLOCKED_PROFILES = "*443-blocked*"
CLEAN = "no blocked endpoints"


@dataclass(frozen=True)
class Row:
    """One measured run of one kind against one fleet."""

    hosts: int
    kind: str
    measured: Measured
    commands: dict[str, int]
    detail: str
    checks: int = 0  # test cases in the suite's JUnit (suite rows only)
    fleet: str = ""  # "" for the lab's mix, else what the fleet leaves out

    @property
    def label(self) -> str:
        """Return the fleet as the table names it: its size, and what it leaves out."""
        return f"{self.hosts}" + (f" ({self.fleet})" if self.fleet else "")

    def commands_text(self) -> str:
        """Return remote commands per host as 'Linux / Windows' maxima (the round-trip budget)."""
        if not self.commands:
            return "n/a"
        linux = [n for h, n in self.commands.items() if h.startswith("linux")]
        windows = [n for h, n in self.commands.items() if h.startswith("windows")]
        return f"{max(linux, default=0)} / {max(windows, default=0)}"


def machine() -> str:
    """Return one line describing this machine: cores, memory, kernel, Python."""
    mem_kb = 0
    for line in Path("/proc/meminfo").read_text(encoding="ascii").splitlines():
        if line.startswith("MemTotal:"):
            mem_kb = int(line.split()[1])
    return (
        f"nproc {os.cpu_count()}, memory {mem_kb / 1024 / 1024:.1f} GiB, "
        f"kernel {platform.release()}, Python {platform.python_version()}"
    )


def lab(command: str, hosts: int | None, without: str = "") -> float:
    """Run ``python -m lab COMMAND`` (with LAB_HOSTS and LAB_WITHOUT when given); return its
    wall time."""
    env = dict(os.environ)
    env.pop("LAB_HOSTS", None)
    env.pop("LAB_WITHOUT", None)
    if hosts is not None:
        env["LAB_HOSTS"] = str(hosts)
    if without:
        env["LAB_WITHOUT"] = without
    started = time.monotonic()
    proc = subprocess.run(
        [PY, "-m", "lab", command], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise SystemExit(f"bench: lab {command} failed: {proc.stderr.strip()[-500:]}")
    return time.monotonic() - started


def lab_fingerprint() -> tuple[int, float]:
    """Return (hosts in the running lab, inventory mtime): what changes if anyone restarts it.

    Why: the lab is shared; a ``python -m lab up`` by someone else during a measured run
    replaces the fleet under it and makes the figures meaningless.
    """
    try:
        doc = yaml.safe_load(INVENTORY.read_text(encoding="utf-8"))
        mtime = INVENTORY.stat().st_mtime
    except OSError:
        return 0, 0.0
    groups = doc["all"]["children"].values()
    return sum(len(g.get("hosts") or {}) for g in groups), mtime


def _counts(directory: Path, prefix: str) -> dict[str, int]:
    merged: dict[str, int] = {}
    for path in directory.glob(f"{prefix}-*.json"):
        for host, n in json.loads(path.read_text(encoding="utf-8")).items():
            merged[host] = merged.get(host, 0) + int(n)
    return merged


def run_suite(n: int, args: argparse.Namespace, work: Path) -> Row:
    """Measure the suite against the running fleet."""
    out = work / f"suite-{n}"
    out.mkdir()
    argv = [
        PY, "-m", "pytest", "tests_infra", f"--ansible-inventory={INVENTORY}",
        "--hosts=ansible://all", "-p", "no:cacheprovider", "-q", "-p", "bench.count_plugin",
        f"--hrw-reports={out / 'reports'}", f"--hrw-parallel={args.parallel}",
        f"--hrw-endpoint-timeout={args.endpoint_timeout}",
    ]  # fmt: skip
    env = {**os.environ, "BENCH_COMMANDS_OUT": str(out)}
    measured = run_measured(argv, ROOT, env)
    summary = measured.output_tail.strip().splitlines()
    outcome = next((line for line in reversed(summary) if " in " in line), "").strip("= ")
    junit = out / "reports" / "latest" / "junit.xml"
    wrong = misjudged(junit)
    outcome += f"; {len(wrong)} host(s) judged unlike their profile"
    if wrong:
        outcome += f" ({', '.join(wrong[:4])}{' ...' if len(wrong) > 4 else ''})"
    errors = _error_hosts(junit)
    if errors:
        outcome += "; errors on " + ", ".join(f"{h} ({why})" for h, why in errors.items())
    checks = junit.read_bytes().count(b"<testcase ") if junit.exists() else 0
    return Row(n, "suite", measured, _counts(out, "suite"), outcome, checks)


def _error_hosts(junit: Path) -> dict[str, str]:
    """Return host -> first 'seen:' reason of the checks that ended as errors."""
    from junitparser import Error, JUnitXml

    found: dict[str, str] = {}
    if not junit.exists():
        return found
    for suite in JUnitXml.fromfile(str(junit)):
        for case in suite:
            for result in case.result:
                if isinstance(result, Error):
                    text = f"{result.message or ''}"
                    seen = text.split("seen:", 1)[-1].strip().splitlines()[0][:80]
                    found.setdefault(str(case.classname), seen)
    return found


def misjudged(junit: Path) -> list[str]:
    """Return the hosts whose failed/error scenarios differ from their lab profile's
    ``expect_failing`` (the acceptance rule): a fast run that judges wrongly is no win."""
    from junitparser import Error, Failure, JUnitXml

    from lab.profiles import load_profiles

    inventory: dict[str, Any] = yaml.safe_load(INVENTORY.read_text(encoding="utf-8"))
    profile_of = {
        name: hv["hrw_lab_profile"]
        for group in inventory["all"]["children"].values()
        for name, hv in (group.get("hosts") or {}).items()
    }
    profiles = load_profiles().profiles
    not_passing: dict[str, set[str]] = {name: set() for name in profile_of}
    if not junit.exists():
        return sorted(profile_of)
    for suite in JUnitXml.fromfile(str(junit)):
        for case in suite:
            if any(isinstance(r, Failure | Error) for r in case.result):
                scenario = str(case.name).split(":")[1]
                not_passing.setdefault(str(case.classname), set()).add(scenario)
    return sorted(
        name
        for name, profile in profile_of.items()
        if not_passing.get(name, set()) != set(profiles[profile]["expect_failing"])
    )


def run_floor(n: int, args: argparse.Namespace, work: Path) -> Row:
    """Measure the floor against the running fleet."""
    out = work / f"floor-{n}.json"
    argv = [
        PY, "-m", "bench.floor", f"--inventory={INVENTORY}", f"--parallel={args.parallel}",
        f"--out={out}",
    ]  # fmt: skip
    measured = run_measured(argv, ROOT)
    data = json.loads(out.read_text(encoding="utf-8")) if out.exists() else {}
    failures = data.get("failures", {})
    detail = f"{len(failures)} host(s) did not answer" if failures else "all answered"
    return Row(n, "floor", measured, data.get("commands", {}), detail)


def _textbook_hosts(work: Path) -> tuple[list[str], Path, Path, str]:
    """Return (--hosts specs, host metadata file, ssh_config, identity file) for the fleet."""
    inventory: dict[str, Any] = yaml.safe_load(INVENTORY.read_text(encoding="utf-8"))
    children = inventory["all"]["children"]
    specs: list[str] = []
    meta: dict[str, dict[str, Any]] = {}
    identity = ""
    known_hosts = ""
    for name, hv in (children["linux"]["hosts"] or {}).items():
        specs.append(f"ssh://{hv['ansible_user']}@{hv['ansible_host']}")
        meta[hv["ansible_host"]] = {"name": name, "platform": "linux"}
        identity = hv["ansible_ssh_private_key_file"]
        known_hosts = hv["ansible_ssh_common_args"].split("UserKnownHostsFile=")[1].split()[0]
    for name, hv in (children["windows"]["hosts"] or {}).items():
        specs.append(
            f"winrm://{hv['ansible_user']}:{hv['ansible_password']}@{hv['ansible_host']}:"
            f"{hv['ansible_port']}?no_verify_ssl=true"
        )
        meta[hv["ansible_host"]] = {"name": name, "platform": "windows"}
    meta_file = work / "hosts-meta.json"
    meta_file.write_text(json.dumps(meta), encoding="utf-8")
    ssh_config = work / "ssh_config"
    ssh_config.write_text(
        f"Host *\n  UserKnownHostsFile {known_hosts}\n  StrictHostKeyChecking yes\n"
        "  BatchMode yes\n",
        encoding="utf-8",
    )
    return specs, meta_file, ssh_config, identity


def run_textbook(n: int, args: argparse.Namespace, work: Path) -> Row:
    """Measure the textbook baseline against the running fleet."""
    out = work / f"textbook-{n}"
    out.mkdir()
    specs, meta_file, ssh_config, identity = _textbook_hosts(out)
    argv = [
        PY, "-m", "pytest", "test_textbook.py", "-q", "-n", str(args.textbook_workers),
        f"--hosts={','.join(specs)}", f"--ssh-config={ssh_config}",
        f"--ssh-identity-file={identity}",
    ]  # fmt: skip
    env = {
        **os.environ,
        "BENCH_COMMANDS_OUT": str(out),
        "BENCH_TEXTBOOK_HOSTS": str(meta_file),
        "BENCH_ENDPOINT_TIMEOUT": f"{args.endpoint_timeout:g}",
    }
    measured = run_measured(argv, ROOT / "bench" / "textbook", env)
    summary = measured.output_tail.strip().splitlines()
    outcome = next((line for line in reversed(summary) if " in " in line), "")
    return Row(n, "textbook", measured, _counts(out, "textbook"), outcome.strip("= "))


def table(rows: list[Row], args: argparse.Namespace, started: str) -> str:
    """Return the results as Markdown: one line per (fleet size, kind), plus ratios."""
    command = " ".join(["python -m bench.run", *sys.argv[1:]])
    lines = [
        "# hrw-preflight benchmark",
        "",
        f"Run {started} on {machine()}.",
        "",
        f"Suite and floor: the fastest of {args.repeat} runs each (the machine is shared); "
        "textbook: one run.",
        "",
        f"Command: `{command}` (suite: `--hrw-parallel {args.parallel} "
        f"--hrw-endpoint-timeout {args.endpoint_timeout:g}`; floor: {args.parallel} hosts at "
        f"once; textbook: `pytest -n {args.textbook_workers}`, testinfra's `ssh://` and "
        f"`winrm://`, `timeout {args.endpoint_timeout:g}` on each openssl).",
        "",
        "| hosts | run | wall s | controller CPU s | machine CPU s "
        "| commands per host (Linux / Windows) | peak memory MiB | suite vs this | outcome |",
        "|---:|---|---:|---:|---:|---|---:|---:|---|",
    ]
    suite = {r.label: r.measured.seconds for r in rows if r.kind == "suite"}
    for r in rows:
        ratio = suite.get(r.label, 0.0) / r.measured.seconds if r.measured.seconds else 0.0
        versus = "" if r.kind == "suite" else f"{ratio:.2f}x"
        lines.append(
            f"| {r.label} | {r.kind} | {r.measured.seconds:.1f} | {r.measured.cpu_seconds:.1f} | "
            f"{r.measured.machine_cpu_seconds:.1f} | {r.commands_text()} | "
            f"{r.measured.peak_rss_bytes / 2**20:.0f} | {versus} | {r.detail} |"
        )
    lines += [
        "",
        "Targets (issue 13; `bench/targets.py`), from the rows above:",
        "",
        *targets_table(judge_targets(list(rows), args.endpoint_timeout)),
        "",
        "`suite vs this` is the suite's wall time divided by this run's: below 1 means the "
        "suite is faster (textbook), the floor's figure is how far above the floor it is.",
        "Controller CPU: user+system time of the measured command and the processes it "
        "waited for (pytest, its probe process or xdist workers, ssh clients). The lab's "
        "hosts run on the same cores, so wall time also carries the hosts' own work (sshd, "
        "the probe scripts, openssl, the WinRM emulator and its real TLS checks), which a "
        "real fleet does on its own machines.",
        "Machine CPU: busy time of all cores during the run (`/proc/stat`): the controller "
        "and the lab's hosts together, what the 2 cores had to do.",
        "Peak memory: the sum of PSS (proportional set size: a page shared by n processes "
        "counts 1/n to each) over the measured command's process tree (pytest, its probe "
        "process or xdist workers, ssh clients), sampled every 0.1 s; ssh control masters "
        "detach from the tree and are not counted.",
        "",
    ]
    return "\n".join(lines)


def write_keeping_reports(path: Path, text: str) -> None:
    """Write the fleet table to ``path``, keeping the reports section that ``bench.reports``
    wrote there (it is replaced only when that bench runs again)."""
    old = path.read_text(encoding="utf-8") if path.is_file() else ""
    begin, end = bench_reports.BEGIN, bench_reports.END
    if begin in old and end in old:
        kept = old[old.index(begin) : old.index(end) + len(end)]
        text = text.rstrip("\n") + "\n\n" + kept + "\n"
    path.write_text(text, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; return 0 when every run produced a result."""
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument("--sizes", default="25,50,100,200")
    parser.add_argument("--textbook-max", type=int, default=100)
    parser.add_argument("--textbook-workers", default="auto")
    parser.add_argument(
        "--repeat", type=int, default=2, help="runs of suite and floor per fleet; the fastest kept"
    )
    parser.add_argument("--parallel", type=int, default=32)
    parser.add_argument("--endpoint-timeout", type=float, default=5.0)
    parser.add_argument(
        "--clean-hosts",
        type=int,
        default=200,
        help="also measure a fleet of this size without blocked endpoints (0: skip)",
    )
    parser.add_argument("--out", default=str(ROOT / "bench" / "results.md"))
    parser.add_argument(
        "--skip-reports", action="store_true", help="do not run bench.reports at the end"
    )
    args = parser.parse_args(argv)
    if shutil.which("ssh") is None:
        raise SystemExit("bench: needs the OpenSSH client (make setup)")
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    rows: list[Row] = []
    work = Path(tempfile.mkdtemp(prefix="hrw-bench-"))
    fleets = [(int(size), "") for size in args.sizes.split(",")]
    if args.clean_hosts:
        fleets.append((args.clean_hosts, CLEAN))
    try:
        for n, fleet in fleets:
            up_s = lab("up", n, BLOCKED_PROFILES if fleet else "")
            print(f"bench: lab of {n} hosts {fleet} up in {up_s:.1f}s", flush=True)
            kinds = [run_suite, run_floor]
            if n <= args.textbook_max and not fleet:
                kinds.append(run_textbook)
            where = work / "clean" if fleet else work
            where.mkdir(exist_ok=True)
            for kind in kinds:
                tries = []
                for attempt in range(1 if kind is run_textbook else max(1, args.repeat)):
                    place = where / f"try{attempt + 1}"
                    place.mkdir(exist_ok=True)
                    fingerprint = lab_fingerprint()
                    tries.append(dataclasses.replace(kind(n, args, place), fleet=fleet))
                    if lab_fingerprint() != fingerprint or fingerprint[0] != n:
                        raise SystemExit(
                            f"bench: the lab changed during the {tries[-1].kind} run at {n} "
                            "hosts (someone ran `lab up`/`lab down`); the figures are void"
                        )
                # The fastest of the tries: the machine is shared, and a slower try measures
                # someone else's work as much as this code.
                row = min(tries, key=lambda r: r.measured.seconds)
                rows.append(row)
                print(
                    f"bench: {row.label:>4} hosts {row.kind:<9} {row.measured.seconds:7.1f}s "
                    f"cpu {row.measured.cpu_seconds:6.1f}s "
                    f"machine {row.measured.machine_cpu_seconds:6.1f}s "
                    f"commands {row.commands_text():<8} "
                    f"peak memory {row.measured.peak_rss_bytes / 2**20:6.0f} MiB  {row.detail}",
                    flush=True,
                )
            write_keeping_reports(Path(args.out), table(rows, args, started))
    finally:
        lab("up", None)
        print(f"bench: run files (reports, command counts) kept in {work}", flush=True)
    print(table(rows, args, started))
    # Then the reports at fleet scale (bench/reports.py), its 200-host page from the largest
    # suite run above: a real lab run's report.html.
    if args.skip_reports:
        return 0
    largest = max((r.hosts for r in rows if r.kind == "suite" and not r.fleet), default=0)
    run_folder = (work / "try1" / f"suite-{largest}" / "reports" / "latest").resolve()
    reports_argv = ["--out", str(args.out)]
    if largest >= 200 and (run_folder / "report.html").is_file():
        reports_argv += ["--run-report", str(run_folder)]
    bench_reports.main(reports_argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
