"""The OMS agent and Hybrid Worker files of a Linux lab host, in the agent's real formats.

A host's ``/opt``, ``/etc/opt`` and ``/var/opt`` are bind mounts of directories built here,
laid out like an agent-based worker as Microsoft's public sources write it (microsoft/
OMS-Agent-for-Linux, and the nxOMSAutomationWorker DSC resource in microsoft/
PowerShell-DSC-for-Linux, ``Providers/Scripts/3.x/Scripts/nxOMSAutomationWorker.py``): per-workspace
directories with the agent's ``conf``/``log``/``run``/``state`` symlinks, omsadmin.conf in
the agent's key order, the worker manager's oms.conf, the workers' worker.conf files, the
module VERSION file and code, the agent's logs, the DSC configuration (Current.mof with the
nxOMSAutomationWorker instance) and the agent's certificate oms.crt, whose thumbprint the
auto-registered worker's worker.conf holds. Two layouts (profile key ``agent_layout``): the
article's (code under ``automationworker/worker/``, user worker state under the workspace's
``diy/``) and the 3.x module's (code under ``automationworker/3.x/worker/`` run by python3,
user worker state in ``/home/nxautomation/state``). ``process_plan`` gives the command lines
of the agent and worker processes exactly as the real agent starts them.
"""

from __future__ import annotations

import codecs
import datetime as dt
import hashlib
import json
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from lab.fleet import AGENTSERVICE_HOST, JRDS_HOST, Host

WORKER_VERSION = "1.6.8.0"
MODULE_DIR = "/opt/microsoft/omsconfig/modules/nxOMSAutomationWorker"
RESOURCE_DIR = f"{MODULE_DIR}/DSCResources/MSFT_nxOMSAutomationWorkerResource/automationworker"
WORKER_CODE_DIR = f"{RESOURCE_DIR}/worker"
WORKER_CODE_DIR_3X = f"{RESOURCE_DIR}/3.x/worker"
USER_STATE_3X = "/home/nxautomation/state"
STATE_DIR = "/var/opt/microsoft/omsagent/state/automationworker"
CURRENT_MOF = "/etc/opt/omi/conf/omsconfig/configuration/Current.mof"
OMS_CRT = "/etc/opt/microsoft/omsagent/certs/oms.crt"
OMS_KEY = "/etc/opt/microsoft/omsagent/certs/oms.key"
PROXY_CONF = "/etc/opt/microsoft/omsagent/proxy.conf"
OMSCONFIG_LOG = "/var/opt/microsoft/omsconfig/omsconfig.log"
CLASS_MISSING_TEXT = "The specified class does not exist.."
PLACEHOLDER = "# hrw lab: placeholder; the lab runs hrw-idle under this file's command line\n"
CONFIGURATION_STANDIN = (
    "# hrw lab: stand-in for the worker's configuration module (the real one reads\n"
    "# worker.conf); Microsoft's troubleshooter checks that this file exists.\n"
)


@dataclass(frozen=True)
class User:
    """A local account of a lab host (written to its own /etc/passwd, group and shadow)."""

    name: str
    uid: int
    gid: int
    home: str
    shell: str
    gecos: str = ""


def host_users(sshd_uid: int) -> list[User]:
    """Return the accounts of every Linux lab host; ``sshd_uid`` is the privsep user's uid."""
    return [
        User("root", 0, 0, "/root", "/bin/bash", "root"),
        User("sshd", sshd_uid, 65534, "/run/sshd", "/usr/sbin/nologin"),
        User("omsagent", 997, 997, "/var/opt/microsoft/omsagent/run", "/bin/bash", "OMS agent"),
        User("nxautomation", 996, 996, "/home/nxautomation/run", "/bin/bash", "nxOMSAutomation"),
        User("hrwother", 1001, 1001, "/home/hrwother", "/bin/bash", "unrelated account"),
        User("hweautomation", 994, 994, "/home/hweautomation", "/bin/bash", "hybrid worker"),
        User("himds", 993, 993, "/var/opt/azcmagent", "/usr/sbin/nologin", "Arc identity"),
        User("nobody", 65534, 65534, "/nonexistent", "/usr/sbin/nologin", "nobody"),
    ]


