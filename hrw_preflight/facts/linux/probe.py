"""The Linux probe: two remote commands per host, parsed into fact sections.

Command one reads the agent's files, the process table, hardware and pressure figures and the
tail of omsconfig.log; command two probes TCP 443 and TLS to the endpoints that command one
discovered, through the agent's proxy if it has one. Both are read-only shell scripts shipped
next to this module; values reach them as quoted arguments, never as code.
"""

from __future__ import annotations

import base64
import binascii
import configparser
import dataclasses
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from typing import Any

from hrw_preflight.facts.clock import CommandTiming, clock_data
from hrw_preflight.facts.ext_schema import WAAGENT_DIR
from hrw_preflight.facts.framing import (
    CommandResult,
    Tampered,
    Unreadable,
    decode_output,
    new_boundary,
    printable,
    split_sections,
    tampered_sections,
    utf8_policy,
)
from hrw_preflight.facts.kind import EXTENSION_SECTIONS, derive_kind
from hrw_preflight.facts.linux import agent_config, dsc_config
from hrw_preflight.facts.linux.extension import extension_sections
from hrw_preflight.facts.model import HostUnreachable, Section
from hrw_preflight.facts.params import ProbeParams
from hrw_preflight.facts.schema import conform
from hrw_preflight.hosts.proxy_conf import ProxyFormatError, proxy_password
from hrw_preflight.hosts.redact import holds_private_key

_CERT_BEGIN, _CERT_END = "-----BEGIN CERTIFICATE-----", "-----END CERTIFICATE-----"
_CIPHER = re.compile(r"Cipher is (?!\(NONE\))\S+")
OMSCONFIG_LOG = "/var/opt/microsoft/omsconfig/omsconfig.log"
# The accounts the agent runs as: the workers (nxautomation) and the daemon (omsagent).
ACCOUNTS = ("nxautomation", "omsagent")


Runner = Callable[..., CommandResult]


@dataclass(frozen=True)
class Block:
    """One section of the facts probe's output: what its command printed and its status.

    For a file the status is ``0``, ``missing``, ``denied``, ``symlink``, ``notfile`` or
    head's exit status; for a command, its exit status.
    """

    name: str
    body: str
    rc: str

    @property
    def raw(self) -> str:
        """Return the block as evidence: its text and the status printed after it."""
        return f"{self.body.rstrip()}\n(status {self.rc})"


def _block(name: str, encoded: str) -> Block:
    """Return the section ``name`` from its base64 body (what it printed, a newline, its
    status); raise ValueError when the body is not base64 (the probe never prints that)."""
    try:
        payload = base64.b64decode("".join(encoded.split()), validate=True)
    except binascii.Error:
        raise ValueError(f"the body of section '{name}' is not base64") from None
    body, _, rc = decode_output(payload).rpartition("\n")
    return Block(name, body, rc.strip())


def _text(result: CommandResult, stream: str = "stdout") -> str:
    data = result.stdout_bytes if stream == "stdout" else result.stderr_bytes
    return decode_output(data)


def _script(name: str) -> str:
    return resources.files("hrw_preflight.facts.linux").joinpath(name).read_text("utf-8")


def _failed_result(name: str, result: CommandResult) -> Section | None:
    """Return an error section when a probe command itself failed, else None."""
    if result.rc != 0:
        tail = printable((_text(result, "stderr") or _text(result)).strip()[-400:])
        return Section.failed(
            name, f"probe command exited {result.rc}: {tail}", printable(_text(result))
        )
    return None


def parse_meminfo(text: str) -> dict[str, int]:
    """Return /proc/meminfo figures in bytes, by field name."""
    values: dict[str, int] = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            values[key.strip()] = int(parts[0]) * (1024 if parts[1:2] == ["kB"] else 1)
    return values


_FILE_STATUS = {
    "denied": "permission denied or read error",
    "symlink": "it is a symbolic link (or lies under one) inside the agent's folders; links "
    "are never followed, a worker account could point one at a key",
    "notfile": "it is not a regular file",
    "key": "it holds a private key, which is never read into evidence",
}


