"""The ready-first loop order: loose tests first, then hosts as their facts arrive."""

from __future__ import annotations

import queue
from typing import cast

import pytest

from hrw_preflight.run.run_order import ready_first


class FakeItem:
    """Stands in for a pytest item: a name and the host it checks (None: no host)."""

    def __init__(self, name: str, host: str | None) -> None:
        self.name = name
        self.host = host

    def __repr__(self) -> str:
        return self.name


def order(items: list[FakeItem], arrivals: list[str]) -> list[tuple[str, str | None]]:
    ready: queue.Queue[str] = queue.Queue()
    for name in arrivals:
        ready.put(name)
    pairs = ready_first(cast(list[pytest.Item], items), lambda i: cast(FakeItem, i).host, ready)
    return [
        (cast(FakeItem, i).name, None if n is None else cast(FakeItem, n).name) for i, n in pairs
    ]


def test_hosts_run_in_arrival_order_keeping_their_own_order() -> None:
    items = [
        FakeItem("G01[a]", "a"), FakeItem("G01[b]", "b"), FakeItem("plain", None),
        FakeItem("G02[a]", "a"), FakeItem("G02[b]", "b"),
    ]  # fmt: skip
    assert order(items, ["b", "a"]) == [
        ("plain", "G01[b]"),
        ("G01[b]", "G02[b]"),
        ("G02[b]", "G01[a]"),
        ("G01[a]", "G02[a]"),
        ("G02[a]", None),
    ]


def test_repeated_or_unknown_names_are_ignored() -> None:
    items = [FakeItem("x[a]", "a"), FakeItem("x[b]", "b")]
    assert order(items, ["zz", "a", "a", "b"]) == [("x[a]", "x[b]"), ("x[b]", None)]


def test_no_hosts_is_collected_order() -> None:
    items = [FakeItem("one", None), FakeItem("two", None)]
    assert order(items, []) == [("one", "two"), ("two", None)]


def test_each_item_runs_exactly_once() -> None:
    items = [FakeItem(f"t{i}[{h}]", h) for i in range(5) for h in "abcd"]
    ran = [name for name, _ in order(items, list("dcba"))]
    assert sorted(ran) == sorted(i.name for i in items)
