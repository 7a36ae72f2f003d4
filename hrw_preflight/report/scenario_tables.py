"""The README's scenario tables, written from the catalogue.

Why: the catalogue is the one list of scenarios; the README shows it between marker lines
(``<!-- generated: NAME -->`` ... ``<!-- end generated: NAME -->``) and
``python -m hrw_preflight docs`` rewrites what lies between them, so the tables cannot drift
from the checks the suite runs (a unit test runs it with ``--check``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from hrw_preflight.hosts.errors import ConfigError
from hrw_preflight.verdicts.catalogue import Catalogue, Scenario

README = Path(__file__).resolve().parents[2] / "README.md"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _sources(scenario: Scenario, article_url: str) -> str:
    own = f"{article_url}#{scenario.anchor}" if scenario.anchor else None
    others = [r for r in scenario.references if r.url != own]
    return "; ".join(f"[{_cell(r.title)}]({r.url})" for r in others) or "-"


def _kinds(s: Scenario) -> str:
    return "any" if s.every_kind else ", ".join(s.kinds)


def _article_row(s: Scenario, article_url: str) -> str:
    section = f"[{_cell(s.section)}]({article_url}#{s.anchor})"
    cells = [
        s.id,
        s.platform,
        _kinds(s),
        s.severity,
        _cell(s.description),
        ", ".join(s.items),
        section,
    ]
    return "| " + " | ".join([*cells, _sources(s, article_url)]) + " |"


def _beyond_row(s: Scenario, article_url: str) -> str:
    cells = [s.id, s.platform, _kinds(s), s.severity, _cell(s.description), ", ".join(s.items)]
    return "| " + " | ".join([*cells, _sources(s, article_url)]) + " |"


def render_tables(catalogue: Catalogue) -> dict[str, str]:
    """Return the Markdown tables by marker name: ``scenarios`` (the scenarios with an article
    section) and ``beyond-article`` (the checks that go beyond the article)."""
    url = catalogue.article_url
    article = [s for s in catalogue.scenarios if s.anchor]
    beyond = [s for s in catalogue.scenarios if not s.anchor]
    return {
        "scenarios": "\n".join(
            [
                "| id | platform | worker kinds | severity | healthy when | items | "
                "article section | other sources |",
                "|---|---|---|---|---|---|---|---|",
                *(_article_row(s, url) for s in article),
            ]
        ),
        "beyond-article": "\n".join(
            [
                "| id | platform | worker kinds | severity | healthy when | items | sources |",
                "|---|---|---|---|---|---|---|",
                *(_beyond_row(s, url) for s in beyond),
            ]
        ),
    }


def _marker(name: str) -> re.Pattern[str]:
    return re.compile(
        rf"(<!-- generated: {re.escape(name)} [^\n]*-->\n)(.*?)(<!-- end generated: "
        rf"{re.escape(name)} -->)",
        re.S,
    )


def _filler(table: str) -> Callable[[re.Match[str]], str]:
    def fill(match: re.Match[str]) -> str:
        return match.group(1) + table + "\n" + match.group(3)

    return fill


def rewrite(text: str, tables: dict[str, str]) -> str:
    """Return ``text`` with each marked block replaced by its table; a missing marker pair is
    a ConfigError naming it (why: a table silently not written would look up to date)."""
    for name, table in tables.items():
        pattern = _marker(name)
        if not pattern.search(text):
            raise ConfigError(
                f"no '<!-- generated: {name} ... -->' ... '<!-- end generated: {name} -->' "
                "markers in the file"
            )
        text = pattern.sub(_filler(table), text)
    return text


def update_readme(path: Path, catalogue: Catalogue, *, check: bool) -> bool:
    """Rewrite the generated tables of ``path``; with ``check``, only compare.

    Returns whether the file was already up to date.
    """
    text = path.read_text(encoding="utf-8")
    new = rewrite(text, render_tables(catalogue))
    if new == text:
        return True
    if not check:
        path.write_text(new, encoding="utf-8")
    return False