def _workspaces(block: Block | None) -> list[str] | None:
    """Return the workspace folders' names (the agent's workspaces), or None if unlisted."""
    if block is None or block.rc != "0":
        return None
    return sorted({line.strip() for line in block.body.splitlines() if line.strip()})


def _worker(files: dict[str, Block], workspaces: Block | None) -> Section:
    """Return the ``worker`` section from the agent's configuration files and its workspace
    folders (``workspaces``: None when they could not be listed).

    The raw evidence lists each file with its status and size, not its body: what is
    judged is the parsed data, and a body could hold a secret the patterns miss.
    """
    folders = _workspaces(workspaces)
    raw = "\n".join(
        [
            f"== {path}: {b.rc if b.rc != '0' else 'read'}"
            + (f", {len(b.body.encode('utf-8', 'surrogateescape'))} bytes" if b.rc == "0" else "")
            for path, b in files.items()
            if "/microsoft/" in path or path.startswith("/home/")
        ]
        + [
            "== workspace folders under /var/opt/microsoft/omsagent: "
            + (", ".join(folders) or "none" if folders is not None else "could not be listed")
        ]
    )
    bad = [
        f"{p} ({_FILE_STATUS.get(b.rc, f'read failed, status {b.rc}')})"
        for p, b in files.items()
        if b.rc not in ("0", "missing")
    ]
    if bad:
        return Section.failed("worker", f"could not read {'; '.join(bad)}", raw)
    texts = {p: b.body for p, b in files.items() if b.rc == "0"}
    try:
        data = agent_config.discover_worker(texts)
    except (configparser.Error, ValueError) as exc:
        return Section.failed("worker", f"agent configuration is malformed: {exc}", raw)
    return Section("worker", {**data, "workspaces": folders}, raw=raw)


def agent_markers(files: dict[str, Block]) -> tuple[list[str] | None, str | None]:
    """Return (what shows the agent-based worker installed, None), or (None, why unknown).

    The markers are the OMS agent's onboarding (omsadmin.conf) and the automation worker's
    configuration (oms.conf): files that stay when the agent is stopped, so a stopped agent
    is still an agent-based worker that fails its checks, not a host without one. Files of
    /home/nxautomation are not markers: without the agent they are remnants (HRW-X04).
    """
    paths = [p for p in files if p.endswith("/omsadmin.conf") or p == agent_config.OMS_CONF]
    markers = [p for p in paths if files[p].rc == "0"]
    if markers:
        return markers, None
    bad = [f"{p} ({files[p].rc})" for p in paths if files[p].rc != "missing"]
    if bad:
        return None, f"could not read {', '.join(bad)}"
    return [], None


def _file_bytes(
    files: dict[str, Block], section: str, path: str
) -> tuple[bytes | None, Section | None]:
    """Return (the bytes of file ``path``, or None when it does not exist; None), or (None, an
    error section for ``section``) when it could not be read."""
    block = files.get(path)
    if block is None:
        return None, Section.failed(section, f"{path} missing from probe output")
    if block.rc == "missing":
        return None, None
    if block.rc != "0":
        reason = _FILE_STATUS.get(block.rc, f"read failed, status {block.rc}")
        return None, Section.failed(section, f"could not read {path} ({reason})")
    # The body was decoded as UTF-8 keeping every other byte as a surrogate: this gives the
    # file's bytes back exactly, whatever its encoding.
    return block.body.encode("utf-8", "surrogateescape"), None


def _dsc_config(files: dict[str, Block]) -> Section:
    """Return the ``dsc_config`` section: the nxOMSAutomationWorker settings of Current.mof."""
    path = dsc_config.CURRENT_MOF
    data, error = _file_bytes(files, "dsc_config", path)
    if error is not None:
        return error
    try:
        parsed = dsc_config.read_current_mof(data)
    except dsc_config.DscConfigError as exc:
        return Section.failed("dsc_config", f"{path}: {exc}", f"{len(data or b'')} bytes")
    if parsed["exists"] and parsed["settings"] is None and len(data or b"") >= MAX_FILE_BYTES:
        return Section.failed(
            "dsc_config",
            f"{path}: no nxOMSAutomationWorker instance in the first {MAX_FILE_BYTES} bytes, "
            "which is all the probe reads",
            f"{len(data or b'')} bytes",
        )
    raw = (
        f"== {path} ({parsed['encoding']}, {len(data or b'')} bytes)\nResourceSettings: "
        + json.dumps(parsed["settings"], sort_keys=True)
        if parsed["exists"]
        else f"== {path} does not exist"
    )
    return Section("dsc_config", parsed, raw=raw)


