"""Pure parts of the lab, checked without root: file formats, plans, parsing."""

from __future__ import annotations

import base64
import configparser
import hashlib
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from lab.agent_tree import (
    agent_cert,
    current_mof,
    oms_conf,
    omsadmin_conf,
    process_plan,
    resource_settings,
    worker_conf,
)
from lab.context import LabContext
from lab.control import is_lab_command
from lab.fleet import Host, expand_fleet
from lab.host_sysinfo import cpu_online, cpuinfo, loadavg, meminfo
from lab.inventory_writer import inventory
from lab.linux_host import hosts_file, init_script
from lab.netns import block_ruleset
from lab.openssl_standin import STANDINS, standin_script
from lab.paths import LabPaths
from lab.pki import PkiFiles
from lab.profiles import load_profiles
from lab.proxy import credentials_ok, parse_head, split_target

HOSTS = {h.name: h for h in expand_fleet(load_profiles())}


def _host(name: str) -> Host:
    return HOSTS[name]


def test_cpuinfo_has_one_entry_per_cpu() -> None:
    real = "processor\t: 0\nmodel name\t: Test CPU\nsiblings\t: 8\ncpu cores\t: 8\n\n"
    text = cpuinfo(2, real + real.replace(": 0", ": 1"))
    assert [line for line in text.splitlines() if line.startswith("processor")] == [
        "processor\t: 0",
        "processor\t: 1",
    ]
    assert "cpu cores\t: 2" in text
    assert cpu_online(1) == "0\n"
    assert cpu_online(2) == "0-1\n"


def test_meminfo_and_loadavg_follow_numbers() -> None:
    rows = dict(line.split(":") for line in meminfo(2048, 64).splitlines())
    assert rows["MemTotal"].split() == ["2097152", "kB"]
    assert rows["MemAvailable"].split() == ["65536", "kB"]
    assert int(rows["MemFree"].split()[0]) <= 65536
    assert loadavg(3.9).split()[:3] == ["3.90", "3.90", "3.90"]


def test_omsadmin_conf_order_and_endpoints() -> None:
    host = _host("linux-healthy")
    lines = omsadmin_conf(host).splitlines()
    assert [line.split("=", 1)[0] for line in lines][:3] == [
        "WORKSPACE_ID",
        "AGENT_GUID",
        "LOG_FACILITY",
    ]
    assert (
        f"OMS_ENDPOINT=https://{host.workspace_id}.ods.opinsights.azure.com"
        "/OperationalData.svc/PostJsonDataItems"
    ) in lines


def test_oms_conf_lists_only_registered_workers() -> None:
    full, no_um = configparser.ConfigParser(), configparser.ConfigParser()
    full.read_string(oms_conf(_host("linux-healthy")))
    no_um.read_string(oms_conf(_host("linux-healthy-no-um")))
    assert set(full["oms-worker-conf"]) == {
        "auto_registered_worker_conf_path",
        "manually_registered_worker_conf_path",
    }
    assert set(no_um["oms-worker-conf"]) == {"manually_registered_worker_conf_path"}


def test_worker_conf_points_at_lab_endpoints() -> None:
    host = _host("linux-healthy")
    conf = configparser.ConfigParser()
    conf.read_string(worker_conf(host, diy=True))
    ws = host.workspace_id
    assert conf["oms-metadata"]["registration_endpoint"] == (
        f"https://{ws}.agentsvc.azure-automation.net/accounts/{ws}"
    )
    assert conf["worker-required"]["jrds_base_uri"] == (
        "https://eus-jobruntimedata-prod-su1.azure-automation.net"
    )


@pytest.mark.parametrize(
    ("name", "users", "count"),
    [
        ("linux-healthy", {"omsagent", "nxautomation"}, 4),
        ("linux-healthy-no-um", {"omsagent", "nxautomation"}, 3),
        ("linux-agent-stopped", set(), 0),
        ("linux-diy-worker-missing", {"omsagent", "nxautomation"}, 3),
        ("linux-processes-wrong-owner", {"omsagent", "hrwother"}, 4),
        ("linux-healthy-3x", {"omsagent", "nxautomation"}, 4),
        ("linux-two-managers", {"omsagent", "nxautomation"}, 5),
        ("linux-stray-workspace", {"omsagent", "nxautomation"}, 5),
        ("linux-omsagent-wrong-owner", {"hrwother", "nxautomation"}, 4),
    ],
)
def test_process_plan_follows_profile(name: str, users: set[str], count: int) -> None:
    plan = process_plan(_host(name))
    assert len(plan) == count
    assert {p.user for p in plan} == users
    for proc in plan:
        assert proc.argv[0] in ("python", "python3", "/opt/microsoft/omsagent/ruby/bin/ruby")


