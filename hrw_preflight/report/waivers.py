"""Waivers: accepted, documented exceptions to a check on some hosts, until a date.

The waiver file (``--hrw-waivers FILE``) is a YAML list::

    - scenario: HRW-G03            # catalogue id
      hosts: "linux-batch-*"       # fnmatch pattern on the inventory host name
      justification: batch hosts run hot by design, jobs are queued
      owner: ops-team@example.com
      expires: 2026-12-31          # YYYY-MM-DD; the waiver applies through that day (UTC)

A failure that an unexpired waiver covers is reported as *waived* (never as passed); an
expired waiver no longer applies and the reports say so.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from hrw_preflight.hosts.errors import ConfigError

FIELDS = ("scenario", "hosts", "justification", "owner", "expires")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def today_utc() -> dt.date:
    """Return today's date in UTC, the calendar waivers expire by."""
    return dt.datetime.now(dt.UTC).date()


@dataclass(frozen=True)
class Waiver:
    """One waiver entry, validated."""

    scenario: str
    hosts: str
    justification: str
    owner: str
    expires: dt.date

    def matches(self, scenario: str, host: str) -> bool:
        """Return whether this waiver names ``scenario`` and its pattern matches ``host``."""
        return scenario == self.scenario and fnmatch.fnmatchcase(host, self.hosts)

    def expired(self, today: dt.date) -> bool:
        """Return True once ``today`` is after the expiry date (the date itself still counts)."""
        return today > self.expires

    def text(self) -> str:
        """Return the one-line waiver text shown in the reports (``waived: ...``)."""
        return (
            f"waived: {self.justification} (owner {self.owner}, "
            f"expires {self.expires.isoformat()}, waiver {self.scenario} {self.hosts})"
        )

    def expired_text(self) -> str:
        """Return the line that says an expired waiver was not applied."""
        return (
            f"waiver for {self.scenario} on {self.hosts} (owner {self.owner}) expired on "
            f"{self.expires.isoformat()} and no longer applies: {self.justification}"
        )

    def as_dict(self, today: dt.date) -> dict[str, str]:
        """Return the waiver as plain data for the run record, with its status on ``today``."""
        return {
            "scenario": self.scenario,
            "hosts": self.hosts,
            "justification": self.justification,
            "owner": self.owner,
            "expires": self.expires.isoformat(),
            "status": "expired" if self.expired(today) else "active",
        }


@dataclass(frozen=True)
class Waivers:
    """The waivers of one run, judged against one date."""

    entries: tuple[Waiver, ...]
    today: dt.date
    source: str | None = None

    def active_for(self, scenario: str, host: str) -> Waiver | None:
        """Return the first unexpired waiver covering (scenario, host), or None."""
        for waiver in self.entries:
            if waiver.matches(scenario, host) and not waiver.expired(self.today):
                return waiver
        return None

    def expired_for(self, scenario: str, host: str) -> Waiver | None:
        """Return an expired waiver covering (scenario, host), so the report can say so."""
        for waiver in self.entries:
            if waiver.matches(scenario, host) and waiver.expired(self.today):
                return waiver
        return None

    def expired(self) -> list[Waiver]:
        """Return every expired waiver in the file, for the run header and summary."""
        return [w for w in self.entries if w.expired(self.today)]


def _text_field(raw: dict[str, Any], key: str, where: str) -> str:
    value = raw.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{where}: '{key}' must be a non-empty string")
    return " ".join(value.split())


def _expires(value: Any, where: str) -> dt.date:
    # YAML turns an unquoted 2026-12-31 into a date already; a quoted one stays a string.
    if isinstance(value, dt.datetime):
        raise ConfigError(f"{where}: 'expires' must be a date YYYY-MM-DD, not a date and time")
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str) and _DATE.fullmatch(value.strip()):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise ConfigError(f"{where}: 'expires' must be a date YYYY-MM-DD, got {value!r}")


def _waiver(raw: Any, where: str, known: set[str] | None) -> Waiver:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: each waiver must be a mapping with keys {', '.join(FIELDS)}")
    missing = [k for k in FIELDS if k not in raw]
    extra = sorted(str(k) for k in raw if k not in FIELDS)
    if missing or extra:
        raise ConfigError(
            f"{where}: missing keys {missing}, unknown keys {extra}: "
            f"a waiver has exactly {', '.join(FIELDS)}"
        )
    scenario = _text_field(raw, "scenario", where)
    if known is not None and scenario not in known:
        raise ConfigError(
            f"{where}: unknown scenario {scenario!r}: use a catalogue id "
            f"({', '.join(sorted(known))})"
        )
    return Waiver(
        scenario=scenario,
        hosts=_text_field(raw, "hosts", where),
        justification=_text_field(raw, "justification", where),
        owner=_text_field(raw, "owner", where),
        expires=_expires(raw.get("expires"), where),
    )


def parse_waivers(
    text: str, where: str, known: set[str] | None = None, today: dt.date | None = None
) -> Waivers:
    """Return the waivers in YAML ``text``, or raise ConfigError naming the bad entry.

    ``known`` is the set of catalogue ids a waiver may name (None: do not check), so a typo
    in a scenario id stops the run instead of silently waiving nothing.
    """
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{where}: not valid YAML{line}: fix the file's syntax") from exc
    except ValueError as exc:  # YAML's own date parsing: an impossible date like 2026-02-30
        raise ConfigError(f"{where}: {exc}: write dates as a real YYYY-MM-DD") from exc
    if raw is None:
        raw = []
    if not isinstance(raw, list):
        raise ConfigError(
            f"{where}: expected a YAML list of waivers "
            f"(- scenario: ..., hosts: ..., justification: ..., owner: ..., "
            f"expires: YYYY-MM-DD)"
        )
    entries = tuple(
        _waiver(item, f"{where}: waiver {n}", known) for n, item in enumerate(raw, start=1)
    )
    return Waivers(entries, today or today_utc(), where)


def load_waivers(path: str, known: set[str] | None = None, today: dt.date | None = None) -> Waivers:
    """Return the waivers from file ``path``; a missing or unreadable file is a ConfigError."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not UTF-8 text"
        raise ConfigError(f"--hrw-waivers {path}: cannot read the file ({reason})") from exc
    return parse_waivers(text, path, known, today)
