"""Linux probe output as a real host prints it, built from parts so tests can vary one fact.

The text follows the exact framing of ``hrw_preflight/facts/linux/linux_facts.sh`` (marker
lines with the run's boundary around a base64 body: what the section printed, a newline and
its status) and ``linux_network.sh``; the parser under test turns it into sections. The
encoding is written here independently of the parser's code.
"""

from __future__ import annotations

import base64
import codecs
import hashlib
import json
from dataclasses import dataclass, field
from functools import cache

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from tests.pki_samples import make_cert

WS = "3f6c2b1a-9d4e-4c7b-8a21-5e0f6d7c8b9a"
VERSION = "1.7.4.0"
PROXY_CONF = "/etc/opt/microsoft/omsagent/proxy.conf"
CODE = (
    "/opt/microsoft/omsconfig/modules/nxOMSAutomationWorker/DSCResources/"
    "MSFT_nxOMSAutomationWorkerResource/automationworker/worker"
)
STATE = "/var/opt/microsoft/omsagent/state/automationworker"
CURRENT_MOF = "/etc/opt/omi/conf/omsconfig/configuration/Current.mof"
OMS_CRT = "/etc/opt/microsoft/omsagent/certs/oms.crt"
DIY = f"/var/opt/microsoft/omsagent/{WS}/state/automationworker/diy/worker.conf"
AGENTSVC = f"{WS}.agentsvc.azure-automation.net"
OMS = f"{WS}.oms.opinsights.azure.com"
ODS = f"{WS}.ods.opinsights.azure.com"
JRDS = "eus-jobruntimedata-prod-su1.azure-automation.net"
BOUNDARY = "HRW" + "5a" * 16  # what the controller passes the probe for one run


def section(name: str, body: str, rc: str = "0", boundary: str = BOUNDARY) -> str:
    """Return one framed section as linux_facts.sh prints it (body and status, base64)."""
    payload = base64.encodebytes(f"{body}\n{rc}".encode("utf-8", "surrogateescape"))
    return f"{boundary} BEGIN {name}\n{payload.decode('ascii')}{boundary} END {name}\n"


def file_bytes(path: str, data: bytes | None, rc: str = "0", boundary: str = BOUNDARY) -> str:
    """Return the section linux_facts.sh prints for a file read as bytes (``data`` None: the
    file does not exist; ``rc`` another status, e.g. denied, with no body)."""
    if data is None or rc != "0":
        return section(
            f"file:{path}", "", "missing" if data is None and rc == "0" else rc, boundary
        )
    payload = base64.encodebytes(data + f"\n{rc}".encode())
    return f"{boundary} BEGIN file:{path}\n{payload.decode('ascii')}{boundary} END file:{path}\n"


@dataclass
class Out:
    """A finished command, as testinfra reports it."""

    stdout: str
    rc: int = 0
    stderr: str = ""

    @property
    def stdout_bytes(self) -> bytes:
        """Return stdout as the bytes the host sent."""
        return self.stdout.encode("utf-8", "surrogateescape")

    @property
    def stderr_bytes(self) -> bytes:
        """Return stderr as the bytes the host sent."""
        return self.stderr.encode("utf-8", "surrogateescape")


def omsadmin(ws: str = WS) -> str:
    """Return an omsadmin.conf in the agent's key order."""
    return "\n".join(
        [
            f"WORKSPACE_ID={ws}",
            "AGENT_GUID=0b7e1a52-7d0c-4a8e-9a4b-2f1c3d4e5f60",
            "LOG_FACILITY=local0",
            f"CERTIFICATE_UPDATE_ENDPOINT=https://{ws}.oms.opinsights.azure.com/"
            "ConfigurationService.Svc/RenewCertificate",
            "URL_TLD=opinsights.azure.com",
            f"DSC_ENDPOINT=https://eus-agentservice-prod-1.azure-automation.net/Accounts/{ws}/"
            "Nodes(AgentId='0b7e1a52-7d0c-4a8e-9a4b-2f1c3d4e5f60')",
            f"OMS_ENDPOINT=https://{ws}.ods.opinsights.azure.com/OperationalData.svc/"
            "PostJsonDataItems",
            "AZURE_RESOURCE_ID=",
            "OMSCLOUD_ID=",
            "UUID=4C4C4544-0042-3510-8050-B4C04F4E3532",
            "",
        ]
    )


