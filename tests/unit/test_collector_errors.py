"""Which failures are the host's and which are the suite's own.

A transport failure (ssh's exit 255, a socket error, a WinRM error) is the host's: every check
says it is unreachable, with the transport's first words. Any other exception while probing is
a bug in the suite: every check says so and never calls the host unreachable.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
import requests
from testinfra.backend.base import CommandResult

from hrw_preflight.facts import collector
from hrw_preflight.facts.model import HostFacts
from hrw_preflight.facts.params import ProbeParams
from hrw_preflight.hosts.connections import ConnectOptions, HostUnreachable
from hrw_preflight.hosts.selection import parse_hosts_option
from hrw_preflight.hosts.targets import HostDefaults, Target
from hrw_preflight.hosts.winrm_backend import WinRMBackend, WinRMError, WinRMSettings
from hrw_preflight.verdicts import judge


@pytest.fixture(autouse=True)
def winrm_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HRW_WINRM_PASSWORD", "not-a-real-one")


def target(spec: str) -> Target:
    [only] = parse_hosts_option([spec], [], HostDefaults())
    return only


class FakeHost:
    """A testinfra host whose every command raises ``error``."""

    def __init__(self, error: BaseException) -> None:
        self.error = error
        self.backend = SimpleNamespace(run=self._raise)

    def _raise(self, *args: Any, **kwargs: Any) -> CommandResult:
        raise self.error

    def run(self, command: str, *args: str) -> CommandResult:
        return self._raise()


def ssh_exit_255(stderr: bytes) -> RuntimeError:
    result = CommandResult(None, 255, "ssh ...", b"", stderr)
    return RuntimeError(result)


def test_first_line_is_the_first_line() -> None:
    # It used to return the last line.
    assert collector._first_line("\n  summary \ndetail one\ndetail two\n") == "summary"
    assert collector._first_line("  \n") == "no error text"


def test_ssh_reason_is_its_last_line_after_warnings() -> None:
    stderr = b"Warning: Permanently added '10.0.0.5' to known hosts.\nroot@h: Permission denied\n"
    facts = collector.probe_host(
        target("ssh://root@h"), FakeHost(ssh_exit_255(stderr)), ProbeParams()
    )
    assert facts.connect_error == "ssh failed: root@h: Permission denied"


def test_socket_error_is_the_host_being_unreachable() -> None:
    error = ConnectionResetError("Connection reset by peer\nmore")
    facts = collector.probe_host(target("paramiko://root@h"), FakeHost(error), ProbeParams())
    assert facts.connect_error == "ConnectionResetError: Connection reset by peer"
    assert facts.internal_error is None


def test_winrm_error_is_the_host_being_unreachable_with_its_first_line() -> None:
    error = WinRMError("w", "refused", "w:5986: connection refused; is WinRM listening?")
    facts = collector.probe_host(target("winrm://svc@w"), FakeHost(error), ProbeParams())
    assert facts.connect_error == "w:5986: connection refused; is WinRM listening?"


@pytest.mark.parametrize("spec", ["ssh://root@h", "winrm://svc@w"])
@pytest.mark.parametrize(
    "bug", [TypeError("unsupported operand"), KeyError("stdout"), RuntimeError("not ssh")]
)
def test_a_suite_bug_is_an_internal_error_never_unreachable(
    spec: str, bug: Exception, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Before: `except Exception` turned any of these into "host unreachable: ...".
    host = FakeHost(bug)
    with pytest.raises(type(bug)):
        collector.probe_host(target(spec), host, ProbeParams())
    monkeypatch.setattr(collector, "open_host", lambda t, o: host)
    monkeypatch.setattr(collector, "close_host", lambda h: None)
    facts = collector.gather_facts(target(spec), ConnectOptions(), ProbeParams())
    assert facts.connect_error is None
    assert facts.internal_error is not None
    assert facts.internal_error.startswith("internal error in hrw-preflight while probing")
    assert type(bug).__name__ in facts.internal_error
    verdict = judge("HRW-G02", "cpu", facts, None)  # type: ignore[arg-type]
    assert verdict.outcome == "error"
    assert "internal error in hrw-preflight" in verdict.seen and "unreachable" not in verdict.seen


def test_unreachable_host_still_reads_as_unreachable() -> None:
    facts = HostFacts("h", "linux", connect_error="ssh failed: Connection timed out")
    verdict = judge("HRW-G02", "cpu", facts, None)  # type: ignore[arg-type]
    assert verdict.seen == "host unreachable: ssh failed: Connection timed out"


def test_host_unreachable_from_the_backend_passes_through() -> None:
    facts = collector.probe_host(
        target("ssh://root@h"),
        FakeHost(HostUnreachable("no answer within 5 s")),
        ProbeParams(),
    )
    assert facts.connect_error == "no answer within 5 s"


class GSSError(Exception):
    """Stands for the GSSAPI error a Kerberos library raises when the caller has no ticket."""


def test_kerberos_without_a_ticket_says_so_and_never_unreachable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Before: Kerberos was accepted without a password and then every check read
    # "host unreachable: ... connection failed (GSSError)".
    settings = WinRMSettings(host="win1", port=5986, user="svc", password="", transport="kerberos")
    backend = WinRMBackend(settings)

    def no_ticket() -> None:
        try:
            raise GSSError("No Kerberos credentials available (default cache: FILE:/tmp/krb5cc_0)")
        except GSSError as inner:
            raise requests.exceptions.ConnectionError("auth failed") from inner

    monkeypatch.setattr(backend, "_open", no_ticket)
    with pytest.raises(WinRMError) as info:
        backend.run("whoami")
    assert info.value.cause == "auth"
    assert "Kerberos login as svc failed (GSSError: No Kerberos credentials" in str(info.value)
    assert "run kinit svc first" in str(info.value)
    host = SimpleNamespace(backend=backend)
    facts = collector.probe_host(target("winrm://svc@win1"), host, ProbeParams())
    assert facts.connect_error is not None and facts.connect_error.startswith("login failed: ")
    seen = judge("HRW-W01", "HealthService", facts, None).seen  # type: ignore[arg-type]
    assert seen.startswith("login failed: win1:5986: Kerberos login as svc failed")
    assert "unreachable" not in seen


def test_rejected_credentials_read_as_a_failed_login() -> None:
    error = WinRMError("w", "auth", "w:5986: the credentials of user 'svc' were rejected")
    facts = collector.probe_host(target("winrm://svc@w"), FakeHost(error), ProbeParams())
    assert (
        facts.connect_error == "login failed: w:5986: the credentials of user 'svc' were rejected"
    )
