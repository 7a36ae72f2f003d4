"""The pytest plugin: turns the catalogue and the host list into parametrised checks.

Each test in ``tests_infra/`` names its scenario with ``@pytest.mark.scenario(ID)`` and takes
the ``hrw_case`` fixture. The plugin generates one test per (host, scenario, item) for the
hosts whose platform the scenario applies to, gathers each host's facts once, judges them in
the fixture (so an unreadable fact or an unreachable host ends as an error, not a failure),
and fills the HTML and JUnit reports.
"""

from __future__ import annotations

import functools
import html
import os
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import pytest
from _pytest._io import TerminalWriter

from hrw_preflight.facts.collector import FactsCache
from hrw_preflight.facts.kind import describe
from hrw_preflight.facts.params import ProbeParams
from hrw_preflight.hosts.errors import ConfigError
from hrw_preflight.hosts.redact import Redactor
from hrw_preflight.hosts.selection import parse_hosts_option
from hrw_preflight.hosts.shards import host_list_sha256
from hrw_preflight.hosts.targets import HostDefaults, Target, weakened_summary
from hrw_preflight.run.case import Case, CaseKey
from hrw_preflight.run.gc_tuning import settle_garbage_collector
from hrw_preflight.run.options import RunOptions, account_url, add_options, read_options
from hrw_preflight.run.run_dir import create_run_dir, new_run_id, point_latest
from hrw_preflight.run.run_order import run_ready_first
from hrw_preflight.run.terminal_speed import index_teardown_reports
from hrw_preflight.run.terminal_text import terminal_safe
from hrw_preflight.run.xdist_groups import HostGroups
from hrw_preflight.verdicts import Settings, judge
from hrw_preflight.verdicts.catalogue import SEVERITIES, Catalogue, load_catalogue
from hrw_preflight.verdicts.certs import load_trusted_cas

CASE_KEY = pytest.StashKey[Case]()
NO_HOSTS = (
    "no hosts to check: pass --hosts=ssh://user@host,winrm://user@win:5986 or "
    "--ansible-inventory=FILE --hosts=ansible://all"
)


@dataclass
class Run:
    """The state of one suite run, shared by the hooks and the fixture."""

    options: RunOptions
    targets: dict[str, Target]
    catalogue: Catalogue
    redact: Redactor
    cache: FactsCache
    host_list_sha256: str = ""  # of every host named, in this shard or not
    host_count: int = 0  # hosts named by --hosts, in this shard or not
    run_dir: Path | None = None
    outcomes: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    kinds: dict[str, str] = field(default_factory=dict)  # host -> worker kind text
    own_marks: frozenset[str] = frozenset()  # marks the plugin itself puts on checks

    def params_for(self, target: Target) -> ProbeParams:
        """Return the probe inputs for ``target``: run options plus its inventory overrides."""
        o = target.overrides
        endpoints = o.get("hrw_endpoints") or {}
        if not isinstance(endpoints, dict):
            raise ConfigError(f"host '{target.name}': hrw_endpoints must map role -> host name")
        proxy = o.get("hrw_proxy")
        return ProbeParams(
            lookback_hours=self.options.lookback_hours,
            connect_timeout_s=self.options.endpoint_timeout_s,
            workspace_id=o.get("hrw_workspace_id") or self.options.workspace_id or None,
            endpoints={str(k): str(v) for k, v in endpoints.items()},
            proxy=None if proxy is None else str(proxy),
            automation_account_url=account_url(
                o.get("hrw_automation_account_url"),
                f"host '{target.name}': hrw_automation_account_url",
            )
            or self.options.automation_account_url,
            worker_credential_account=o.get("hrw_worker_credential_account") or None,
        )

    def settings_for(self, target: Target) -> Settings:
        """Return the verdict settings for ``target`` (its extra trusted CAs included)."""
        files = list(self.options.trusted_ca_files)
        if target.trusted_ca_file:
            files.append(target.trusted_ca_file)
        return self._settings(tuple(files))

    @functools.cache  # noqa: B019 - one Run per session; the cache dies with it
    def _settings(self, files: tuple[str, ...]) -> Settings:
        o = self.options
        return Settings(
            trusted=load_trusted_cas(list(files)),
            min_logical_processors=o.min_cpus,
            min_memory_gb=o.min_memory_gb,
            max_cpu_load=o.max_cpu_load,
            min_memory_available_pct=o.min_memory_available_pct,
            lookback_hours=o.lookback_hours,
        )

    def __hash__(self) -> int:
        return id(self)


