"""The list of certificate authorities Azure services use, read from a CSV file.

The shipped list (``hrw_preflight/verdicts/data/azure-ca-thumbprints.csv``, columns
``status,name,parent,removed_on,sha1_thumbprint``) comes from Microsoft's "Azure
Certificate Authority details" page. ``status`` is ``current-root``,
``current-intermediate`` or ``removed``; removed CAs are kept so that a verdict can say
which CA a chain used and when Azure stopped using it. Matching is by SHA-1 thumbprint
only, never by name: a TLS-inspecting proxy can give its CA any name.
"""

from __future__ import annotations

import csv
import functools
import io
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from hrw_preflight.hosts.errors import ConfigError

COLUMNS = ("status", "name", "parent", "removed_on", "sha1_thumbprint")
STATUSES = frozenset({"current-root", "current-intermediate", "removed"})
_THUMBPRINT = re.compile(r"^[0-9A-F]{40}$")


@dataclass(frozen=True)
class CAEntry:
    """One row of the CA list; ``thumbprint`` is upper-case hex without separators."""

    status: str
    name: str
    parent: str
    removed_on: str
    thumbprint: str

    @property
    def trusted(self) -> bool:
        """Return True for a CA Azure uses today (a current root or intermediate)."""
        return self.status != "removed"


def normalize_thumbprint(value: str) -> str:
    """Return ``value`` as upper-case hex without colons or spaces, the list's form."""
    return re.sub(r"[\s:]", "", value).upper()


def read_ca_csv(path: str | Path) -> tuple[CAEntry, ...]:
    """Return the entries of the CA list at ``path``.

    A missing file, wrong header, unknown status or malformed thumbprint raises
    ConfigError naming the file and line.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            f"CA list {path}: cannot read it ({exc.strerror}): check the path"
        ) from exc
    return parse_ca_csv(text, str(path))


def parse_ca_csv(text: str, origin: str) -> tuple[CAEntry, ...]:
    """Return the entries of CA-list CSV ``text``; ``origin`` names it in errors."""
    rows = list(csv.reader(io.StringIO(text)))
    if not rows or tuple(cell.strip() for cell in rows[0]) != COLUMNS:
        raise ConfigError(f"CA list {origin}: the header must be {','.join(COLUMNS)}")
    entries: list[CAEntry] = []
    for number, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(COLUMNS):
            raise ConfigError(
                f"CA list {origin} line {number}: expected {len(COLUMNS)} columns, got {len(row)}"
            )
        status, name, parent, removed_on, thumb = (cell.strip() for cell in row)
        thumbprint = normalize_thumbprint(thumb)
        if status not in STATUSES:
            raise ConfigError(
                f"CA list {origin} line {number}: status '{status}': "
                f"use {', '.join(sorted(STATUSES))}"
            )
        if not _THUMBPRINT.match(thumbprint):
            raise ConfigError(
                f"CA list {origin} line {number}: '{thumb}' is not a SHA-1 thumbprint "
                "(40 hex digits)"
            )
        if not name:
            raise ConfigError(f"CA list {origin} line {number}: the name is empty")
        entries.append(CAEntry(status, name, parent, removed_on, thumbprint))
    return tuple(entries)


@functools.cache
def shipped_ca_list() -> tuple[CAEntry, ...]:
    """Return the Azure CA list shipped with the package (read once per process)."""
    resource = resources.files("hrw_preflight.verdicts").joinpath(
        "data", "azure-ca-thumbprints.csv"
    )
    return parse_ca_csv(
        resource.read_text(encoding="utf-8"), "hrw_preflight/verdicts/data/azure-ca-thumbprints.csv"
    )
