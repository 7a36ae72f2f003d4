"""How the suite fails: dead, hanging and misbehaving hosts, and bad input, against the lab.

Every case runs the suite as an operator does (a subprocess) and reads its JUnit back. The
rule checked throughout: a host that cannot be read ends in errors that say why, never in a
pass, and it costs one connection attempt and bounded time. Faulty hosts are the extra
profiles of ``lab/profiles/extra/`` started next to the default fleet (``lab/sidecar.py``),
which is left as it was.
"""

from __future__ import annotations

import json
import re
import resource
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hrw_preflight.facts.collector import gather_facts, probe_host
from hrw_preflight.facts.ext_schema import EXTENSION_ROLES
from hrw_preflight.facts.framing import new_boundary
from hrw_preflight.facts.params import ProbeParams
from hrw_preflight.facts.windows.probe import build_invocation, script_text
from hrw_preflight.hosts.connections import ConnectOptions, close_host, open_host
from hrw_preflight.hosts.selection import parse_hosts_option
from hrw_preflight.hosts.targets import HostDefaults
from lab import sidecar
from lab.fleet import Host
from lab.hostexec import run_in_host
from lab.paths import LabPaths
from lab.profiles import PROFILES_DIR
from lab.sshkeys import write_keypair
from tests.lab.host_logs import activity
from tests.lab.suite_run import (
    INVENTORY,
    ROOT,
    SuiteRun,
    host_vars,
    read_inventory,
    run_suite,
    write_inventory,
)

pytestmark = pytest.mark.lab

PATHS = LabPaths()
EXTRA = [
    "linux-ssh-hang",
    "linux-ssh-close-mid-probe",
    "linux-log-unreadable",
    "linux-scratch",
    "windows-winrm-hang",
    "linux-ssh-flood",
    "windows-winrm-trickle",
]
MIN_FLEET = 50  # hosts in the dead-and-hanging run, at least (the default fleet may be larger)
CONNECT_TIMEOUT = 3
COMMAND_TIMEOUT = 8
LOG = "/var/opt/microsoft/omsconfig/omsconfig.log"
CLASS_LINE = "The specified class does not exist.."