def group_lines() -> list[str]:
    """Return /etc/group lines matching ``host_users`` (omiusers holds the agent's users)."""
    return [
        "root:x:0:",
        "omsagent:x:997:",
        "nxautomation:x:996:",
        "omiusers:x:995:omsagent,nxautomation",
        "hrwother:x:1001:",
        "hweautomation:x:994:",
        "himds:x:993:",
        "nogroup:x:65534:",
    ]


def user_by_name(users: list[User], name: str) -> User:
    """Return the user called ``name`` (KeyError if the lab does not define it)."""
    for user in users:
        if user.name == name:
            return user
    raise KeyError(name)


@dataclass(frozen=True)
class Process:
    """A process a lab host runs: its user and its exact argv."""

    user: str
    argv: tuple[str, ...]
    pid_file: str | None = None


def agent_guid(host: Host) -> str:
    """Return the host's stable agent id."""
    return str(uuid.uuid5(uuid.NAMESPACE_DNS, f"{host.name}.agent.hrw-lab"))


def diy_worker_conf(host: Host) -> str:
    """Return the user (DIY) worker's worker.conf path of the host's layout."""
    if is_3x(host):
        return f"{USER_STATE_3X}/worker.conf"
    return f"/var/opt/microsoft/omsagent/{host.workspace_id}/state/automationworker/diy/worker.conf"


def is_3x(host: Host) -> bool:
    """Return whether the host uses the 3.x module's layout (else the article's)."""
    return bool(host.profile["agent_layout"] == "3x")


def code_dir(host: Host) -> str:
    """Return the directory of the worker code the host's manager and workers run."""
    return WORKER_CODE_DIR_3X if is_3x(host) else WORKER_CODE_DIR


def manager_version(host: Host) -> str:
    """Return the version the host's worker manager runs (the module's unless the profile
    sets an older one)."""
    return str(host.profile["manager_version"] or WORKER_VERSION)


def _worker_processes(host: Host, ws: str, user: str) -> list[Process]:
    """Return the manager(s) and workers for workspace ``ws`` as the host's module starts them."""
    p = host.profile
    python = "python3" if is_3x(host) else "python"
    code = code_dir(host)
    version = manager_version(host)
    manager = (python, f"{code}/main.py", f"{STATE_DIR}/oms.conf", f"rworkspace:{ws}", version)
    plan = [Process(user, manager) for _ in range(p["manager_count"])]
    tail = ("managed", f"rworkspace:{ws}", f"rversion:{version}")
    if p["update_management"]:
        plan.append(
            Process(user, (python, f"{code}/hybridworker.py", f"{STATE_DIR}/worker.conf", *tail))
        )
    if p["user_worker"] and p["user_worker_running"]:
        plan.append(
            Process(user, (python, f"{code}/hybridworker.py", diy_worker_conf(host), *tail))
        )
    return plan


def process_plan(host: Host) -> list[Process]:
    """Return the agent and worker processes the host's profile says are running."""
    p = host.profile
    if not p["agent_running"] or not p["agent_installed"]:
        return []
    ws = host.workspace_id
    user = p["worker_user"]
    plan = [
        Process(
            p["omsagent_user"],
            (
                "/opt/microsoft/omsagent/ruby/bin/ruby",
                "/opt/microsoft/omsagent/bin/omsagent",
                "-d",
                f"/var/opt/microsoft/omsagent/{ws}/run/omsagent.pid",
                "-o",
                f"/var/opt/microsoft/omsagent/{ws}/log/omsagent.log",
                "-c",
                f"/etc/opt/microsoft/omsagent/{ws}/conf/omsagent.conf",
            ),
            pid_file=f"/var/opt/microsoft/omsagent/{ws}/run/omsagent.pid",
        ),
    ]
    plan += _worker_processes(host, ws, user)
    python = "python3" if is_3x(host) else "python"
    for other in p["other_workspaces"]:  # multi-homed: a manager left running for another one
        manager = (python, f"{code_dir(host)}/main.py", f"{STATE_DIR}/oms.conf")
        plan.append(Process(user, (*manager, f"rworkspace:{other}", WORKER_VERSION)))
    return plan


