"""pytest plugin for the bench: writes the remote commands each host was asked.

Loaded with ``-p bench.count_plugin`` next to the suite; ``BENCH_COMMANDS_OUT`` names a
directory where each pytest process (controller or xdist worker) writes one JSON file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest


@pytest.hookimpl(tryfirst=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """Write {host: commands} of the facts this process gathered (HostFacts.commands)."""
    # Imported here, not at the top: this module loads (-p) before conftest.py registers
    # the suite's plugin, and importing it first would keep pytest from rewriting it.
    from hrw_preflight.run.plugin import RUN_KEY

    out = os.environ.get("BENCH_COMMANDS_OUT")
    run = config.stash.get(RUN_KEY, None)
    if not out or run is None:
        return
    counts = {name: facts.commands for name, facts in run.cache.gathered().items()}
    if counts:
        path = Path(out) / f"suite-{os.getpid()}.json"
        path.write_text(json.dumps(counts), encoding="utf-8")
