"""The floor: one trivial remote command per host over the suite's own transports.

``python -m bench.floor --inventory FILE --parallel N --out FILE.json`` opens each host the
way the suite does (OpenSSH with the same multiplexing and options; one WinRM shell), runs
``true`` (Linux) or ``hostname`` (Windows) once, closes the connection, with ``N`` hosts at
once: the least any check of every host can cost over these transports.
"""

from __future__ import annotations

import argparse
import json
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from hrw_preflight.hosts.connections import ConnectOptions, close_host, open_host
from hrw_preflight.hosts.selection import parse_hosts_option
from hrw_preflight.hosts.targets import HostDefaults, Target


def _one(target: Target, options: ConnectOptions) -> tuple[str, str | None]:
    """Return (host, None) when the trivial command ran, else (host, why it did not)."""
    try:
        host = open_host(target, options)
        if target.platform == "windows":
            host.backend.run("hostname")
        else:
            result = host.run("true")
            if result.rc != 0:
                return target.name, f"exit {result.rc}"
        close_host(host)
    except Exception as exc:
        return target.name, f"{type(exc).__name__}: {exc}"
    return target.name, None


def main(argv: list[str] | None = None) -> int:
    """Run the floor against every host of the inventory; return 0 when all answered."""
    parser = argparse.ArgumentParser(prog="python -m bench.floor")
    parser.add_argument("--inventory", required=True)
    parser.add_argument("--parallel", type=int, default=16)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    targets = parse_hosts_option(["ansible://all"], [args.inventory], HostDefaults())
    options = ConnectOptions()
    with ThreadPoolExecutor(max_workers=max(1, args.parallel)) as pool:
        results = list(pool.map(lambda t: _one(t, options), targets))
    failures = {name: why for name, why in results if why}
    Path(args.out).write_text(
        json.dumps({"commands": {name: 1 for name, _ in results}, "failures": failures}),
        encoding="utf-8",
    )
    for name, why in failures.items():
        print(f"floor: {name}: {why}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