def omsadmin_conf(host: Host) -> str:
    """Return omsadmin.conf with its keys in the order the agent's omsadmin.sh writes them."""
    ws, guid = host.workspace_id, agent_guid(host)
    lines = [
        f"WORKSPACE_ID={ws}",
        f"AGENT_GUID={guid}",
        "LOG_FACILITY=local0",
        f"CERTIFICATE_UPDATE_ENDPOINT=https://{ws}.oms.opinsights.azure.com"
        "/ConfigurationService.Svc/RenewCertificate",
        "URL_TLD=opinsights.azure.com",
        f"DSC_ENDPOINT=https://{AGENTSERVICE_HOST}/Accounts/{ws}/Nodes(AgentId='{guid}')",
        f"OMS_ENDPOINT=https://{ws}.ods.opinsights.azure.com/OperationalData.svc/PostJsonDataItems",
        "AZURE_RESOURCE_ID=",
        f"OMSCLOUD_ID={_digits(host.name, 'cloud')}",
        f"UUID={str(uuid.uuid5(uuid.NAMESPACE_DNS, host.name + '.uuid.hrw-lab')).upper()}",
    ]
    return "\n".join(lines) + "\n"


def _digits(name: str, salt: str) -> str:
    digest = hashlib.sha256(f"{name}:{salt}".encode()).hexdigest()
    return "-".join(str(int(digest[i : i + 4], 16)).zfill(4)[:4] for i in range(0, 24, 4))


def oms_conf(host: Host) -> str:
    """Return the worker manager's oms.conf; worker paths appear only for registered workers."""
    p = host.profile
    lines = ["[oms-worker-conf]"]
    if p["update_management"]:
        lines.append(f"auto_registered_worker_conf_path = {STATE_DIR}/worker.conf")
    if p["user_worker"]:
        lines.append(f"manually_registered_worker_conf_path = {diy_worker_conf(host)}")
    lines += [
        "",
        "[oms-global]",
        f"resource_version = {WORKER_VERSION}",
        f"hybrid_worker_path = {code_dir(host)}/hybridworker.py",
        f"workspace_id = {host.workspace_id}",
        "disable_worker_creation = False",
    ]
    return "\n".join(lines) + "\n"


def worker_conf(host: Host, diy: bool, cert_thumbprint: str | None = None) -> str:
    """Return a worker.conf (auto-registered, or the user worker's when ``diy``).

    ``cert_thumbprint`` is the SHA-1 thumbprint of the agent certificate the auto-registered
    worker registered with (a user worker has its own certificate).
    """
    ws = host.workspace_id
    state = f"/var/opt/microsoft/omsagent/{ws}/state/automationworker" + ("/diy" if diy else "")
    working = f"/var/opt/microsoft/omsagent/{ws}/run/automationworker"
    if diy and is_3x(host):
        state, working = USER_STATE_3X, "/home/nxautomation/run"
    group = "hrw-lab-linux" if diy else f"{host.name}_{ws}"
    thumbprint = cert_thumbprint or hashlib.sha1(f"{host.name}:{diy}".encode()).hexdigest().upper()
    lines = [
        "[worker-required]",
        f"jrds_cert_path = {state}/certs/worker.crt",
        f"jrds_key_path = {state}/certs/worker.key",
        f"jrds_base_uri = https://{JRDS_HOST}",
        f"account_id = {uuid.uuid5(uuid.NAMESPACE_DNS, 'account.hrw-lab')}",
        f"machine_id = {uuid.uuid5(uuid.NAMESPACE_DNS, host.name + '.machine.hrw-lab')}",
        f"hybrid_worker_group_name = {group}",
        f"working_directory_path = {working}",
        "",
        "[worker-optional]",
        f"proxy_configuration_path = {PROXY_CONF}",
        f"state_directory_path = {state}",
        "gpg_public_keyring_path = /etc/opt/omi/conf/omsconfig/keyring.gpg",
        "bypass_certificate_verification = False",
        "",
        "[oms-metadata]",
        f"agent_id = {agent_guid(host)}",
        f"workspace_id = {ws}",
        f"registration_endpoint = https://{ws}.agentsvc.azure-automation.net/accounts/{ws}",
        f"jrds_cert_thumbprint = {thumbprint}",
    ]
    return "\n".join(lines) + "\n"


