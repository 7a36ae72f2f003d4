"""Checks that do not apply to a host, reported as skipped without pytest's setup machinery.

About two checks in five of a mixed fleet are skipped because the host has no worker of the
kind they check (an extension-only host and the agent's checks, say). Through pytest's full
run protocol each such skip costs fixture set-up, output capture and log capture for
nothing: at 200 hosts that was about a tenth of the controller's CPU. Once a host's facts
are in, the verdict says which of its checks are skipped; those are reported through the
same hooks (``pytest_runtest_makereport`` and ``pytest_runtest_logreport``, so the terminal,
JUnit, pytest-html and the evidence record see them exactly as before) with no fixture run.

pytest needs to know, before it runs a test, the next test it will run (to tear down what
that one does not share); :func:`split_quick` gives each fully run item the next fully run
item and puts the quickly reported ones between them, in their order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

import pytest

Step = tuple[pytest.Item, pytest.Item | None, bool]


def split_quick(
    pairs: Iterable[tuple[pytest.Item, pytest.Item | None]], quick: Callable[[pytest.Item], bool]
) -> Iterator[Step]:
    """Yield ``(item, next fully run item, is quick)`` in the order of ``pairs``.

    ``quick(item)`` is asked once per item, when the item is reached (its host's facts are
    in by then). A quick item after a fully run one waits until the next fully run item is
    known, so that one's ``nextitem`` is right; it is then yielded right after it.
    """
    pending: pytest.Item | None = None
    between: list[pytest.Item] = []
    for item, _ in pairs:
        if quick(item):
            if pending is None:
                yield item, None, True
            else:
                between.append(item)
            continue
        if pending is not None:
            yield pending, item, False
            yield from ((q, None, True) for q in between)
            between = []
        pending = item
    if pending is not None:
        yield pending, None, False
        yield from ((q, None, True) for q in between)


def report_skipped(item: pytest.Item, reason: str) -> None:
    """Report ``item`` as skipped in set-up with ``reason``, as pytest would for a fixture
    that calls ``pytest.skip(reason)``: log start, set-up and teardown reports, log finish."""
    ihook = item.ihook

    def skip() -> None:
        # As for a skip raised in a fixture, the report points at the test, not at this line.
        raise pytest.skip.Exception(reason, _use_item_location=True)

    ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
    phases: tuple[tuple[str, Callable[[], None]], ...] = (
        ("setup", skip),
        ("teardown", lambda: None),
    )
    for when, step in phases:
        call = pytest.CallInfo.from_call(step, when=when)  # type: ignore[arg-type]
        report = ihook.pytest_runtest_makereport(item=item, call=call)
        ihook.pytest_runtest_logreport(report=report)
    ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)
