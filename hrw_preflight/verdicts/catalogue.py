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
# The worker kinds a scenario judges: the agent-based (V1) worker of the Log Analytics agent,
# the extension-based (V2) worker of the HybridWorkerForLinux/Windows VM extension.
KINDS = ("agent", "extension")
_KEYS = {
    "id",
    "title",
    "platform",
    "kinds",
    "severity",
    "profiles",
    "section",
    "anchor",
    "needs",
    "items",
    "remediation",
    "description",
    "severity_rationale",
    "references",
}
_ARTICLE_KEYS = {"title", "url"}


@dataclass(frozen=True)
class Reference:
    """A source a check comes from: the article's section or another Microsoft source."""

    title: str
    url: str


@dataclass(frozen=True)
class Scenario:
    """One documented troubleshooting scenario, turned into a check."""

    id: str
    title: str
    platform: str
    kinds: tuple[str, ...]
    severity: Severity
    profiles: tuple[str, ...]
    section: str
    anchor: str
    needs: tuple[str, ...]
    items: tuple[str, ...]
    remediation: str
    description: str
    severity_rationale: str
    references: tuple[Reference, ...]

    def applies_to(self, platform: str) -> bool:
        """Return whether hosts of ``platform`` get this check (why: tests are generated only
        for the platforms a scenario names)."""
        return self.platform in ("both", platform)

    @property
    def every_kind(self) -> bool:
        """Return whether the scenario judges hosts of every worker kind (and hosts with
        none), rather than only hosts where one kind is installed."""
        return set(self.kinds) == set(KINDS)


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


def _text(raw: dict[str, Any], key: str, where: str) -> str:
    """Return ``raw[key]`` as one line of text, or raise naming the empty or non-text field."""
    value = raw[key]
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{where} {raw['id']}: {key} must be non-empty text")
    return " ".join(value.split())


def _references(raw: dict[str, Any], article_url: str, where: str) -> tuple[Reference, ...]:
    """Return a scenario's references, checked: each a title and an https URL, at least one,
    and the article's section among them when the scenario names one."""
    refs = raw["references"]
    sid = raw["id"]
    if not isinstance(refs, list) or not refs:
        raise ConfigError(f"{where} {sid}: references must be a non-empty list")
    out: list[Reference] = []
    for ref in refs:
        if not isinstance(ref, dict) or set(ref) != {"title", "url"}:
            raise ConfigError(f"{where} {sid}: each reference must be a mapping of title and url")
        title, url = str(ref["title"]).strip(), str(ref["url"]).strip()
        if not title or not url.startswith("https://"):
            raise ConfigError(f"{where} {sid}: reference {ref!r} needs a title and an https url")
        out.append(Reference(title, url))
    if raw["anchor"] and f"{article_url}#{raw['anchor']}" not in {r.url for r in out}:
        raise ConfigError(
            f"{where} {sid}: references must include the article section "
            f"{article_url}#{raw['anchor']}"
        )
    return tuple(out)


def _scenario(raw: Any, where: str, article_url: str) -> Scenario:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: each scenario must be a mapping")
    missing = _KEYS - raw.keys()
    extra = raw.keys() - _KEYS
    if missing or extra:
        raise ConfigError(f"{where}: missing keys {sorted(missing)}, unknown keys {sorted(extra)}")
    if raw["platform"] not in PLATFORMS:
        raise ConfigError(f"{where} {raw['id']}: platform must be one of {PLATFORMS}")
    kinds = raw["kinds"]
    if (
        not isinstance(kinds, list)
        or not kinds
        or any(k not in KINDS for k in kinds)
        or len(set(kinds)) != len(kinds)
    ):
        raise ConfigError(f"{where} {raw['id']}: kinds must be a non-empty list of {KINDS}")
    if raw["severity"] not in SEVERITIES:
        raise ConfigError(f"{where} {raw['id']}: severity must be one of {SEVERITIES}")
    return Scenario(
        id=str(raw["id"]),
        title=str(raw["title"]),
        platform=str(raw["platform"]),
        kinds=tuple(str(k) for k in kinds),
        severity=raw["severity"],
        profiles=tuple(raw["profiles"]),
        section=str(raw["section"]),
        anchor=str(raw["anchor"]),
        needs=tuple(raw["needs"]),
        items=tuple(str(i) for i in raw["items"]),
        remediation=_text(raw, "remediation", where),
        description=_text(raw, "description", where),
        severity_rationale=_text(raw, "severity_rationale", where),
        references=_references(raw, article_url, where),
    )


def parse_catalogue(text: str, where: str = "catalogue.yaml") -> Catalogue:
    """Return the catalogue parsed from YAML text, or raise ConfigError naming what is wrong."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{where}: not valid YAML ({exc.__class__.__name__})") from exc
    if not isinstance(raw, dict) or not isinstance(raw.get("scenarios"), list):
        raise ConfigError(f"{where}: expected a mapping with a 'scenarios' list")
    article = raw.get("article", {})
    if not isinstance(article, dict) or set(article) != _ARTICLE_KEYS:
        raise ConfigError(f"{where}: article must be a mapping of exactly {sorted(_ARTICLE_KEYS)}")
    scenarios = tuple(_scenario(s, where, str(article["url"])) for s in raw["scenarios"])
    ids = [s.id for s in scenarios]
    if len(set(ids)) != len(ids):
        raise ConfigError(f"{where}: duplicate scenario ids")
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
