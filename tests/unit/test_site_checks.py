"""Site checks: an operator's own testinfra tests run against the suite's hosts, through the
suite's connections, into the same reports."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from junitparser import Error, JUnitXml, TestCase

from hrw_preflight.report.evidence import schema_errors
from lab.winrm_emulator.engine import run_command
from lab.winrm_emulator.server import WinRMServer, create_server
from lab.winrm_emulator.testing import TlsFiles, loopback_host, throwaway_tls
from tests.junit_read import properties
from tests.suite_runner import PLUGINS, SUITE, latest, load_evidence

pytest_plugins = ["pytester"]

USER = "siteadmin"
PASSWORD = "S1te-Check-Pw!"
SITE_TEST = """
def test_hosts_file(host):
    assert host.file("/etc/hosts").exists

def test_echo(host):
    assert host.check_output("echo hrw") == "hrw"
"""


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_inprocess(
        *PLUGINS, "-p", "no:cacheprovider", "--hrw-reports", str(pytester.path / "reports"), *args
    )


def cases(pytester: pytest.Pytester) -> list[TestCase]:
    xml = JUnitXml.fromfile(str(latest(pytester) / "junit.xml"))
    return [c for suite in xml for c in suite]


def test_site_checks_run_on_every_host_and_land_in_the_reports(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_site=SITE_TEST)
    inventory = pytester.path / "inv.yml"
    inventory.write_text(
        "all:\n  hosts:\n    box1:\n      ansible_connection: local\n"
        "    box2:\n      ansible_connection: local\n"
    )
    result = run(pytester, f"--ansible-inventory={inventory}", "--hosts=ansible://all", "-v")
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(["*test_hosts_file?box1? PASSED*", "*test_echo?box2? PASSED*"])
    found = {(c.classname, properties(c)["host"], properties(c)["item"]) for c in cases(pytester)}
    assert found == {(h, h, t) for h in ("box1", "box2") for t in ("test_hosts_file", "test_echo")}
    record = load_evidence(latest(pytester))
    assert schema_errors(record) == []
    assert sorted((c["host"], c["outcome"]) for c in record["checks"]) == [
        ("box1", "passed"),
        ("box1", "passed"),
        ("box2", "passed"),
        ("box2", "passed"),
    ]


def test_ansible_hosts_need_nothing_on_path(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Before: testinfra built its own hosts from --hosts=ansible://all by running
    # `ansible-inventory` from PATH: "Unexpected exit code 127" unless the venv's bin was on it.
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    pytester.makepyfile(test_site=SITE_TEST)
    inventory = pytester.path / "inv.yml"
    inventory.write_text("all:\n  hosts:\n    box1:\n      ansible_connection: local\n")
    result = run(pytester, f"--ansible-inventory={inventory}", "--hosts=ansible://all")
    result.assert_outcomes(passed=2)


def test_catalogue_checks_and_site_checks_run_together(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_site=SITE_TEST)
    for path in SUITE.glob("test_*.py"):
        pytester.makepyfile(**{path.stem: path.read_text()})
    result = run(pytester, "--hosts=local://", "-k", "test_site or HRW-I01", "-v")
    result.stdout.fnmatch_lines(["*test_echo?local? PASSED*", "*HRW-I01*"])
    assert result.parseoutcomes()["passed"] >= 2


def test_an_unreachable_host_is_an_error_that_says_why(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_site=SITE_TEST)
    result = run(
        pytester,
        "--hosts=ssh://root@127.0.0.1:1",
        "--accept-unknown-host-keys",
        "--hrw-connect-timeout=3",
    )
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(["*host unreachable: ssh failed:*"])
    assert all(isinstance(r, Error) for c in cases(pytester) for r in c.result)


@pytest.fixture
def windows_server(tmp_path: Path) -> Iterator[tuple[WinRMServer, TlsFiles]]:
    """Yield the lab's WinRM emulator with its real command engine on loopback."""
    tls = throwaway_tls(tmp_path)
    with create_server(loopback_host(tls, USER, PASSWORD, name="win-site"), run_command) as s:
        yield s, tls


def test_windows_host_runs_commands_in_the_one_winrm_shell(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    windows_server: tuple[WinRMServer, TlsFiles],
) -> None:
    # Before: testinfra's own winrm:// backend opened a shell per command; from an
    # inventory, every Windows host failed with JSONDecodeError.
    server, tls = windows_server
    monkeypatch.setenv("HRW_WINRM_PASSWORD", PASSWORD)
    pytester.makepyfile(
        test_site="""
def test_hostname(host):
    assert host.check_output("hostname") == "win-site"

def test_unknown_command_fails_as_cmd_does(host):
    assert host.run("no-such-tool").rc == 9009

def test_testinfra_picks_its_windows_modules(host):
    assert host.system_info.type == "windows"
    assert type(host.file("C:/x")).__name__ == "WindowsFile"
"""
    )
    inventory = pytester.path / "inv.yml"
    inventory.write_text(
        "all:\n  hosts:\n    win1:\n      ansible_connection: winrm\n"
        f"      ansible_host: 127.0.0.1\n      ansible_port: {server.https_port}\n"
        f"      ansible_user: {USER}\n      ansible_winrm_ca_trust_path: {tls.cert}\n"
    )
    result = run(pytester, f"--ansible-inventory={inventory}", "--hosts=ansible://all")
    result.assert_outcomes(passed=3)
    assert PASSWORD not in result.stdout.str()
    assert server.shells.created == 1 and server.shells.commands_started == 3  # echo + 2 tests
    assert {c.classname for c in cases(pytester)} == {"win1"}


def test_the_docs_show_the_example_that_the_lab_runs() -> None:
    root = Path(__file__).resolve().parents[2]
    example = (root / "docs" / "examples" / "test_site_checks.py").read_text()
    body = example[example.index("import pytest") :].strip()
    assert body in (root / "docs" / "site-checks.md").read_text()
