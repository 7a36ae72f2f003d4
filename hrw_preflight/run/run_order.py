"""Running each host's checks as soon as that host's facts are in.

pytest runs tests in collection order: every host's HRW-G01 checks, then every host's
HRW-G02, and so on. With hosts probed ahead in parallel, that order makes the run wait for
the slowest host (one whose endpoints time out, say) before it can report the second
scenario of any host, and leaves the work of reporting for the end. This loop instead runs
the checks host by host, taking the hosts in the order their facts arrive, so reporting
overlaps probing and a slow host holds up only its own checks.

Tests that check no host (none in ``tests_infra``, but a user may mix them in) run first,
in their collected order. Within a host, checks keep their collected order.
"""

from __future__ import annotations

import queue
from collections.abc import Callable, Iterator

import pytest

from hrw_preflight.run.quick_skip import report_skipped, split_quick

HostOf = Callable[[pytest.Item], str | None]


def _groups(
    items: list[pytest.Item], host_of: HostOf
) -> tuple[list[pytest.Item], dict[str, list[pytest.Item]]]:
    """Return (items of no host, items by host in collected order)."""
    loose: list[pytest.Item] = []
    by_host: dict[str, list[pytest.Item]] = {}
    for item in items:
        host = host_of(item)
        if host is None:
            loose.append(item)
        else:
            by_host.setdefault(host, []).append(item)
    return loose, by_host


def ready_first(
    items: list[pytest.Item], host_of: HostOf, ready: queue.Queue[str]
) -> Iterator[tuple[pytest.Item, pytest.Item | None]]:
    """Yield ``(item, next item)`` pairs: loose items, then each host's items as ``ready``
    names the host.

    ``ready`` must name every host of ``items`` at least once (the facts cache does, with
    facts or with the reason they are missing); a name seen twice or not in ``items`` is
    ignored. The next item is known before an item runs, as pytest's teardown logic needs.
    """
    loose, by_host = _groups(items, host_of)

    def next_group() -> list[pytest.Item]:
        while by_host:
            name = ready.get()
            group = by_host.pop(name, None)
            if group:
                return group
        return []

    current = loose or next_group()
    while current:
        upcoming: list[pytest.Item] = []
        for index, item in enumerate(current):
            if index + 1 < len(current):
                yield item, current[index + 1]
                continue
            upcoming = next_group()
            yield item, (upcoming[0] if upcoming else None)
        current = upcoming


def run_ready_first(
    session: pytest.Session,
    host_of: HostOf,
    ready: queue.Queue[str],
    quick: Callable[[pytest.Item], bool] = lambda item: False,
    quick_reason: Callable[[pytest.Item], str] = lambda item: "",
) -> bool:
    """Run the session's items in :func:`ready_first` order; return True (the loop ran).

    An item for which ``quick`` answers True (a check that does not apply to its host) is
    reported as skipped with ``quick_reason`` without pytest's run protocol (quick_skip.py).

    Mirrors pytest's own ``pytest_runtestloop``: collection errors stop the run, and
    ``-x``/``--maxfail`` and interrupts are honoured after every item.
    """
    if session.testsfailed and not session.config.option.continue_on_collection_errors:
        raise session.Interrupted(
            f"{session.testsfailed} error{'s' if session.testsfailed != 1 else ''} "
            "during collection"
        )
    steps = split_quick(ready_first(list(session.items), host_of, ready), quick)
    for item, nextitem, is_quick in steps:
        if is_quick:
            report_skipped(item, quick_reason(item))
        else:
            item.config.hook.pytest_runtest_protocol(item=item, nextitem=nextitem)
        if session.shouldfail:
            raise session.Failed(session.shouldfail)
        if session.shouldstop:
            raise session.Interrupted(session.shouldstop)
    return True
