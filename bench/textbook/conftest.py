"""Fixtures of the textbook baseline: host metadata and a count of remote commands.

``BENCH_TEXTBOOK_HOSTS`` names a JSON file mapping each host address to its name, platform
and workspace id (what an inventory would say). ``BENCH_COMMANDS_OUT`` names a directory
where each pytest process writes how many commands it sent to each host.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import testinfra.host

COUNTS: Counter[str] = Counter()
_original_run = testinfra.host.Host.run


def _counting_run(self: testinfra.host.Host, command: str, *args: str, **kwargs: Any) -> Any:
    COUNTS[str(self.backend.hostname)] += 1
    return _original_run(self, command, *args, **kwargs)


# Every testinfra module (file, process, service) reaches the host through Host.run.
testinfra.host.Host.run = _counting_run


def _hosts() -> dict[str, dict[str, Any]]:
    path = os.environ.get("BENCH_TEXTBOOK_HOSTS")
    if not path:
        return {}
    data: dict[str, dict[str, Any]] = json.loads(Path(path).read_text(encoding="utf-8"))
    return data


HOSTS = _hosts()


@pytest.fixture
def meta(host: testinfra.host.Host) -> dict[str, Any]:
    """Return what the inventory says about this host (name, platform, workspace id)."""
    return HOSTS[str(host.backend.hostname)]


def pytest_unconfigure(config: pytest.Config) -> None:
    """Write this process's per-host command counts."""
    out = os.environ.get("BENCH_COMMANDS_OUT")
    if out and COUNTS:
        names = {addr: m["name"] for addr, m in HOSTS.items()}
        data = {names.get(addr, addr): n for addr, n in COUNTS.items()}
        (Path(out) / f"textbook-{os.getpid()}.json").write_text(json.dumps(data), "utf-8")
