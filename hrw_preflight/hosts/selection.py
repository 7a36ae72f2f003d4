"""The ``--hosts`` entry point: host specs and ``ansible://`` patterns, mixed as testinfra allows.

It sits above :mod:`~hrw_preflight.hosts.hostspec` and :mod:`~hrw_preflight.hosts.inventory`,
which both build on :mod:`~hrw_preflight.hosts.targets`, so that none of them imports another
in a circle.
"""

from __future__ import annotations

import os
import urllib.parse

from hrw_preflight.hosts.errors import ConfigError
from hrw_preflight.hosts.hostspec import split_hosts, targets_from_hostspecs
from hrw_preflight.hosts.inventory import targets_from_inventory
from hrw_preflight.hosts.targets import HostDefaults, Target


def parse_hosts_option(
    hosts: list[str], inventories: list[str], defaults: HostDefaults
) -> list[Target]:
    """Return the targets named by ``--hosts`` entries, in the order given.

    Entries are split on commas as testinfra does. ``ansible://PATTERN`` entries (an
    Ansible host pattern, ``all`` when empty; ``?ansible_inventory=PATH`` picks an
    inventory for that entry) are resolved through ``inventories``; every other entry is a
    host spec. A host named twice is a ConfigError, since its results would be ambiguous.
    """
    targets: list[Target] = []
    for entry in split_hosts(hosts):
        if entry.lower().startswith("ansible://"):
            pattern, entry_inventories = _ansible_entry(entry, inventories)
            targets.extend(targets_from_inventory(entry_inventories, pattern, defaults=defaults))
        else:
            targets.extend(targets_from_hostspecs([entry], defaults))
    seen: dict[str, Target] = {}
    for target in targets:
        if target.name in seen:
            raise ConfigError(
                f"host '{target.name}' is given twice ({seen[target.name].source}; "
                f"{target.source}): name each host once in --hosts"
            )
        seen[target.name] = target
    return targets


def _ansible_entry(entry: str, inventories: list[str]) -> tuple[str, list[str]]:
    """Return the host pattern and inventory paths of one ``ansible://`` entry."""
    rest = entry[len("ansible://") :]
    pattern, _, query = rest.partition("?")
    chosen = list(inventories)
    if query:
        options = urllib.parse.parse_qs(query, keep_blank_values=True)
        unknown = sorted(set(options) - {"ansible_inventory"})
        if unknown:
            raise ConfigError(
                f"--hosts '{entry}': unknown option '{unknown[0]}': "
                "only ansible_inventory=PATH is understood here"
            )
        chosen = [os.path.expanduser(path) for path in options["ansible_inventory"]]
    if not chosen:
        raise ConfigError(
            f"--hosts '{entry}' needs an inventory: pass --ansible-inventory PATH "
            "(or ?ansible_inventory=PATH)"
        )
    return urllib.parse.unquote(pattern) or "all", chosen
