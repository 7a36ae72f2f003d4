"""Facts per host, gathered once per run and shared by every test of that host.

The cache opens one connection per host, runs the platform's probe (two commands at most),
closes the connection, and remembers the outcome, including a failure to connect, so a dead
host costs one attempt and not one per test. Hosts can be probed ahead, many at once, in a
child process (see :mod:`hrw_preflight.facts.probe_process`).
"""

from __future__ import annotations

import contextlib
import functools
import queue
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from typing import Any

import paramiko
import testinfra.host
from testinfra.backend.base import CommandResult

from hrw_preflight.facts.linux import probe as linux
from hrw_preflight.facts.model import HostFacts, Section, internal_error
from hrw_preflight.facts.params import ProbeParams
from hrw_preflight.facts.probe_process import ProbeProcess
from hrw_preflight.facts.windows import probe as windows
from hrw_preflight.hosts.bounds import DeadlinePassed, within_deadline
from hrw_preflight.hosts.connections import (
    ConnectOptions,
    HostUnreachable,
    close_host,
    open_host,
    remove_control_dir,
)
from hrw_preflight.hosts.errors import LOGIN_FAILED, LoginFailed
from hrw_preflight.hosts.targets import Target
from hrw_preflight.hosts.winrm_backend import WinRMError


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def _first_line(text: str) -> str:
    """Return the first non-blank line of an exception's text (its summary)."""
    lines = _lines(text)
    return lines[0] if lines else "no error text"


def _last_line(text: str) -> str:
    """Return the last non-blank line of ssh's stderr: ssh prints warnings and banners first
    and its own reason for failing last."""
    lines = _lines(text)
    return lines[-1] if lines else "no error text"


class _CountingRunner:
    """Runs commands on one host, counts them, and turns transport failures into
    HostUnreachable with the transport's own words (never the command, which is long)."""

    def __init__(self, host: testinfra.host.Host) -> None:
        self.host = host
        self.count = 0

    def __call__(self, command: str, *args: str) -> CommandResult:
        self.count += 1
        try:
            return self.host.run(command, *args)
        except HostUnreachable:
            raise
        except RuntimeError as exc:  # testinfra's ssh backend: exit 255 from ssh itself
            result = exc.args[0] if exc.args else None
            if not isinstance(result, CommandResult):
                raise  # not ssh's exit 255: a bug, which must not read as a host problem
            data = getattr(result, "stderr_bytes", b"")
            stderr = data.decode("utf-8", "replace") if isinstance(data, bytes) else ""
            if not stderr.strip():
                # A multiplexed session whose connection dies exits 255 without a word.
                out = getattr(result, "stdout_bytes", b"") or b""
                stderr = (
                    "the connection was closed before the command finished (ssh exit 255, "
                    f"no message, {len(out)} bytes of output received)"
                )
            raise HostUnreachable(f"ssh failed: {_last_line(stderr)}") from exc
        except (OSError, EOFError, paramiko.SSHException) as exc:  # paramiko/socket errors
            raise HostUnreachable(f"{exc.__class__.__name__}: {_first_line(str(exc))}") from exc

    def windows(self, command: str, stdin: bytes) -> Any:
        """Run one command with stdin through the WinRM backend (same counting and errors)."""
        self.count += 1
        try:
            return self.host.backend.run(command, stdin=stdin)
        except WinRMError as exc:  # the backend's one error for every WinRM failure
            if exc.cause == "auth":
                raise LoginFailed(LOGIN_FAILED + _first_line(str(exc))) from exc
            raise HostUnreachable(_first_line(str(exc))) from exc


def probe_host(target: Target, host: testinfra.host.Host, params: ProbeParams) -> HostFacts:
    """Return the facts of one host; a failure to reach it is recorded, not raised.

    Only transport failures count as the host's; any other exception is the suite's own and
    propagates (:func:`gather_facts` records it as an internal error).
    """
    runner = _CountingRunner(host)
    facts = HostFacts(host=target.name, platform=target.platform)
    try:
        if target.platform == "windows":
            facts.sections = windows.collect(runner.windows, params)
        else:
            facts.sections = linux.collect(runner, params, facts.secrets)
    except HostUnreachable as exc:
        if runner.count <= 1:
            facts.connect_error = str(exc)
        else:  # the connection broke after the first command: keep what was read
            facts.sections.setdefault("network", Section.failed("network", str(exc)))
    facts.commands = runner.count
    return facts


def gather_facts(target: Target, options: ConnectOptions, params: ProbeParams) -> HostFacts:
    """Return the facts of one host within its wall-clock deadline
    (:attr:`ConnectOptions.host_deadline_s`): connect, probe, and close the connection again.

    Why a deadline here too: every transport bounds its own waits, but a host is only sure
    to cost bounded time if the whole of it is bounded; past the deadline the host is an
    error that says so, and its probe is left behind in a daemon thread.
    """
    limit = options.host_deadline_s
    try:
        return within_deadline(lambda: _gather_facts(target, options, params), limit, target.name)
    except DeadlinePassed:
        return HostFacts(
            host=target.name,
            platform=target.platform,
            connect_error=f"the host was not done after {limit:g} s (connect timeout plus "
            "twice the command timeout, plus 10 s); it kept its connection open without "
            "finishing (--hrw-command-timeout)",
        )