def _oms_cert(files: dict[str, Block]) -> Section:
    """Return the ``oms_cert`` section: the SHA-1 thumbprint of the agent's certificate."""
    path = dsc_config.OMS_CRT
    data, error = _file_bytes(files, "oms_cert", path)
    if error is not None:
        return error
    try:
        parsed = dsc_config.cert_thumbprint(data)
    except dsc_config.DscConfigError as exc:
        return Section.failed("oms_cert", str(exc), f"{len(data or b'')} bytes")
    raw = (
        f"== {path}\nsubject {parsed['subject']}\nSHA-1 thumbprint {parsed['sha1']}"
        if parsed["exists"]
        else f"== {path} does not exist"
    )
    return Section("oms_cert", parsed, raw=raw)


def _processes(blocks: dict[str, Block]) -> Section:
    ps, users = blocks.get("ps"), blocks.get("users")
    if ps is None or users is None:
        return Section.failed("processes", "process listing missing from probe output")
    raw = (
        f"$ ps -ww -eo pid,uid,user:32,args (agent processes)\n{ps.raw}\n"
        f"$ getent passwd {' '.join(ACCOUNTS)}\n{users.raw}"
    )
    if ps.rc != "0":
        return Section.failed("processes", f"ps failed (status {ps.rc})", raw)
    processes: list[dict[str, Any]] = []
    for line in ps.body.splitlines():
        fields = line.split(None, 3)
        if len(fields) < 4 or not fields[0].isdigit() or not fields[1].isdigit():
            return Section.failed("processes", f"unexpected ps line: {line[:120]!r}", raw)
        processes.append(
            {"pid": int(fields[0]), "uid": int(fields[1]), "user": fields[2], "args": fields[3]}
        )
    # getent prints the accounts it found and exits 2 when any of them does not exist.
    if users.rc not in ("0", "2"):
        return Section.failed("processes", f"getent passwd failed (status {users.rc})", raw)
    uids: dict[str, int | None] = dict.fromkeys(ACCOUNTS)
    for line in users.body.splitlines():
        entry = line.strip().split(":")
        if len(entry) < 3 or entry[0] not in uids or not entry[2].isdigit():
            return Section.failed("processes", "unexpected getent output", raw)
        uids[entry[0]] = int(entry[2])
    return Section("processes", {"processes": processes, "users": uids}, raw=raw)


def _omsconfig_log(blocks: dict[str, Block], params: ProbeParams) -> Section:
    block = blocks.get("omsconfig_log")
    if block is None:
        return Section.failed("omsconfig_log", "omsconfig.log block missing from probe output")
    lines = block.body.splitlines()
    if lines[:1] == ["state=missing"]:
        return Section(
            "omsconfig_log",
            {"path": OMSCONFIG_LOG, "exists": False, "matches": [], "bytes_scanned": 0},
            raw=block.raw,
        )
    if lines[:1] == ["state=denied"]:
        return Section.failed(
            "omsconfig_log", f"permission denied reading {OMSCONFIG_LOG}", block.raw
        )
    if len(lines) < 2 or not lines[0].startswith("size=") or not lines[-1].startswith("grep_rc="):
        return Section.failed("omsconfig_log", "garbled omsconfig.log output", block.raw)
    size_text, grep_rc = lines[0][5:].strip(), lines[-1][8:]
    if not size_text.isdigit() or grep_rc not in ("0", "1"):
        return Section.failed(
            "omsconfig_log", f"reading {OMSCONFIG_LOG} failed (grep status {grep_rc})", block.raw
        )
    matches = lines[1:-1]
    return Section(
        "omsconfig_log",
        {
            "path": OMSCONFIG_LOG,
            "exists": True,
            "matches": matches,
            "bytes_scanned": min(int(size_text), params.omsconfig_log_max_bytes),
        },
        raw=block.raw,
    )


