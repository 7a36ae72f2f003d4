"""The top of the HTML report: a hosts-by-scenarios matrix, then the failures with their fix.

Rendered into pytest-html's summary (``pytest_html_results_summary`` prefix), above
pytest-html's own results table, which stays as the details. Plain HTML and CSS, one symbol
per cell with the counts in its tooltip, so a 200-host fleet stays a readable page.
"""

from __future__ import annotations

import html
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence

from hrw_preflight.report.evidence import CheckResult
from hrw_preflight.verdicts.catalogue import SEVERITIES, Scenario
from hrw_preflight.verdicts.error_fix import error_fix

# Worst first: the symbol of a cell is that of the worst outcome among its items.
_ORDER = ("failed", "error", "waived", "passed", "skipped")
_SYMBOL = {"failed": "\u2717", "error": "!", "waived": "W", "passed": "\u2713", "skipped": "\u2013"}
_RANK: dict[str, int] = {s: i for i, s in enumerate(SEVERITIES)}

CSS = """
<style>
.hrw-top{font:12px/1.3 sans-serif;margin:0 0 12px 0;color:#222}
.hrw-top h3{margin:10px 0 4px 0;font-size:14px}
.hrw-legend span{margin-right:10px}
.hrw-scroll{max-height:70vh;overflow:auto;border:1px solid #ccc;display:inline-block;max-width:100%}
table.hrw-matrix{border-collapse:collapse}
table.hrw-matrix th,table.hrw-matrix td{border:1px solid #ddd;padding:1px 4px;text-align:center;
white-space:nowrap}
table.hrw-matrix thead th{position:sticky;top:0;background:#f4f4f4;z-index:1}
table.hrw-matrix th.h{text-align:left;position:sticky;left:0;background:#fafafa}
table.hrw-matrix td.passed{background:#dff0d8;color:#2d662d}
table.hrw-matrix td.failed{background:#f2b8b5;color:#8a1f11;font-weight:bold}
table.hrw-matrix td.error{background:#fcd9a8;color:#7a4200;font-weight:bold}
table.hrw-matrix td.waived{background:#e3d7f3;color:#4b2c7f}
table.hrw-matrix td.skipped{background:#f4f4f4;color:#888}
table.hrw-matrix td.na{background:#fff;color:#ccc}
table.hrw-matrix td.kind{text-align:left;color:#444}
table.hrw-fails{border-collapse:collapse;width:100%}
table.hrw-fails th,table.hrw-fails td{border:1px solid #ddd;padding:2px 4px;text-align:left;
vertical-align:top}
table.hrw-fails td.o-failed{color:#8a1f11;font-weight:bold}
table.hrw-fails td.o-error{color:#7a4200;font-weight:bold}
.hrw-warn{color:#8a1f11;font-weight:bold}
</style>
"""


def cell_outcome(counts: Counter[str]) -> str | None:
    """Return the outcome a matrix cell shows: the worst of its items, None if none ran."""
    for outcome in _ORDER:
        if counts.get(outcome):
            return outcome
    return None


def _title(counts: Counter[str]) -> str:
    return ", ".join(f"{counts[o]} {o}" for o in _ORDER if counts.get(o))


def _escaper(redact: Callable[[str], str]) -> Callable[[str], str]:
    # Redact each text before escaping it: a pattern run over finished HTML could swallow
    # markup after a "token: ..." and break the page.
    return lambda text: html.escape(redact(text))


