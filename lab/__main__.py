"""``python -m lab up|down|status``: start, stop or inspect the lab fleet (needs root)."""

from __future__ import annotations

import argparse
import sys

from lab.control import LabError, down, status, up
from lab.netns import LabCommandError
from lab.paths import LabPaths
from lab.profiles import ProfileError


def _say(line: str) -> None:
    print(line, flush=True)


def main(argv: list[str] | None = None) -> int:
    """Run one lab command; return 0 on success, 1 on a partial start or unhealthy status."""
    parser = argparse.ArgumentParser(
        prog="python -m lab",
        description="Manage the lab of simulated Hybrid Runbook Workers. "
        "LAB_HOSTS=N starts N hosts (profiles repeated in fleet order).",
    )
    parser.add_argument("command", choices=["up", "down", "status"])
    args = parser.parse_args(argv)
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
