"""Bounds that hold whatever a host does: bytes read per command and wall-clock deadlines.

A host decides how much it prints and how slowly; the controller must not. Every transport
reads a command's output through a cap (:data:`DEFAULT_MAX_OUTPUT_BYTES`, set with
``--hrw-max-output-mb``), and every wait has a deadline that is checked against the clock,
not only between reads, so one byte a second cannot stretch it.
"""

from __future__ import annotations

import os
import selectors
import subprocess
import threading
import time
from collections.abc import Callable
from typing import IO, TypeVar

from hrw_preflight import defaults
from hrw_preflight.hosts.errors import HostUnreachable

DEFAULT_MAX_OUTPUT_BYTES = defaults.MAX_OUTPUT_MB * 1024 * 1024
_CHUNK = 65536
T = TypeVar("T")


class OutputTooLarge(HostUnreachable):
    """A command printed more than the cap; the host cannot be checked from that output."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"the host printed more than {limit / 1024 / 1024:g} MB for one command, so it "
            "was stopped and nothing it printed was judged (--hrw-max-output-mb)"
        )
        self.limit = limit


class DeadlinePassed(Exception):
    """A wait outlived its wall-clock deadline."""


def read_bounded(
    proc: subprocess.Popen[bytes], timeout_s: float, max_bytes: int
) -> tuple[bytes, bytes]:
    """Return the whole stdout and stderr of ``proc`` once it has closed both and exited.

    Raises :class:`DeadlinePassed` when that takes longer than ``timeout_s`` (measured on
    the clock, whatever trickles in) and :class:`OutputTooLarge` as soon as the two streams
    together pass ``max_bytes``; the caller ends the process either way.
    """
    deadline = time.monotonic() + timeout_s
    streams: dict[int, list[bytes]] = {}
    total = 0
    with selectors.DefaultSelector() as selector:
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                chunks: list[bytes] = []
                streams[stream.fileno()] = chunks
                selector.register(stream, selectors.EVENT_READ, chunks)
        while selector.get_map():
            left = deadline - time.monotonic()
            if left <= 0:
                raise DeadlinePassed
            for key, _ in selector.select(left):
                chunk = os.read(key.fd, _CHUNK)
                if not chunk:
                    selector.unregister(key.fileobj)
                    continue
                key.data.append(chunk)
                total += len(chunk)
                if total > max_bytes:
                    raise OutputTooLarge(max_bytes)
    try:
        proc.wait(timeout=max(0.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        raise DeadlinePassed from None
    out = _joined(streams, proc.stdout)
    err = _joined(streams, proc.stderr)
    return out, err


def _joined(streams: dict[int, list[bytes]], stream: IO[bytes] | None) -> bytes:
    return b"".join(streams[stream.fileno()]) if stream is not None else b""


def within_deadline(work: Callable[[], T], seconds: float, name: str) -> T:
    """Return ``work()``, or raise :class:`DeadlinePassed` if it has not returned after
    ``seconds``.

    Why: some waits cannot be bounded where they happen (a library blocked on a socket that
    a host feeds one byte at a time); the work then runs in a daemon thread that is left
    behind, and the caller goes on with an error instead of waiting with it.
    """
    outcome: list[T] = []
    failure: list[BaseException] = []

    def run() -> None:
        try:
            outcome.append(work())
        except BaseException as exc:  # handed to the caller's thread as it is
            failure.append(exc)

    thread = threading.Thread(target=run, name=f"hrw-deadline-{name}", daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        raise DeadlinePassed
    if failure:
        raise failure[0]
    return outcome[0]