def _hardware_and_pressure(files: dict[str, Block], blocks: dict[str, Block]) -> list[Section]:
    meminfo, loadavg, nproc = (
        files.get("/proc/meminfo"),
        files.get("/proc/loadavg"),
        blocks.get("nproc"),
    )
    raw = "\n".join(
        f"== {name}\n{b.body.strip()}"
        for name, b in (("/proc/meminfo", meminfo), ("/proc/loadavg", loadavg), ("nproc", nproc))
        if b is not None
    )
    if (
        meminfo is None
        or loadavg is None
        or nproc is None
        or "0" not in (meminfo.rc,)
        or loadavg.rc != "0"
        or nproc.rc != "0"
    ):
        reason = "could not read /proc/meminfo, /proc/loadavg or nproc"
        return [Section.failed("hardware", reason, raw), Section.failed("pressure", reason, raw)]
    mem = parse_meminfo(meminfo.body)
    cpus_text = nproc.body.strip()
    load_fields = loadavg.body.split()
    if (
        not cpus_text.isdigit()
        or "MemTotal" not in mem
        or "MemAvailable" not in mem
        or not load_fields
    ):
        reason = "unexpected /proc/meminfo, /proc/loadavg or nproc output"
        return [Section.failed("hardware", reason, raw), Section.failed("pressure", reason, raw)]
    cpus = int(cpus_text)
    load = float(load_fields[0])
    return [
        Section("hardware", {"logical_processors": cpus, "memory_bytes": mem["MemTotal"]}, raw=raw),
        Section(
            "pressure",
            {
                "cpu_load": load / max(cpus, 1),
                "memory_available_bytes": mem["MemAvailable"],
                "memory_total_bytes": mem["MemTotal"],
            },
            raw=raw,
        ),
    ]


def _tools(blocks: dict[str, Block]) -> Section:
    block = blocks.get("tools")
    if block is None or block.rc != "0":
        return Section.failed("tools", "tool lookup missing from probe output")
    found: dict[str, str | None] = {}
    for line in block.body.splitlines():
        name, sep, path = line.partition("=")
        if not sep or not name:
            return Section.failed("tools", f"unexpected tool line: {line[:80]!r}", block.raw)
        found[name] = path.strip() or None
    return Section("tools", {"found": found}, raw=block.raw)


def clock_section(host_text: str, window: tuple[float, float] | None, raw: str) -> Section:
    """Return the ``clock`` section: the host's UTC time (``date -u +%s``) against the
    controller's, computed as on Windows (:func:`hrw_preflight.facts.clock.clock_data`).

    ``window`` is the controller's time just before and after the command that read the
    host's clock.
    """
    text = host_text.strip()
    try:
        host_epoch = float(text)
    except ValueError:
        return Section.failed("clock", f"unexpected clock output: {text[:40]!r}", raw)
    timing = CommandTiming(*window) if window is not None else None
    try:
        return Section("clock", dict(clock_data(host_epoch, timing)), raw=raw)
    except Unreadable as exc:
        return Section.failed("clock", str(exc), raw)


FACT_SECTIONS = (
    "worker",
    "processes",
    "omsconfig_log",
    "hardware",
    "pressure",
    "tools",
    "clock",
    "dsc_config",
    "oms_cert",
    *EXTENSION_SECTIONS,
    "kind",
)
# The files HRW-L04 reads, judged in their own sections, not the worker's.
DSC_FILES = (dsc_config.CURRENT_MOF, dsc_config.OMS_CRT)
MAX_FILE_BYTES = 262144  # linux_facts.sh reads at most this much of a file (head -c)


def _split(output: str, boundary: str) -> tuple[dict[str, Block], dict[str, Block]]:
    """Return the file sections by path and the other sections by name.

    A file that holds a PEM private key is kept with status ``key`` and no body, so the key
    never reaches data or evidence. Raises :class:`Tampered` for broken framing and
    ValueError for output cut off inside a section or a body that is not base64.
    """
    framed = split_sections(output, boundary)
    if framed.cut is not None:
        raise ValueError(f"the probe output was cut off inside section '{framed.cut}'")
    files: dict[str, Block] = {}
    blocks: dict[str, Block] = {}
    for name, encoded in framed.sections.items():
        block = _block(name, encoded)
        if name.startswith("file:"):
            path = name[len("file:") :]
            if holds_private_key(block.body):
                block = Block(path, "", "key")
            files[path] = Block(path, block.body, block.rc)
        else:
            blocks[name] = block
    return files, blocks


