"""linux_network.sh run by a real shell against a stand-in ``openssl``: which s_client flags
each OpenSSL version gets (the CA-bundle flags exist only from 1.1.0 and 3.0)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from hrw_preflight.facts.linux.probe import _script

FAKE_OPENSSL = """#!/bin/sh
if [ "$1" = version ]; then echo "{version}"; exit 0; fi
echo "ARGS $*"
"""


def run_script(tmp_path: Path, version: str, proxy: str = "") -> list[str]:
    """Run the network script for one endpoint; return the s_client arguments it used."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "openssl"
    fake.write_text(FAKE_OPENSSL.format(version=version))
    fake.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    out = subprocess.run(
        ["sh", "-c", _script("linux_network.sh"), "hrw-net", "5", proxy, "", "ep.example"],
        capture_output=True, text=True, env=env, check=True, timeout=30,
    ).stdout  # fmt: skip
    [line] = [ln for ln in out.splitlines() if "|ARGS " in ln]
    return line.split("|ARGS ", 1)[1].split()


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        ("OpenSSL 3.0.22 25 Aug 2026 (Library: OpenSSL 3.0.22 25 Aug 2026)",
         ["-no-CAfile", "-no-CApath", "-no-CAstore"]),
        ("OpenSSL 1.1.1w  11 Sep 2023", ["-no-CAfile", "-no-CApath"]),
        ("OpenSSL 1.0.2k-fips  26 Jan 2017", []),
        ("LibreSSL 3.3.6", []),
    ],
)  # fmt: skip
def test_ca_bundle_flags_follow_the_openssl_version(
    tmp_path: Path, version: str, expected: list[str]
) -> None:
    args = run_script(tmp_path, version)
    assert args[:5] == ["s_client", "-connect", "ep.example:443", "-servername", "ep.example"]
    assert [a for a in args if a.startswith("-no-CA")] == expected
    assert "-showcerts" in args


def test_flags_also_go_through_a_proxy(tmp_path: Path) -> None:
    args = run_script(tmp_path, "OpenSSL 3.0.2 15 Mar 2022", proxy="10.0.0.3:3128")
    assert "-no-CAstore" in args and args[args.index("-proxy") + 1] == "10.0.0.3:3128"