def test_process_plan_uses_the_articles_command_lines() -> None:
    host = _host("linux-healthy")
    ws = host.workspace_id
    lines = [" ".join(p.argv) for p in process_plan(host)]
    base = (
        "python /opt/microsoft/omsconfig/modules/nxOMSAutomationWorker/DSCResources/"
        "MSFT_nxOMSAutomationWorkerResource/automationworker/worker/"
    )
    assert lines[1] == (
        f"{base}main.py /var/opt/microsoft/omsagent/state/automationworker/oms.conf "
        f"rworkspace:{ws} 1.6.8.0"
    )
    assert lines[3] == (
        f"{base}hybridworker.py /var/opt/microsoft/omsagent/{ws}/state/automationworker/diy/"
        f"worker.conf managed rworkspace:{ws} rversion:1.6.8.0"
    )


def test_3x_layout_uses_the_3x_modules_command_lines_and_user_state() -> None:
    host = _host("linux-healthy-3x")
    ws = host.workspace_id
    lines = [" ".join(p.argv) for p in process_plan(host)]
    base = (
        "python3 /opt/microsoft/omsconfig/modules/nxOMSAutomationWorker/DSCResources/"
        "MSFT_nxOMSAutomationWorkerResource/automationworker/3.x/worker/"
    )
    assert lines[1] == (
        f"{base}main.py /var/opt/microsoft/omsagent/state/automationworker/oms.conf "
        f"rworkspace:{ws} 1.6.8.0"
    )
    assert lines[3] == (
        f"{base}hybridworker.py /home/nxautomation/state/worker.conf managed "
        f"rworkspace:{ws} rversion:1.6.8.0"
    )
    conf = configparser.ConfigParser()
    conf.read_string(oms_conf(host))
    assert conf["oms-worker-conf"]["manually_registered_worker_conf_path"] == (
        "/home/nxautomation/state/worker.conf"
    )
    diy = configparser.ConfigParser()
    diy.read_string(worker_conf(host, diy=True))
    assert diy["worker-required"]["working_directory_path"] == "/home/nxautomation/run"
    assert diy["worker-optional"]["state_directory_path"] == "/home/nxautomation/state"


def test_fault_profiles_shape_the_managers_and_the_configuration() -> None:
    old = [p.argv for p in process_plan(_host("linux-manager-old-version"))]
    assert old[1][-1] == "1.4" and old[2][-1] == "rversion:1.4"
    stray = _host("linux-stray-workspace")
    other = stray.profile["other_workspaces"][0]
    argv = process_plan(stray)[-1].argv
    assert argv[0] == "python3" and "/3.x/worker/main.py" in argv[1]
    assert argv[-2:] == (f"rworkspace:{other}", "1.6.8.0")
    settings = resource_settings(_host("linux-omsconf-inconsistent"))[0]
    assert settings["Solutions"] == {
        "Updates": {"Enabled": True},
        "AzureAutomation": {"Enabled": False},
    }
    assert "manually_registered_worker_conf_path" in oms_conf(_host("linux-omsconf-inconsistent"))
    assert current_mof(_host("linux-healthy")).startswith(b"\xff\xfe")
    assert current_mof(_host("linux-healthy-no-um")).startswith(b"/*")  # the UTF-8 profile


def test_agent_certificate_thumbprint_is_openssls_sha1() -> None:
    cert = agent_cert(_host("linux-healthy"), "current")
    der = x509.load_pem_x509_certificate(cert.cert_pem).public_bytes(Encoding.DER)
    assert cert.thumbprint == hashlib.sha1(der, usedforsecurity=False).hexdigest().upper()
    assert agent_cert(_host("linux-healthy"), "old").thumbprint != cert.thumbprint


def _context(tmp_path: Path) -> LabContext:
    return LabContext(
        paths=LabPaths(tmp_path),
        pki=PkiFiles(tmp_path / ".lab" / "pki"),
        proxy_password="s3cret",
        winrm_password="w1nrm",
        lab_public_key="ssh-ed25519 AAAA lab",
        sshd_uid=102,
    )


def test_init_script_binds_and_keeps_secrets_out(tmp_path: Path) -> None:
    host = _host("linux-tls-intercepted")
    ctx = _context(tmp_path)
    script = init_script(host, ctx, {"/proc/meminfo": tmp_path / "meminfo"})
    assert f"mount --bind {tmp_path / 'meminfo'} /proc/meminfo" in script
    assert "setpriv --reuid=996 --regid=996 --clear-groups" in script
    assert script.rstrip().endswith(f"{ctx.paths.idle} --init")
    assert "s3cret" not in script
    assert f"10.213.0.2\t{host.workspace_id}.oms.opinsights.azure.com" in hosts_file(host)