def proxy_conf_secrets(output: str, boundary: str) -> list[str]:
    """Return the proxy passwords in the proxy.conf files of a facts command's output.

    Why: the collector registers them with the run's redactor before anything is written.
    The evidence never holds the files' bodies (see :func:`_worker`); this covers any other
    text that might echo a password.
    """
    try:
        files, _ = _split(output, boundary)
    except ValueError:  # Tampered is one: nothing parsed, nothing to register
        return []
    found = (proxy_password(files[p].body) for p in agent_config.PROXY_CONFS if p in files)
    return [p for p in found if p]


def parse_facts(
    result: CommandResult,
    params: ProbeParams,
    window: tuple[float, float] | None = None,
    *,
    boundary: str,
) -> dict[str, Section]:
    """Return the local sections (:data:`FACT_SECTIONS`) from the output of the facts
    command run with ``boundary``; every section is an error if the command failed, its
    output was cut off, or its framing was tampered with. ``window`` is the controller's
    time before and after the command."""
    names = FACT_SECTIONS
    output = _text(result)
    if result.rc != 0:
        failure = _failed_result("facts", result)
        return {n: Section.failed(n, str(failure and failure.error), "") for n in names}
    try:
        files, blocks = _split(output, boundary)
    except Tampered as exc:
        return tampered_sections(names, exc)
    except ValueError as exc:
        reason = f"probe output was cut short or garbled: {exc}"
        return {n: Section.failed(n, reason) for n in names}
    if "omsconfig_log" not in blocks:
        return {n: Section.failed(n, "probe output was cut short or garbled") for n in names}
    clock = blocks.get("clock")
    # The extension's files (/var/lib/waagent) are judged in the extension section only.
    agent_files = {
        p: b for p, b in files.items() if p not in DSC_FILES and not p.startswith(WAAGENT_DIR)
    }
    sections = [
        _worker(agent_files, blocks.get("workspaces")),
        _processes(blocks),
        _omsconfig_log(blocks, params),
        *_hardware_and_pressure(files, blocks),
        _tools(blocks),
        clock_section(clock.body, window, clock.raw)
        if clock and clock.rc == "0"
        else Section.failed("clock", "the host's clock could not be read"),
        _dsc_config(files),
        _oms_cert(files),
    ]
    processes = sections[1].data
    sections += extension_sections(
        files,
        blocks,
        None if processes is None else list(processes["processes"]),
        params.automation_account_url,
    )
    out = {s.name: conform(utf8_policy(s)) for s in sections}
    markers, unknown = agent_markers(files)
    out["kind"] = conform(derive_kind(markers, unknown, out))
    return out


# What the tunnel (linux_network.sh's python CONNECT, for an s_client that cannot use the
# proxy itself) says about the proxy, as the network section's tcp state.
_TUNNEL_TCP = {
    "proxy-refused": "proxy-refused",
    "unreachable": "unreachable",
    "timeout": "timeout",
    "error": "error",
}
# s_client refusing an option it does not have: 1.0.2 "unknown option -proxy", 1.1.1
# "s_client: Option unknown option -proxy_user", 3.x "s_client: Unknown option: -x".
_UNKNOWN_OPTION = re.compile(r"unknown option", re.I)


def certificates(lines: list[str]) -> list[str]:
    """Return the PEM certificates printed in ``lines``, in order.

    One pass over the lines: a regex that looks for each BEGIN's END costs quadratic time
    on output full of BEGIN lines, and a host chooses what it prints.
    """
    found: list[str] = []
    current: list[str] | None = None
    for line in lines:
        text = line.strip()
        if text == _CERT_BEGIN:
            current = [text]
        elif current is not None:
            current.append(text)
            if text == _CERT_END:
                found.append("\n".join(current))
                current = None
    return found


