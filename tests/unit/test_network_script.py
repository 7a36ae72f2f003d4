"""linux_network.sh run by a real shell against a stand-in ``openssl``: which s_client flags
each OpenSSL version gets (the CA-bundle flags exist only from 1.1.0 and 3.0)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from hrw_preflight.facts.linux.probe import _script, parse_network
from lab.openssl_standin import standin_script
from tests.linux_samples import Out
from tests.windows_tls_servers import ServerChain, connect_proxy, make_chain, tls_server

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


# The CLIs agent-based workers ran, and the proxies they sit behind: the probe must give
# the right verdict with each (issue 10 item 14). The old versions are the lab's stand-ins
# (lab/openssl_standin.py); the TLS server and the proxies are real, on 127.0.0.1.
CLIS = ["system", "1.1.1", "1.0.2"]
PROXY_USER, PROXY_PASS = "hrwproxy", "S3cret pass#1"


@pytest.fixture(scope="module")
def tls_chain(tmp_path_factory: pytest.TempPathFactory) -> ServerChain:
    return make_chain(tmp_path_factory.mktemp("chain"), "Root", "Issuing", ["ep.example"])


def _run_real(tmp_path: Path, cli: str, proxy: str, creds: str, path_extra: str = "") -> list[str]:
    """Run linux_network.sh with the ``cli`` openssl first on the PATH; return its lines."""
    bin_dir = tmp_path / f"bin-{cli}"
    bin_dir.mkdir(exist_ok=True)
    if cli != "system":
        fake = bin_dir / "openssl"
        fake.write_text(standin_script(cli, shutil.which("openssl") or "/usr/bin/openssl"))
        fake.chmod(0o755)
    path = path_extra or f"{bin_dir}:{os.environ['PATH']}"
    out = subprocess.run(
        ["sh", "-c", _script("linux_network.sh"), "hrw-net", "10", proxy, creds, "ep.example"],
        capture_output=True, text=True, env={**os.environ, "PATH": path}, check=True, timeout=60,
    ).stdout  # fmt: skip
    return out.splitlines()


def _proxy_conf(tmp_path: Path, port: int, user: str = PROXY_USER, pw: str = PROXY_PASS) -> str:
    conf = tmp_path / "proxy.conf"
    conf.write_text(f"http://{user}:{pw}@127.0.0.1:{port}")
    return str(conf)


def _judged(lines: list[str], proxy: str) -> dict[str, Any]:
    section = parse_network(Out("\n".join(lines)), {"ep.example": "agentsvc"}, proxy)
    assert section.data is not None, section.error
    return dict(section.data["ep.example"])


@pytest.mark.parametrize("cli", CLIS)
def test_every_cli_gets_through_an_authenticating_proxy(
    cli: str, tmp_path: Path, tls_chain: ServerChain
) -> None:
    with tls_server(tls_chain) as port, connect_proxy(port, PROXY_USER, PROXY_PASS) as proxy:
        address = f"127.0.0.1:{proxy}"
        lines = _run_real(tmp_path, cli, address, _proxy_conf(tmp_path, proxy))
    result = _judged(lines, address)
    assert (result["tcp"], result["tls"]) == ("ok", "ok"), result
    assert len(result["chain_pem"]) == 2
    # The password never reaches the output (it travels in the environment).
    assert PROXY_PASS not in "\n".join(lines)


@pytest.mark.parametrize("cli", CLIS)
def test_every_cli_gets_through_an_open_proxy(
    cli: str, tmp_path: Path, tls_chain: ServerChain
) -> None:
    with tls_server(tls_chain) as port, connect_proxy(port, "", "", open_proxy=True) as proxy:
        address = f"127.0.0.1:{proxy}"
        result = _judged(_run_real(tmp_path, cli, address, ""), address)
    assert (result["tcp"], result["tls"]) == ("ok", "ok"), result


@pytest.mark.parametrize("cli", CLIS)
def test_wrong_proxy_credentials_are_the_proxy_refusing_with_every_cli(
    cli: str, tmp_path: Path, tls_chain: ServerChain
) -> None:
    with tls_server(tls_chain) as port, connect_proxy(port, PROXY_USER, PROXY_PASS) as proxy:
        address = f"127.0.0.1:{proxy}"
        conf = _proxy_conf(tmp_path, proxy, pw="wrong")
        result = _judged(_run_real(tmp_path, cli, address, conf), address)
    assert result["tcp"] == "proxy-refused", result


def test_no_way_through_the_proxy_is_an_error_that_says_why(tmp_path: Path) -> None:
    # OpenSSL 1.0.2 and no python on the PATH: nothing on the host can open the tunnel.
    bin_dir = tmp_path / "bin-1.0.2"
    bin_dir.mkdir()
    for tool in ("sh", "sed", "awk", "timeout", "head", "cat"):
        found = shutil.which(tool)
        assert found
        (bin_dir / tool).symlink_to(found)
    lines = _run_real(tmp_path, "1.0.2", "127.0.0.1:9", "", path_extra=str(bin_dir))
    result = _judged(lines, "127.0.0.1:9")
    assert result["tcp"] == "error"
    assert "no python is installed to open the CONNECT tunnel" in result["detail"]


def test_an_option_the_cli_refuses_is_an_error_not_a_network_failure() -> None:
    lines = [
        "ep.example|s_client: Option unknown option -proxy_user",
        "ep.example|s_client: Use -help for summary.",
        "ep.example|@@RC 1",
    ]
    result = _judged(lines, "10.0.0.3:3128")
    assert result["tcp"] == "error" and "refused an option" in result["detail"]


OLD_PYTHONS = {
    "python2": "/root/.pyenv/versions/2.7.18/bin/python2.7",  # RHEL/CentOS 7
    "python3": "/root/.pyenv/versions/3.6.15/bin/python3.6",  # RHEL 8's platform python
}


@pytest.mark.parametrize("name", sorted(OLD_PYTHONS))
def test_the_tunnel_runs_on_the_pythons_old_workers_have(
    name: str, tmp_path: Path, tls_chain: ServerChain
) -> None:
    interpreter = OLD_PYTHONS[name]
    if not os.access(interpreter, os.X_OK):
        pytest.skip(f"{interpreter} is not installed here")
    bin_dir = tmp_path / "bin-1.0.2"
    bin_dir.mkdir()
    (bin_dir / name).symlink_to(interpreter)
    for tool in ("sh", "sed", "awk", "timeout", "head", "cat"):
        found = shutil.which(tool)
        assert found
        (bin_dir / tool).symlink_to(found)
    with tls_server(tls_chain) as port, connect_proxy(port, PROXY_USER, PROXY_PASS) as proxy:
        address = f"127.0.0.1:{proxy}"
        conf = _proxy_conf(tmp_path, proxy)
        lines = _run_real(tmp_path, "1.0.2", address, conf, path_extra=str(bin_dir))
    result = _judged(lines, address)
    assert (result["tcp"], result["tls"]) == ("ok", "ok"), result
