"""The lab network: 443 blocked only where the profile says, TLS interception, no way out."""

from __future__ import annotations

import base64
import json
import shlex
import socket
import subprocess

import pytest

from lab.fleet import AZURE_ADDRESS, PROXY_ADDRESS, PROXY_PORT, Host
from lab.hostexec import run_in_host, run_in_netns
from lab.netns import lab_namespaces
from lab.paths import LabPaths

DROP_RULE = f"ip daddr {AZURE_ADDRESS} tcp dport 443 drop"


def test_drop_rule_only_on_blocked_hosts(any_host: Host) -> None:
    proc = run_in_netns(any_host.name, ["nft", "list", "ruleset"])
    assert proc.returncode == 0, proc.stderr
    assert (DROP_RULE in proc.stdout) == (any_host.profile["network"] == "blocked")


def test_no_default_route_in_any_lab_namespace() -> None:
    namespaces = lab_namespaces()
    assert namespaces
    for name in namespaces:
        out = subprocess.run(
            ["ip", "-n", name, "route", "show", "default"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert out.strip() == "", f"{name} has a default route: {out}"


def _s_client(
    paths: LabPaths, host: Host, proxy_args: list[str]
) -> subprocess.CompletedProcess[str]:
    name = host.endpoints["oms"]
    argv = [
        "timeout",
        "4",
        "openssl",
        "s_client",
        *proxy_args,
        "-connect",
        f"{name}:443",
        "-servername",
        name,
        "-CAfile",
        str(paths.trusted_cas),
        "-showcerts",
    ]
    # Quoted: the lab proxy's password holds a space, quotes and other shell characters.
    command = " ".join(shlex.quote(a) for a in argv) + " </dev/null"
    return run_in_host(paths, host.name, ["sh", "-c", command])


def test_tls_path_follows_profile(lab_paths: LabPaths, linux_host: Host) -> None:
    network = linux_host.profile["network"]
    if network == "intercepted":
        url = run_in_host(
            lab_paths, linux_host.name, ["cat", "/etc/opt/microsoft/omsagent/proxy.conf"]
        ).stdout
        creds = url.split("//", 1)[1].split("@", 1)[0]
        user, password = creds.split(":", 1)
        proc = _s_client(
            lab_paths,
            linux_host,
            [
                "-proxy",
                f"{PROXY_ADDRESS}:{PROXY_PORT}",
                "-proxy_user",
                user,
                "-proxy_pass",
                f"pass:{password}",
            ],
        )
        assert "CN = Microsoft Azure RSA TLS Issuing CA 03" in proc.stdout
        assert "Lab Azure TLS Issuing CA" not in proc.stdout
        assert "Verify return code: 0 (ok)" not in proc.stdout
    elif network == "blocked":
        proc = _s_client(lab_paths, linux_host, [])
        assert proc.returncode != 0
        assert "BEGIN CERTIFICATE" not in proc.stdout
    else:
        proc = _s_client(lab_paths, linux_host, [])
        assert "i:C = US, O = Hybrid Worker Lab, CN = Lab Azure TLS Issuing CA" in proc.stdout
        assert "Verify return code: 0 (ok)" in proc.stdout


def _connect(target: str, auth: str | None) -> str:
    with socket.create_connection((PROXY_ADDRESS, PROXY_PORT), timeout=5) as sock:
        head = f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n"
        if auth is not None:
            head += f"Proxy-Authorization: Basic {base64.b64encode(auth.encode()).decode()}\r\n"
        sock.sendall((head + "\r\n").encode())
        return sock.recv(4096).decode("latin-1").split("\r\n", 1)[0]


@pytest.fixture(scope="module")
def proxy_auth(lab_paths: LabPaths) -> str:
    config = json.loads((lab_paths.state / "proxy" / "proxy.json").read_text(encoding="utf-8"))
    return f"{config['username']}:{config['password']}"


def test_proxy_demands_credentials(proxy_auth: str) -> None:
    target = "x.oms.opinsights.azure.com:443"
    assert _connect(target, None).startswith("HTTP/1.1 407")
    assert _connect(target, "hrwproxy:wrong").startswith("HTTP/1.1 407")
    assert _connect(target, proxy_auth).startswith("HTTP/1.1 200")


def test_proxy_refuses_other_names(proxy_auth: str) -> None:
    assert _connect("example.com:443", proxy_auth).startswith("HTTP/1.1 502")


def test_outside_addresses_have_no_route(any_host: Host) -> None:
    for outside in ("1.1.1.1", "192.168.1.1", "127.0.0.53"):
        proc = run_in_netns(any_host.name, ["ip", "route", "get", outside])
        if outside.startswith("127."):
            assert "dev lo" in proc.stdout  # the host's own loopback, not the controller's
        else:
            assert proc.returncode != 0
            assert "unreachable" in proc.stderr.lower()