def oms_conf(auto: bool = True, user: bool = True) -> str:
    """Return oms.conf naming the auto-registered and/or user worker."""
    lines = ["[oms-worker-conf]"]
    if auto:
        lines.append(f"auto_registered_worker_conf_path = {STATE}/worker.conf")
    if user:
        lines.append(f"manually_registered_worker_conf_path = {DIY}")
    lines += [
        "",
        "[oms-global]",
        f"resource_version = {VERSION}",
        f"hybrid_worker_path = {CODE}/hybridworker.py",
        f"workspace_id = {WS}",
        "disable_worker_creation = False",
        "",
    ]
    return "\n".join(lines)


def oms_crt(name: str = "current") -> str:
    """Return a PEM certificate standing for the agent's oms.crt (``name`` picks one of
    several, e.g. the one before a rotation); the same name gives the same certificate."""
    return _cert(name)


@cache
def _cert(name: str) -> str:
    return make_cert(f"oms-agent-{name}", None, ca=False).pem


def thumbprint(pem: str) -> str:
    """Return a certificate's SHA-1 thumbprint as the agent's tools print it."""
    der = x509.load_pem_x509_certificate(pem.encode()).public_bytes(Encoding.DER)
    return hashlib.sha1(der, usedforsecurity=False).hexdigest().upper()


def current_mof(
    ws: str = WS, updates: bool = True, automation: bool = True, encoding: str = "utf-16-le"
) -> bytes:
    """Return a Current.mof with the nxOMSAutomationWorker instance, encoded as the agent
    writes it (``utf-16-le`` with a byte-order mark, or ``utf-8``)."""
    settings = [
        {
            "WorkspaceId": ws,
            "AzureDnsAgentSvcZone": "azure-automation.net",
            "Solutions": {
                "Updates": {"Enabled": updates},
                "AzureAutomation": {"Enabled": automation},
            },
        }
    ]
    value = json.dumps(settings, separators=(",", ":")).replace('"', '\\"')
    text = (
        "/*\n@TargetNode='localhost'\n*/\n\n"
        "instance of MSFT_nxFileResource as $MSFT_nxFileResource1ref\n{\n"
        ' ResourceID = "[nxFile]Marker";\n DestinationPath = "/tmp/marker";\n'
        ' ModuleName = "nx";\n ModuleVersion = "1.0";\n};\n\n'
        "instance of MSFT_nxOMSAutomationWorkerResource as "
        "$MSFT_nxOMSAutomationWorkerResource1ref\n{\n"
        ' ResourceID = "[nxOMSAutomationWorker]OMSAutomationWorker";\n'
        f' ResourceSettings = "{value}";\n'
        ' ModuleName = "nxOMSAutomationWorker";\n ModuleVersion = "1.6.8.0";\n};\n'
    )
    if encoding == "utf-16-le":
        return codecs.BOM_UTF16_LE + text.encode("utf-16-le")
    return text.encode(encoding)


def worker_conf(cert_thumbprint: str | None = None) -> str:
    """Return a worker.conf with the JRDS and registration endpoints (and the thumbprint of
    the certificate it was registered with, when given)."""
    return "\n".join(
        [
            "[worker-required]",
            "jrds_cert_path = /var/opt/microsoft/omsagent/state/automationworker"
            "/worker_certificate.crt",
            f"jrds_base_uri = https://{JRDS}",
            "account_id = 6a1d2c3b-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
            "",
            "[oms-metadata]",
            f"workspace_id = {WS}",
            f"registration_endpoint = https://{AGENTSVC}/accounts/{WS}",
            *([f"jrds_cert_thumbprint = {cert_thumbprint}"] if cert_thumbprint else []),
            "",
        ]
    )


def process_lines(
    owner: tuple[int, str] = (998, "nxautomation"),
    auto: bool = True,
    user: bool = True,
    agent: bool = True,
    daemon: tuple[int, str] = (997, "omsagent"),
) -> list[str]:
    """Return ps lines (pid uid user args) of a running agent and its workers."""
    uid, name = owner
    lines = []
    if agent:
        lines.append(
            f"  411 {daemon[0]:5d} {daemon[1]}  /opt/microsoft/omsagent/ruby/bin/ruby "
            f"/opt/microsoft/omsagent/bin/omsagent -d /var/opt/microsoft/omsagent/{WS}"
            f"/run/omsagent.pid -o /var/opt/microsoft/omsagent/{WS}/log/omsagent.log "
            f"-c /etc/opt/microsoft/omsagent/{WS}/conf/omsagent.conf"
        )
        lines.append(
            f" 8567 {uid} {name} python {CODE}/main.py {STATE}/oms.conf rworkspace:{WS} {VERSION}"
        )
        if auto:
            lines.append(
                f" 8593 {uid} {name} python {CODE}/hybridworker.py {STATE}/worker.conf"
                f" managed rworkspace:{WS} rversion:{VERSION}"
            )
        if user:
            lines.append(
                f" 8595 {uid} {name} python {CODE}/hybridworker.py {DIY} managed "
                f"rworkspace:{WS} rversion:{VERSION}"
            )
    return lines


