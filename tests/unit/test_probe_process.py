"""The probe child process: facts come back for every host, whatever happens in the child."""

from __future__ import annotations

import os
import threading

from hrw_preflight.facts.model import HostFacts, Section
from hrw_preflight.facts.params import ProbeParams
from hrw_preflight.facts.probe_process import ProbeProcess
from hrw_preflight.hosts.connections import ConnectOptions
from hrw_preflight.hosts.selection import parse_hosts_option
from hrw_preflight.hosts.targets import HostDefaults, Target


def targets(*names: str) -> list[Target]:
    return parse_hosts_option([f"ssh://root@{n}" for n in names], [], HostDefaults())


def _explode() -> None:
    raise ValueError("cannot rebuild")


class Unreadable:
    """Pickles in the child, fails to unpickle in the parent."""

    def __reduce__(self) -> tuple[object, tuple[()]]:
        return (_explode, ())


def answer(target: Target, options: ConnectOptions, params: ProbeParams) -> HostFacts:
    """Facts naming the process that gathered them."""
    if target.name == "garbled":
        return HostFacts(
            target.name, target.platform, {"clock": Section("clock", {"x": Unreadable()})}
        )
    if target.name == "broken":
        raise ValueError("parser bug")
    if target.name == "dies":
        os._exit(3)
    section = Section("clock", {"pid": os.getpid(), "timeout": params.connect_timeout_s})
    return HostFacts(target.name, target.platform, {"clock": section}, commands=1)


def run(names: list[str], threads: int = 4) -> dict[str, HostFacts]:
    got: dict[str, HostFacts] = {}
    done = threading.Event()
    jobs = [(t, ProbeParams(connect_timeout_s=2.5)) for t in targets(*names)]

    def deliver(name: str, facts: HostFacts) -> None:
        got[name] = facts
        if len(got) == len(jobs):
            done.set()

    prober = ProbeProcess(jobs, ConnectOptions(), threads, answer)
    prober.start(deliver)
    assert done.wait(60), f"facts missing for {set(names) - set(got)}"
    prober.stop()
    return got


def test_facts_come_back_from_a_child_process() -> None:
    got = run(["h1", "h2", "h3"])
    assert set(got) == {"h1", "h2", "h3"}
    for facts in got.values():
        data = facts.sections["clock"].data
        assert data is not None and data["pid"] != os.getpid() and data["timeout"] == 2.5


def test_a_probe_that_raises_is_an_internal_error_for_that_host_only() -> None:
    got = run(["h1", "broken"])
    assert got["h1"].connect_error is None and got["h1"].internal_error is None
    assert got["broken"].connect_error is None  # a suite bug, never the host unreachable
    assert got["broken"].internal_error == (
        "internal error in hrw-preflight while probing (a bug in the suite, not a problem of "
        "the host; please report it): ValueError: parser bug"
    )


def test_a_child_that_dies_leaves_every_unanswered_host_with_the_reason() -> None:
    got = run(["dies", "h2"], threads=1)
    assert got["dies"].connect_error is not None
    assert "probe process ended (exit code 3)" in got["dies"].connect_error
    assert got["dies"].sections == {}


def test_a_reply_that_cannot_be_read_leaves_no_host_waiting() -> None:
    got = run(["garbled", "h2"], threads=1)
    error = got["garbled"].connect_error
    assert error is not None and "reply could not be read" in error and "cannot rebuild" in error
    # h2 arrives after the unreadable reply, which ends the reading: an error, never missing.
    assert got["h2"].connect_error is None or "could not be read" in got["h2"].connect_error
