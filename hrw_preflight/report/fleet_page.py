"""``report.html``: the fleet page of a run or of a merged bundle, rendered from its record.

One renderer for both, fed the record that ``evidence.json`` holds, so a run's page and a
merge's page read the same. It is built to open fast at thousands of hosts:

- the hosts-by-scenarios matrix has one row per distinct outcome pattern (hosts whose cells
  all show the same outcome share a row, with their count and names behind a toggle);
- failures and errors come first, grouped by scenario with its fix once, each with its
  evidence folded away (cut at :data:`EVIDENCE_INLINE` characters); hosts that could not be
  reached are listed once instead of once per check;
- passed and skipped checks are counted only: their evidence is in ``evidence.json``;
- filters by scenario, outcome and host pattern are one small inline script, allowed by a
  Content-Security-Policy hash, so nothing else on the page (a host's text) could run.

Every text from the record is redacted, then HTML-escaped, before it reaches the page.
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hrw_preflight.verdicts.catalogue import SEVERITIES, Scenario

# Worst first: a cell shows the worst outcome among its items.
ORDER = ("failed", "error", "waived", "passed", "skipped")
SYMBOL = {"failed": "\u2717", "error": "!", "waived": "W", "passed": "\u2713", "skipped": "\u2013"}
EVIDENCE_INLINE = 2000  # characters of a failure's evidence on the page; all of it: evidence.json
# Failed checks of one scenario shown with their evidence; the rest with their reason only
# (a fault on every host of a 2,000-host fleet would otherwise be megabytes of the same kind).
EVIDENCE_ROWS = 50
_RANK: dict[str, int] = {s: i for i, s in enumerate(SEVERITIES)}

CSS = """
body{font:13px/1.35 system-ui,sans-serif;margin:16px;color:#222;background:#fff}
h1{font-size:20px;margin:0 0 6px 0}h2{font-size:16px;margin:18px 0 6px 0}
h3{font-size:14px;margin:12px 0 4px 0}
dl.run{display:grid;grid-template-columns:max-content 1fr;gap:2px 12px;margin:0 0 8px 0}
dl.run dt{color:#555}dl.run dd{margin:0}
.warn{color:#8a1f11;font-weight:600;margin:2px 0}
.counts span{display:inline-block;margin-right:10px;padding:1px 6px;border-radius:3px}
.filters{position:sticky;top:0;background:#f7f7f7;border:1px solid #ddd;padding:6px;z-index:3}
.filters label{margin-right:14px}.filters select{max-width:340px}
.scroll{max-height:60vh;overflow:auto;border:1px solid #ccc;display:inline-block;max-width:100%}
table{border-collapse:collapse}
th,td{border:1px solid #ddd;padding:2px 5px;vertical-align:top}
table.m td{text-align:center;white-space:nowrap;min-width:22px}
table.m thead th{position:sticky;top:0;background:#f4f4f4;z-index:1;font-weight:600}
table.m th.g{text-align:left;font-weight:normal;min-width:200px;max-width:360px}
table.m th.g details{white-space:normal}
table.m .names{font-size:12px;color:#333}
.failed{background:#f2b8b5;color:#8a1f11;font-weight:bold}
.error{background:#fcd9a8;color:#7a4200;font-weight:bold}
.waived{background:#e3d7f3;color:#4b2c7f}
.passed{background:#dff0d8;color:#2d662d}
.skipped{background:#eee;color:#777}
td.na{color:#bbb}
table.m td.kind{white-space:normal;text-align:left;font-size:11px;max-width:180px}
table.f{width:100%}table.f td.o{font-weight:bold;white-space:nowrap}
table.fc{table-layout:fixed}table.fc th:nth-child(1){width:16%}
table.fc th:nth-child(2){width:10%}table.fc th:nth-child(3){width:6%}
table.f td.h{white-space:nowrap}
pre{white-space:pre-wrap;word-break:break-all;margin:2px 0;font-size:11px;max-height:300px;
overflow:auto;background:#fafafa;border:1px solid #eee;padding:4px}
section.s{border-left:4px solid #d9534f;padding-left:8px;margin:10px 0;
content-visibility:auto;contain-intrinsic-size:auto 800px}
section.s.sev-high{border-color:#f0ad4e}section.s.sev-medium{border-color:#e6c300}
section.s.sev-low{border-color:#999}
.fix{background:#eef6ee;padding:4px 6px;margin:4px 0}
.muted{color:#666}
.hidden{display:none}
"""

# Filters: rows carry their outcomes and hosts in data attributes; the script only reads
# text and toggles a class, never writes markup. Sets data-rendered-ms when the page is
# laid out (what the bench reads).
SCRIPT = """
(function(){
var d=document,q=function(s,r){return Array.prototype.slice.call((r||d).querySelectorAll(s));};
function glob(p){p=p.trim().toLowerCase();if(!p)return null;var parts=p.split('*');
return function(n){n=n.toLowerCase();if(parts.length===1)return n.indexOf(p)>=0;
var i=0;for(var k=0;k<parts.length;k++){var j=n.indexOf(parts[k],i);
if(j<0||(k===0&&j!==0&&parts[0]!==''))return false;i=j+parts[k].length;}
var last=parts[parts.length-1];return last===''||n.slice(-last.length)===last;};}
function apply(){var s=d.getElementById('f-s').value,o=d.getElementById('f-o').value,
m=glob(d.getElementById('f-h').value),shown=0,hosts=0;
var col=-1;q('#matrix thead th').forEach(function(th,i){var id=th.getAttribute('data-s');
if(id)th.classList.toggle('hidden',!!s&&id!==s);if(id&&id===s)col=i;});
q('#matrix tbody tr').forEach(function(tr){var cells=tr.children,ok=true;
for(var i=0;i<cells.length;i++){var id=cells[i].getAttribute('data-s');
if(id)cells[i].classList.toggle('hidden',!!s&&id!==s);}
if(o){if(col>=0){ok=cells[col].getAttribute('data-o')===o;}
else{ok=(' '+tr.getAttribute('data-o')+' ').indexOf(' '+o+' ')>=0;}}
else if(col>=0){ok=cells[col].getAttribute('data-o')!=='na';}
var n=0;q('.names span',tr).forEach(function(sp){var hit=!m||m(sp.textContent);
sp.classList.toggle('hidden',!hit);if(hit)n++;});
if(m&&n===0)ok=false;
tr.classList.toggle('hidden',!ok);if(ok){shown++;hosts+=m?n:parseInt(tr.getAttribute('data-n'),10);}});
q('tr.c').forEach(function(tr){var ok=(!o||tr.getAttribute('data-o')===o)&&
(!m||m(tr.getAttribute('data-h')));tr.classList.toggle('hidden',!ok);});
q('section.s').forEach(function(sec){var any=q('tr.c',sec).some(function(tr){
return !tr.classList.contains('hidden');});
sec.classList.toggle('hidden',(!!s&&sec.getAttribute('data-s')!==s)||!any);});
d.getElementById('f-n').textContent=shown+' row(s), '+hosts+' host(s) shown';}
['f-s','f-o','f-h'].forEach(function(id){d.getElementById(id).addEventListener('input',apply);});
window.addEventListener('load',function(){void d.body.offsetHeight;
d.documentElement.setAttribute('data-rendered-ms',String(Math.round(performance.now())));});
})();
"""
SCRIPT_HASH = base64.b64encode(hashlib.sha256(SCRIPT.encode("utf-8")).digest()).decode("ascii")
CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
    f"script-src 'sha256-{SCRIPT_HASH}'"
)


def natural_key(name: str) -> list[Any]:
    """Return a sort key that orders ``host-9`` before ``host-10`` (numbers by value)."""
    # (0, number) and (1, text): a number never meets a string in a comparison.
    return [(0, int(p)) if p.isdigit() else (1, p) for p in re.split(r"(\d+)", name)]


def cell_outcome(outcomes: Iterable[str]) -> str | None:
    """Return the outcome a matrix cell shows: the worst of its items, None if none ran."""
    seen = set(outcomes)
    return next((o for o in ORDER if o in seen), None)


@dataclass
class Group:
    """Hosts whose matrix rows are identical: one outcome (or None) per scenario."""

    pattern: tuple[str | None, ...]
    hosts: list[str] = field(default_factory=list)
    kinds: Counter[str] = field(default_factory=Counter)

    @property
    def bad(self) -> int:
        """Return how many of the row's cells failed or errored (the row's sort key)."""
        return sum(1 for o in self.pattern if o in ("failed", "error"))


def host_groups(
    checks: Sequence[Mapping[str, Any]],
    hosts: Mapping[str, Mapping[str, Any]],
    scenario_ids: Sequence[str],
) -> list[Group]:
    """Return the matrix rows: hosts grouped by their outcome pattern over ``scenario_ids``,
    rows with the most failed or errored cells first, then the largest groups.

    Every host of the record has a row, also one with no check (a pattern of None).
    """
    cells: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for check in checks:
        host, scenario = check.get("host"), check.get("scenario_id")
        if host and scenario:
            cells[str(host)][str(scenario)].add(str(check.get("outcome")))
    groups: dict[tuple[str | None, ...], Group] = {}
    for host in sorted(set(hosts) | set(cells), key=natural_key):
        mine = cells.get(host, {})
        pattern = tuple(cell_outcome(mine.get(s, ())) for s in scenario_ids)
        group = groups.setdefault(pattern, Group(pattern))
        group.hosts.append(host)
        group.kinds[worker_kind(hosts.get(host))] += 1
    return sorted(groups.values(), key=lambda g: (-g.bad, -len(g.hosts), natural_key(g.hosts[0])))


def worker_kind(host: Mapping[str, Any] | None) -> str:
    """Return the host's kind of worker as the record states it ("" when not recorded)."""
    kind = (host or {}).get("worker_kind")
    if isinstance(kind, Mapping):
        return str(kind.get("text") or kind.get("kind") or "")
    return str(kind or "")


class Page:
    """Builds the page's parts; ``e`` redacts and escapes every text it is given."""

    def __init__(
        self,
        record: Mapping[str, Any],
        scenarios: Sequence[Scenario],
        notes: Sequence[str],
        redact: Callable[[str], str],
    ) -> None:
        self.record = record
        self.redact = redact
        self.checks: list[Mapping[str, Any]] = list(record.get("checks") or [])
        self.hosts: Mapping[str, Mapping[str, Any]] = record.get("hosts") or {}
        self.notes = notes
        present = {c.get("scenario_id") for c in self.checks}
        self.scenarios = [s for s in scenarios if s.id in present]
        self.by_id = {s.id: s for s in scenarios}

    def e(self, text: object) -> str:
        """Return ``text`` redacted, then escaped for HTML text and quoted attributes."""
        return html.escape(self.redact(str(text)))

    def header(self) -> str:
        """Return the title block: the run, when, who, from where, the fleet and its kinds,
        the outcome counts, the gate, and what was weakened (the notes)."""
        r, e = self.record, self.e
        operator = r.get("operator") or {}
        merged = r.get("merged")
        shard = r.get("shard")
        inventory = r.get("inventory") or {}
        platforms = Counter(str(h.get("platform") or "unknown") for h in self.hosts.values())
        fleet = f"{len(self.hosts)} host(s)" + (
            " (" + ", ".join(f"{n} {p}" for p, n in sorted(platforms.items())) + ")"
            if platforms
            else ""
        )
        if shard:
            fleet += (
                f"; shard {shard.get('index')} of {shard.get('total')} of an inventory of "
                f"{inventory.get('host_count')} host(s)"
            )
        kinds = Counter(worker_kind(h) for h in self.hosts.values())
        kinds.pop("", None)
        rows = [
            ("status", f"{r.get('status')}" + (f" ({why})" if (why := r.get("status_reason")) else "")),  # noqa: E501
            ("when", f"{r.get('started_at')} to {r.get('finished_at') or 'not finished'} (UTC)"),
            ("who, from where", f"{operator.get('user')} on {operator.get('hostname')}"),
            ("command", " ".join(str(a) for a in r.get("command_line") or [])),
            ("fleet", fleet),
        ]  # fmt: skip
        if kinds:
            rows.append(("kinds of worker", ", ".join(f"{n} {k}" for k, n in kinds.most_common())))
        tool = r.get("tool") or {}
        rows.append(
            (
                "tool",
                f"hrw-preflight {tool.get('version')} "
                f"({tool.get('git_commit') or 'no git commit'}), "
                f"catalogue v{(r.get('catalogue') or {}).get('version')}",
            )
        )
        gate = r.get("gate") or {}
        if gate:
            rows.append(("exit code", f"{gate.get('exit')}"))
        dl = "".join(f"<dt>{e(k)}</dt><dd>{e(v)}</dd>" for k, v in rows)
        summary = r.get("summary") or {}
        counts = "".join(f'<span class="{o}">{int(summary.get(o) or 0)} {o}</span>' for o in ORDER)
        weakened = "".join(f'<p class="warn">{e(n)}</p>' for n in self.notes)
        title = f"hrw-preflight run {r.get('run_id')}"
        if merged:
            title += f" (merged from {merged.get('shard_total')} shards)"
        return (
            f'<h1>{e(title)}</h1><dl class="run">{dl}</dl>'
            f'<div class="counts">{counts}<span class="muted">checks; passed and skipped '
            f"checks' evidence is in evidence.json</span></div>{weakened}{self.shards()}"
        )

    def shards(self) -> str:
        """Return the table of a merged bundle's shards ("" for a single run)."""
        merged = self.record.get("merged")
        if not merged:
            return ""
        e = self.e
        rows = "".join(
            f"<tr><td>{e(s.get('index'))}/{e(merged.get('shard_total'))}</td>"
            f"<td>{e(s.get('run_id'))}</td><td>{e((s.get('operator') or {}).get('user'))}@"
            f"{e((s.get('operator') or {}).get('hostname'))}</td><td>{e(s.get('started_at'))}"
            f"</td><td>{e(s.get('hosts'))}</td><td>{e(s.get('checks'))}</td></tr>"
            for s in merged.get("shards") or []
        )
        return (
            "<h2>Shards</h2><table><thead><tr><th>shard</th><th>run id</th><th>by</th>"
            f"<th>started</th><th>hosts</th><th>checks</th></tr></thead><tbody>{rows}"
            "</tbody></table>"
        )

    def filters(self) -> str:
        """Return the filter bar: scenario, outcome, host pattern, and what is shown."""
        e = self.e
        options = "".join(
            f'<option value="{e(s.id)}">{e(s.id)} {e(s.title)}</option>' for s in self.scenarios
        )
        outcomes = "".join(f'<option value="{o}">{o}</option>' for o in ORDER)
        return (
            '<div class="filters"><label>scenario <select id="f-s"><option value="">all'
            f'</option>{options}</select></label><label>outcome <select id="f-o">'
            f'<option value="">any</option>{outcomes}</select></label><label>hosts '
            '<input id="f-h" type="search" placeholder="name or pattern, * wildcard" '
            'size="28"></label><span id="f-n" class="muted"></span></div>'
        )

    def matrix(self) -> str:
        """Return the hosts-by-scenarios matrix, one row per distinct outcome pattern."""
        e = self.e
        ids = [s.id for s in self.scenarios]
        groups = host_groups(self.checks, self.hosts, ids)
        # A kind column only when kinds differ: one kind for all is said in the header.
        show_kind = len({k for g in groups for k in g.kinds}) > 1
        head = "".join(
            f'<th data-s="{e(s.id)}" title="{e(s.title)} ({e(s.severity)})">{e(s.id)}</th>'
            for s in self.scenarios
        )
        rows = []
        for group in groups:
            names = " ".join(f"<span>{e(h)}</span>" for h in group.hosts)
            first = ", ".join(group.hosts[:3]) + (", ..." if len(group.hosts) > 3 else "")
            label = (
                f"<details><summary><b>{len(group.hosts)}</b> host(s): {e(first)}</summary>"
                f'<div class="names">{names}</div></details>'
            )
            kind = (
                '<td class="kind">'
                + e(", ".join(k or "unknown" for k in sorted(group.kinds)))
                + "</td>"
                if show_kind
                else ""
            )
            tds = "".join(
                f'<td data-s="{e(sid)}" data-o="{o}" class="{o}" title="{e(sid)}: {o}">'
                f"{SYMBOL[o]}</td>"
                if o
                else f'<td data-s="{e(sid)}" data-o="na" class="na" title="not checked">\u00b7</td>'
                for sid, o in zip(ids, group.pattern, strict=True)
            )
            present = " ".join(sorted({o for o in group.pattern if o}, key=ORDER.index))
            rows.append(
                f'<tr data-n="{len(group.hosts)}" data-o="{present}"><th class="g">{label}</th>'
                f"{kind}{tds}<td>{group.bad}</td></tr>"
            )
        kind_head = "<th>worker kind</th>" if show_kind else ""
        legend = " ".join(f'<span class="{o}">{SYMBOL[o]} {o}</span>' for o in ORDER)
        return (
            f'<h2>Hosts \u00d7 scenarios</h2><p class="counts">{legend}<span>\u00b7 not '
            f'checked</span><span class="muted">{len(groups)} distinct row(s) for '
            f"{len(self.hosts)} host(s); last column: failed + errored scenarios</span></p>"
            f'<div class="scroll"><table class="m" id="matrix"><thead><tr><th class="g">hosts'
            f"</th>{kind_head}{head}<th>\u03a3</th></tr></thead><tbody>{''.join(rows)}"
            "</tbody></table></div>"
        )

    def unreachable(self) -> tuple[str, set[str]]:
        """Return the table of hosts that could not be checked at all, and their names
        (their checks' errors are shown here once instead of once per check)."""
        down = {
            name: str(h.get("connect_error"))
            for name, h in self.hosts.items()
            if h.get("connect_error")
        }
        if not down:
            return "", set()
        e = self.e
        rows = "".join(
            f'<tr class="c" data-o="error" data-h="{e(n)}"><td class="h">{e(n)}</td>'
            f'<td class="o error">error</td><td>{e(why)}</td></tr>'
            for n, why in sorted(down.items(), key=lambda kv: natural_key(kv[0]))
        )
        return (
            f'<section class="s" data-s=""><h3>Hosts that could not be checked ({len(down)})'
            '</h3><p class="muted">Every check of these hosts is an error for this reason.'
            '</p><table class="f"><thead><tr><th>host</th><th>outcome</th><th>why</th></tr>'
            f"</thead><tbody>{rows}</tbody></table></section>",
            set(down),
        )

    def failures(self) -> str:
        """Return the failed and errored checks, most severe scenario first, grouped by
        scenario with its fix once, each check with its evidence folded away."""
        e = self.e
        block, down = self.unreachable()
        bad = [
            c
            for c in self.checks
            if c.get("outcome") in ("failed", "error")
            and not (c.get("outcome") == "error" and c.get("host") in down)
        ]
        by_scenario: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
        for check in bad:
            by_scenario[str(check.get("scenario_id") or "")].append(check)

        def rank(sid: str) -> tuple[int, str]:
            s = self.by_id.get(sid)
            return (-_RANK.get(s.severity if s else "", len(SEVERITIES)), sid)

        sections = []
        for sid in sorted(by_scenario, key=rank):
            scenario = self.by_id.get(sid)
            checks = sorted(
                by_scenario[sid],
                key=lambda c: (natural_key(str(c.get("host"))), str(c.get("item"))),
            )
            counts = Counter(str(c.get("outcome")) for c in checks)
            n_hosts = len({c.get("host") for c in checks})
            title = f"{sid} {scenario.title}" if scenario else sid
            severity = scenario.severity if scenario else "unknown"
            fix = f'<p class="fix"><b>Fix:</b> {e(scenario.remediation)}</p>' if scenario else ""
            rows = "".join(self.failure_row(c, i < EVIDENCE_ROWS) for i, c in enumerate(checks))
            more = (
                f'<p class="muted">Evidence shown for the first {EVIDENCE_ROWS} of '
                f"{len(checks)}; every check's evidence is in evidence.json.</p>"
                if len(checks) > EVIDENCE_ROWS
                else ""
            )
            sections.append(
                f'<section class="s sev-{e(severity)}" data-s="{e(sid)}"><h3>{e(title)} '
                f'<span class="muted">({e(severity)}; '
                + ", ".join(f"{n} {o}" for o, n in sorted(counts.items()))
                + f" on {n_hosts} host(s))</span></h3>{fix}{more}"
                '<table class="f fc"><thead><tr><th>host</th><th>item</th><th>outcome</th>'
                f"<th>seen / expected, evidence</th></tr></thead><tbody>{rows}</tbody></table>"
                "</section>"
            )
        counts = Counter(str(c.get("outcome")) for c in self.checks)
        if not counts["failed"] and not counts["error"] and not down:
            return "<h2>Failures and errors</h2><p>No failed or errored checks.</p>"
        return (
            f"<h2>Failures and errors ({counts['failed']} failed, {counts['error']} error)</h2>"
            f"{block}{''.join(sections)}"
        )

    def failure_row(self, check: Mapping[str, Any], with_evidence: bool = True) -> str:
        """Return one failed or errored check: host, item, outcome, reason and (when
        ``with_evidence``) its evidence."""
        e = self.e
        outcome = str(check.get("outcome"))
        evidence = str(check.get("evidence") or "")
        cut = len(evidence) > EVIDENCE_INLINE or bool(check.get("evidence_truncated"))
        note = ""
        if check.get("expired_waiver"):
            w = check["expired_waiver"]
            note = (
                f'<p class="warn">waiver for {e(w.get("scenario"))} on {e(w.get("hosts"))} '
                f"(owner {e(w.get('owner'))}) expired on {e(w.get('expires'))}: not applied</p>"
            )
        shown = (
            f"<details><summary>evidence{' (cut; all of it in evidence.json)' if cut else ''}"
            f"</summary><pre>{e(evidence[:EVIDENCE_INLINE])}</pre></details>"
            if evidence and with_evidence
            else ""
        )
        return (
            f'<tr class="c" data-o="{e(outcome)}" data-h="{e(check.get("host") or "")}">'
            f'<td class="h">{e(check.get("host") or "")}</td><td>{e(check.get("item") or "")}'
            f'</td><td class="o {e(outcome)}">{e(outcome)}</td><td>{e(check.get("reason") or "")}'
            f"{note}{shown}</td></tr>"
        )

    def waived(self) -> str:
        """Return the waived checks with their justification ("" when none were waived)."""
        e = self.e
        waived = [c for c in self.checks if c.get("outcome") == "waived"]
        if not waived:
            return ""
        rows = "".join(
            f'<tr class="c" data-o="waived" data-h="{e(c.get("host") or "")}">'
            f"<td>{e(c.get('host') or '')}</td><td>{e(c.get('scenario_id') or '')}</td>"
            f"<td>{e(c.get('item') or '')}</td>"
            f"<td>{e((c.get('waiver') or {}).get('justification', ''))}</td>"
            f"<td>{e((c.get('waiver') or {}).get('owner', ''))}</td>"
            f"<td>{e((c.get('waiver') or {}).get('expires', ''))}</td></tr>"
            for c in waived
        )
        return (
            f'<h2>Waived ({len(waived)})</h2><table class="f"><thead><tr><th>host</th>'
            "<th>scenario</th><th>item</th><th>justification</th><th>owner</th><th>expires</th>"
            f"</tr></thead><tbody>{rows}</tbody></table>"
        )

    def render(self) -> str:
        """Return the whole page."""
        title = self.e(f"hrw-preflight run {self.record.get('run_id')}")
        return (
            '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{title}</title><style>{CSS}</style></head><body>"
            f"{self.header()}{self.filters()}{self.matrix()}{self.failures()}{self.waived()}"
            '<p class="muted">Passed and skipped checks, with the evidence each judged, are in '
            "evidence.json; checks.html (when the run wrote it) has every check's log.</p>"
            f"<script>{SCRIPT}</script></body></html>\n"
        )


def render_fleet_page(
    record: Mapping[str, Any],
    scenarios: Sequence[Scenario],
    notes: Sequence[str],
    redact: Callable[[str], str],
) -> str:
    """Return ``report.html`` for the run or merge that ``record`` describes.

    ``notes`` are run-level warnings (weakening options, expired waivers, the gate) shown
    under the header, so nobody reads a green matrix without them.
    """
    return Page(record, scenarios, notes, redact).render()