def resource_settings(host: Host) -> list[dict[str, object]]:
    """Return the nxOMSAutomationWorker settings of the host's DSC configuration: the
    solutions its profile enables (a user worker is the AzureAutomation solution), except
    that ``omsconf_inconsistent`` disables AzureAutomation while oms.conf still names the
    user worker."""
    p = host.profile
    return [
        {
            "WorkspaceId": host.workspace_id,
            "AzureDnsAgentSvcZone": "azure-automation.net",
            "Solutions": {
                "Updates": {"Enabled": bool(p["update_management"])},
                "AzureAutomation": {
                    "Enabled": bool(p["user_worker"]) and not p["omsconf_inconsistent"]
                },
            },
        }
    ]


def _mof_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def current_mof(host: Host) -> bytes:
    """Return Current.mof as the agent's DSC writes it: a MOF document with the
    nxOMSAutomationWorker instance, in the profile's ``mof_encoding`` (UTF-16-LE with a
    byte-order mark by default, or UTF-8)."""
    settings = json.dumps(resource_settings(host), separators=(",", ":"))
    text = "\n".join(
        [
            "/*",
            "@TargetNode='localhost'",
            "@GeneratedBy=hrw-lab",
            "*/",
            "",
            "instance of MSFT_nxOMSAutomationWorkerResource as "
            "$MSFT_nxOMSAutomationWorkerResource1ref",
            "{",
            ' ResourceID = "[nxOMSAutomationWorker]OMSAutomationWorker";',
            f" ResourceSettings = {_mof_string(settings)};",
            ' SourceInfo = "::1::1::nxOMSAutomationWorker";',
            ' ModuleName = "nxOMSAutomationWorker";',
            f' ModuleVersion = "{WORKER_VERSION}";',
            ' ConfigurationName = "OMSAutomationWorker";',
            "};",
            "",
            "instance of OMI_ConfigurationDocument",
            "{",
            ' Version = "2.0.0";',
            ' MinimumCompatibleVersion = "1.0.0";',
            ' Name = "OMSAutomationWorker";',
            "};",
            "",
        ]
    )
    if host.profile["mof_encoding"] == "utf-8":
        return text.encode("utf-8")
    return codecs.BOM_UTF16_LE + text.encode("utf-16-le")


@dataclass(frozen=True)
class AgentCert:
    """The agent's certificate and key (PEM) and its SHA-1 thumbprint as openssl prints it."""

    cert_pem: bytes
    key_pem: bytes
    thumbprint: str


