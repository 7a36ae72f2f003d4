"""Compliance evidence and CI gating: the pytest hooks.

Loaded after :mod:`hrw_preflight.run.plugin` by the entry point :mod:`hrw_preflight.plugin`. It adds

- ``--hrw-waivers FILE``: failures a valid waiver covers are reported as *waived* (pytest's
  xfail mechanics: outcome skipped with ``wasxfail = "waived: ..."``), never as passed;
- ``--hrw-fail-on SEVERITY``: the exit code counts only failures and errors at or above it;
- ``image``/``runtime`` markers from the catalogue's profiles, so ``-m image`` selects a profile;
- ``report.html``, the fleet page (:mod:`hrw_preflight.report.fleet_page`), rendered from the
  run's record; pytest-html's per-check page (``checks.html``) gets the matrix and failures
  block on top and a redacted environment table;
- JUnit ``classname`` = host name;
- ``evidence.json`` and ``SHA256SUMS`` in the run folder, written after pytest-html and
  junitxml wrote theirs; an interrupted or crashed run is recorded as ``incomplete``.

State lives on the controller (xdist workers only judge, waive and attach data to reports).
"""

from __future__ import annotations

import contextlib
import html
import xml.etree.ElementTree as ET
from collections.abc import Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from hrw_preflight.hosts.errors import ConfigError
from hrw_preflight.hosts.redact import Redactor
from hrw_preflight.hosts.targets import weakened_summary
from hrw_preflight.report.atomic import write_atomic
from hrw_preflight.report.evidence import (
    FLEET_PAGE,
    REPORT_FILES,
    SUMS,
    CheckResult,
    RunInfo,
    build_record,
    case_record,
    file_sha256,
    host_facts_record,
    reason_text,
    redact_data,
    safe_command_line,
    utc_timestamp,
    write_bundle,
)
from hrw_preflight.report.fleet_page import render_fleet_page
from hrw_preflight.report.gate import GateResult, apply_gate, parse_fail_on
from hrw_preflight.report.html_matrix import render_summary
from hrw_preflight.report.signing import SIGNATURE, check_sign_key, sign_sums
from hrw_preflight.report.waivers import Waivers, load_waivers
from hrw_preflight.run.plugin import CASE_KEY, RUN_KEY, Run
from hrw_preflight.run.terminal_text import terminal_safe
from hrw_preflight.verdicts.catalogue import Severity, load_catalogue

PROFILES = {
    "image": "checks that hold for a worker image before it joins (image-build profile)",
    "runtime": "checks of a running worker (runtime profile)",
}
WAIVED_PREFIX = "waived: "
TERMINAL_LIST = 20  # waived checks listed by name in the terminal summary
REPORT_ATTR = "hrw_check"  # attribute carrying a check's data on its pytest report


@dataclass
class EvidenceState:
    """What this plugin collects during one session (on the controller)."""

    started_at: str
    fail_on: Severity | None
    waivers: Waivers | None
    checks: dict[str, CheckResult] = field(default_factory=dict)
    hosts: dict[str, dict[str, Any]] = field(default_factory=dict)
    stopped: str | None = None
    gate: GateResult | None = None
    sealed: list[str] = field(default_factory=list)
    sign_key: str | None = None
    signed: str | None = None  # "SHA256SUMS.sig", or why signing failed ("failed: ...")
    hosts_sent: set[str] = field(default_factory=set)  # hosts whose facts this process sent


STATE_KEY = pytest.StashKey[EvidenceState]()
WAIVED_KEY = pytest.StashKey[str]()
COLLECTOR = "hrw-preflight-evidence-collector"


def _is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def _run(config: pytest.Config) -> Run | None:
    return config.stash.get(RUN_KEY, None)


def _redactor(config: pytest.Config) -> Redactor:
    run = _run(config)
    return run.redact if run is not None else Redactor()