HANDLER = "Microsoft.Azure.Automation.HybridWorker.HybridWorkerForLinux"
EXT_DIR = f"/var/lib/waagent/{HANDLER}-1.1.13"
ACCOUNT_URL = "https://0f7c.jrds.eus.azure-automation.net/automationAccounts/0f7c"
CHALLENGE = "Basic realm=/var/opt/azcmagent/tokens/9b1c.key"


def ext_settings(url: str = ACCOUNT_URL) -> str:
    """Return a guest agent <seq>.settings file of the hybrid worker extension."""
    return (
        '{"runtimeSettings":[{"handlerSettings":{"protectedSettingsCertThumbprint":"A1B2",'
        '"protectedSettings":"MIIB-encrypted","publicSettings":{"AutomationAccountURL":"'
        + url
        + '"}}}]}'
    )


def ext_status(status: str = "success", message: str = "Enabled the extension") -> str:
    """Return a guest agent <seq>.status file (a JSON array; element 0 is read)."""
    return (
        '[{"version":"1.0","timestampUTC":"2026-12-01T10:00:00Z","status":{"name":"'
        + HANDLER
        + '","operation":"Enable","status":"'
        + status
        + '","code":0,"formattedMessage":{"lang":"en-US","message":"'
        + message
        + '"},"substatus":[{"name":"HybridWorker","status":"'
        + status
        + '","code":0,"formattedMessage":{"lang":"en-US","message":"[2026-12-01] '
        + message
        + '"}}]}}]'
    )


@dataclass
class Extension:
    """The hybrid worker extension on a Linux host, as the probe's sections show it."""

    handler_state: str | None = "Enabled"
    status: str | None = "success"
    message: str = "Enabled the extension"
    seq: int = 3
    seq_source: str = "mrseq"
    settings: str | None = field(default_factory=ext_settings)
    hwd: tuple[str, str, str] = ("loaded", "active", "enabled")
    hwe_uid: int | None = 995
    hwe_running: bool = True


