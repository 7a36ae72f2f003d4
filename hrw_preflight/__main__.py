"""Command line: ``python -m hrw_preflight verify reports/<run-id>``,
``python -m hrw_preflight docs [--check]`` (the README's scenario tables, from the
catalogue) and ``python -m hrw_preflight merge OUT SHARD...`` (one bundle from a run's shards).

The checks themselves run under pytest (``pytest tests_infra ...``); this entry point holds
the tools around a run's reports.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hrw_preflight import __version__
from hrw_preflight.hosts.errors import ConfigError
from hrw_preflight.report.merge import JOBS as MERGE_JOBS
from hrw_preflight.report.merge import main as merge_main
from hrw_preflight.report.scenario_tables import README, update_readme
from hrw_preflight.report.verify import main as verify_main
from hrw_preflight.verdicts.catalogue import load_catalogue


def _docs(readme: Path, *, check: bool) -> int:
    """Return 0 when the tables were (or now are) up to date, 1 when --check found them stale."""
    try:
        fresh = update_readme(readme, load_catalogue(), check=check)
    except (ConfigError, OSError) as exc:
        print(f"hrw-preflight docs: {readme}: {exc}", file=sys.stderr)
        return 2
    if fresh:
        print(f"{readme}: scenario tables are up to date")
        return 0
    if check:
        print(
            f"{readme}: scenario tables are out of date; run: python -m hrw_preflight docs",
            file=sys.stderr,
        )
        return 1
    print(f"{readme}: scenario tables rewritten from the catalogue")
    return 0


def _jobs(text: str) -> int:
    """Return ``--jobs`` as a count of at least 1 (argparse says what is wrong otherwise)."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of 1 or more")
    return int(text)


def main(argv: list[str] | None = None) -> int:
    """Parse the command line, run the sub-command and return its exit code."""
    parser = argparse.ArgumentParser(
        prog="python -m hrw_preflight", description="hrw-preflight report tools"
    )
    parser.add_argument("--version", action="version", version=f"hrw-preflight {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    verify = commands.add_parser(
        "verify", help="check a run folder against its SHA256SUMS and the evidence schema"
    )
    verify.add_argument("folder", help="the run folder, e.g. reports/<run-id> or reports/latest")
    verify.add_argument(
        "--allowed-signers",
        metavar="FILE",
        default=None,
        help="require SHA256SUMS.sig to be a good signature by a key of this ssh-keygen "
        "allowed-signers file (proves who produced the bundle)",
    )
    docs = commands.add_parser("docs", help="write the README's scenario tables from the catalogue")
    docs.add_argument("readme", nargs="?", default=str(README), help="the file (README.md)")
    docs.add_argument("--check", action="store_true", help="exit 1 if the tables are stale")
    merge = commands.add_parser(
        "merge",
        help="join the bundles of the N shards of one run (--hrw-shard K/N) into one bundle",
        description="Verify every shard bundle (and its signature, with --allowed-signers), "
        "refuse shards that cannot be merged (one line each), write OUT/ (report.html, "
        "junit.xml, evidence.json, SHA256SUMS, and SHA256SUMS.sig with --sign-key) and exit "
        "as a single run over every host would (0, 1; 4 when refused).",
    )
    merge.add_argument("out", metavar="OUT", help="new folder for the merged bundle")
    merge.add_argument(
        "shards", metavar="SHARD", nargs="+", help="a shard's run folder (reports/<run-id>)"
    )
    merge.add_argument(
        "--hrw-fail-on",
        metavar="SEVERITY",
        default=None,
        help="exit code counts only failures/errors of this severity or above, as in a run",
    )
    merge.add_argument(
        "--hrw-waivers",
        metavar="FILE",
        default=None,
        help="waivers applied to the merged checks, as in a run (shards' waivers are not kept)",
    )
    merge.add_argument(
        "--allowed-signers",
        metavar="FILE",
        default=None,
        help="require every shard's SHA256SUMS.sig to be a good signature by a key of this "
        "ssh-keygen allowed-signers file (shards made with --hrw-sign-key); refused otherwise",
    )
    merge.add_argument(
        "--jobs",
        metavar="N",
        type=_jobs,
        default=MERGE_JOBS,
        help=f"shards read at once, each in a worker process holding one shard (default "
        f"{MERGE_JOBS}; 1: none, in this process)",
    )
    merge.add_argument(
        "--sign-key",
        "--hrw-sign-key",
        dest="sign_key",
        metavar="FILE",
        default=None,
        help="SSH private key that signs the merged SHA256SUMS (SHA256SUMS.sig, as a run's "
        "--hrw-sign-key); check with verify --allowed-signers",
    )
    args = parser.parse_args(argv)
    if args.command == "verify":
        return verify_main(args.folder, allowed_signers=args.allowed_signers)
    if args.command == "docs":
        return _docs(Path(args.readme), check=args.check)
    if args.command == "merge":
        return merge_main(
            args.out,
            args.shards,
            fail_on=args.hrw_fail_on,
            waivers_file=args.hrw_waivers,
            argv=list(sys.argv[1:] if argv is None else argv),
            allowed_signers=args.allowed_signers,
            sign_key=args.sign_key,
            jobs=args.jobs,
        )
    parser.error(f"unknown command {args.command}")
    return 2  # pragma: no cover - parser.error exits


if __name__ == "__main__":
    sys.exit(main())
