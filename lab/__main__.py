"""``python -m lab up|down|status``: start, stop or inspect the lab fleet (needs root);
``python -m lab docs [--check]``: write the README's table of profiles."""

from __future__ import annotations

import argparse
import sys

from lab.control import LabError, down, status, up
from lab.netns import LabCommandError
from lab.paths import LabPaths
from lab.profiles import ProfileError
from lab.readme_table import update_readme


def _say(line: str) -> None:
    print(line, flush=True)


def _docs(*, check: bool) -> int:
    """Return 0 when the README's profile table is (now) up to date, 1 when --check finds it
    stale, 2 when the profiles or the markers are broken."""
    try:
        fresh = update_readme(check=check)
    except (ProfileError, OSError) as exc:
        print(f"lab: {exc}", file=sys.stderr)
        return 2
    if not fresh and check:
        print(
            "lab: README.md's profile table is out of date; run python -m lab docs", file=sys.stderr
        )
        return 1
    _say("README.md: profile table " + ("up to date" if fresh else "rewritten from the profiles"))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run one lab command; return 0 on success, 1 on a partial start or unhealthy status."""
    parser = argparse.ArgumentParser(
        prog="python -m lab",
        description="Manage the lab of simulated Hybrid Runbook Workers. "
        "LAB_HOSTS=N starts N hosts (profiles repeated in fleet order); "
        "LAB_WITHOUT=GLOB[,GLOB] leaves out the profiles whose names match.",
    )
    parser.add_argument("command", choices=["up", "down", "status", "docs"])
    parser.add_argument("--check", action="store_true", help="docs: exit 1 if the table is stale")
    args = parser.parse_args(argv)
    if args.command == "docs":
        return _docs(check=args.check)
    paths = LabPaths()
    try:
        if args.command == "down":
            down(paths, _say)
            return 0
        if args.command == "status":
            healthy, lines = status(paths)
            for line in lines:
                _say(line)
            return 0 if healthy else 1
        result = up(paths, _say)
    except (LabError, LabCommandError, ProfileError) as exc:
        print(f"lab: {exc}", file=sys.stderr)
        return 2
    for name, reason in sorted(result.failures.items()):
        print(f"lab: host {name} failed to start: {reason}", file=sys.stderr)
    ok = len(result.hosts) - len([n for n in result.failures if not n.startswith("hrw-")])
    _say(
        f"lab: up, {ok}/{len(result.hosts)} hosts ready in {result.seconds:.1f}s; "
        f"inventory {paths.inventory}"
    )
    return 1 if result.failures else 0


if __name__ == "__main__":
    sys.exit(main())