def pytest_addoption(parser: pytest.Parser) -> None:
    """Register --hrw-waivers and --hrw-fail-on."""
    group = parser.getgroup("hrw-preflight", "Hybrid Runbook Worker preflight")
    group.addoption(
        "--hrw-waivers",
        metavar="FILE",
        default=None,
        help="YAML list of waivers {scenario, hosts, justification, owner, expires}; "
        "covered failures are reported as waived",
    )
    group.addoption(
        "--hrw-fail-on",
        metavar="SEVERITY",
        default=None,
        help="exit code counts only failures/errors of this severity or above "
        "(low|medium|high|critical; default: every failure counts)",
    )
    group.addoption(
        "--hrw-sign-key",
        metavar="PATH",
        default=None,
        help="SSH private key that signs each bundle's SHA256SUMS (SHA256SUMS.sig, "
        "ssh-keygen -Y sign, namespace hrw-preflight); check with verify --allowed-signers",
    )


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """Register the profile markers and read the waivers and the gate (bad input: one line)."""
    for name, text in PROFILES.items():
        config.addinivalue_line("markers", f"{name}: {text}")
    try:
        fail_on = parse_fail_on(config.getoption("hrw_fail_on", None))
        path = config.getoption("hrw_waivers", None)
        waivers = None
        if path:
            known = {s.id for s in load_catalogue().scenarios}
            waivers = load_waivers(str(path), known)
        sign_key = config.getoption("hrw_sign_key", None)
        if sign_key and not _is_worker(config):
            check_sign_key(str(sign_key))
    except ConfigError as exc:
        raise pytest.UsageError(str(exc)) from exc
    state = EvidenceState(utc_timestamp(), fail_on, waivers)
    state.sign_key = str(sign_key) if sign_key else None
    config.stash[STATE_KEY] = state
    if not _is_worker(config):
        config.pluginmanager.register(Collector(state), COLLECTOR)


def _state(config: pytest.Config) -> EvidenceState | None:
    return config.stash.get(STATE_KEY, None)


def _bundle_dir(config: pytest.Config) -> Path | None:
    run = _run(config)
    if run is None or run.run_dir is None or _is_worker(config):
        return None
    return run.run_dir if run.run_dir.is_dir() else None


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    """Redact pytest-metadata's environment table and mark the run folder as running.

    The first evidence.json says ``incomplete``: if the process is killed outright, the
    folder still tells the truth about the run.
    """
    config = session.config
    _redact_metadata(config)
    folder = _bundle_dir(config)
    state = _state(config)
    run = _run(config)
    if folder is None or state is None or run is None:
        return
    record = _record(
        config,
        run,
        state,
        status="incomplete",
        reason="running (or killed before it could finish)",
        finished=None,
    )
    write_bundle(folder, record, run.redact, seal=False)


def _redact_metadata(config: pytest.Config) -> None:
    try:
        from pytest_metadata.plugin import metadata_key  # type: ignore[import-untyped]
    except ImportError:
        return
    metadata = config.stash.get(metadata_key, None)
    if not isinstance(metadata, dict):
        return
    cleaned = redact_data(metadata, _redactor(config))
    metadata.clear()
    metadata.update({k: _as_text(v) for k, v in cleaned.items() if v != "***"})