def _endpoint_result(lines: list[str], via_proxy: str | None) -> dict[str, Any]:
    """Return one endpoint's network facts from the lines the probe printed for it.

    A probe that could not be made (no way through the proxy, an option the host's
    openssl lacks) is ``tcp: error`` with the reason, never a network failure: it says
    nothing about the firewall.
    """
    text = "\n".join(lines)
    rc_lines = [line[5:] for line in lines if line.startswith("@@RC ")]
    rc = rc_lines[-1] if rc_lines else "?"
    # Only the first: the tunnel prints one before s_client starts, and nothing a server
    # sends can come before it.
    tunnel = next((line[9:] for line in lines if line.startswith("@@TUNNEL ")), None)
    chain = certificates(lines)
    connected = "CONNECTED(" in text
    lowered = text.lower()
    tls = "ok" if chain and _CIPHER.search(text) else "failed"
    state, _, said = (tunnel or "").partition(" ")
    if tunnel is not None and state != "ok":
        tcp = _TUNNEL_TCP.get(state, "error")
        if tcp == "error":
            said = f"the probe could not be made: {said}"
        return {
            "via_proxy": via_proxy,
            "tcp": tcp,
            "tls": "not-attempted",
            "detail": said[:300],
            "chain_pem": [],
        }
    if not connected and _UNKNOWN_OPTION.search(text):
        option = next(line for line in lines if _UNKNOWN_OPTION.search(line))
        return {
            "via_proxy": via_proxy,
            "tcp": "error",
            "tls": "not-attempted",
            "detail": (
                "the probe could not be made: the host's openssl s_client refused an option "
                f"({option.strip()[:120]})"
            ),
            "chain_pem": [],
        }
    if "connect failed" in lowered or "connect failure" in lowered:
        tcp, tls = "proxy-refused", "not-attempted"
    elif connected:
        tcp = "ok"
        if tls != "ok" and rc == "124":
            tls = "timed out"
    else:
        tls = "not-attempted"
        if rc == "124":
            tcp = "timeout"
        elif "refused" in lowered:
            tcp = "refused"
        elif "no route" in lowered or "unreachable" in lowered:
            tcp = "unreachable"
        elif "lookup" in lowered or "name or service not known" in lowered:
            tcp = "unresolved"
        elif rc == "?":
            tcp = "error"
        else:
            tcp = "failed"
    errors = [line for line in lines if re.search(r"error|errno|fail|refused|denied", line, re.I)]
    detail = "; ".join(errors[:3])[:300] or f"openssl s_client status {rc}"
    return {"via_proxy": via_proxy, "tcp": tcp, "tls": tls, "detail": detail, "chain_pem": chain}


def parse_network(
    result: CommandResult,
    roles: dict[str, str],
    via_proxy: str | None,
    direct: frozenset[str] = frozenset(),
) -> Section:
    """Return the ``network`` section from the output of the network command.

    ``roles`` maps endpoint host -> role; the hosts in ``direct`` were probed without the
    proxy. A host with no output at all is an error entry.
    """
    output = _text(result)
    if result.rc != 0:
        return _failed_result("network", result) or Section.failed("network", "probe failed")
    if "@@HRW-NO-OPENSSL" in output:
        return Section.failed(
            "network",
            "openssl is not installed on the host, so TCP 443 and TLS cannot be probed",
            output,
        )
    per_host: dict[str, list[str]] = {host: [] for host in roles}
    for line in output.splitlines():
        host, sep, rest = line.partition("|")
        if sep and host in per_host:
            per_host[host].append(rest)
    data: dict[str, Any] = {}
    for host, lines in per_host.items():
        entry = (
            _endpoint_result(lines, None if host in direct else via_proxy)
            if lines
            else {
                "via_proxy": None if host in direct else via_proxy,
                "tcp": "error",
                "tls": "not-attempted",
                "detail": "no output for this endpoint",
                "chain_pem": [],
            }
        )
        data[host] = {"role": roles[host], **entry}
    return conform(utf8_policy(Section("network", data, raw=output)))