def agent_cert(host: Host, generation: str) -> AgentCert:
    """Return a new self-signed agent certificate for the host (``generation`` names it, e.g.
    the one before a rotation)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, agent_guid(host)),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, f"hrw lab agent ({generation})"),
        ]
    )
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=365))
        .sign(key, hashes.SHA256())
    )
    der = cert.public_bytes(serialization.Encoding.DER)
    return AgentCert(
        cert_pem=cert.public_bytes(serialization.Encoding.PEM),
        key_pem=key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
        thumbprint=hashlib.sha1(der, usedforsecurity=False).hexdigest().upper(),
    )


def _stamp(minutes_ago: int) -> str:
    when = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=minutes_ago)
    return when.strftime("%Y/%m/%d %H:%M:%S")


def omsconfig_log(host: Host) -> str:
    """Return omsconfig.log: routine DSC lines, plus the class error when the profile says so."""
    lines = [
        f"{_stamp(90)}: DEBUG: Scripts/nxOMSAutomationWorker.py(102):\nTest_Marshall returned [0]",
        f"{_stamp(60)}: INFO: Scripts/PerformRequiredConfigurationChecks.py(58):\n"
        "Consistency check completed",
    ]
    if host.profile["omsconfig_class_missing"]:
        lines.append(
            f"{_stamp(30)}: ERROR: Scripts/PerformRequiredConfigurationChecks.py(63):\n"
            f"MI_RESULT_NOT_FOUND: {CLASS_MISSING_TEXT}"
        )
    return "\n".join(lines) + "\n"


def omsagent_log(host: Host) -> str:
    """Return omsagent.log with the agent's ordinary start-up lines."""
    ws = host.workspace_id
    return (
        f"{_stamp(120)} +0000 [info]: starting fluentd-0.12.40 without supervision\n"
        f"{_stamp(120)} +0000 [info]: reading config file "
        f'path="/etc/opt/microsoft/omsagent/{ws}/conf/omsagent.conf"\n'
        f"{_stamp(119)} +0000 [info]: using configuration file: <ROOT> ... </ROOT>\n"
    )


def _write(root: Path, path: str, content: str | bytes, uid: int, gid: int, mode: int) -> None:
    target = root / path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        target.write_bytes(content)
    else:
        target.write_text(content, encoding="utf-8")
    os.chown(target, uid, gid)
    os.chmod(target, mode)


def _symlink(root: Path, path: str, target: str) -> None:
    link = root / path.lstrip("/")
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(target)