def _as_text(value: Any) -> Any:
    """Return a metadata value escaped for HTML: pytest-html's page inserts environment
    values with ``innerHTML``, so markup in a CI variable would otherwise run as script."""
    if isinstance(value, str):
        return html.escape(value)
    if isinstance(value, dict):
        return {html.escape(str(k)): _as_text(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_as_text(v) for v in value]
    return value


@pytest.hookimpl(optionalhook=True, trylast=True)  # pytest-html may be disabled
def pytest_html_results_table_row(report: pytest.TestReport, cells: list[str]) -> None:
    """Write the test id cell as text: pytest-html puts the id into the page as HTML, and
    an id holds the host name, which the inventory (or a host spec) chose."""
    test_id = report.nodeid if report.when == "call" else f"{report.nodeid}::{report.when}"
    for index, cell in enumerate(cells):
        if isinstance(cell, str) and cell.startswith('<td class="col-testId">'):
            cells[index] = f'<td class="col-testId">{html.escape(test_id)}</td>'


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark each check with its scenario's profiles (before ``-m`` deselects)."""
    run = _run(config)
    if run is None:
        return
    for item in items:
        callspec = getattr(item, "callspec", None)
        key = callspec.params.get("hrw_case") if callspec else None
        scenario_id = getattr(key, "scenario", None)
        if not isinstance(scenario_id, str):
            continue
        for profile in run.catalogue.get(scenario_id).profiles:
            item.add_marker(profile)


@pytest.hookimpl(wrapper=True, trylast=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Waive covered failures and attach the check's record data to the deciding report.

    Runs innermost (trylast wrapper), so every outer wrapper (plugin.py's, pytest-html's)
    already sees the waived report. plugin.py records its ``outcome`` property as
    ``skipped``; that is rewritten to ``waived`` here before the teardown report copies the
    item's properties into JUnit. Only call-phase failures are waived, never errors.
    """
    if call.when == "teardown" and WAIVED_KEY in item.stash:
        item.user_properties[:] = [
            (k, "waived" if k == "outcome" else v) for k, v in item.user_properties
        ]
    report = yield
    case = item.stash.get(CASE_KEY, None)
    decided = report.when == "call" or (report.when == "setup" and not report.passed)
    if case is None or not decided:
        return report
    state = _state(item.config)
    sent = state.hosts_sent if state else set()
    data = case_record(case, with_host=case.target.name not in sent)
    sent.add(case.target.name)
    waivers = state.waivers if state else None
    if report.when == "call" and report.failed and waivers is not None:
        active = waivers.active_for(case.scenario.id, case.target.name)
        if active is not None:
            text = case.redact(active.text())
            report.outcome = "skipped"
            report.wasxfail = text
            item.stash[WAIVED_KEY] = text
            data["waiver"] = redact_data(active.as_dict(waivers.today), case.redact)
        else:
            expired = waivers.expired_for(case.scenario.id, case.target.name)
            if expired is not None:
                report.sections.append(
                    ("hrw-preflight waiver", case.redact(expired.expired_text()))
                )
                data["expired_waiver"] = redact_data(expired.as_dict(waivers.today), case.redact)
    setattr(report, REPORT_ATTR, data)
    return report


def _longrepr_line(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:  # a skip: (path, line, reason)
        return str(longrepr[2]).removeprefix("Skipped: ")
    lines = [ln.strip() for ln in report.longreprtext.splitlines() if ln.strip()]
    errors = [ln[1:].strip() for ln in lines if ln.startswith("E ")]
    return (errors[0] if errors else lines[-1] if lines else "")[:500]


def _outcome(report: pytest.TestReport) -> str:
    if report.when == "setup":
        return "error" if report.failed else "skipped"
    if report.skipped and str(getattr(report, "wasxfail", "")).startswith(WAIVED_PREFIX):
        return "waived"
    return str(report.outcome)


class Collector:
    """Collects every check's outcome for the record, on the controller (or the single
    process): registered per session because ``pytest_runtest_logreport`` gets no config."""

    def __init__(self, state: EvidenceState) -> None:
        self.state = state

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Record the check's outcome from its deciding report (also from xdist workers)."""
        state = self.state
        props = {str(k): v for k, v in report.user_properties}
        existing = state.checks.get(report.nodeid)
        if report.when == "teardown":
            if report.failed:
                line = _longrepr_line(report)
                if existing is not None:
                    existing.outcome = "error"
                    existing.reason = f"{existing.reason}; teardown error: {line}"
                else:
                    state.checks[report.nodeid] = _new_result(report, props, "error", line)
            return
        if report.when == "setup" and report.passed:
            return
        data: dict[str, Any] = getattr(report, REPORT_ATTR, None) or {}
        outcome = _outcome(report)
        if data and data.get("verdict") != "error" and outcome != "error":
            reason = reason_text(str(data.get("seen", "")), str(data.get("expected", "")))
        elif data and data.get("verdict") == "error":
            reason = str(data.get("seen", ""))
        else:
            reason = _longrepr_line(report) or outcome
        result = _new_result(report, props, outcome, reason)
        if data:
            result.evidence = str(data.get("evidence", ""))
            result.evidence_truncated = bool(data.get("evidence_truncated", False))
            result.taken_at = dict(data.get("taken_at") or {})
            result.waiver = data.get("waiver")
            result.expired_waiver = data.get("expired_waiver")
            host = props.get("host")
            if isinstance(host, str) and isinstance(data.get("host_facts"), dict):
                state.hosts.setdefault(host, data["host_facts"])
        state.checks[report.nodeid] = result

    def pytest_keyboard_interrupt(self, excinfo: pytest.ExceptionInfo[BaseException]) -> None:
        """Remember that the run was interrupted, so its record says ``incomplete``."""
        self.state.stopped = f"interrupted ({excinfo.typename})"

    def pytest_internalerror(self, excinfo: pytest.ExceptionInfo[BaseException]) -> None:
        """Remember that pytest crashed, so its record says ``incomplete``."""
        self.state.stopped = f"crashed (internal error: {excinfo.typename})"


def _new_result(
    report: pytest.TestReport, props: dict[str, Any], outcome: str, reason: str
) -> CheckResult:
    def text(name: str) -> str | None:
        value = props.get(name)
        return None if value is None else str(value)

    return CheckResult(
        nodeid=report.nodeid,
        host=text("host"),
        scenario_id=text("scenario_id"),
        item=text("item"),
        severity=text("severity"),
        outcome=outcome,
        reason=reason,
        duration_s=max(0.0, float(report.duration)),
    )


def pytest_report_header(config: pytest.Config) -> list[str]:
    """Return header lines for the gate and for expired waivers (which no longer apply)."""
    state = _state(config)
    if state is None:
        return []
    lines = []
    if state.fail_on is not None:
        lines.append(
            f"hrw-preflight: exit code counts failures of severity {state.fail_on} "
            "and above (--hrw-fail-on); reports show everything"
        )
    if state.waivers is not None:
        lines.append(
            f"hrw-preflight: {len(state.waivers.entries)} waiver(s) from {state.waivers.source}"
        )
        lines.extend(f"hrw-preflight: EXPIRED {w.expired_text()}" for w in state.waivers.expired())
    redact = _redactor(config)
    return [terminal_safe(redact(line)) for line in lines]


@pytest.hookimpl(optionalhook=True)  # pytest-html may be disabled (-p no:html)
def pytest_html_results_summary(
    prefix: list[str], summary: list[str], postfix: list[str], session: pytest.Session
) -> None:
    """Put the hosts-by-scenarios matrix and the failures with their fix at the top."""
    state = _state(session.config)
    run = _run(session.config)
    if state is None or run is None:
        return
    checks = list(state.checks.values())
    notes = _notes(run, state)
    kinds = {
        host: str((record.get("worker_kind") or {}).get("text") or "unknown")
        for host, record in state.hosts.items()
    }
    prefix.append(
        render_summary(checks, list(run.targets), run.catalogue.scenarios, notes, run.redact, kinds)
    )


def _notes(run: Run, state: EvidenceState) -> list[str]:
    notes = [f"WEAKENED: {line}" for line in run.options.weakened()]
    notes.extend(f"WEAKENED: {line}" for line in weakened_summary(run.targets.values()))
    if state.waivers is not None:
        notes.extend(f"EXPIRED: {w.expired_text()}" for w in state.waivers.expired())
    if state.fail_on is not None:
        notes.append(
            f"Exit code counts only failures and errors of severity {state.fail_on} "
            "and above (--hrw-fail-on); this report shows every outcome."
        )
    return notes


@pytest.hookimpl(wrapper=True, trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> Generator[None, None, None]:
    """After pytest-html and junitxml wrote their files: gate the exit code, fix JUnit
    classnames, write evidence.json and seal the bundle with SHA256SUMS.

    A wrapper's code after ``yield`` runs after every plain implementation, including
    pytest-html's and junitxml's (both plain, pytest-html's trylast), also on the xdist
    controller; the terminal summary runs after this (its own wrapper is outer).
    """
    try:
        yield
    finally:
        _finish(session)


def _finish(session: pytest.Session) -> None:
    config = session.config
    state = _state(config)
    run = _run(config)
    if state is None or run is None or _is_worker(config):
        return
    failures = [(c.outcome, c.severity) for c in state.checks.values()]
    state.gate = apply_gate(int(session.exitstatus), failures, state.fail_on)
    session.exitstatus = state.gate.exit
    xmlpath = config.getoption("xmlpath", None)
    if xmlpath and Path(xmlpath).is_file():
        rewrite_junit(Path(xmlpath), run.redact)
    folder = _bundle_dir(config)
    if folder is None:
        return
    status, reason = _status(session, state)
    record = _record(config, run, state, status=status, reason=reason, finished=utc_timestamp())
    page = render_fleet_page(record, run.catalogue.scenarios, _notes(run, state), run.redact)
    write_atomic(folder / FLEET_PAGE, page)
    state.sealed = write_bundle(folder, record, run.redact)
    if state.sign_key and state.sealed:
        _sign(session, state, folder)


def _sign(session: pytest.Session, state: EvidenceState, folder: Path) -> None:
    """Sign the sealed bundle's SHA256SUMS; a signature asked for and not made fails the run
    (its bundle would not be the evidence the operator asked for)."""
    assert state.sign_key is not None
    try:
        signature = sign_sums(folder / SUMS, state.sign_key)
    except ConfigError as exc:
        state.signed = f"failed: {exc}"
        if session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
        return
    write_atomic(folder / SIGNATURE, signature)
    state.signed = SIGNATURE


def _status(session: pytest.Session, state: EvidenceState) -> tuple[str, str | None]:
    if state.stopped:
        return "incomplete", state.stopped
    code = state.gate.pytest_exit if state.gate else int(session.exitstatus)
    if code == pytest.ExitCode.INTERRUPTED:
        return "incomplete", "interrupted (pytest exit status 2: Ctrl-C or collection errors)"
    if code == pytest.ExitCode.INTERNAL_ERROR:
        return "incomplete", "crashed (pytest internal error)"
    if code == pytest.ExitCode.USAGE_ERROR:
        return "incomplete", "usage error"
    stop = session.shouldfail or session.shouldstop
    if stop:
        return "incomplete", f"stopped early: {stop if isinstance(stop, str) else 'requested'}"
    return "complete", None


def _record(
    config: pytest.Config,
    run: Run,
    state: EvidenceState,
    *,
    status: str,
    reason: str | None,
    finished: str | None,
) -> dict[str, Any]:
    redact = run.redact
    assert run.run_dir is not None  # only called with a bundle folder
    o = run.options
    inventory = config.getoption("ansible_inventory", None)
    hosts_option = config.getoption("hosts", None)
    info = RunInfo(
        run_id=run.run_dir.name,
        started_at=state.started_at,
        command_line=safe_command_line(["pytest", *config.invocation_params.args], redact),
        inventory={
            "hosts": None if hosts_option is None else redact(str(hosts_option)),
            "ansible_inventory": None if inventory is None else redact(str(inventory)),
            "sources": {n: redact(t.source) for n, t in run.targets.items()},
            "host_count": run.host_count,
            "host_list_sha256": run.host_list_sha256,
        },
        shard=(
            None
            if o.shard is None
            else {"index": o.shard.index, "total": o.shard.total, "source": o.shard.source}
        ),
        run_weakened=o.weakened(),
        catalogue_version=run.catalogue.version,
        catalogue_sha256=run.catalogue.sha256,
        options={
            "connect_timeout_s": o.connect.connect_timeout_s,
            "command_timeout_s": o.connect.command_timeout_s,
            "accept_unknown_host_keys": o.connect.accept_unknown_host_keys,
            "lookback_hours": o.lookback_hours,
            "endpoint_timeout_s": o.endpoint_timeout_s,
            "min_cpus": o.min_cpus,
            "min_memory_gb": o.min_memory_gb,
            "max_cpu_load": o.max_cpu_load,
            "min_memory_available_pct": o.min_memory_available_pct,
            "trusted_ca_files": list(o.trusted_ca_files),
            "trusted_ca_sha256": [file_sha256(f) for f in o.trusted_ca_files],
            "workspace_id": o.workspace_id,
            "markexpr": config.getoption("markexpr", "") or None,
            "keyword": config.getoption("keyword", "") or None,
            "fail_on": state.fail_on,
            "waivers": state.waivers.source if state.waivers else None,
        },
    )
    hosts = {}
    gathered = run.cache.gathered() if not config.getoption("numprocesses", None) else {}
    for name, target in run.targets.items():
        hosts[name] = state.hosts.get(name) or host_facts_record(target, gathered.get(name), redact)
    checks = sorted(state.checks.values(), key=lambda c: c.nodeid)
    waivers = None
    if state.waivers is not None:
        entries = []
        for waiver in state.waivers.entries:
            entry: dict[str, Any] = dict(waiver.as_dict(state.waivers.today))
            entry["applied"] = sum(1 for c in checks if c.waiver and _same(c.waiver, entry))
            entry["blocked"] = sum(
                1 for c in checks if c.expired_waiver and _same(c.expired_waiver, entry)
            )
            entries.append(entry)
        waivers = {"file": str(state.waivers.source), "entries": entries}
    gate = None
    if state.gate is not None:
        g = state.gate
        gate = {
            "fail_on": g.fail_on,
            "counted": g.counted,
            "ignored": g.ignored,
            "pytest_exit": g.pytest_exit,
            "exit": g.exit,
        }
    # report.html is rendered from this record, so it is listed before it exists.
    files = [
        n
        for n in REPORT_FILES
        if (run.run_dir / n).is_file() or (n == FLEET_PAGE and finished is not None)
    ]
    return build_record(
        info,
        status=status,
        status_reason=reason,
        finished_at=finished,
        hosts=hosts,
        checks=checks,
        files=files,
        gate=gate,
        waivers=waivers,
        redact=redact,
    )


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return all(a.get(k) == b.get(k) for k in ("scenario", "hosts", "owner", "expires"))


def rewrite_junit(path: Path, redact: Redactor) -> None:
    """Rewrite junit.xml in place (atomically): classname = host, every text redacted.

    CI servers (Azure DevOps PublishTestResults, GitLab) group test cases by classname;
    the host is what a reader looks for, not the test module.
    """
    try:
        tree = ET.parse(path)
    except ET.ParseError:
        return  # not ours to repair; the hash will still pin what was written
    for element in tree.iter():
        for key, value in list(element.attrib.items()):
            element.set(key, redact(value))
        if element.text:
            element.text = redact(element.text)
        if element.tag != "testcase":
            continue
        host = next(
            (p.get("value") for p in element.iter("property") if p.get("name") == "host"), None
        )
        if host:
            element.set("classname", host)
    with contextlib.suppress(AttributeError):
        ET.indent(tree, space="")  # keep it compact; junitxml writes one line
    write_atomic(path, ET.tostring(tree.getroot(), encoding="utf-8", xml_declaration=True))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print the gate's decision, expired waivers and whether the bundle was sealed."""
    config = terminalreporter.config
    state = _state(config)
    run = _run(config)
    if state is None or run is None or _is_worker(config):
        return
    redact = run.redact
    lines = []
    if state.waivers is not None:
        waived = [c for c in state.checks.values() if c.outcome == "waived"]
        lines.append(f"waivers: {len(waived)} failure(s) waived ({state.waivers.source})")
        for check in waived[:TERMINAL_LIST]:
            why = (check.waiver or {}).get("justification", "")
            lines.append(f"  WAIVED {check.host} {check.scenario_id} [{check.item}]: {why}")
        if len(waived) > TERMINAL_LIST:
            lines.append(f"  ... and {len(waived) - TERMINAL_LIST} more (see report.html)")
        lines.extend(f"EXPIRED {w.expired_text()}" for w in state.waivers.expired())
        for check in state.checks.values():
            if check.expired_waiver_text:
                lines.append(
                    f"  {check.host} {check.scenario_id} [{check.item}]: "
                    f"{check.expired_waiver_text}"
                )
    gate = state.gate
    if gate is not None and gate.fail_on is not None:
        lines.append(
            f"gate --hrw-fail-on {gate.fail_on}: {gate.counted} failure(s) counted, "
            f"{gate.ignored} below {gate.fail_on} ignored; exit {gate.exit}"
        )
    if state.sealed:
        lines.append(f"bundle: {run.run_dir}/SHA256SUMS covers {', '.join(state.sealed)}")
    if state.signed == SIGNATURE:
        lines.append(f"bundle: signed, {run.run_dir}/{SIGNATURE} (ssh-keygen -Y, hrw-preflight)")
    elif state.signed:
        lines.append(f"bundle: NOT signed, {state.signed}")
    if lines:
        terminalreporter.section("hrw-preflight evidence")
        for line in lines:
            terminalreporter.write_line(terminal_safe(redact(line)))
