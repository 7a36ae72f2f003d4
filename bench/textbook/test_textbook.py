"""The suite's checks written as a testinfra user usually writes them: one testinfra call
per check and per item, each test reading what it needs itself, over testinfra's own
``ssh://`` (a new connection per command) and ``winrm://`` (a new shell per command).

This is the baseline of ``bench/run.py``, not a product: it judges roughly (a TLS chain is
accepted when its top issuer is one of the lab's trusted CAs) and it is run only against
the lab. The lab's Windows emulator answers only the suite's probe, so these PowerShell
one-liners get PowerShell's CommandNotFound answer after a real round trip; the Windows
tests here fail, and their cost is what is measured.
"""

from __future__ import annotations

import os
import re
from typing import Any

import pytest
import testinfra.host

OMSADMIN = "/etc/opt/microsoft/omsagent/conf/omsadmin.conf"
PROXY_CONF = "/etc/opt/microsoft/omsagent/proxy.conf"
STATE = "/var/opt/microsoft/omsagent/state/automationworker"
LOG = "/var/opt/microsoft/omsconfig/omsconfig.log"
JRDS = "eus-jobruntimedata-prod-su1.azure-automation.net"
TIMEOUT = os.environ.get("BENCH_ENDPOINT_TIMEOUT", "5")
ROLES = ("agentsvc", "jrds", "oms")
PS = "powershell -NoProfile -Command "
EVENT_ITEMS = ("om-2127", "om-2129", "om-2133", "om-2138", "om-4000", "om-4001", "om-4002")


def _linux(meta: dict[str, Any]) -> None:
    if meta["platform"] != "linux":
        pytest.skip("linux check")


def _windows(meta: dict[str, Any]) -> None:
    if meta["platform"] != "windows":
        pytest.skip("windows check")


def _endpoint(host: testinfra.host.Host, role: str) -> str:
    if role == "jrds":
        return JRDS
    text = host.file(OMSADMIN).content_string
    ws = re.search(r"^WORKSPACE_ID=(\S+)", text, re.M)
    assert ws, "no workspace id"
    suffix = "agentsvc.azure-automation.net" if role == "agentsvc" else "oms.opinsights.azure.com"
    return f"{ws.group(1)}.{suffix}"


def _s_client(host: testinfra.host.Host, name: str) -> Any:
    proxy = ""
    if host.file(PROXY_CONF).exists:
        url = host.file(PROXY_CONF).content_string.strip()
        match = re.search(r"@([^/]+)$", url) or re.search(r"://([^/]+)$", url)
        proxy = f"-proxy {match.group(1)}" if match else ""
    return host.run(
        f"timeout {TIMEOUT} openssl s_client -connect {name}:443 -servername {name} "
        f"-showcerts {proxy} </dev/null"
    )


@pytest.mark.parametrize("role", ROLES)
def test_g01_endpoint(host: testinfra.host.Host, meta: dict[str, Any], role: str) -> None:
    if meta["platform"] == "windows":
        out = host.run(f"powershell -Command Test-NetConnection {role} -Port 443")
        assert out.rc == 0, out.stderr
        return
    result = _s_client(host, _endpoint(host, role))
    assert "CONNECTED(" in result.stdout and "Cipher is" in result.stdout


@pytest.mark.parametrize("role", ROLES)
def test_g04_chain(host: testinfra.host.Host, meta: dict[str, Any], role: str) -> None:
    if meta["platform"] == "windows":
        out = host.run(f"powershell -Command Get-TlsChain {role}")
        assert out.rc == 0, out.stderr
        return
    result = _s_client(host, _endpoint(host, role))
    issuers = re.findall(r"i:.*?CN ?= ?([^,\n]+)", result.stdout)
    assert issuers and "Lab Azure" in issuers[-1]


def test_g02_cpu(host: testinfra.host.Host, meta: dict[str, Any]) -> None:
    if meta["platform"] == "windows":
        out = host.run(PS + "(Get-CimInstance Win32_Processor).NumberOfLogicalProcessors")
        assert out.rc == 0, out.stderr
        return
    assert int(host.check_output("nproc")) >= 2