def test_inventory_shape(tmp_path: Path) -> None:
    paths = LabPaths(tmp_path)
    proxy = "http://hrwproxy:pr0xy@10.213.0.3:3128"
    doc = inventory(list(HOSTS.values()), paths, "w1nrm", proxy)
    linux = doc["all"]["children"]["linux"]["hosts"]["linux-healthy"]
    windows = doc["all"]["children"]["windows"]["hosts"]["windows-healthy"]
    assert linux["ansible_host"] == "10.213.1.10"
    assert linux["ansible_ssh_private_key_file"] == str(tmp_path / ".lab/ssh/id_ed25519")
    assert windows["ansible_host"] == "10.213.1.20"
    assert windows["ansible_password"] == "w1nrm"
    assert "hrw_proxy" not in windows  # only intercepted Windows hosts carry the proxy
    intercepted = doc["all"]["children"]["windows"]["hosts"]["windows-tls-intercepted"]
    assert intercepted["hrw_proxy"] == proxy
    assert windows["ansible_winrm_ca_trust_path"] == str(tmp_path / ".lab/pki/winrm-ca.pem")
    assert doc["all"]["vars"]["hrw_trusted_ca_file"] == str(tmp_path / ".lab/pki/trusted-cas.pem")


def test_proxy_request_parsing_and_credentials() -> None:
    method, target, headers = parse_head(
        b"CONNECT a.oms.opinsights.azure.com:443 HTTP/1.1\r\nProxy-Authorization: Basic x\r\n\r\n"
    )
    assert (method, target, headers["proxy-authorization"]) == (
        "CONNECT",
        "a.oms.opinsights.azure.com:443",
        "Basic x",
    )
    assert split_target("A.example:8443") == ("a.example", 8443)
    with pytest.raises(ValueError):
        split_target("no-port")
    token = base64.b64encode(b"hrwproxy:pw").decode()
    assert credentials_ok(f"Basic {token}", "hrwproxy", "pw")
    assert not credentials_ok(f"Basic {token}", "hrwproxy", "other")
    assert not credentials_ok("Basic !!!", "hrwproxy", "pw")
    assert not credentials_ok(None, "hrwproxy", "pw")


def test_block_rule_drops_only_azure_443() -> None:
    assert "ip daddr 10.213.0.2 tcp dport 443 drop" in block_ruleset()


def test_lab_command_matching(tmp_path: Path) -> None:
    paths = LabPaths(tmp_path)
    state = str(paths.state)
    assert is_lab_command([str(paths.idle), "--init"], paths)
    assert is_lab_command(["unshare", "--mount", "/bin/sh", f"{state}/hosts/x/init.sh"], paths)
    assert is_lab_command(["/x/python", "-m", "lab.proxy", "--config", f"{state}/p.json"], paths)
    assert is_lab_command([f"sshd: /usr/sbin/sshd -f {state}/hosts/x/ssh/sshd_config"], paths)
    assert not is_lab_command(["tail", "-f", f"{state}/logs/proxy.log"], paths)
    assert not is_lab_command(["/x/python", "-m", "lab.proxy"], paths)


@pytest.mark.parametrize(
    ("cli", "option", "stderr_head"),
    [
        ("1.0.2", "-proxy", ["unknown option -proxy", "usage: s_client args"]),
        ("1.0.2", "-no-CAfile", ["unknown option -no-CAfile", "usage: s_client args"]),
        (
            "1.1.1",
            "-proxy_user",
            ["s_client: Option unknown option -proxy_user", "s_client: Use -help for summary."],
        ),
    ],
)
def test_openssl_standins_refuse_what_their_version_lacks_as_it_does(
    cli: str, option: str, stderr_head: list[str], tmp_path: Path
) -> None:
    script = tmp_path / "openssl"
    script.write_text(standin_script(cli))
    script.chmod(0o755)
    version = subprocess.run([str(script), "version"], capture_output=True, text=True, check=True)
    assert version.stdout.strip() == STANDINS[cli].version
    refused = subprocess.run(
        [str(script), "s_client", "-connect", "x:443", option, "v"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert refused.returncode == 1 and refused.stdout == ""
    assert refused.stderr.splitlines()[: len(stderr_head)] == stderr_head
    # What the version has goes to the real openssl.
    real = subprocess.run(
        [str(script), "s_client", "-help"], capture_output=True, text=True, check=False
    )
    assert "-servername" in real.stdout + real.stderr


def test_sshd_starts_only_after_every_stand_in_shows_its_command_line(tmp_path: Path) -> None:
    # `lab up` waits for sshd's port; a host that answered before its stand-ins had taken
    # their real command lines showed a process table without them (issue 10 item 17).
    script = init_script(_host("linux-healthy"), _context(tmp_path), {})
    lines = script.splitlines()
    sshd = next(i for i, line in enumerate(lines) if line.startswith("/usr/sbin/sshd "))
    starts = [i for i, line in enumerate(lines) if line.startswith("setpriv ")]
    waits = [i for i, line in enumerate(lines) if "/comm" in line]
    assert len(starts) == 4 and waits
    assert max(starts) < min(waits) < sshd
    assert 'hrw_started="$hrw_started $!:python"' in script
    assert 'hrw_started="$hrw_started $!:ruby"' in script
    subprocess.run(["sh", "-n", "-c", script], check=True)