RUN_KEY = pytest.StashKey[Run]()
# Marks a generated check carries (and its scenario's profiles); any other, a user's skipif,
# xfail or usefixtures say, needs pytest's own run protocol.
_OWN_MARKS = frozenset({"scenario", "xdist_group", "parametrize", "linux", "windows", *SEVERITIES})


def _is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def _targets(config: pytest.Config) -> list[Target]:
    hosts = config.getoption("hosts", None)
    if not hosts:
        return []
    inventory = config.getoption("ansible_inventory", None)
    defaults = HostDefaults(
        ssh_config=config.getoption("ssh_config", None),
        ssh_identity_file=config.getoption("ssh_identity_file", None),
        sudo=bool(config.getoption("sudo", False)),
    )
    return parse_hosts_option([hosts], [inventory] if inventory else [], defaults)


def pytest_addoption(parser: pytest.Parser) -> None:
    """Register the suite's options."""
    add_options(parser)


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """Resolve the hosts, set default report paths and per-host xdist grouping."""
    config.addinivalue_line("markers", "scenario(id): the catalogue scenario a test checks")
    for name in (*SEVERITIES, "linux", "windows"):
        config.addinivalue_line("markers", f"{name}: hrw-preflight scenario attribute")
    try:
        targets = _targets(config)
        options = read_options(config)
        catalogue = load_catalogue()
    except ConfigError as exc:
        raise pytest.UsageError(str(exc)) from exc
    if not targets:
        return
    redact = Redactor()
    for target in targets:
        redact.add_target(target)
    # Hosts of other shards are dropped here: never connected to, collected or reported.
    shard = options.shard
    chosen = [t for t in targets if shard is None or shard.holds(t.name)]
    run = Run(
        options=options,
        targets={t.name: t for t in chosen},
        catalogue=catalogue,
        redact=redact,
        cache=FactsCache(chosen, options.connect, lambda t: run.params_for(t)),
        host_list_sha256=host_list_sha256(t.name for t in targets),
        host_count=len(targets),
        own_marks=_OWN_MARKS | {p for s in catalogue.scenarios for p in s.profiles},
    )
    try:  # bad override values stop the run here (every shard: they read one inventory)
        for target in targets:
            run.params_for(target)
    except ConfigError as exc:
        raise pytest.UsageError(str(exc)) from exc
    config.stash[RUN_KEY] = run
    config.pluginmanager.register(_OutcomeCounter(run), "hrw-outcome-counter")
    if _is_worker(config):
        config.pluginmanager.register(HostGroups(), "hrw-xdist-groups")  # see xdist_groups.py
        return
    if config.getoption("numprocesses", None) and config.getoption("dist", "no") in ("no", "load"):
        config.option.dist = "loadgroup"  # all tests of a host on one worker: one probe per host
    if not config.getoption("htmlpath", None) or not config.getoption("xmlpath", None):
        run.run_dir = create_run_dir(options.reports_dir, new_run_id())
        if not config.getoption("htmlpath", None):
            config.option.htmlpath = str(run.run_dir / "checks.html")  # report.html: fleet page
            config.option.self_contained_html = True
        if not config.getoption("xmlpath", None):
            config.option.xmlpath = str(run.run_dir / "junit.xml")


