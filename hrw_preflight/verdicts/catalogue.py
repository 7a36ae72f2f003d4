"""The scenario catalogue: every check's id, title, platform, severity, source and fix.

Tests, verdicts and reports all read scenarios from here, so a scenario is described once
(in ``catalogue.yaml``) and nowhere else.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any, Literal

import yaml

from hrw_preflight.hosts.errors import ConfigError

Severity = Literal["low", "medium", "high", "critical"]
SEVERITIES: tuple[Severity, ...] = ("low", "medium", "high", "critical")
PLATFORMS = ("linux", "windows", "both")
_KEYS = {
    "id",
    "title",
    "platform",
    "severity",
    "profiles",
    "section",
    "anchor",
    "needs",
    "items",
    "remediation",
}


@dataclass(frozen=True)
class Scenario:
    """One documented troubleshooting scenario, turned into a check."""

    id: str
    title: str
    platform: str
    severity: Severity
    profiles: tuple[str, ...]
    section: str
    anchor: str
    needs: tuple[str, ...]
    items: tuple[str, ...]
    remediation: str

    def applies_to(self, platform: str) -> bool:
        """Return whether hosts of ``platform`` get this check (why: tests are generated only
        for the platforms a scenario names)."""
        return self.platform in ("both", platform)


@dataclass(frozen=True)
class Catalogue:
    """All scenarios plus the article they come from and a hash that pins this version."""

    version: int
    article_url: str
    article_title: str
    scenarios: tuple[Scenario, ...]
    sha256: str

    def get(self, scenario_id: str) -> Scenario:
        """Return the scenario with this id; an unknown id is a programming or input error."""
        for scenario in self.scenarios:
            if scenario.id == scenario_id:
                return scenario
        raise ConfigError(f"unknown scenario id {scenario_id!r}; known: {self.ids()}")

    def ids(self) -> str:
        """Return the known ids as one comma-separated string, for error messages."""
        return ", ".join(s.id for s in self.scenarios)


def _scenario(raw: Any, where: str) -> Scenario:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: each scenario must be a mapping")
    missing = _KEYS - raw.keys()
    extra = raw.keys() - _KEYS
    if missing or extra:
        raise ConfigError(f"{where}: missing keys {sorted(missing)}, unknown keys {sorted(extra)}")
    if raw["platform"] not in PLATFORMS:
        raise ConfigError(f"{where} {raw['id']}: platform must be one of {PLATFORMS}")
    if raw["severity"] not in SEVERITIES:
        raise ConfigError(f"{where} {raw['id']}: severity must be one of {SEVERITIES}")
    return Scenario(
        id=str(raw["id"]),
        title=str(raw["title"]),
        platform=str(raw["platform"]),
        severity=raw["severity"],
        profiles=tuple(raw["profiles"]),
        section=str(raw["section"]),
        anchor=str(raw["anchor"]),
        needs=tuple(raw["needs"]),
        items=tuple(str(i) for i in raw["items"]),
        remediation=" ".join(str(raw["remediation"]).split()),
    )


def parse_catalogue(text: str, where: str = "catalogue.yaml") -> Catalogue:
    """Return the catalogue parsed from YAML text, or raise ConfigError naming what is wrong."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{where}: not valid YAML ({exc.__class__.__name__})") from exc
    if not isinstance(raw, dict) or not isinstance(raw.get("scenarios"), list):
        raise ConfigError(f"{where}: expected a mapping with a 'scenarios' list")
    scenarios = tuple(_scenario(s, where) for s in raw["scenarios"])
    ids = [s.id for s in scenarios]
    if len(set(ids)) != len(ids):
        raise ConfigError(f"{where}: duplicate scenario ids")
    article = raw.get("article", {})
    return Catalogue(
        version=int(raw.get("version", 0)),
        article_url=str(article.get("url", "")),
        article_title=str(article.get("title", "")),
        scenarios=scenarios,
        sha256=hashlib.sha256(text.encode()).hexdigest(),
    )


@cache
def load_catalogue() -> Catalogue:
    """Return the shipped catalogue (parsed once per process)."""
    text = resources.files("hrw_preflight.verdicts").joinpath("catalogue.yaml").read_text("utf-8")
    return parse_catalogue(text)