@dataclass
class LinuxHost:
    """A Linux worker's state; ``facts_output()`` prints what the facts probe would."""

    cpus: int = 2
    mem_kb: int = 8 * 1024 * 1024
    avail_kb: int = 6 * 1024 * 1024
    load: float = 0.2
    auto: bool = True
    user: bool = True
    agent: bool = True
    owner: tuple[int, str] = (998, "nxautomation")
    nxautomation_uid: int | None = 998
    omsagent_uid: int | None = 997
    daemon: tuple[int, str] = (997, "omsagent")
    proxy: str | None = None
    log_lines: list[str] = field(default_factory=list)
    log_state: str = "present"
    files_rc: dict[str, str] = field(default_factory=dict)
    missing_tools: tuple[str, ...] = ()
    clock_epoch: int = 1_795_770_000  # the host's `date -u +%s`
    # (old, new) text replacements applied to every section's body before it is encoded.
    replacements: tuple[tuple[str, str], ...] = ()
    file_bodies: dict[str, str] = field(default_factory=dict)  # path -> body, read with rc 0
    boundary: str = BOUNDARY
    # Workspace folders besides the host's own, and other workspaces an nxautomation worker
    # manager runs for (multi-homing).
    other_workspaces: tuple[str, ...] = ()
    other_workspace_managers: tuple[str, ...] = ()
    # DSC configuration: None follows ``auto``/``user``; bytes are the file as it is.
    mof: bytes | None = None
    mof_state: str = ""  # "missing" or "denied" overrides ``mof``
    cert: str = "current"  # oms.crt: one of oms_crt()'s names, or "missing" / "denied"
    registered_cert: str = "current"  # the certificate whose thumbprint worker.conf holds
    extra_ps: list[str] = field(default_factory=list)  # more ps lines (pid uid user args)
    oms_conf_missing: bool = False
    version_missing: bool = False
    # The agent-based worker's files (omsadmin.conf, oms.conf ...); False for a host without it.
    agent_installed: bool = True
    ext: Extension | None = None
    arc: bool = False
    himds_running: bool = True
    # IMDS's answer: None (nothing answers), 200 (a token) or 400 (no system identity).
    imds: int | None = None
    waagent: str = "missing"  # missing | ok | denied
    remnants: tuple[str, ...] = ()  # remnant_agent=... / remnant_extension=... lines

    def window(self, skew_s: float = 0.0) -> tuple[float, float]:
        """Return a controller time window around the host's clock, ``skew_s`` behind it."""
        return (self.clock_epoch - skew_s - 0.2, self.clock_epoch - skew_s + 0.2)

    def section(self, name: str, body: str, rc: str = "0") -> str:
        """Return one framed section of this host's output, with its replacements made."""
        for old, new in self.replacements:
            body = body.replace(old, new)
        return section(name, body, rc, self.boundary)

    def _file(self, path: str, body: str | None, rc: str = "0") -> str:
        if path in self.file_bodies:
            return self.section(f"file:{path}", self.file_bodies[path])
        rc = self.files_rc.get(path, rc)
        if body is None:
            return self.section(f"file:{path}", "", "missing")
        return self.section(f"file:{path}", body if rc == "0" else "", rc)

    def facts_output(self) -> str:
        """Return the stdout of linux_facts.sh on this host."""
        _file = self._file
        section = self.section
        agent = self.agent_installed
        parts = [
            _file("/etc/opt/microsoft/omsagent/conf/omsadmin.conf", omsadmin() if agent else None),
            _file(PROXY_CONF, self.proxy, self.files_rc.get(PROXY_CONF, "0")),
            _file("/etc/opt/microsoft/omsagent/conf/proxy.conf", None),
            _file(
                f"{STATE}/oms.conf",
                None if self.oms_conf_missing or not agent else oms_conf(self.auto, self.user),
            ),
            _file(
                f"{STATE}/worker.conf",
                worker_conf(thumbprint(oms_crt(self.registered_cert)))
                if self.auto and agent
                else None,
            ),
        ]
        if self.user and agent:
            parts.append(_file(DIY, worker_conf()))
        parts.append(
            _file(
                "/opt/microsoft/omsconfig/modules/nxOMSAutomationWorker/VERSION",
                None if self.version_missing else VERSION,
            )
        )
        parts.append(
            _file(
                "/proc/meminfo",
                f"MemTotal:       {self.mem_kb} kB\nMemFree:        "
                f"{self.avail_kb} kB\nMemAvailable:   {self.avail_kb} kB",
            )
        )
        parts.append(_file("/proc/loadavg", f"{self.load:.2f} 0.10 0.05 1/123 4567"))
        parts.append(section("workspaces", "".join(f"{w}\n" for w in (WS, *self.other_workspaces))))
        parts.append(section("nproc", f"{self.cpus}\n"))
        accounts = "".join(
            f"{name}:x:{uid}:{uid}::/home/{name}:/bin/bash\n"
            for name, uid in (
                ("nxautomation", self.nxautomation_uid),
                ("omsagent", self.omsagent_uid),
            )
            if uid is not None
        )
        missing = self.nxautomation_uid is None or self.omsagent_uid is None
        parts.append(section("users", accounts, "2" if missing else "0"))
        lines = process_lines(
            self.owner, self.auto, self.user, self.agent and self.agent_installed, self.daemon
        )
        if self.ext is not None and self.ext.hwe_running and self.ext.hwe_uid is not None:
            lines.append(f"  812 {self.ext.hwe_uid} hweautomation /usr/bin/python3 worker")
        if self.arc and self.himds_running:
            lines.append("  301   990 himds    /opt/azcmagent/bin/himds")
        uid, name = self.owner
        lines += self.extra_ps
        lines += [
            f" 9{i:03d} {uid} {name} python {CODE}/main.py {STATE}/oms.conf "
            f"rworkspace:{ws} {VERSION}"
            for i, ws in enumerate(self.other_workspace_managers)
        ]
        ps = "".join(f"{line}\n" for line in lines)
        parts.append(section("ps", ps))
        if self.log_state == "present":
            body = "\n".join(
                ["size=52311", *self.log_lines, f"grep_rc={0 if self.log_lines else 1}"]
            )
        else:
            body = f"state={self.log_state}"
        parts.append(section("omsconfig_log", f"{body}\n"))
        tools = "".join(
            f"{t}={'' if t in self.missing_tools else '/usr/bin/' + t}\n"
            for t in ("python3", "python2", "python", "openssl", "sudo", "curl")
        )
        parts.append(section("tools", tools))
        parts += self.extension_parts()
        parts.append(section("clock", f"{self.clock_epoch}\n"))
        mof = self.mof if self.mof is not None else current_mof(WS, self.auto, self.user)
        mof_rc = "0" if self.mof_state in ("", "missing") else self.mof_state
        parts.append(self._bytes(CURRENT_MOF, None if self.mof_state == "missing" else mof, mof_rc))
        cert = None if self.cert == "missing" else oms_crt(self.cert).encode()
        parts.append(self._bytes(OMS_CRT, cert, "denied" if self.cert == "denied" else "0"))
        return "".join(parts)

    def _bytes(self, path: str, data: bytes | None, rc: str) -> str:
        """Return a file read as bytes, unless ``file_bodies``/``files_rc`` say otherwise."""
        if path in self.file_bodies or path in self.files_rc:
            return self._file(path, data.decode("utf-8", "surrogateescape") if data else None)
        return file_bytes(path, data, rc, self.boundary)

    def extension_parts(self) -> list[str]:
        """Return the sections the extension part of linux_facts.sh prints on this host."""
        ext, section = self.ext, self.section
        scan = [f"waagent={'ok' if ext is not None else self.waagent}"]
        if ext is not None:
            scan += [f"dir={EXT_DIR}", f"newest={EXT_DIR}"]
            scan += [f"seq={ext.seq}", f"seq_source={ext.seq_source}"]
        scan.append(f"azcmagent={'dir' if self.arc else 'missing'}")
        scan += list(self.remnants)
        parts = [section("ext_scan", "".join(f"{line}\n" for line in scan))]
        load, active, enabled = "not-found", "inactive", "not-found"
        if ext is not None:
            parts.append(self._file(f"{EXT_DIR}/config/HandlerState", ext.handler_state))
            parts.append(self._file(f"{EXT_DIR}/config/{ext.seq}.settings", ext.settings))
            status = ext_status(ext.status, ext.message) if ext.status else None
            parts.append(self._file(f"{EXT_DIR}/status/{ext.seq}.status", status))
            load, active, enabled = ext.hwd
        parts.append(section("hwd", f"load={load}\nactive={active}\nenabled={enabled}\n"))
        uid = ext.hwe_uid if ext is not None else None
        user = f"hweautomation:x:{uid}:{uid}::/home/hweautomation:/bin/bash\n"
        parts.append(section("hwe_user", "", "2") if uid is None else section("hwe_user", user))
        if self.imds is None:
            imds = "curl: (7) Failed to connect to 169.254.169.254 port 80: Network is unreachable"
            imds += "\nstatus=\ntoken=0\n"
        elif self.imds == 200:
            imds = "status=200\ntoken=1\n"  # what the probe prints: never the token
        else:
            imds = f'status={self.imds}\ntoken=0\nerror="error_description":"Identity not found"\n'
        parts.append(section("imds", imds))
        if self.arc:
            if self.himds_running:
                arc = f"status=401\ntoken=0\nchallenge={CHALLENGE}\n"
            else:
                arc = "curl: (7) Failed to connect to localhost port 40342: Connection refused"
                arc += "\nstatus=\ntoken=0\n"
            parts.append(section("arc_identity", arc))
        return parts


def openssl_ok(host: str, chain: list[str]) -> list[str]:
    """Return the lines openssl s_client prints for a completed handshake."""
    lines = ["CONNECTED(00000003)", "---", "Certificate chain"]
    for i, pem in enumerate(chain):
        lines += [f" {i} s:CN = cert{i}", *pem.strip().splitlines()]
    lines += [
        "---",
        "SSL handshake has read 3120 bytes and written 402 bytes",
        "New, TLSv1.3, Cipher is TLS_AES_256_GCM_SHA384",
        "DONE",
        "@@RC 0",
    ]
    return [f"{host}|{line}" for line in lines]


def openssl_timeout(host: str) -> list[str]:
    """Return what the probe prints when the connect timed out (killed by timeout)."""
    return [f"{host}|@@RC 124"]
