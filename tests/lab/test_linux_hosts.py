"""Each Linux lab host is reachable over SSH and shows its profile's fault, and only it."""

from __future__ import annotations

import base64
import codecs
import configparser
import json
import re
import subprocess

from lab.context import PROXY_PASSWORD_HARD_PART
from lab.fleet import Host
from lab.hostexec import run_in_host
from lab.paths import LabPaths

STATE = "/var/opt/microsoft/omsagent/state/automationworker"
OMSADMIN_ORDER = [
    "WORKSPACE_ID",
    "AGENT_GUID",
    "LOG_FACILITY",
    "CERTIFICATE_UPDATE_ENDPOINT",
    "URL_TLD",
    "DSC_ENDPOINT",
    "OMS_ENDPOINT",
    "AZURE_RESOURCE_ID",
    "OMSCLOUD_ID",
    "UUID",
]
# The user worker's state: the article's layout, and the 3.x module's.
DIY_DIRS = ("/automationworker/diy", "/home/nxautomation/state")
MODULE = "/opt/microsoft/omsconfig/modules/nxOMSAutomationWorker"
CODE = f"{MODULE}/DSCResources/MSFT_nxOMSAutomationWorkerResource/automationworker"
# The password: random URL-safe characters, then ones only the agent's format allows.
PROXY_URL = re.compile(
    r"^http://hrwproxy:[A-Za-z0-9_-]+"
    + re.escape(PROXY_PASSWORD_HARD_PART)
    + r"@10\.213\.0\.3:(?:3128|3129)$"
)


def _sh(paths: LabPaths, host: Host, script: str) -> str:
    proc = run_in_host(paths, host.name, ["sh", "-c", script])
    assert proc.returncode == 0, f"{host.name}: {script!r} failed: {proc.stderr.strip()}"
    return proc.stdout


def _uid(paths: LabPaths, host: Host, user: str) -> int:
    return int(_sh(paths, host, f"id -u {user}").strip())


