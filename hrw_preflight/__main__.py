"""Command line: ``python -m hrw_preflight verify reports/<run-id>`` and
``python -m hrw_preflight docs [--check]`` (the README's scenario tables, from the catalogue).

The checks themselves run under pytest (``pytest tests_infra ...``); this entry point holds
the tools around a run's reports.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hrw_preflight import __version__
from hrw_preflight.hosts.errors import ConfigError
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
    docs = commands.add_parser("docs", help="write the README's scenario tables from the catalogue")
    docs.add_argument("readme", nargs="?", default=str(README), help="the file (README.md)")
    docs.add_argument("--check", action="store_true", help="exit 1 if the tables are stale")
    args = parser.parse_args(argv)
    if args.command == "verify":
        return verify_main(args.folder)
    if args.command == "docs":
        return _docs(Path(args.readme), check=args.check)
    parser.error(f"unknown command {args.command}")
    return 2  # pragma: no cover - parser.error exits


if __name__ == "__main__":
    sys.exit(main())
