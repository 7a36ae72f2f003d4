"""Keep all checks of a host on one xdist worker (``--dist loadgroup``) under pytest 9.2.

xdist's ``loadgroup`` works by suffixing each node id with ``@<group>`` on the workers and
grouping by that suffix on the controller. pytest-xdist 3.8 sets the suffix through
``item._nodeid``, which pytest 9.2 no longer reads (a node id is now a structured ``NodeId``
in ``item._id``), so the suffix is silently lost and a host's checks are spread over every
worker, each of which connects to and probes the host again. This plugin, registered on
workers only, sets the suffix the way the running pytest reads it.
"""

from __future__ import annotations

import pytest


def group_suffix(item: pytest.Item) -> str | None:
    """Return ``@<group>`` for an item marked ``xdist_group``, or None when it has no mark.

    Several marks join their names with ``_`` in name order, as xdist itself does.
    """
    names = {
        str(mark.args[0] if mark.args else mark.kwargs.get("name", "default"))
        for mark in item.iter_markers("xdist_group")
    }
    return "@" + "_".join(sorted(names)) if names else None


def _has_suffix(nodeid: str) -> bool:
    return nodeid.rfind("@") > nodeid.rfind("]")


def set_nodeid(item: pytest.Item, nodeid: str) -> None:
    """Give ``item`` the node id ``nodeid``, whichever way this pytest stores it."""
    try:
        from _pytest.nodeid import NodeId
    except ImportError:  # pytest before 9.2 keeps the plain string
        item._nodeid = nodeid  # type: ignore[attr-defined]
        return
    item._id = NodeId.parse(nodeid)


class HostGroups:
    """On an xdist worker, suffix each grouped check's node id with ``@<host>``."""

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        """Add the group suffix that xdist's controller schedules by, if it is missing."""
        for item in items:
            suffix = group_suffix(item)
            if suffix and not _has_suffix(item.nodeid):
                set_nodeid(item, item.nodeid + suffix)
