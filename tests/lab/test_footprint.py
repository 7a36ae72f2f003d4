"""The lab footprint command counts what the lab runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.lab


def test_footprint_counts_every_host_namespace_and_its_processes() -> None:
    inventory = yaml.safe_load((ROOT / "inventories" / "lab.yml").read_text())
    hosts = sum(len(g.get("hosts") or {}) for g in inventory["all"]["children"].values())
    out = subprocess.run(
        [sys.executable, "-m", "lab.footprint"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    ).stdout
    words = out.split()
    namespaces, processes = int(words[1]), int(words[3])
    assert namespaces == hosts + 2  # the hosts, plus the Azure endpoint and the proxy
    assert processes > hosts  # at least sshd or the WinRM server on every host
    assert float(words[-2]) > 0
