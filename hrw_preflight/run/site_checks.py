"""Site checks: an operator's own testinfra tests run against the suite's hosts.

A test such as ``def test_x(host): assert host.file("/etc/hosts").exists`` placed beside the
catalogue's tests runs once per host of the same ``--hosts`` / inventory, through the suite's
own connections (one SSH master, or one WinRM shell, per host for all its site checks), and
lands in the same reports (JUnit classname and ``host`` property = the host).

Why not testinfra's own ``host`` parametrisation: it builds its own connections from
``--hosts``, which for ``ansible://`` runs ``ansible-inventory`` from PATH and for a Windows
host fails to parse the answer; the suite has already resolved every host. testinfra's
``host`` fixture stays (it returns ``_testinfra_host``); this module parametrises
``_testinfra_host`` with the suite's hosts and stops testinfra's own parametrisation.
"""

from __future__ import annotations

import contextlib

import pytest
import testinfra.host

from hrw_preflight.hosts.connections import HostUnreachable, close_host, open_host
from hrw_preflight.hosts.targets import Target
from hrw_preflight.hosts.winrm_backend import WinRMError
from hrw_preflight.run.plugin import RUN_KEY, Run

TESTINFRA_PLUGIN = "pytest11.testinfra"
FIXTURE = "_testinfra_host"
# testinfra's system_info of a Windows host, so its modules pick their Windows classes
# (WindowsFile, WindowsService, WindowsUser) without asking the host `uname -s` first.
WINDOWS_SYSINFO = {
    "type": "windows",
    "distribution": None,
    "codename": None,
    "release": None,
    "arch": None,
}


class SiteHosts:
    """One testinfra Host per target for the site checks, opened on first use and closed at
    the end of the run; remembers whether each host answered."""

    def __init__(self, run: Run) -> None:
        self.run = run
        self.hosts: dict[str, testinfra.host.Host] = {}
        self.unreachable: dict[str, str | None] = {}

    def host(self, target: Target) -> testinfra.host.Host:
        """Return the host's testinfra Host (nothing is sent until its first command)."""
        if target.name not in self.hosts:
            host = open_host(target, self.run.options.connect)
            if target.platform == "windows":
                host.system_info.__dict__["sysinfo"] = dict(WINDOWS_SYSINFO)
            self.hosts[target.name] = host
        return self.hosts[target.name]

    def why_unreachable(self, target: Target) -> str | None:
        """Return why the host cannot be reached (one trivial command, once per host), or
        None when it answered. Why: a host that cannot be checked is an error, never a
        failure of the operator's test."""
        if target.name not in self.unreachable:
            try:
                self.host(target).run("echo hrw-site-check")
                reason = None
            except (HostUnreachable, WinRMError, OSError) as exc:
                reason = str(exc) or type(exc).__name__
            except RuntimeError as exc:  # ssh's own exit 255
                result = exc.args[0] if exc.args else None
                err = getattr(result, "stderr", "") or "the connection failed (ssh exit 255)"
                reason = f"ssh failed: {str(err).strip().splitlines()[-1]}"
            self.unreachable[target.name] = reason
        return self.unreachable[target.name]

    def close(self) -> None:
        """Close every connection the site checks opened."""
        for host in self.hosts.values():
            with contextlib.suppress(Exception):  # tidying up; the results are recorded
                close_host(host)
        self.hosts.clear()


SITE_KEY = pytest.StashKey[SiteHosts]()


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    """When the suite has hosts, take the ``host`` fixture's parametrisation over."""
    run = config.stash.get(RUN_KEY, None)
    if run is None:
        return  # no --hosts: testinfra keeps its own behaviour
    plugin = config.pluginmanager.get_plugin(TESTINFRA_PLUGIN)
    if plugin is not None:
        # Its fixtures stay registered (host returns _testinfra_host); only its hooks go.
        config.pluginmanager.unregister(plugin)
    config.stash[SITE_KEY] = SiteHosts(run)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrise every test that uses testinfra's ``host`` over the suite's hosts."""
    if FIXTURE not in metafunc.fixturenames or "hrw_case" in metafunc.fixturenames:
        return
    site = metafunc.config.stash.get(SITE_KEY, None)
    if site is None:
        return
    params = [
        pytest.param(
            site.host(target),
            id=target.name,
            marks=[pytest.mark.xdist_group(target.name), getattr(pytest.mark, target.platform)],
        )
        for target in site.run.targets.values()
    ]
    metafunc.parametrize(FIXTURE, params, indirect=True, scope="module")


def _target_of(item: pytest.Item) -> Target | None:
    callspec = getattr(item, "callspec", None)
    site = item.config.stash.get(SITE_KEY, None)
    if callspec is None or site is None or FIXTURE not in callspec.params:
        return None
    # The parameter's index, not the Host object: testinfra hands out one Host per host spec,
    # so two inventory names for one machine share it.
    index = callspec.indices[FIXTURE]
    targets = list(site.run.targets.values())
    return targets[index] if 0 <= index < len(targets) else None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Give every site check the ``host`` property (the JUnit classname) and its test name."""
    for item in items:
        target = _target_of(item)
        if target is not None:
            name = getattr(item, "originalname", item.name)
            item.user_properties.extend([("host", target.name), ("item", name)])


def pytest_runtest_setup(item: pytest.Item) -> None:
    """End a site check in setup, as an error, when its host cannot be reached."""
    target = _target_of(item)
    site = item.config.stash.get(SITE_KEY, None)
    if target is None or site is None:
        return
    reason = site.why_unreachable(target)
    if reason is not None:
        pytest.fail(site.run.redact(f"host unreachable: {reason}"), pytrace=False)


def pytest_unconfigure(config: pytest.Config) -> None:
    """Close the site checks' connections."""
    site = config.stash.get(SITE_KEY, None)
    if site is not None:
        site.close()