def test_ssh_with_lab_key_and_known_hosts(lab_paths: LabPaths, linux_host: Host) -> None:
    proc = subprocess.run(
        [
            "ssh",
            "-i",
            str(lab_paths.ssh_key),
            "-o",
            "BatchMode=yes",
            "-o",
            f"UserKnownHostsFile={lab_paths.known_hosts}",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "ConnectTimeout=5",
            f"root@{linux_host.address}",
            "hostname",
        ],
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == linux_host.name


def _roles(ps_output: str) -> dict[str, list[int]]:
    """Return {role: [uids]} of agent/worker processes found in ``ps -eo uid=,args=``."""
    roles: dict[str, list[int]] = {}
    for line in ps_output.splitlines():
        uid_text, _, args = line.strip().partition(" ")
        python = args.startswith(("python ", "python3 "))
        if python and "/worker/main.py " in args:
            role = "manager"
        elif python and f"{STATE}/worker.conf managed" in args:
            role = "auto"
        elif python and any(f"{d}/worker.conf managed" in args for d in DIY_DIRS):
            role = "diy"
        elif args.startswith("/opt/microsoft/omsagent/ruby/bin/ruby "):
            role = "omsagent"
        else:
            continue
        roles.setdefault(role, []).append(int(uid_text))
    return roles


def test_processes_follow_profile(lab_paths: LabPaths, linux_host: Host) -> None:
    p = linux_host.profile
    roles = _roles(_sh(lab_paths, linux_host, "ps -ww -eo uid=,args="))
    expected = set()
    if p["agent_running"] and p["agent_installed"]:
        expected = {"omsagent", "manager"}
        expected |= {"auto"} if p["update_management"] else set()
        expected |= {"diy"} if p["user_worker"] and p["user_worker_running"] else set()
    assert set(roles) == expected
    worker_uid = _uid(lab_paths, linux_host, p["worker_user"])
    managers = p["manager_count"] + len(p["other_workspaces"])
    for role, uids in roles.items():
        daemon = p["omsagent_user"]
        owner = _uid(lab_paths, linux_host, daemon) if role == "omsagent" else worker_uid
        count = managers if role == "manager" else 1
        assert uids == [owner] * count, f"{role} runs as {uids}, expected {[owner] * count}"
    if p["worker_user"] != "nxautomation" and roles:
        assert _uid(lab_paths, linux_host, "nxautomation") not in [
            u for uids in roles.values() for u in uids
        ]


def test_cpu_memory_load_follow_profile(lab_paths: LabPaths, linux_host: Host) -> None:
    p = linux_host.profile
    out = _sh(
        lab_paths,
        linux_host,
        "nproc; grep -c '^processor' /proc/cpuinfo; cat /sys/devices/system/cpu/online;"
        " cat /proc/loadavg; grep -E '^(MemTotal|MemAvailable):' /proc/meminfo",
    )
    lines = out.splitlines()
    assert int(lines[0]) == p["cpus"]
    assert int(lines[1]) == p["cpus"]
    assert lines[2] == ("0" if p["cpus"] == 1 else f"0-{p['cpus'] - 1}")
    assert float(lines[3].split()[0]) == float(p["load"])
    mem = {line.split(":")[0]: int(line.split()[1]) for line in lines[4:]}
    assert mem == {
        "MemTotal": p["memory_mb"] * 1024,
        "MemAvailable": p["memory_available_mb"] * 1024,
    }


def _agent_absent(lab_paths: LabPaths, host: Host) -> bool:
    """Return True for a host without the agent-based worker, after checking that none of
    its files exist there."""
    if host.profile["agent_installed"]:
        return False
    out = _sh(lab_paths, host, "ls /etc/opt/microsoft /var/opt/microsoft 2>/dev/null | wc -l")
    assert out.strip() == "0"
    return True


def test_omsadmin_conf_key_order(lab_paths: LabPaths, linux_host: Host) -> None:
    if _agent_absent(lab_paths, linux_host):
        return
    text = _sh(lab_paths, linux_host, "cat /etc/opt/microsoft/omsagent/conf/omsadmin.conf")
    keys = [line.split("=", 1)[0] for line in text.splitlines()]
    assert keys == OMSADMIN_ORDER
    assert f"WORKSPACE_ID={linux_host.workspace_id}" in text.splitlines()


def test_worker_configs_follow_profile(lab_paths: LabPaths, linux_host: Host) -> None:
    if _agent_absent(lab_paths, linux_host):
        return
    p, ws = linux_host.profile, linux_host.workspace_id
    diy = (
        "/home/nxautomation/state/worker.conf"
        if p["agent_layout"] == "3x"
        else f"/var/opt/microsoft/omsagent/{ws}/state/automationworker/diy/worker.conf"
    )
    oms = configparser.ConfigParser()
    oms.read_string(_sh(lab_paths, linux_host, f"cat {STATE}/oms.conf"))
    section = oms["oms-worker-conf"]
    assert ("auto_registered_worker_conf_path" in section) == p["update_management"]
    assert ("manually_registered_worker_conf_path" in section) == p["user_worker"]
    assert oms["oms-global"]["workspace_id"] == ws
    present = _sh(
        lab_paths,
        linux_host,
        f"for f in {STATE}/worker.conf {diy}; do test -f $f && echo yes || echo no; done",
    ).split()
    assert present == [
        "yes" if p["update_management"] else "no",
        "yes" if p["user_worker"] else "no",
    ]
    if p["user_worker"]:
        worker = configparser.ConfigParser()
        worker.read_string(_sh(lab_paths, linux_host, f"cat {diy}"))
        uri = worker["worker-required"]["jrds_base_uri"]
        assert uri == "https://eus-jobruntimedata-prod-su1.azure-automation.net"


# The proxy port each network mode's proxy.conf names (lab/proxy.py): the intercepting
# proxy, the authenticating and the open pass-through ones.
PROXY_PORTS = {"intercepted": "3128", "proxy-auth": "3129", "proxy-open": "3130"}


def test_proxy_conf_only_behind_a_proxy(lab_paths: LabPaths, linux_host: Host) -> None:
    path = "/etc/opt/microsoft/omsagent/proxy.conf"
    out = _sh(
        lab_paths, linux_host, f"if test -f {path}; then stat -c '%a %U' {path}; cat {path}; fi"
    )
    network = linux_host.profile["network"]
    if network not in PROXY_PORTS:
        assert out == ""
        return
    mode_owner, content = out.split("\n", 1)
    assert mode_owner == "600 omsagent"
    assert not content.endswith("\n")
    # Not printed on failure: the line holds the lab proxy's password.
    assert content.endswith(f"@10.213.0.3:{PROXY_PORTS[network]}") or (
        network == "proxy-open" and content == f"http://10.213.0.3:{PROXY_PORTS[network]}"
    ), f"proxy.conf of {linux_host.name} does not name port {PROXY_PORTS[network]}"
    if network != "proxy-open":
        assert PROXY_URL.match(content) is not None, "proxy.conf is not user:password@host:port"


def test_omsconfig_log_class_error_only_when_set(lab_paths: LabPaths, linux_host: Host) -> None:
    if _agent_absent(lab_paths, linux_host):
        return
    log = _sh(lab_paths, linux_host, "cat /var/opt/microsoft/omsconfig/omsconfig.log")
    has_error = "The specified class does not exist.." in log
    assert has_error == linux_host.profile["omsconfig_class_missing"]


def test_what_a_real_worker_carries(lab_paths: LabPaths, linux_host: Host) -> None:
    """Current.mof (in its encoding), oms.crt whose thumbprint worker.conf holds (unless the
    profile rotated it), omsagent.log, the module's VERSION and configuration.py, and the
    manager's code in the profile's layout."""
    if _agent_absent(lab_paths, linux_host):
        return
    p = linux_host.profile
    code = f"{CODE}/3.x/worker" if p["agent_layout"] == "3x" else f"{CODE}/worker"
    files = [
        "/var/opt/microsoft/omsagent/log/omsagent.log",
        f"{MODULE}/VERSION",
        f"{CODE}/worker/configuration.py",
        f"{code}/main.py",
        f"{code}/hybridworker.py",
    ]
    assert _sh(lab_paths, linux_host, f"ls {' '.join(files)} | wc -l").strip() == str(len(files))
    mof = base64.b64decode(
        _sh(
            lab_paths,
            linux_host,
            "base64 -w0 /etc/opt/omi/conf/omsconfig/configuration/Current.mof",
        )
    )
    if p["mof_encoding"] == "utf-16-le":
        assert mof.startswith(codecs.BOM_UTF16_LE)
        text = mof[2:].decode("utf-16-le")
    else:
        text = mof.decode("utf-8")
    assert "instance of MSFT_nxOMSAutomationWorkerResource" in text
    assert f'\\"WorkspaceId\\":\\"{linux_host.workspace_id}\\"' in text
    # The thumbprint as Microsoft's DSC reads it: openssl's SHA-1 fingerprint without colons.
    fingerprint = _sh(
        lab_paths,
        linux_host,
        "openssl x509 -noout -fingerprint -sha1 -in /etc/opt/microsoft/omsagent/certs/oms.crt",
    )
    thumbprint = fingerprint.split("=", 1)[1].replace(":", "").strip()
    if p["update_management"]:
        worker = configparser.ConfigParser()
        worker.read_string(_sh(lab_paths, linux_host, f"cat {STATE}/worker.conf"))
        registered = worker["oms-metadata"]["jrds_cert_thumbprint"]
        assert (registered == thumbprint) is not p["cert_rotated"]


def test_extension_files_services_and_identity_follow_profile(
    lab_paths: LabPaths, linux_host: Host
) -> None:
    """The guest agent's files of the extension, what systemctl says of hwd, the processes
    of hweautomation, and the identity endpoints answer as the profile says."""
    p = linux_host.profile
    ext = p["extension"]
    d = "/var/lib/waagent/Microsoft.Azure.Automation.HybridWorker.HybridWorkerForLinux-1.1.13"
    out = _sh(lab_paths, linux_host, f"cat {d}/config/HandlerState {d}/mrseq 2>/dev/null; echo")
    assert out.strip() == (f"{ext['handler_state']}3" if ext else "")
    if ext:
        status = json.loads(_sh(lab_paths, linux_host, f"cat {d}/status/3.status"))
        assert status[0]["status"]["status"] == ext["status"]
        settings = json.loads(_sh(lab_paths, linux_host, f"cat {d}/config/3.settings"))
        public = settings["runtimeSettings"][0]["handlerSettings"]["publicSettings"]
        assert public["AutomationAccountURL"] == linux_host.account_url
    answers = _sh(
        lab_paths,
        linux_host,
        "systemctl show -p LoadState --value hwd; systemctl is-active hwd; "
        "systemctl is-enabled hwd; ps -o user= -u hweautomation | wc -l",
    ).split()
    if ext:
        running = 2 if ext["hwd_active"] == "active" else 0
        assert answers == ["loaded", ext["hwd_active"], ext["hwd_enabled"], str(running)]
    else:
        assert answers[:3] == ["not-found", "inactive", "not-found"]
    code = _sh(
        lab_paths,
        linux_host,
        "curl -s -o /dev/null -w '%{http_code}' --noproxy '*' -m 3 -H 'Metadata: true' "
        "'http://169.254.169.254/metadata/identity/oauth2/token?api-version=2018-02-01"
        "&resource=https://management.azure.com/'; echo; "
        "curl -s -o /dev/null -w '%{http_code}' -m 3 -H 'Metadata: true' "
        "'http://localhost:40342/metadata/identity/oauth2/token'; echo",
    ).split()
    imds = {"system": "200", "none": "400"}[p["imds_identity"]]
    assert code[0] == (imds if p["place"] == "azure-vm" else "000")
    arc_up = p["place"] == "arc" and p["himds_running"]
    assert code[1] == ("401" if arc_up else "000")
