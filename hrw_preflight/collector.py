"""Facts per host, gathered once per run and shared by every test of that host.

The cache opens one connection per host, runs the platform's probe (two commands at most),
and remembers the outcome, including a failure to connect, so a dead host costs one attempt
and not one per test. Hosts can be probed ahead in parallel threads.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import testinfra.host
from testinfra.backend.base import CommandResult

from hrw_preflight.connections import ConnectOptions, HostUnreachable, close_host, open_host
from hrw_preflight.facts import HostFacts, Section
from hrw_preflight.probes import linux, windows
from hrw_preflight.probes.params import ProbeParams
from hrw_preflight.targets import Target


def _first_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
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
            data = getattr(result, "stderr_bytes", b"")
            stderr = data.decode("utf-8", "replace") if isinstance(data, bytes) else ""
            if not stderr.strip():
                # A multiplexed session whose connection dies exits 255 without a word.
                out = getattr(result, "stdout_bytes", b"") or b""
                stderr = (
                    "the connection was closed before the command finished (ssh exit 255, "
                    f"no message, {len(out)} bytes of output received)"
                )
            raise HostUnreachable(f"ssh failed: {_first_line(stderr)}") from exc
        except Exception as exc:  # paramiko/socket errors
            raise HostUnreachable(f"{exc.__class__.__name__}: {_first_line(str(exc))}") from exc

    def windows(self, command: str, stdin: bytes) -> Any:
        """Run one command with stdin through the WinRM backend (same counting and errors)."""
        self.count += 1
        try:
            return self.host.backend.run(command, stdin=stdin)
        except Exception as exc:
            raise HostUnreachable(_first_line(str(exc))) from exc


def probe_host(target: Target, host: testinfra.host.Host, params: ProbeParams) -> HostFacts:
    """Return the facts of one host; a failure to reach it is recorded, not raised."""
    runner = _CountingRunner(host)
    facts = HostFacts(host=target.name, platform=target.platform)
    try:
        if target.platform == "windows":
            facts.sections = windows.collect(runner.windows, params)
        else:
            facts.sections = linux.collect(runner, params)
    except HostUnreachable as exc:
        if runner.count <= 1:
            facts.connect_error = str(exc)
        else:  # the connection broke after the first command: keep what was read
            facts.sections.setdefault("network", Section.failed("network", str(exc)))
    facts.commands = runner.count
    return facts


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
        self._hosts: dict[str, testinfra.host.Host] = {}
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None

    def _gather(self, name: str) -> HostFacts:
        target = self.targets[name]
        try:
            host = open_host(target, self.options)
        except HostUnreachable as exc:
            return HostFacts(host=name, platform=target.platform, connect_error=str(exc))
        with self._lock:
            self._hosts[name] = host
        return probe_host(target, host, self.params_for(target))

    def _future(self, name: str, pool: ThreadPoolExecutor | None) -> Future[HostFacts]:
        with self._lock:
            future = self._futures.get(name)
            if future is None:
                if pool is not None:
                    future = pool.submit(self._gather, name)
                else:
                    future = Future()
                    future.set_running_or_notify_cancel()
                self._futures[name] = future
                run_here = pool is None
            else:
                run_here = False
        if run_here:
            try:
                future.set_result(self._gather(name))
            except BaseException as exc:
                future.set_exception(exc)
                raise
        return future

    def prefetch(self, names: Iterable[str], threads: int) -> None:
        """Start probing ``names`` in up to ``threads`` background threads."""
        wanted = [n for n in dict.fromkeys(names) if n in self.targets]
        if not wanted or threads < 1:
            return
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="hrw-probe")
        for name in wanted:
            self._future(name, self._pool)

    def get(self, name: str) -> HostFacts:
        """Return the facts of host ``name``, probing it now if nobody has yet."""
        return self._future(name, None).result()

    def gathered(self) -> dict[str, HostFacts]:
        """Return the facts gathered so far, by host name (for run records)."""
        return {n: f.result() for n, f in self._futures.items() if f.done() and not f.exception()}

    def close(self) -> None:
        """Close every connection opened during the run and stop the prefetch threads."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
        for host in list(self._hosts.values()):
            try:
                close_host(host)
            except Exception:
                continue