class CountingListener:
    """A TCP port on the lab bridge that accepts connections and closes them at once.

    It stands for a dead service (``kex_exchange_identification: Connection closed``) and
    counts how often the suite tried to connect to it.
    """

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("10.213.0.1", 0))
        self.sock.listen(16)
        self.port = int(self.sock.getsockname()[1])
        self.accepted = 0
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            conn.close()

    def close(self) -> None:
        """Stop listening."""
        self.sock.close()


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("10.213.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def extra() -> Iterator[sidecar.Sidecar]:
    """Start the extra failure-mode hosts next to the fleet; remove them afterwards."""
    hosts = sidecar.extra_hosts(EXTRA)
    started = sidecar.start(PATHS, hosts)
    try:
        yield started
    finally:
        sidecar.stop(PATHS, hosts)
        started.inventory.unlink(missing_ok=True)  # it holds the WinRM password


def _extra_vars(extra: sidecar.Sidecar, name: str) -> dict[str, Any]:
    for group in read_inventory(extra.inventory)["all"]["children"].values():
        if name in (group.get("hosts") or {}):
            return dict(group["hosts"][name])
    raise KeyError(name)


def _lab_groups() -> tuple[dict[str, Any], dict[str, Any]]:
    children = read_inventory()["all"]["children"]
    return dict(children["linux"]["hosts"] or {}), dict(children["windows"]["hosts"] or {})


def _errors_say(run: SuiteRun, host: str, pattern: str) -> None:
    """Assert every check of ``host`` ended as an error whose message matches ``pattern``."""
    outcomes = run.outcomes.get(host, [])
    assert outcomes, f"{host}: no checks ran\n{run.output[-2000:]}"
    assert run.kinds(host) == {"error"}, (host, sorted(run.kinds(host)))
    for outcome in outcomes:
        assert re.search(pattern, outcome.message, re.I), (host, pattern, outcome.message[:400])


# --- dead and hanging hosts in a run of 50 or more hosts ---------------------------------


@pytest.fixture(scope="module")
def big_fleet(extra: sidecar.Sidecar) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """Return (linux, windows) inventory hosts of the running fleet plus, where it is smaller,
    copies of its profiles started for this module, so that with the dead and hanging hosts
    the run has at least :data:`MIN_FLEET` hosts."""
    linux, windows = _lab_groups()
    copies = sidecar.fleet_copies(max(0, MIN_FLEET - 3 - len(linux) - len(windows)))
    started = sidecar.start(PATHS, copies)
    try:
        children = read_inventory(started.inventory)["all"]["children"]
        linux.update(children["linux"]["hosts"] or {})
        windows.update(children["windows"]["hosts"] or {})
        yield linux, windows
    finally:
        sidecar.stop(PATHS, copies)
        started.inventory.unlink(missing_ok=True)  # it holds the WinRM password


def test_dead_and_hanging_hosts_cost_one_attempt_and_bounded_time(
    extra: sidecar.Sidecar,
    big_fleet: tuple[dict[str, Any], dict[str, Any]],
    tmp_path: Path,
) -> None:
    linux, windows = big_fleet
    timeouts = [
        f"--hrw-connect-timeout={CONNECT_TIMEOUT}",
        f"--hrw-command-timeout={COMMAND_TIMEOUT}",
    ]
    normal = run_suite(
        [f"--ansible-inventory={write_inventory(tmp_path / 'ok.yml', linux, windows)}",
         "--hosts=ansible://all", *timeouts],
        tmp_path / "ok",
    )  # fmt: skip
    assert normal.returncode in (0, 1), normal.output[-3000:]
    reachable = len(linux) + len(windows)
    assert reachable >= MIN_FLEET - 3
    assert len(normal.outcomes) == reachable

    dead = CountingListener()
    hang = next(h for h in extra.hosts if h.name == "linux-ssh-hang")
    logins_before = activity(PATHS, hang).connections
    try:
        faulty_linux = {
            **linux,
            "dead-ssh": {**host_vars("linux-healthy"), "ansible_host": "10.213.0.1",
                         "ansible_port": dead.port},
            "linux-ssh-hang": _extra_vars(extra, "linux-ssh-hang"),
        }  # fmt: skip
        faulty_linux["linux-ssh-flood"] = _extra_vars(extra, "linux-ssh-flood")
        faulty_windows = {
            **windows,
            "windows-winrm-hang": _extra_vars(extra, "windows-winrm-hang"),
            "windows-winrm-trickle": _extra_vars(extra, "windows-winrm-trickle"),
        }
        inventory = write_inventory(tmp_path / "faulty.yml", faulty_linux, faulty_windows)
        run = run_suite(
            [f"--ansible-inventory={inventory}", "--hosts=ansible://all", *timeouts,
             "--hrw-max-output-mb=16"],
            tmp_path / "faulty",
        )  # fmt: skip
    finally:
        dead.close()
    assert run.returncode == 1, run.output[-3000:]
    assert len(run.outcomes) == reachable + 5  # dead, ssh hang, flood, WinRM hang, trickle
    _errors_say(run, "dead-ssh", r"ssh failed: .*(closed|reset)")
    _errors_say(run, "linux-ssh-hang", rf"no answer within {COMMAND_TIMEOUT} s")
    _errors_say(run, "windows-winrm-hang", r"no answer|timed out|did not finish")
    _errors_say(run, "linux-ssh-flood", r"printed more than 16 MB for one command")
    _errors_say(run, "windows-winrm-trickle", r"did not finish within")
    # One attempt per host per run, however many checks the host has.
    assert dead.accepted == 1
    assert activity(PATHS, hang).connections - logins_before == 1
    # The faults cost at most the timeouts on top of the normal run.
    budget = normal.seconds + CONNECT_TIMEOUT + COMMAND_TIMEOUT + 10
    assert run.seconds <= budget, (run.seconds, normal.seconds)
    # The other hosts are judged as without the faulty ones.
    for host in linux | windows:
        assert run.kinds(host) == normal.kinds(host), host


# --- bad input: one clear line, nothing passed -----------------------------------------------


def _usage_error(args: list[str], tmp_path: Path) -> str:
    run = run_suite(args, tmp_path / "reports", timeout=120)
    assert run.returncode == 4, run.output[-2000:]  # pytest's usage error
    assert not run.outcomes
    assert " passed" not in run.output
    lines = [line for line in run.output.splitlines() if line.startswith("ERROR:")]
    assert len(lines) == 1, run.output[-2000:]
    return lines[0]


def test_malformed_inventory_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("all:\n  hosts:\n    web1: {ansible_host: [unclosed\n", encoding="utf-8")
    line = _usage_error([f"--ansible-inventory={bad}", "--hosts=ansible://all"], tmp_path)
    assert str(bad) in line or "inventory" in line.lower()


def test_unknown_scheme_is_one_line(tmp_path: Path) -> None:
    line = _usage_error(["--hosts=telnet://root@10.213.1.10"], tmp_path)
    assert "telnet" in line


@pytest.mark.parametrize("port", ["99999", "ssh"])
def test_bad_port_is_one_line(port: str, tmp_path: Path) -> None:
    inventory = write_inventory(
        tmp_path / "inv.yml", {"web1": {**host_vars("linux-healthy"), "ansible_port": port}}, {}
    )
    line = _usage_error([f"--ansible-inventory={inventory}", "--hosts=ansible://all"], tmp_path)
    assert "port" in line.lower() and port in line


@pytest.fixture(scope="module")
def bad_hosts_run(extra: sidecar.Sidecar, tmp_path_factory: pytest.TempPathFactory) -> SuiteRun:
    """One run over hosts that each fail one way: wrong SSH key, wrong WinRM password,
    changed host key, unroutable address, refused WinRM port, connection dropped mid-probe,
    and a non-root login that may not read omsconfig.log."""
    work = tmp_path_factory.mktemp("bad-hosts")
    wrong_key = work / "wrong_key"
    write_keypair(wrong_key, "not-the-lab-key")
    healthy = host_vars("linux-healthy")
    known = work / "known_hosts"
    other_key = PATHS.host_dir("linux-healthy-no-um") / "ssh" / "ssh_host_ed25519_key.pub"
    known.write_text(
        f"{healthy['ansible_host']} {' '.join(other_key.read_text().split()[:2])}\n",
        encoding="utf-8",
    )
    linux = {
        "wrong-ssh-key": {**healthy, "ansible_ssh_private_key_file": str(wrong_key)},
        "changed-host-key": {
            **healthy,
            "ansible_ssh_common_args": f"-o UserKnownHostsFile={known} "
            "-o StrictHostKeyChecking=yes",
        },
        "unroutable": {**healthy, "ansible_host": "10.213.250.250"},
        "linux-ssh-close-mid-probe": _extra_vars(extra, "linux-ssh-close-mid-probe"),
        "linux-log-unreadable": _extra_vars(extra, "linux-log-unreadable"),
    }
    win = host_vars("windows-healthy")
    windows = {
        "wrong-winrm-password": {**win, "ansible_password": "not-the-password"},
        "winrm-refused": {**win, "ansible_host": "10.213.0.1", "ansible_port": _closed_port()},
    }
    inventory = write_inventory(work / "inv.yml", linux, windows)
    return run_suite(
        [f"--ansible-inventory={inventory}", "--hosts=ansible://all",
         f"--hrw-connect-timeout={CONNECT_TIMEOUT}", f"--hrw-command-timeout={COMMAND_TIMEOUT}"],
        work / "reports",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("host", "reason"),
    [
        ("wrong-ssh-key", r"ssh failed: .*Permission denied \(publickey"),
        ("changed-host-key", r"ssh failed: Host key verification failed"),
        ("unroutable", r"ssh failed: .*(No route to host|timed out)"),
        ("wrong-winrm-password", r"credentials of user 'hrwadmin' were rejected"),
        ("winrm-refused", r"connection refused"),
        (
            "linux-ssh-close-mid-probe",
            r"ssh failed: .*(closed by remote host|connection was closed)",
        ),
    ],
)
def test_unreachable_host_errors_say_why(bad_hosts_run: SuiteRun, host: str, reason: str) -> None:
    _errors_say(bad_hosts_run, host, reason)


def test_no_secret_in_the_output(bad_hosts_run: SuiteRun) -> None:
    assert host_vars("windows-healthy")["ansible_password"] not in bad_hosts_run.output
    assert "not-the-password" not in bad_hosts_run.output


def test_unreadable_log_is_an_error_not_a_pass(bad_hosts_run: SuiteRun) -> None:
    outcomes = {o.scenario: o for o in bad_hosts_run.outcomes["linux-log-unreadable"]}
    l03 = outcomes["HRW-L03"]
    assert l03.kind == "error"
    assert f"permission denied reading {LOG}" in l03.message
    # The rest of the host was read as the non-root user and judged.
    assert outcomes["HRW-L02"].kind == "passed"


# --- odd output on one host: non-UTF-8 bytes, a 1 GB log ------------------------------------


@pytest.fixture
def scratch_log(extra: sidecar.Sidecar) -> Iterator[Host]:
    """Return the scratch host; its omsconfig.log is put back afterwards."""
    host = next(h for h in extra.hosts if h.name == "linux-scratch")
    saved = run_in_host(PATHS, host.name, ["cp", "-p", LOG, "/root/omsconfig.log.saved"])
    assert saved.returncode == 0, saved.stderr
    try:
        yield host
    finally:
        restore = run_in_host(PATHS, host.name, ["mv", "/root/omsconfig.log.saved", LOG])
        assert restore.returncode == 0, restore.stderr


def _sh(host: Host, script: str) -> str:
    proc = run_in_host(PATHS, host.name, ["sh", "-c", script], timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def _probe(extra: sidecar.Sidecar, name: str) -> tuple[Any, float]:
    """Probe one extra host in-process, as the suite does; return (facts, seconds)."""
    [target] = parse_hosts_option([f"ansible://{name}"], [str(extra.inventory)], HostDefaults())
    started = time.monotonic()
    host = open_host(target, ConnectOptions(connect_timeout_s=5, command_timeout_s=60))
    try:
        facts = probe_host(target, host, ProbeParams(connect_timeout_s=2))
    finally:
        close_host(host)
    return facts, time.monotonic() - started


def test_non_utf8_output_is_an_error_for_its_section_only(
    extra: sidecar.Sidecar, scratch_log: Host
) -> None:
    _sh(scratch_log, f"printf '{CLASS_LINE} caf\\351\\n' >> {LOG}")
    facts, _ = _probe(extra, "linux-scratch")
    log = facts.sections["omsconfig_log"]
    assert log.data is None
    assert "not valid UTF-8 (byte 0xe9)" in str(log.error)
    assert "\ufffd" in log.raw
    assert facts.sections["processes"].error is None
    assert facts.commands == 2


def test_one_gigabyte_log_is_read_in_bounded_time(
    extra: sidecar.Sidecar, scratch_log: Host
) -> None:
    # A 1 GiB log: a hole (read back as NUL bytes, as after a crash) and then real lines.
    _sh(scratch_log, f"truncate -s 1G {LOG} && printf '%s\\n' 'DSC run ok' '{CLASS_LINE}' >> {LOG}")
    size = int(_sh(scratch_log, f"stat -c %s {LOG}"))
    assert size > 2**30
    facts, seconds = _probe(extra, "linux-scratch")
    data = facts.sections["omsconfig_log"].data
    assert data is not None, facts.sections["omsconfig_log"].error
    assert data["matches"] == [CLASS_LINE]
    assert data["bytes_scanned"] == ProbeParams().omsconfig_log_max_bytes < size
    # Only the matching lines come back over the connection, not the tail that was read.
    assert len(facts.sections["omsconfig_log"].raw) < 4096
    assert seconds < 20


# --- a host printing without end, or one byte a second (issue 10 item 13) -------------------


def test_a_host_printing_600_mb_costs_the_controller_at_most_the_cap(
    extra: sidecar.Sidecar,
) -> None:
    [target] = parse_hosts_option(
        ["ansible://linux-ssh-flood"], [str(extra.inventory)], HostDefaults()
    )
    options = ConnectOptions(connect_timeout_s=5, command_timeout_s=60, max_output_bytes=32 << 20)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB
    started = time.monotonic()
    facts = gather_facts(target, options, ProbeParams(connect_timeout_s=2))
    seconds = time.monotonic() - started
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert facts.connect_error is not None, facts.sections
    assert "printed more than 32 MB for one command" in facts.connect_error
    assert grown_mib < 200, grown_mib  # 600 MB read whole took the controller to 1.05 GB
    assert seconds < 30


def test_a_winrm_host_answering_a_byte_a_second_is_bounded_by_the_timeouts(
    extra: sidecar.Sidecar,
) -> None:
    [target] = parse_hosts_option(
        ["ansible://windows-winrm-trickle"], [str(extra.inventory)], HostDefaults()
    )
    options = ConnectOptions(connect_timeout_s=3, command_timeout_s=5)
    started = time.monotonic()
    facts = gather_facts(target, options, ProbeParams(connect_timeout_s=2))
    seconds = time.monotonic() - started
    assert facts.connect_error is not None and "did not finish within 8s" in facts.connect_error
    assert seconds < 3 + 5 + 5, seconds  # over a minute before the fix


# --- a worker account forging probe output or linking to a key (issue 10 items 1-2) ----------

STATE_DIR = "/var/opt/microsoft/omsagent/state/automationworker"
OMS_KEY = "/etc/opt/microsoft/omsagent/certs/oms.key"
FAKE_KEY = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQDlabkeyfortests"


def _forged_lines() -> str:
    """Return what nxautomation appended to oms.conf in the issue's attack, in the old
    framing and in the new one with a guessed boundary: healthy blocks for every section and
    an unterminated marker meant to swallow the real ones."""
    guess = "HRW" + "0" * 32
    ps = " 8567 996 nxautomation python /x/main.py /y/oms.conf rworkspace:w 1.7.4.0"
    healthy = {
        "omsconfig_log": "size=10\ngrep_rc=1",
        "ps": ps,
        "nproc": "64",
    }
    lines = []
    for name, body in healthy.items():
        lines += [f"@@HRW-BEGIN {name}", body, f"@@HRW-END {name} rc=0"]
        lines += [f"{guess} BEGIN {name}", body, f"{guess} END {name}"]
    lines += ["@@HRW-FILE /proc/meminfo", "MemTotal: 99999999 kB", "MemAvailable: 99999999 kB"]
    lines += ["@@HRW-BEGIN omsconfig_log", f"{guess} BEGIN omsconfig_log"]
    return "\n".join(lines) + "\n"


@pytest.fixture
def scratch_state(extra: sidecar.Sidecar, scratch_log: Host) -> Iterator[Host]:
    """Return the scratch host with its worker state folder saved; it is put back afterwards
    (and the oms.key stand-in a test may create, removed)."""
    saved = run_in_host(PATHS, scratch_log.name, ["cp", "-a", STATE_DIR, "/root/aw.saved"])
    assert saved.returncode == 0, saved.stderr
    try:
        yield scratch_log
    finally:
        _sh(scratch_log, f"rm -rf {STATE_DIR} /root/aw.real && mv /root/aw.saved {STATE_DIR}")
        _sh(scratch_log, f"rm -f {OMS_KEY}")


def _as_nxautomation(host: Host, script: str) -> None:
    proc = run_in_host(PATHS, host.name, ["su", "nxautomation", "-s", "/bin/sh", "-c", script])
    assert proc.returncode == 0, proc.stderr


def test_forged_markers_in_oms_conf_turn_no_failure_into_a_pass(
    extra: sidecar.Sidecar, scratch_state: Host
) -> None:
    _sh(scratch_state, f"printf '%s\\n' '{CLASS_LINE}' >> {LOG}")  # HRW-L03 now fails
    honest, _ = _probe(extra, "linux-scratch")
    assert honest.sections["omsconfig_log"].data["matches"] == [CLASS_LINE]
    forged = _forged_lines()
    assert len(forged.splitlines()) >= 22
    _as_nxautomation(scratch_state, f"cat >> {STATE_DIR}/oms.conf <<'EOF'\n{forged}EOF\n")
    facts, _ = _probe(extra, "linux-scratch")
    for name in ("processes", "omsconfig_log", "hardware", "tools"):
        assert facts.sections[name].data == honest.sections[name].data, name
    pressure = facts.sections["pressure"].data
    assert pressure is not None
    assert pressure["memory_total_bytes"] == honest.sections["pressure"].data["memory_total_bytes"]
    # The forged text is only ever oms.conf's content: a malformed file, so an error.
    worker = facts.sections["worker"]
    assert worker.data is None and "malformed" in str(worker.error)


def test_worker_conf_linked_to_the_agent_key_never_reaches_a_report(
    extra: sidecar.Sidecar, scratch_state: Host, tmp_path: Path
) -> None:
    key = f"-----BEGIN RSA PRIVATE KEY-----\n{FAKE_KEY}\n-----END RSA PRIVATE KEY-----"
    _sh(
        scratch_state, f"mkdir -p {OMS_KEY.rsplit('/', 1)[0]} && printf '%s\\n' '{key}' > {OMS_KEY}"
    )
    _sh(scratch_state, f"chmod 600 {OMS_KEY}")
    diy = _sh(
        scratch_state, "ls -d /var/opt/microsoft/omsagent/*/state/automationworker/diy"
    ).strip()
    _as_nxautomation(scratch_state, f"ln -sf {OMS_KEY} {diy}/worker.conf")
    facts, _ = _probe(extra, "linux-scratch")
    worker = facts.sections["worker"]
    assert worker.data is None and "symbolic link" in str(worker.error)
    assert all(FAKE_KEY not in f"{s.data}{s.raw}{s.error}" for s in facts.sections.values())
    # The same through the whole suite: nothing of the key in any report file, all 0640.
    inventory = write_inventory(
        tmp_path / "inv.yml", {"linux-scratch": _extra_vars(extra, "linux-scratch")}, {}
    )
    run = run_suite(
        [f"--ansible-inventory={inventory}", "--hosts=ansible://all", "--hrw-endpoint-timeout=1"],
        tmp_path / "reports",
    )
    outcomes = {(o.scenario, o.item): o for o in run.outcomes["linux-scratch"]}
    assert outcomes[("HRW-L01", "user")].kind == "error", outcomes[("HRW-L01", "user")]
    [folder] = [p for p in (tmp_path / "reports").iterdir() if not p.is_symlink()]
    for report in folder.iterdir():
        assert FAKE_KEY not in report.read_text(encoding="utf-8", errors="replace"), report
        assert report.stat().st_mode & 0o777 == 0o640, report
    assert FAKE_KEY not in run.output


# --- inventory values crafted to inject commands ----------------------------------------------

WORKSPACE_PAYLOAD = "$(touch /tmp/pwned-ws)'; Remove-Item -Recurse C:\\ #"
ENDPOINTS_PAYLOAD = {
    "agentsvc": "a.example;touch /tmp/pwned-semi",
    "jrds": "`touch /tmp/pwned-tick`",
    "oms": "'; Remove-Item C:\\Windows -Recurse; touch /tmp/pwned-quote; '",
}
ENDPOINT_PAYLOADS: dict[str, Any] = {
    "hrw_workspace_id": WORKSPACE_PAYLOAD,
    "hrw_endpoints": ENDPOINTS_PAYLOAD,
}
PROXY_PAYLOAD = {"hrw_proxy": "$(touch /tmp/pwned-proxy):3128"}


def test_injected_inventory_values_run_nothing(extra: sidecar.Sidecar, tmp_path: Path) -> None:
    scratch = _extra_vars(extra, "linux-scratch")
    win = host_vars("windows-healthy")
    linux = {
        "inject-endpoints": {**scratch, **ENDPOINT_PAYLOADS},
        "inject-proxy": {**scratch, **PROXY_PAYLOAD},
    }
    windows = {
        "inject-win-endpoints": {**win, **ENDPOINT_PAYLOADS},
        "inject-win-proxy": {**win, **PROXY_PAYLOAD},
    }
    inventory = write_inventory(tmp_path / "inv.yml", linux, windows)
    run = run_suite(
        [f"--ansible-inventory={inventory}", "--hosts=ansible://all", "--hrw-endpoint-timeout=1"],
        tmp_path / "reports",
    )
    assert run.returncode == 1, run.output[-3000:]
    # Nothing ran on the Linux host, nor on the controller.
    listing = _sh(next(h for h in extra.hosts if h.name == "linux-scratch"), "ls -a /tmp")
    assert "pwned" not in listing
    assert not list(Path("/tmp").glob("pwned-*"))
    # The crafted names were probed as names (and failed); the rest of the host was read.
    by_check = {(o.scenario, o.item): o for o in run.outcomes["inject-endpoints"]}
    for role in ("agentsvc", "jrds", "oms"):
        assert by_check[("HRW-G01", role)].kind == "failed", by_check[("HRW-G01", role)]
    assert by_check[("HRW-L02", "omsagent")].kind == "passed"
    for outcome in run.outcomes["inject-proxy"]:
        if outcome.scenario in ("HRW-G01", "HRW-G04") and outcome.item in EXTENSION_ROLES:
            # An agent-based host: no extension endpoint to reach, whatever the proxy.
            assert outcome.kind == "skipped", outcome
        elif outcome.scenario in ("HRW-G01", "HRW-G04"):
            assert outcome.kind == "error"
            assert "inventory value hrw_proxy: the proxy host is not a host name" in outcome.message
    # Whatever the values, a Windows host is sent the same command line and script: the
    # values travel as one base64 JSON line, which the script decodes as data (a proxy
    # value the agent would refuse is refused before anything is sent).
    boundary = new_boundary()
    plain = build_invocation(ProbeParams(), boundary)
    crafted = build_invocation(
        ProbeParams(workspace_id=WORKSPACE_PAYLOAD, endpoints=ENDPOINTS_PAYLOAD), boundary
    )
    assert crafted[0] == plain[0]
    script = script_text().encode()
    assert crafted[1].split(b"\r\n", 2)[2] == plain[1].split(b"\r\n", 2)[2] == script
    # And no check of the network passed on a host given such values (the extension's
    # endpoints are skipped: the agent-based host has no extension and no account URL).
    for host in windows:
        for outcome in run.outcomes.get(host, []):
            if outcome.scenario not in ("HRW-G01", "HRW-G04"):
                continue
            if outcome.item in EXTENSION_ROLES:
                assert outcome.kind == "skipped", outcome
                assert "no extension-based worker" in outcome.message, outcome
            else:
                assert outcome.kind in ("failed", "error"), outcome


def test_extra_profiles_stay_out_of_the_default_fleet() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", "from lab.profiles import load_profiles; import json; "
         "print(json.dumps([p.name for p in load_profiles().ordered()]))"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    )  # fmt: skip
    names = json.loads(proc.stdout)
    assert len(names) == len(list(PROFILES_DIR.glob("[!_]*.yaml")))
    assert not set(names) & set(EXTRA)
    assert INVENTORY.exists()


# --- the paramiko transport: bounded commands too ------------------------------------------


def _paramiko_target(hv: dict[str, Any], folder: Path) -> Any:
    spec = (
        f"paramiko://{hv['ansible_user']}@{hv['ansible_host']}"
        f"?ssh_identity_file={hv['ansible_ssh_private_key_file']}"
    )
    # The host keys are checked against the lab's known_hosts, named as OpenSSH reads it.
    known = re.search(r"UserKnownHostsFile=(\S+)", str(hv["ansible_ssh_common_args"]))
    assert known is not None
    config = folder / f"ssh_config-{hv['ansible_host']}"
    config.write_text(f"Host *\n  UserKnownHostsFile {known.group(1)}\n")
    [target] = parse_hosts_option([spec], [], HostDefaults(ssh_config=str(config)))
    return target


def test_paramiko_probe_reads_a_host_and_gives_up_on_a_hanging_one(
    extra: sidecar.Sidecar, tmp_path: Path
) -> None:
    options = ConnectOptions(connect_timeout_s=5, command_timeout_s=3)
    healthy = open_host(_paramiko_target(host_vars("linux-healthy"), tmp_path), options)
    try:
        facts = probe_host(
            _paramiko_target(host_vars("linux-healthy"), tmp_path),
            healthy,
            ProbeParams(connect_timeout_s=2),
        )
    finally:
        close_host(healthy)
    assert facts.connect_error is None and facts.commands == 2
    assert all(s.error is None for s in facts.sections.values()), facts.sections
    target = _paramiko_target(_extra_vars(extra, "linux-ssh-hang"), tmp_path)
    started = time.monotonic()
    hanging = open_host(target, options)
    try:
        hung = probe_host(target, hanging, ProbeParams(connect_timeout_s=2))
    finally:
        close_host(hanging)
    assert time.monotonic() - started < 3 + 10
    assert hung.connect_error is not None and "no answer within 3 s" in hung.connect_error