def render_matrix(
    checks: Sequence[CheckResult],
    hosts: Sequence[str],
    scenarios: Sequence[Scenario],
    redact: Callable[[str], str],
    kinds: Mapping[str, str] | None = None,
) -> str:
    """Return the hosts-by-scenarios table: one symbol per cell, counts in its tooltip, and
    each host's worker kind (``kinds``: host -> text) in a column after its name."""
    kinds = kinds or {}
    cells: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    for check in checks:
        if check.host and check.scenario_id:
            cells[(check.host, check.scenario_id)][check.outcome] += 1
    used = [s for s in scenarios if any((h, s.id) in cells for h in hosts)]
    e = _escaper(redact)
    head = "".join(f'<th title="{e(s.title)} ({e(s.severity)})">{e(s.id)}</th>' for s in used)
    rows = []
    for host in hosts:
        total: Counter[str] = Counter()
        tds = []
        for scenario in used:
            counts = cells.get((host, scenario.id), Counter())
            total.update(counts)
            outcome = cell_outcome(counts)
            if outcome is None:
                tds.append('<td class="na" title="not checked on this host">\u00b7</td>')
            else:
                tds.append(
                    f'<td class="{outcome}" title="{e(host)} {e(scenario.id)}: '
                    f'{_title(counts)}">{_SYMBOL[outcome]}</td>'
                )
        rows.append(
            f'<tr><th class="h">{e(host)}</th><td class="kind">{e(kinds.get(host, "unknown"))}'
            f"</td>{''.join(tds)}"
            f'<td class="{cell_outcome(total) or "na"}" title="{_title(total)}">'
            f"{total['failed'] + total['error']}</td></tr>"
        )
    legend = " ".join(f"<span>{_SYMBOL[o]} {o}</span>" for o in _ORDER)
    return (
        f'<h3>Hosts \u00d7 scenarios</h3><div class="hrw-legend">{legend}'
        f"<span>\u00b7 not checked</span><span>last column: failed + error</span></div>"
        f'<div class="hrw-scroll"><table class="hrw-matrix"><thead><tr><th class="h">host'
        f'</th><th title="worker kind installed, and where the host runs">worker kind</th>'
        f'{head}<th title="failed + error checks">\u03a3</th></tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


def render_failures(
    checks: Sequence[CheckResult], scenarios: Sequence[Scenario], redact: Callable[[str], str]
) -> str:
    """Return the failed and errored checks, most severe first, each with its fix."""
    by_id = {s.id: s for s in scenarios}
    bad = [c for c in checks if c.outcome in ("failed", "error")]
    bad.sort(
        key=lambda c: (
            -_RANK.get(c.severity or "", len(SEVERITIES)),
            c.host or "",
            c.scenario_id or "",
            c.item or "",
        )
    )
    if not bad:
        return "<h3>Failures</h3><p>No failed or errored checks.</p>"
    e = _escaper(redact)
    rows = []
    for c in bad:
        scenario = by_id.get(c.scenario_id or "")
        # An error is a check that could not be made: its fix is how to make it possible.
        if c.outcome == "error":
            fix = error_fix(c.reason)
        else:
            fix = scenario.remediation if scenario else ""
        title = f"{c.scenario_id} {scenario.title}" if scenario else (c.scenario_id or c.nodeid)
        note = (
            f'<br><span class="hrw-warn">{e(c.expired_waiver_text)}</span>'
            if c.expired_waiver_text
            else ""
        )
        rows.append(
            f"<tr><td>{e(c.host or '')}</td><td>{e(title)}</td><td>{e(c.item or '')}</td>"
            f'<td>{e(c.severity or "")}</td><td class="o-{c.outcome}">{c.outcome}</td>'
            f"<td>{e(c.reason)}{note}</td><td>{e(fix)}</td></tr>"
        )
    return (
        f'<h3>Failures ({len(bad)})</h3><table class="hrw-fails"><thead><tr><th>host</th>'
        "<th>scenario</th><th>item</th><th>severity</th><th>outcome</th><th>seen / expected"
        f"</th><th>fix</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def render_waived(checks: Sequence[CheckResult], redact: Callable[[str], str]) -> str:
    """Return the waived checks with their justification (empty when none were waived)."""
    waived = [c for c in checks if c.outcome == "waived"]
    if not waived:
        return ""
    e = _escaper(redact)
    rows = "".join(
        f"<tr><td>{e(c.host or '')}</td><td>{e(c.scenario_id or '')}</td><td>{e(c.item or '')}"
        f"</td><td>{e((c.waiver or {}).get('justification', ''))}</td>"
        f"<td>{e((c.waiver or {}).get('owner', ''))}</td>"
        f"<td>{e((c.waiver or {}).get('expires', ''))}</td></tr>"
        for c in waived
    )
    return (
        f'<h3>Waived ({len(waived)})</h3><table class="hrw-fails"><thead><tr><th>host</th>'
        "<th>scenario</th><th>item</th><th>justification</th><th>owner</th><th>expires</th>"
        f"</tr></thead><tbody>{rows}</tbody></table>"
    )


def render_summary(
    checks: Sequence[CheckResult],
    hosts: Sequence[str],
    scenarios: Sequence[Scenario],
    notes: Sequence[str],
    redact: Callable[[str], str],
    kinds: Mapping[str, str] | None = None,
) -> str:
    """Return the whole block for the top of the report, every text redacted; ``kinds``
    maps host -> its worker kind text.

    ``notes`` are run-level warnings (weakening options, expired waivers, the gate) shown
    above the matrix so nobody reads a green matrix without them.
    """
    e = _escaper(redact)
    notes_html = "".join(f'<p class="hrw-warn">{e(n)}</p>' for n in notes)
    return (
        f'{CSS}<div class="hrw-top">{notes_html}'
        f"{render_matrix(checks, hosts, scenarios, redact, kinds)}"
        f"{render_failures(checks, scenarios, redact)}{render_waived(checks, redact)}"
        "<h3>Details</h3><p>Every check with its log and probe output follows.</p></div>"
    )
