"""Command line: ``python -m hrw_preflight verify reports/<run-id>``.

The checks themselves run under pytest (``pytest tests_infra ...``); this entry point holds
the tools around a run's reports.
"""

from __future__ import annotations

import argparse
import sys

from hrw_preflight import __version__
from hrw_preflight.report.verify import main as verify_main


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
    args = parser.parse_args(argv)
    if args.command == "verify":
        return verify_main(args.folder)
    parser.error(f"unknown command {args.command}")
    return 2  # pragma: no cover - parser.error exits


if __name__ == "__main__":
    sys.exit(main())
