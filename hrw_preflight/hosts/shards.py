"""Shards: which hosts one of N CI jobs checks (``--hrw-shard K/N`` or the CI's variables).

A host's shard depends on its inventory name alone (a SHA-256 of the name, mod N), so the
same host always lands in the same shard whatever the other hosts are, and N jobs that read
the same inventory split it without talking to each other. The hash of the whole host list
travels with every shard's record, so shards of different inventories are never merged.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from hrw_preflight.hosts.errors import ConfigError

OPTION = "--hrw-shard"
NO_SHARD = ("none", "off")
# (index variable, total variable) per CI system, 1-based index; the first pair set wins.
CI_VARIABLES = (
    ("CI_NODE_INDEX", "CI_NODE_TOTAL"),  # GitLab `parallel:`
    ("SYSTEM_JOBPOSITIONINPHASE", "SYSTEM_TOTALJOBSINPHASE"),  # Azure `strategy: parallel`
)
_VALUE = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")
USAGE = "use K/N with 1 <= K <= N (e.g. 2/3), or none to check every host"


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` (1-based) of ``total``, and where that was read from."""

    index: int
    total: int
    source: str = OPTION

    def holds(self, host: str) -> bool:
        """Return whether inventory host ``host`` belongs to this shard."""
        return shard_of(host, self.total) == self.index

    @property
    def label(self) -> str:
        """Return ``K/N``, as the option takes it."""
        return f"{self.index}/{self.total}"


def shard_of(host: str, total: int) -> int:
    """Return the 1-based shard of ``total`` that inventory host name ``host`` belongs to.

    Exists so every process (the N CI jobs, their xdist workers, the merge) computes the
    same split from the name alone: the first 8 bytes of its SHA-256, mod ``total``.
    """
    digest = hashlib.sha256(host.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % total + 1


def host_list_sha256(names: Iterable[str]) -> str:
    """Return the SHA-256 of a host list, whatever its order (JSON of the sorted names).

    The merge recomputes it from the union of the shards' hosts, which proves both that the
    shards came from one inventory and that together they hold every one of its hosts.
    """
    text = json.dumps(sorted(names), ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _parse(value: str, where: str, fix: str) -> tuple[int, int]:
    match = _VALUE.match(value)
    if match is None:
        raise ConfigError(f"{where}: not a shard K of N: {fix}")
    index, total = int(match.group(1)), int(match.group(2))
    if total < 1 or not 1 <= index <= total:
        raise ConfigError(f"{where}: shard {index} of {total} does not exist: {fix}")
    return index, total


def read_shard(option: str | None, environ: Mapping[str, str]) -> Shard | None:
    """Return the shard this run checks, or None to check every host.

    ``--hrw-shard K/N`` wins; ``--hrw-shard none`` turns sharding off even under a CI that
    sets shard variables. Without the option, GitLab's ``CI_NODE_INDEX``/``CI_NODE_TOTAL``
    and then Azure Pipelines' ``SYSTEM_JOBPOSITIONINPHASE``/``SYSTEM_TOTALJOBSINPHASE`` are
    read, when both of a pair are set; a total of 1 there is a job that is not split (GitLab
    sets ``CI_NODE_TOTAL=1`` on every job). Bad values raise ConfigError (one line).
    """
    if option is not None and option.strip():
        if option.strip().lower() in NO_SHARD:
            return None
        index, total = _parse(option, f"{OPTION} {option!r}", USAGE)
        return Shard(index, total, OPTION)
    for index_var, total_var in CI_VARIABLES:
        index_text, total_text = environ.get(index_var, ""), environ.get(total_var, "")
        if not index_text.strip() or not total_text.strip():
            continue
        where = f"{index_var}={index_text!r}, {total_var}={total_text!r}"
        fix = f"both must be whole numbers, 1 <= index <= total; or pass {OPTION} K/N or none"
        index, total = _parse(f"{index_text}/{total_text}", where, fix)
        if total == 1:
            return None
        return Shard(index, total, f"{index_var}/{total_var}")
    return None
