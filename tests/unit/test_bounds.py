"""Bounds on the controller (issue 10 item 13): bytes read per command and wall-clock
deadlines that hold however a host answers, on every transport and in the fact cache."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from hrw_preflight.facts import collector
from hrw_preflight.facts.collector import FactsCache, gather_facts
from hrw_preflight.facts.model import HostFacts
from hrw_preflight.facts.params import ProbeParams
from hrw_preflight.hosts.bounds import DeadlinePassed, OutputTooLarge, within_deadline
from hrw_preflight.hosts.connections import BoundedSshBackend, ConnectOptions, HostUnreachable
from hrw_preflight.hosts.selection import parse_hosts_option
from hrw_preflight.hosts.targets import HostDefaults
from hrw_preflight.hosts.winrm_backend import WinRMBackend, WinRMError, WinRMSettings
from hrw_preflight.run.options import read_options

MB = 1024 * 1024
pytest_plugins = ["pytester"]


@pytest.fixture(autouse=True)
def no_threads_left_behind() -> Iterator[threading.Event]:
    """Yield an event that releases the work these tests leave behind, and wait for its
    threads to end: a thread still running would make the next in-process suite run start
    its probe process with spawn instead of fork (see probe_process._start_method)."""
    before = set(threading.enumerate())
    release = threading.Event()
    yield release
    release.set()
    deadline = time.monotonic() + 10
    while set(threading.enumerate()) - before and time.monotonic() < deadline:
        time.sleep(0.05)


def _ssh(timeout: int = 5, cap: int = MB) -> BoundedSshBackend:
    return BoundedSshBackend(
        "root@192.0.2.1", command_timeout_s=timeout, extra_argv=[], max_output_bytes=cap
    )


def test_ssh_output_over_the_cap_is_stopped_and_says_so() -> None:
    started = time.monotonic()
    with pytest.raises(OutputTooLarge, match=r"more than 1 MB for one command"):
        _ssh().run_argv(["sh", "-c", "head -c 500000000 /dev/zero"])
    assert time.monotonic() - started < 5


def test_ssh_output_under_the_cap_is_read_whole() -> None:
    result = _ssh().run_argv(["sh", "-c", "head -c 900000 /dev/zero; echo err >&2; exit 3"])
    assert (len(result.stdout_bytes), result.stderr_bytes, result.rc) == (900000, b"err\n", 3)


def test_ssh_trickle_cannot_stretch_the_command_timeout() -> None:
    started = time.monotonic()
    with pytest.raises(HostUnreachable, match="no answer within 1 s"):
        _ssh(timeout=1).run_argv(["sh", "-c", "while :; do printf x; sleep 0.1; done"])
    assert time.monotonic() - started < 4


def test_within_deadline_returns_raises_or_gives_up(
    no_threads_left_behind: threading.Event,
) -> None:
    assert within_deadline(lambda: 7, 1, "t") == 7
    with pytest.raises(ZeroDivisionError):
        within_deadline(lambda: 1 // 0, 1, "t")
    started = time.monotonic()
    with pytest.raises(DeadlinePassed):
        within_deadline(lambda: no_threads_left_behind.wait(30), 0.3, "t")
    assert time.monotonic() - started < 2


@pytest.fixture
def trickling_server() -> Iterator[int]:
    """Yield the port of an HTTP server that answers every request with headers and then
    one byte every 0.2 s, never finishing (as the issue's WinRM host did)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    listener.settimeout(0.2)  # so that the accepting thread sees the stop
    stop = threading.Event()

    def serve(conn: socket.socket) -> None:
        with conn:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n")
            while not stop.wait(0.2):
                try:
                    conn.sendall(b" ")
                except OSError:
                    return

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(None)
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        stop.set()
        time.sleep(0.3)
        listener.close()


def test_winrm_trickle_cannot_stretch_the_command_timeout(trickling_server: int) -> None:
    settings = WinRMSettings(
        host="127.0.0.1",
        port=trickling_server,
        user="u",
        password="p",
        scheme="http",
        connect_timeout_s=1,
        read_timeout_s=3,
        operation_timeout_s=2,
        command_timeout_s=2,
    )
    backend = WinRMBackend(settings)
    started = time.monotonic()
    with pytest.raises(WinRMError, match=r"did not finish within 3s") as raised:
        backend.run("hostname")
    assert raised.value.cause == "command-timeout"
    assert time.monotonic() - started < 5
    started = time.monotonic()
    backend.close()  # never waits for the command left behind
    with pytest.raises(WinRMError, match="an earlier command hung"):
        backend.run("hostname")
    assert time.monotonic() - started < 1


class _Flooding:
    """A WinRM protocol whose command prints 1 MB per receive, forever."""

    def get_command_output_raw(self, shell_id: str, command_id: str) -> tuple[Any, ...]:
        return b"x" * MB, b"", 0, False

    def run_command(self, shell_id: str, line: str, **options: Any) -> str:
        return "cmd"


def test_winrm_output_over_the_cap_is_stopped_and_says_so() -> None:
    settings = WinRMSettings(host="w1", port=5985, user="u", password="p", max_output_bytes=3 * MB)
    backend = WinRMBackend(settings)
    with pytest.raises(WinRMError, match=r"more than 3 MB for one command") as raised:
        backend._execute(_Flooding(), "shell", "cmd", None)  # type: ignore[arg-type]
    assert raised.value.cause == "too-large"


def _target(name: str = "h1") -> Any:
    [target] = parse_hosts_option([f"ssh://root@{name}"], [], HostDefaults())
    return target


def test_a_host_past_its_deadline_is_an_error_that_says_so(
    monkeypatch: pytest.MonkeyPatch, no_threads_left_behind: threading.Event
) -> None:
    monkeypatch.setattr(ConnectOptions, "host_deadline_s", property(lambda self: 0.5))
    monkeypatch.setattr(collector, "_gather_facts", lambda *a: no_threads_left_behind.wait(30))
    started = time.monotonic()
    facts = gather_facts(_target(), ConnectOptions(), ProbeParams())
    assert time.monotonic() - started < 3
    assert facts.connect_error is not None and "was not done after 0.5 s" in facts.connect_error


def test_the_cache_never_waits_forever_for_a_prefetched_host(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ConnectOptions, "host_deadline_s", property(lambda self: 0.5))
    cache = FactsCache([_target()], ConnectOptions(), lambda target: ProbeParams())

    class Stuck:
        def __init__(self, *args: Any) -> None:
            pass

        def start(self, deliver: Any) -> None:  # a probe process that never answers
            pass

        def stop(self) -> None:
            pass

    monkeypatch.setattr(collector, "ProbeProcess", Stuck)
    cache.prefetch(["h1"], threads=1)
    started = time.monotonic()
    facts: HostFacts = cache.get("h1")
    assert time.monotonic() - started < 3
    assert "delivered no facts within 1 s" in str(facts.connect_error)


def test_max_output_option_reaches_the_connections(pytester: pytest.Pytester) -> None:
    config = pytester.parseconfig("-p", "hrw_preflight.plugin", "--hrw-max-output-mb=1.5")
    assert read_options(config).connect.max_output_bytes == int(1.5 * MB)
    default = pytester.parseconfig("-p", "hrw_preflight.plugin")
    assert read_options(default).connect.max_output_bytes == 64 * MB


def test_network_output_full_of_certificate_starts_parses_in_linear_time() -> None:
    from hrw_preflight.facts.linux import probe as linux
    from tests.linux_samples import OMS, Out

    lines = [f"{OMS}|-----BEGIN CERTIFICATE-----"] * 200_000 + [f"{OMS}|@@RC 1"]
    started = time.process_time()
    section = linux.parse_network(Out("\n".join(lines)), {OMS: "oms"}, None)
    assert time.process_time() - started < 5
    assert section.data is not None and section.data[OMS]["chain_pem"] == []


def test_every_default_comes_from_one_place(pytester: pytest.Pytester) -> None:
    from hrw_preflight import defaults
    from hrw_preflight.verdicts.base import Settings
    from hrw_preflight.verdicts.certs import TrustedCAs

    options = read_options(pytester.parseconfig("-p", "hrw_preflight.plugin"))
    params = ProbeParams()
    settings = Settings(trusted=TrustedCAs.__new__(TrustedCAs))
    assert options.lookback_hours == params.lookback_hours == settings.lookback_hours
    assert options.lookback_hours == defaults.LOOKBACK_HOURS
    assert options.endpoint_timeout_s == params.connect_timeout_s == defaults.ENDPOINT_TIMEOUT_S
    assert options.connect == ConnectOptions()
    assert (options.min_cpus, settings.min_logical_processors) == (
        defaults.MIN_LOGICAL_PROCESSORS,
    ) * 2
    assert options.min_memory_gb == settings.min_memory_gb == defaults.MIN_MEMORY_GB
    assert options.max_cpu_load == settings.max_cpu_load == defaults.MAX_CPU_LOAD
    assert options.min_memory_available_pct == settings.min_memory_available_pct
    assert options.parallel == defaults.PARALLEL_HOSTS