def pytest_sessionstart(session: pytest.Session) -> None:
    """Make the terminal's FAILURES section cost one pass over the reports, not one per
    failure (see terminal_speed.py)."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        index_teardown_reports(reporter)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrise each scenario test over (host, item) for the hosts it applies to."""
    if "hrw_case" not in metafunc.fixturenames:
        return
    marker = metafunc.definition.get_closest_marker("scenario")
    if marker is None or not marker.args:
        raise pytest.UsageError(f"{metafunc.definition.nodeid}: add @pytest.mark.scenario(ID)")
    run = metafunc.config.stash.get(RUN_KEY, None)
    if run is None:
        raise pytest.UsageError(NO_HOSTS)
    scenario = run.catalogue.get(str(marker.args[0]))
    params = []
    for target in run.targets.values():
        if not scenario.applies_to(target.platform):
            continue
        for item in scenario.items:
            key = CaseKey(target.name, scenario.id, item)
            marks = [
                pytest.mark.xdist_group(target.name),
                getattr(pytest.mark, scenario.severity),
                getattr(pytest.mark, target.platform),
            ]
            params.append(pytest.param(key, id=key.id, marks=marks))
    metafunc.parametrize("hrw_case", params, indirect=True)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Attach the JUnit properties scenario_id, host, severity and item to every check."""
    run = config.stash.get(RUN_KEY, None)
    if run is None:
        return
    # A scenario with no host of its platform has an empty parameter set: drop it rather
    # than report a skip for a check that was never meant to run here.
    empty = [i for i in items if "hrw_case" in getattr(i, "fixturenames", ()) and _key(i) is None]
    if empty:
        config.hook.pytest_deselected(items=empty)
        items[:] = [i for i in items if i not in empty]
    where: dict[tuple[str, str], tuple[str | os.PathLike[str], int | None]] = {}
    for item in items:
        key = _key(item)
        if key is None:
            continue
        # Instance attribute, read by pytest's TestReport.from_item_and_call (see below).
        setattr(item, "repr_failure", functools.partial(_check_failure_text, item))  # noqa: B010
        setattr(item, "reportinfo", functools.partial(_reportinfo, where, item))  # noqa: B010
        scenario = run.catalogue.get(key.scenario)
        item.user_properties.extend(
            [
                ("scenario_id", key.scenario),
                ("host", key.host),
                ("severity", scenario.severity),
                ("item", key.item),
            ]
        )


def _check_failure_text(item: pytest.Item, excinfo: pytest.ExceptionInfo[BaseException]) -> object:
    """Return a failed check's report text: its assertion message (scenario, host, what
    was seen, the fix) and where it was raised; other exceptions get pytest's own report.

    Why: pytest's long traceback re-reads and parses the test's source for every failure,
    the largest cost of a failed check in a fleet run, and for a check it repeats the
    one-line test body around the message that already says everything.
    """
    if excinfo.errisinstance(AssertionError) and CASE_KEY in item.stash:
        entry = excinfo.traceback[-1]
        text = CheckFailureText(f"{excinfo.value}\n{entry.path}:{entry.lineno + 1}: AssertionError")
        text.reprcrash = Crash(
            str(entry.path), entry.lineno + 1, f"AssertionError: {excinfo.value}"
        )
        return text
    return type(item).repr_failure(item, excinfo)


def _reportinfo(
    where: dict[tuple[str, str], tuple[str | os.PathLike[str], int | None]], item: pytest.Item
) -> tuple[str | os.PathLike[str], int | None, str]:
    """Return pytest's ``reportinfo`` for a check, finding its test function's file and line
    once per function rather than once per check.

    Why: pytest looks them up from the function's code object for every item (its own
    source says "XXX caching?"); with thousands of checks of a few dozen functions that was
    a twentieth of the controller's CPU.
    """
    parent = item.parent.nodeid if item.parent is not None else ""
    key = (parent, str(getattr(item, "originalname", item.name)))
    found = where.get(key)
    if found is None:
        path, lineno, _ = type(item).reportinfo(item)
        found = where[key] = (path, lineno)
    return found[0], found[1], item.getmodpath()  # type: ignore[attr-defined]


class Crash(NamedTuple):
    """Where a check failed and its message: what pytest's short summary and JUnit's
    ``message`` attribute read from a report's ``longrepr.reprcrash``."""

    path: str
    lineno: int
    message: str