def _gather_facts(target: Target, options: ConnectOptions, params: ProbeParams) -> HostFacts:
    """Return the facts of one host: connect, probe, and close the connection again.

    Why close at once: the probe is all the run asks of a host, and a multiplexed SSH master
    left open would only hold a process and a socket per host until the run ends.
    """
    try:
        host = open_host(target, options)
    except HostUnreachable as exc:
        return HostFacts(host=target.name, platform=target.platform, connect_error=str(exc))
    try:
        return probe_host(target, host, params)
    except Exception as exc:
        return HostFacts(target.name, target.platform, internal_error=internal_error(exc))
    finally:
        # Closing is tidying up: the facts are already read, a failure here changes nothing.
        with contextlib.suppress(Exception):
            close_host(host)


class FactsCache:
    """Gathers each host's facts at most once per run, from any thread."""

    def __init__(
        self,
        targets: Iterable[Target],
        options: ConnectOptions,
        params_for: Callable[[Target], ProbeParams],
    ) -> None:
        self.targets = {t.name: t for t in targets}
        self.options = options
        self.params_for = params_for
        self._futures: dict[str, Future[HostFacts]] = {}
        self._lock = threading.Lock()
        self._prober: ProbeProcess | None = None
        self._wait_limit_s: float | None = None  # longest wait for a prefetched host
        # Names of prefetched hosts, in the order their facts (or why they are missing) came.
        self.ready: queue.Queue[str] = queue.Queue()

    def _gather(self, name: str) -> HostFacts:
        target = self.targets[name]
        return gather_facts(target, self.options, self.params_for(target))

    def _future(self, name: str) -> tuple[Future[HostFacts], bool]:
        """Return the host's future and whether the caller must gather it (it is new)."""
        with self._lock:
            future = self._futures.get(name)
            if future is not None:
                return future, False
            future = Future()
            future.set_running_or_notify_cancel()
            self._futures[name] = future
            return future, True

    def prefetch(self, names: Iterable[str], threads: int) -> None:
        """Start probing ``names``, up to ``threads`` hosts at once, in a child process
        (which a run can stop at once, see :mod:`hrw_preflight.facts.probe_process`)."""
        if threads < 1 or self.prefetching:
            return
        jobs = []
        for name in dict.fromkeys(names):
            if name not in self.targets:
                continue
            future, new = self._future(name)
            future.add_done_callback(functools.partial(self._announce, name))
            if new:
                target = self.targets[name]
                jobs.append((target, self.params_for(target), future))
        if not jobs:
            return
        # Windows hosts first: their probe is one command that mostly waits on the host
        # (PowerShell, event logs, endpoint checks) and costs this side little, so starting
        # them early overlaps that wait with the SSH hosts' CPU-bound connection setup.
        jobs.sort(key=lambda job: job[0].platform != "windows")
        # Each host ends within its deadline once started, and hosts start ``threads`` at a
        # time: no host can be waited for longer than this unless the probe process hangs.
        rounds = -(-len(jobs) // threads) + 1
        self._wait_limit_s = rounds * self.options.host_deadline_s
        self._prober = ProbeProcess(
            [(t, p) for t, p, _ in jobs], self.options, threads, gather_facts
        )
        futures = {t.name: f for t, _, f in jobs}
        self._prober.start(lambda name, facts: futures[name].set_result(facts))

    def _announce(self, name: str, _: Future[HostFacts]) -> None:
        self.ready.put(name)

    @property
    def prefetching(self) -> bool:
        """Return whether hosts are being probed ahead (and announced on :attr:`ready`)."""
        return self._prober is not None

    def get(self, name: str) -> HostFacts:
        """Return the facts of host ``name``, probing it now if nobody has yet."""
        future, new = self._future(name)
        if new:
            try:
                future.set_result(self._gather(name))
            except BaseException as exc:
                future.set_exception(exc)
                raise
        try:
            return future.result(timeout=self._wait_limit_s)
        except TimeoutError:
            target = self.targets[name]
            return HostFacts(
                host=name,
                platform=target.platform,
                connect_error=f"the probe process delivered no facts within "
                f"{self._wait_limit_s:g} s",
            )

    def gathered(self) -> dict[str, HostFacts]:
        """Return the facts gathered so far, by host name (for run records)."""
        return {n: f.result() for n, f in self._futures.items() if f.done() and not f.exception()}

    def close(self) -> None:
        """Stop the probe process if it is still running (an interrupted run)."""
        if self._prober is not None:
            self._prober.stop()
        remove_control_dir()