def test_g02_memory(host: testinfra.host.Host, meta: dict[str, Any]) -> None:
    if meta["platform"] == "windows":
        out = host.run(PS + "(Get-CimInstance Win32_ComputerSystem).TotalPhysicalMemory")
        assert out.rc == 0, out.stderr
        return
    total = re.search(r"MemTotal:\s+(\d+)", host.file("/proc/meminfo").content_string)
    assert total and int(total.group(1)) * 1024 >= 4 * 1024**3 * 0.95


def test_g03_cpu(host: testinfra.host.Host, meta: dict[str, Any]) -> None:
    if meta["platform"] == "windows":
        out = host.run("powershell -Command (Get-CimInstance Win32_Processor).LoadPercentage")
        assert out.rc == 0, out.stderr
        return
    load = float(host.file("/proc/loadavg").content_string.split()[0])
    assert load / int(host.check_output("nproc")) < 0.9


def test_g03_memory(host: testinfra.host.Host, meta: dict[str, Any]) -> None:
    if meta["platform"] == "windows":
        out = host.run(PS + "(Get-CimInstance Win32_OperatingSystem).FreePhysicalMemory")
        assert out.rc == 0, out.stderr
        return
    text = host.file("/proc/meminfo").content_string
    total = re.search(r"MemTotal:\s+(\d+)", text)
    avail = re.search(r"MemAvailable:\s+(\d+)", text)
    assert total and avail and int(avail.group(1)) / int(total.group(1)) >= 0.1


@pytest.mark.parametrize("item", ["manager", "auto-registered", "user"])
def test_l01_workers(host: testinfra.host.Host, meta: dict[str, Any], item: str) -> None:
    _linux(meta)
    if item == "auto-registered" and not host.file(f"{STATE}/worker.conf").exists:
        pytest.skip("no Update Management")
    if item == "user" and not host.file(f"{STATE}/diy/worker.conf").exists:
        pytest.skip("no user worker")
    wanted = {
        "manager": "/worker/main.py",
        "auto-registered": f"{STATE}/worker.conf",
        "user": f"{STATE}/diy/worker.conf",
    }[item]
    procs = host.process.filter(user="nxautomation")
    assert any(wanted in p.args for p in procs)


def test_l02_omsagent(host: testinfra.host.Host, meta: dict[str, Any]) -> None:
    _linux(meta)
    assert any("omsagent" in p.args for p in host.process.filter(user="omsagent"))


def test_l03_class_missing(host: testinfra.host.Host, meta: dict[str, Any]) -> None:
    _linux(meta)
    assert not host.file(LOG).contains("The specified class does not exist")


def test_w01_healthservice(host: testinfra.host.Host, meta: dict[str, Any]) -> None:
    _windows(meta)
    out = host.run("powershell -Command (Get-Service HealthService).Status")
    assert out.rc == 0 and "Running" in out.stdout


def test_w02_event_4502(host: testinfra.host.Host, meta: dict[str, Any]) -> None:
    _windows(meta)
    out = host.run(PS + "Get-WinEvent -FilterHashtable @{LogName='Operations Manager';Id=4502}")
    assert out.rc == 0, out.stderr


def test_w03_sma_exit(host: testinfra.host.Host, meta: dict[str, Any]) -> None:
    _windows(meta)
    out = host.run("powershell -Command Get-WinEvent -LogName Microsoft-SMA/Operational")
    assert out.rc == 0, out.stderr


@pytest.mark.parametrize("item", [*EVENT_ITEMS, "sma-15011"])
def test_w04_connectivity_events(
    host: testinfra.host.Host, meta: dict[str, Any], item: str
) -> None:
    _windows(meta)
    event_id = item.split("-")[1]
    out = host.run(f"powershell -Command Get-WinEvent -FilterHashtable @{{Id={event_id}}}")
    assert out.rc == 0, out.stderr