class CheckFailureText(str):
    """A failed check's report text that also carries its :class:`Crash`.

    ``toterminal`` makes pytest treat it as a terminal representation: xdist then sends
    plain text to the controller instead of an object it cannot serialise.
    """

    reprcrash: Crash | None = None

    def toterminal(self, tw: TerminalWriter) -> None:
        """Write the text, line by line, where pytest writes a failure's report."""
        for line in self.splitlines():
            tw.line(line)


def _key(item: pytest.Item) -> CaseKey | None:
    callspec = getattr(item, "callspec", None)
    value = callspec.params.get("hrw_case") if callspec else None
    return value if isinstance(value, CaseKey) else None


def pytest_collection_finish(session: pytest.Session) -> None:
    """Start probing every selected host in parallel (not under xdist, whose workers each
    probe only the hosts they are given)."""
    run = session.config.stash.get(RUN_KEY, None)
    config = session.config
    if run is None or _is_worker(config) or config.getoption("numprocesses", None):
        return
    if config.option.collectonly:  # listing the checks contacts no host
        return
    hosts = [key.host for item in session.items if (key := _key(item))]
    settle_garbage_collector()
    run.cache.prefetch(hosts, run.options.parallel)


@pytest.hookimpl(tryfirst=True)
def pytest_runtestloop(session: pytest.Session) -> bool | None:
    """Run each host's checks as soon as its facts are in (see run_order.py), when hosts
    are probed ahead; otherwise leave the loop to pytest."""
    run = session.config.stash.get(RUN_KEY, None)
    if run is None or session.config.option.collectonly or not run.cache.prefetching:
        return None
    return run_ready_first(
        session, _host_of, run.cache.ready, functools.partial(_skips_quickly, run), _skip_reason
    )


def _host_of(item: pytest.Item) -> str | None:
    key = _key(item)
    return key.host if key else None


def _prepare_case(run: Run, item: pytest.Item, key: CaseKey) -> Case:
    """Return the judged check of ``item``, judging it on first call and keeping it on the
    item (the quick-skip decision and the fixture then share one verdict)."""
    case = item.stash.get(CASE_KEY, None)
    if case is not None:
        return case
    target = run.targets[key.host]
    facts = run.cache.get(key.host)
    for secret in facts.secrets:  # before anything about this host is printed or written
        run.redact.add(secret)
    verdict = judge(key.scenario, key.item, facts, run.settings_for(target))
    case = Case(target, run.catalogue.get(key.scenario), key.item, facts, verdict, run.redact)
    item.stash[CASE_KEY] = case
    # Carried to the controller on the report (also from xdist workers) for the host line.
    item.user_properties.append(("worker_kind", describe(facts.section("kind").data)))
    return case


def _skips_quickly(run: Run, item: pytest.Item) -> bool:
    """Return True when ``item`` is a check its host's facts skip and nothing but the
    ``hrw_case`` fixture would run for it: it can be reported without the run protocol."""
    key = _key(item)
    if key is None or set(getattr(item, "fixturenames", ())) - {"hrw_case", "request"}:
        return False
    if any(mark.name not in run.own_marks for mark in item.iter_markers()):
        return False
    return _prepare_case(run, item, key).verdict.outcome == "skipped"


def _skip_reason(item: pytest.Item) -> str:
    """Return the skip reason the fixture would give (the verdict's redacted text)."""
    case = item.stash[CASE_KEY]
    return terminal_safe(case.redact(case.verdict.seen))