def effective_worker(worker: dict[str, Any] | None, params: ProbeParams) -> dict[str, Any] | None:
    """Return the worker facts with the inventory's overrides applied (workspace id, endpoints).

    Why: the verdicts judge the endpoints the probe actually tested, so an override must show
    in the ``worker`` section, not only in what the network probe was told.
    """
    if worker is None and not (params.workspace_id or params.endpoints):
        return None
    effective = dict(
        worker
        or {
            "workspace_id": None,
            "version": None,
            "update_management": False,
            "user_worker": False,
            "proxy": None,
            "endpoints": {},
        }
    )
    if params.workspace_id:
        effective["workspace_id"] = params.workspace_id
    effective["endpoints"] = {**(effective.get("endpoints") or {}), **params.endpoint_overrides}
    return effective


def network_plan(
    worker: dict[str, Any] | None, params: ProbeParams
) -> tuple[dict[str, str], str | None, str]:
    """Return (endpoint host -> role, proxy host:port or None, proxy.conf path for credentials)
    for the effective worker facts; a proxy override wins over the host's proxy.conf."""
    roles: dict[str, str] = {}
    for role, host in ((worker or {}).get("endpoints") or {}).items():
        if host and host not in roles:
            roles[host] = role
    proxy = (worker or {}).get("proxy")
    if params.proxy is not None:
        override = agent_config.parse_proxy(params.proxy, "inventory value hrw_proxy")
        if override is not None and override.port is None:
            raise ProxyFormatError("inventory value hrw_proxy names no port: write host:port")
        return roles, (f"{override.host}:{override.port}" if override else None), ""
    if proxy:
        if proxy.get("port") is None:
            raise ProxyFormatError(
                f"{proxy.get('path') or 'proxy.conf'} names no port, and the probe cannot "
                "tell which one the agent uses: write host:port"
            )
        creds = str(proxy.get("path") or "") if proxy["has_credentials"] else ""
        return roles, f"{proxy['host']}:{proxy['port']}", creds
    return roles, None, ""


def collect(
    run: Runner, params: ProbeParams, secrets: list[str] | None = None
) -> dict[str, Section]:
    """Return all Linux sections of one host, asking it at most two commands.

    ``run(command, *args)`` runs one remote command (testinfra's ``host.run``). The proxy
    passwords found on the host are appended to ``secrets``, for the run's redactor.
    """
    before = time.time()
    boundary = new_boundary()
    facts = run(
        "sh -c %s hrw-facts %s %s",
        _script("linux_facts.sh"),
        boundary,
        str(params.omsconfig_log_max_bytes),
    )
    if secrets is not None:
        secrets.extend(proxy_conf_secrets(_text(facts), boundary))
    sections = parse_facts(facts, params, (before, time.time()), boundary=boundary)
    worker = sections["worker"].data
    extension = sections["extension"].data or {}
    ext_roles = {h: r for r, h in (extension.get("endpoints") or {}).items() if h}
    if worker is None and not (params.workspace_id or params.endpoints or ext_roles):
        sections["network"] = Section.failed(
            "network", f"endpoints unknown: {sections['worker'].error}"
        )
        return sections
    worker = effective_worker(worker, params)
    if sections["worker"].data is not None:  # an unreadable worker section stays an error
        sections["worker"] = dataclasses.replace(sections["worker"], data=worker)
    try:
        roles, proxy, creds = network_plan(worker, params)
    except ProxyFormatError as exc:  # its message quotes no part of the value
        sections["network"] = Section.failed("network", str(exc))
        return sections
    # The extension's own proxy (protected Proxy_URL) cannot be read on Linux: its endpoints
    # go through hrw_proxy when the inventory gives one, else directly, never through the
    # agent's proxy.conf.
    direct = {h for h in ext_roles if h not in roles} if params.proxy is None else set()
    for host, role in ext_roles.items():
        roles.setdefault(host, role)
    if not roles:
        sections["network"] = Section("network", {}, raw="no endpoints to probe")
        return sections
    try:
        network = run(
            "sh -c %s hrw-net %s %s %s" + " %s" * len(roles),
            _script("linux_network.sh"),
            f"{params.connect_timeout_s:g}",
            proxy or "",
            creds,
            *(f"={h}" if h in direct else h for h in roles),
        )
    except HostUnreachable as exc:
        sections["network"] = Section.failed(
            "network", f"connection lost during the network probe: {exc}"
        )
        return sections
    sections["network"] = parse_network(network, roles, proxy, frozenset(direct))
    return sections