def build_agent_tree(host: Host, fs: Path, users: list[User], proxy_url: str | None) -> None:
    """Write the host's /opt, /etc/opt and /var/opt trees under ``fs`` (as ``fs/opt`` ...).

    ``proxy_url`` is the agent's proxy (with credentials) or None for a direct connection.
    """
    p = host.profile
    hrwother = user_by_name(users, "hrwother")
    other = fs / "home" / "hrwother"
    other.mkdir(parents=True, exist_ok=True)
    os.chown(other, hrwother.uid, hrwother.gid)
    if not p["agent_installed"]:
        return  # an extension-only host, or one with no worker: no agent files at all
    ws = host.workspace_id
    oms = user_by_name(users, "omsagent")
    nxa = user_by_name(users, "nxautomation")
    # The 3.x module ships the Python 2 tree too; Microsoft's troubleshooter looks for
    # worker/configuration.py whichever layout runs.
    for directory in (WORKER_CODE_DIR, WORKER_CODE_DIR_3X) if is_3x(host) else (WORKER_CODE_DIR,):
        for code in ("main.py", "hybridworker.py"):
            _write(fs, f"{directory}/{code}", PLACEHOLDER, 0, 0, 0o644)
        _write(fs, f"{directory}/configuration.py", CONFIGURATION_STANDIN, 0, 0, 0o644)
    _write(fs, f"{MODULE_DIR}/VERSION", WORKER_VERSION + "\n", 0, 0, 0o644)
    for tool in (
        "/opt/microsoft/omsagent/bin/omsagent",
        "/opt/microsoft/omsagent/bin/service_control",
        "/opt/microsoft/omsagent/ruby/bin/ruby",
    ):
        _write(fs, tool, PLACEHOLDER, 0, 0, 0o755)

    etc_ws = f"/etc/opt/microsoft/omsagent/{ws}/conf"
    _write(fs, f"{etc_ws}/omsadmin.conf", omsadmin_conf(host), oms.uid, oms.gid, 0o644)
    _write(
        fs,
        f"{etc_ws}/omsagent.conf",
        "<source>\n  type heartbeat_request\n</source>\n",
        oms.uid,
        oms.gid,
        0o644,
    )
    _symlink(fs, "/etc/opt/microsoft/omsagent/conf", f"{ws}/conf")
    if proxy_url is not None:
        _write(fs, PROXY_CONF, proxy_url, oms.uid, oms.gid, 0o600)
    cert = agent_cert(host, "current")
    _write(fs, OMS_CRT, cert.cert_pem, oms.uid, oms.gid, 0o644)
    _write(fs, OMS_KEY, cert.key_pem, oms.uid, oms.gid, 0o600)
    # A rotated certificate: the worker registered with the one before.
    registered = agent_cert(host, "before rotation") if p["cert_rotated"] else cert
    _write(fs, CURRENT_MOF, current_mof(host), oms.uid, oms.gid, 0o644)

    var_ws = f"/var/opt/microsoft/omsagent/{ws}"
    for sub in ("log", "run", "state", "tmp"):
        (fs / var_ws.lstrip("/") / sub).mkdir(parents=True, exist_ok=True)
        _symlink(fs, f"/var/opt/microsoft/omsagent/{sub}", f"{ws}/{sub}")
    _write(fs, f"{var_ws}/log/omsagent.log", omsagent_log(host), oms.uid, oms.gid, 0o644)
    state = f"{var_ws}/state/automationworker"
    _write(fs, f"{state}/oms.conf", oms_conf(host), nxa.uid, nxa.gid, 0o644)
    if p["update_management"]:
        auto_conf = worker_conf(host, diy=False, cert_thumbprint=registered.thumbprint)
        _write(fs, f"{state}/worker.conf", auto_conf, nxa.uid, nxa.gid, 0o644)
    if p["user_worker"]:
        _write(fs, diy_worker_conf(host), worker_conf(host, diy=True), nxa.uid, nxa.gid, 0o644)
    (fs / var_ws.lstrip("/") / "run" / "automationworker").mkdir(exist_ok=True)
    owners = {
        f"/etc/opt/microsoft/omsagent/{ws}": oms,
        etc_ws: oms,
        var_ws: oms,
        **{f"{var_ws}/{sub}": oms for sub in ("log", "run", "state", "tmp")},
        state: nxa,
        f"{var_ws}/run/automationworker": nxa,
    }
    if p["user_worker"] and not is_3x(host):
        owners[f"{state}/diy"] = nxa
    for other in p["other_workspaces"]:  # multi-homed: the other workspaces' own folders
        _write(fs, f"/etc/opt/microsoft/omsagent/{other}/conf/omsadmin.conf",
               omsadmin_conf(host).replace(ws, other), oms.uid, oms.gid, 0o644)  # fmt: skip
        for sub in ("log", "run", "state", "tmp"):
            (fs / f"var/opt/microsoft/omsagent/{other}/{sub}").mkdir(parents=True, exist_ok=True)
        owners[f"/var/opt/microsoft/omsagent/{other}"] = oms
        owners[f"/etc/opt/microsoft/omsagent/{other}"] = oms
    for path, owner in owners.items():
        os.chown(fs / path.lstrip("/"), owner.uid, owner.gid)
    log_mode = p["omsconfig_log_mode"]
    _write(fs, OMSCONFIG_LOG, omsconfig_log(host), oms.uid, oms.gid, log_mode)
    home = fs / "home" / "nxautomation"
    for sub in ("run", "state") if is_3x(host) else ("run",):
        (home / sub).mkdir(parents=True, exist_ok=True)
        os.chown(home / sub, nxa.uid, nxa.gid)
    os.chown(home, nxa.uid, nxa.gid)
    if is_3x(host) and p["user_worker"]:
        os.chown(fs / diy_worker_conf(host).lstrip("/"), nxa.uid, nxa.gid)