@pytest.fixture
def hrw_case(request: pytest.FixtureRequest) -> Case:
    """Return the judged check for this test's (host, scenario, item).

    An unreachable host or unreadable facts end the test here, in setup, as an error; a check
    that does not apply to the host's configuration is skipped with the reason.
    """
    run = request.config.stash[RUN_KEY]
    case = _prepare_case(run, request.node, request.param)
    if case.verdict.outcome == "error":
        pytest.fail(case.explain(), pytrace=False)
    if case.verdict.outcome == "skipped":
        pytest.skip(_skip_reason(request.node))
    return case


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    """Record the outcome on the item, and attach a failed or errored check's redacted
    evidence to the report of the phase that decided it."""
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    case = item.stash.get(CASE_KEY, None)
    if case is None:
        return
    decided = report.when == "call" or (report.when == "setup" and not report.passed)
    if not decided:
        return
    kind = "error" if report.when == "setup" and report.failed else report.outcome
    # JUnit writes the item's properties with the teardown report, so record it on the item.
    item.user_properties.append(("outcome", kind))
    # Only what went wrong carries its probe output into checks.html (a waived failure too);
    # every check's is in evidence.json. Attached to all, the page grew by a copy of each
    # host's output per check and took a tenth of the run's CPU to write.
    if case.verdict.outcome not in ("failed", "error"):
        return
    try:
        from pytest_html import extras
    except ImportError:
        return
    report.extras = [  # type: ignore[attr-defined]  # pytest-html reads this attribute
        *getattr(report, "extras", []),
        # pytest-html writes an extra's name into the page as HTML: escape the host name.
        extras.text(
            case.report_evidence[0], name=html.escape(f"probe output ({case.target.name})")
        ),
    ]


class _OutcomeCounter:
    """Counts outcomes per host for the terminal summary, from every report the process sees
    (under xdist the controller sees the workers' reports)."""

    def __init__(self, run: Run) -> None:
        self.run = run

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Count the outcome recorded on a check's teardown report."""
        props = dict(report.user_properties)
        host, kind = props.get("host"), props.get("outcome")
        if host and kind and report.when == "teardown":
            self.run.outcomes[str(host)][str(kind)] += 1
        if host and props.get("worker_kind"):
            self.run.kinds[str(host)] = str(props["worker_kind"])


def pytest_report_header(config: pytest.Config) -> list[str]:
    """Return the run header: hosts, catalogue version and options that weaken checks."""
    run = config.stash.get(RUN_KEY, None)
    if run is None:
        return []
    platforms = Counter(t.platform for t in run.targets.values())
    lines = [
        f"hrw-preflight: {len(run.targets)} host(s) "
        f"({', '.join(f'{n} {p}' for p, n in sorted(platforms.items()))}), catalogue "
        f"v{run.catalogue.version} sha256:{run.catalogue.sha256[:12]}"
    ]
    shard = run.options.shard
    if shard is not None:
        lines.append(
            f"hrw-preflight: shard {shard.index} of {shard.total} (from {shard.source}): "
            f"{len(run.targets)} of the {run.host_count} host(s) named; the other shards "
            "check the rest (python -m hrw_preflight merge joins their bundles)"
        )
    lines += [f"hrw-preflight: WEAKENED: {line}" for line in run.options.weakened()]
    lines += [f"hrw-preflight: WEAKENED: {line}" for line in weakened_summary(run.targets.values())]
    return [terminal_safe(run.redact(line)) for line in lines]


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print one line per host with its outcome counts, and where the reports are."""
    run = terminalreporter.config.stash.get(RUN_KEY, None)
    if run is None:
        return
    terminalreporter.section("hrw-preflight hosts")
    for name in run.targets:
        counts = run.outcomes.get(name, Counter())
        text = ", ".join(f"{n} {k}" for k, n in sorted(counts.items())) or "no checks ran"
        kind = run.kinds.get(name, "unknown")
        terminalreporter.write_line(terminal_safe(f"{name} [{kind}]: {text}"))
    if run.run_dir is not None:
        terminalreporter.write_line(
            f"reports: {run.run_dir}/ (latest: {run.run_dir.parent}/latest)"
        )


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """End a shard that holds no host with exit 0: it checked all it was given (pytest
    would say 5, no tests collected, and fail that CI job)."""
    run = session.config.stash.get(RUN_KEY, None)
    if run is None or run.options.shard is None or run.targets:
        return
    if session.exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED:
        session.exitstatus = pytest.ExitCode.OK


def pytest_unconfigure(config: pytest.Config) -> None:
    """Close connections and point reports/latest at this run once its files exist."""
    run = config.stash.get(RUN_KEY, None)
    if run is None:
        return
    run.cache.close()
    if run.run_dir is not None and not _is_worker(config) and os.path.isdir(run.run_dir):
        point_latest(run.run_dir)
