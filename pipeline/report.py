"""`newsingest report`: one self-contained HTML page with charts of ingestion health.

The page holds inline SVG drawn here in Python and inline CSS; no script, font or image is loaded from
anywhere (a Content-Security-Policy forbids it), so it opens offline, from a mail attachment or an
artifact store. Data comes from the DuckDB views (`pipeline.views`), so it shows committed runs only.

Sections: key figures; articles per source per day; duplicate and syndication rates per source;
extraction status mix; fetch outcomes and latency (p50/p95) per host; feeds failing for more than a day;
top stories by number of copies with their outlets; recent runs. Every chart has a data table under it.
Colours are the Okabe-Ito palette (distinguishable with the common colour-vision deficiencies).

    write_report(warehouse, out_path) -> {"path": ..., "articles": ..., ...}   (counts for a DAG task)
"""

from __future__ import annotations

import argparse
import html
import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

# Okabe & Ito (2008), without black (kept for text) in an order that keeps neighbours distinct.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")
OTHER = "#999999"
STATUS_COLOURS = {
    "ok": "#009E73", "no_article": "#E69F00", "too_short": "#F0E442", "consent_wall": "#56B4E9",
    "paywalled": "#CC79A7", "not_html": "#0072B2", "error": "#D55E00", "fetch_failed": "#000000",
    "invalid_url": "#999999",
}
OUTCOME_COLOURS = {
    "ok": "#009E73", "not_modified": "#56B4E9", "http_error": "#D55E00", "timeout": "#E69F00",
    "too_large": "#CC79A7", "blocked": "#0072B2", "bad_content": "#F0E442", "robots_disallowed": "#999999",
    "invalid_url": "#666666", "deferred": "#CCCCCC", "error": "#000000",
}
MAX_SERIES = 8  # sources beyond this are summed as "other"
MAX_ROWS = 15  # hosts and stories shown in a chart (the table under it has them all, up to TABLE_ROWS)
TABLE_ROWS = 200
FAILING_FOR = timedelta(days=1)

# ---------------------------------------------------------------------------------------------- data


def _rows(con: Any, sql: str, params: list[Any] | None = None) -> list[dict[str, Any]]:
    rel = con.execute(sql, params or [])
    cols = [d[0] for d in rel.description]
    return [dict(zip(cols, row, strict=True)) for row in rel.fetchall()]


def overview(con: Any) -> dict[str, Any]:
    arts = _rows(con, "SELECT count(*) AS articles, count(*) FILTER (WHERE extraction_status = 'ok') AS with_text, "
                      "count(DISTINCT coalesce(cluster_id, article_id)) AS stories, count(DISTINCT source) AS sources, "
                      "count(*) FILTER (WHERE duplicate_of IS NOT NULL) AS duplicates, "
                      "min(published_date) AS first_day, max(published_date) AS last_day FROM articles")[0]
    runs = _rows(con, "SELECT count(*) AS runs, min(started_at) AS first_run, max(committed_at) AS last_run "
                      "FROM runs")[0]
    fetches = _rows(con, "SELECT count(*) AS fetches, count(*) FILTER (WHERE outcome NOT IN "
                         "('ok', 'not_modified', 'deferred')) AS failed_fetches, count(DISTINCT host) AS hosts "
                         "FROM fetch_log")[0]
    return {**arts, **runs, **fetches}


def articles_per_day(con: Any, days: int = 30) -> tuple[list[date], list[tuple[str, list[int]]], int]:
    """(days, [(source, count per day)], articles before the window). The window ends on the newest day."""
    last = _rows(con, "SELECT max(published_date) AS d FROM articles")[0]["d"]
    if last is None:
        return [], [], 0
    first = last - timedelta(days=days - 1)
    rows = _rows(con, "SELECT published_date AS day, source, count(*) AS n FROM articles WHERE published_date >= ? "
                      "GROUP BY ALL", [first])
    older = _rows(con, "SELECT count(*) AS n FROM articles WHERE published_date < ?", [first])[0]["n"]
    present = sorted({r["day"] for r in rows})
    start = present[0] if present else last
    axis = [start + timedelta(days=i) for i in range((last - start).days + 1)]
    totals: dict[str, int] = {}
    for r in rows:
        totals[r["source"]] = totals.get(r["source"], 0) + r["n"]
    keep = [s for s, _ in sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))][:MAX_SERIES - 1]
    if len(totals) == MAX_SERIES:
        keep = sorted(totals)
    index = {d: i for i, d in enumerate(axis)}
    series: dict[str, list[int]] = {s: [0] * len(axis) for s in sorted(keep)}
    for r in rows:
        name = r["source"] if r["source"] in series else "other"
        series.setdefault(name, [0] * len(axis))[index[r["day"]]] += r["n"]
    return axis, list(series.items()), older


def source_rates(con: Any) -> list[dict[str, Any]]:
    """Per source: articles with text, copies of an earlier article (duplicate rate), articles whose story
    appears at more than one outlet (syndication rate), and copies that credit an origin."""
    return _rows(con, """
        WITH story AS (
            SELECT coalesce(cluster_id, article_id) AS story, count(DISTINCT source) AS outlets
            FROM articles WHERE extraction_status = 'ok' GROUP BY 1)
        SELECT a.source,
               count(*) AS articles,
               count(*) FILTER (WHERE a.extraction_status = 'ok') AS with_text,
               count(*) FILTER (WHERE a.duplicate_of IS NOT NULL) AS duplicates,
               count(*) FILTER (WHERE a.extraction_status = 'ok' AND s.outlets > 1) AS syndicated,
               count(*) FILTER (WHERE a.syndicated_from IS NOT NULL) AS credited
        FROM articles a LEFT JOIN story s ON s.story = coalesce(a.cluster_id, a.article_id)
        GROUP BY a.source ORDER BY a.source""")


def extraction_mix(con: Any) -> list[dict[str, Any]]:
    return _rows(con, "SELECT source, extraction_status AS status, count(*) AS n FROM articles GROUP BY ALL "
                      "ORDER BY source, status")


def fetch_by_host(con: Any) -> list[dict[str, Any]]:
    """Per host: requests by outcome, and latency percentiles of attempted requests (deferred excluded)."""
    hosts = _rows(con, """
        SELECT coalesce(host, '(none)') AS host, count(*) AS requests,
               count(*) FILTER (WHERE kind = 'feed') AS feed_requests,
               count(*) FILTER (WHERE kind = 'page') AS page_requests,
               quantile_cont(elapsed_ms, 0.5) FILTER (WHERE outcome <> 'deferred') AS p50_ms,
               quantile_cont(elapsed_ms, 0.95) FILTER (WHERE outcome <> 'deferred') AS p95_ms,
               max(elapsed_ms) FILTER (WHERE outcome <> 'deferred') AS max_ms
        FROM fetch_log GROUP BY 1 ORDER BY requests DESC, host""")
    outcomes = _rows(con, "SELECT coalesce(host, '(none)') AS host, outcome, count(*) AS n FROM fetch_log GROUP BY ALL")
    by_host: dict[str, dict[str, int]] = {}
    for r in outcomes:
        by_host.setdefault(r["host"], {})[r["outcome"]] = r["n"]
    for h in hosts:
        h["outcomes"] = by_host.get(h["host"], {})
    return hosts


def failing_feeds(con: Any, now: datetime | None = None) -> list[dict[str, Any]]:
    """Feeds whose latest attempt failed: since when (first failure after the last success), how many
    attempts, the last error. Feeds not attempted in the two days before the newest attempt are left out
    (they were removed from the config). `over_a_day` marks those failing for more than a day."""
    now = now or datetime.now(UTC)
    rows = _rows(con, """
        WITH f AS (SELECT source, url, started_at, outcome, error, http_status FROM fetch_log
                   WHERE kind = 'feed' AND source IS NOT NULL AND outcome <> 'deferred'),
             newest AS (SELECT max(started_at) AS t FROM f),
             last_ok AS (SELECT source, max(started_at) AS last_success FROM f
                         WHERE outcome IN ('ok', 'not_modified') GROUP BY 1),
             latest AS (SELECT source, max(started_at) AS last_attempt, arg_max(outcome, started_at) AS last_outcome,
                               arg_max(error, started_at) AS last_error, arg_max(http_status, started_at) AS last_status,
                               arg_max(url, started_at) AS url FROM f GROUP BY 1),
             fails AS (SELECT f.source, min(f.started_at) AS failing_since, count(*) AS failed_attempts
                       FROM f LEFT JOIN last_ok o USING (source)
                       WHERE f.outcome NOT IN ('ok', 'not_modified')
                         AND (o.last_success IS NULL OR f.started_at > o.last_success) GROUP BY 1)
        SELECT l.source, l.url, x.failing_since, x.failed_attempts, l.last_attempt, l.last_outcome, l.last_status,
               l.last_error, o.last_success
        FROM latest l JOIN fails x USING (source) LEFT JOIN last_ok o USING (source), newest
        WHERE l.last_outcome NOT IN ('ok', 'not_modified') AND l.last_attempt >= newest.t - INTERVAL 2 DAY
        ORDER BY x.failing_since, l.source""")
    for r in rows:
        r["failing_for_s"] = max(0.0, (now - r["failing_since"]).total_seconds())
        r["over_a_day"] = r["failing_for_s"] > FAILING_FOR.total_seconds()
    return rows


def top_stories(con: Any, limit: int = 20) -> list[dict[str, Any]]:
    return _rows(con, """
        SELECT c.cluster_id, c.copies, c.sources, c.first_published_at, coalesce(u.title, c.title) AS title,
               u.source AS origin, c.outlets
        FROM clusters c LEFT JOIN articles_unique u ON coalesce(u.cluster_id, u.article_id) = c.cluster_id
        WHERE c.copies > 1 ORDER BY c.copies DESC, c.sources DESC, c.first_published_at NULLS LAST, c.cluster_id
        LIMIT ?""", [limit])


def recent_runs(con: Any, limit: int = 15) -> list[dict[str, Any]]:
    return _rows(con, """
        SELECT run_id, started_at, committed_at, trigger, feeds,
               coalesce(counts['articles_written'], 0) AS articles_written,
               coalesce(counts['duplicates'], 0) AS duplicates,
               coalesce(counts['feeds_failed'], 0) AS feeds_failed,
               coalesce(counts['pages_failed'], 0) AS pages_failed,
               coalesce(counts['retries_pending'], 0) AS retries_pending
        FROM runs ORDER BY committed_at DESC, run_id DESC LIMIT ?""", [limit])


# ---------------------------------------------------------------------------------------------- SVG

W = 960  # viewBox width of every chart; the page scales it to the column width
FONT = 12


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _fmt(n: float) -> str:
    if abs(n) >= 10_000:
        return f"{n / 1000:.0f}k"
    if abs(n) >= 1000:
        return f"{n / 1000:.1f}k"
    if n == int(n):
        return str(int(n))
    return f"{n:.1f}"


def _clip(text: str, chars: int) -> str:
    return text if len(text) <= chars else text[: chars - 1] + "…"


def nice_ticks(top: float, count: int = 5) -> list[float]:
    """0 and round steps (1, 2, 2.5, 5 x 10^k) up to at least `top`."""
    if top <= 0:
        return [0.0, 1.0]
    raw = top / count
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    ticks = [0.0]
    while ticks[-1] < top - 1e-9:
        ticks.append(round(ticks[-1] + step, 10))
    return ticks


@dataclass(slots=True)
class Series:
    name: str
    colour: str
    values: list[float]


def _legend(items: list[tuple[str, str]], x0: float, y: float, width: float) -> tuple[list[str], float]:
    """Swatches and names left to right, wrapping; returns (elements, height used)."""
    out, x, line = [], x0, 0
    for name, colour in items:
        w = 18 + 7.2 * len(name) + 18
        if x + w > x0 + width and x > x0:
            x, line = x0, line + 1
        yy = y + line * 20
        out.append(f'<rect class="swatch" x="{x:.1f}" y="{yy - 10:.1f}" width="12" height="12" fill="{colour}" '
                   f'stroke="#333" stroke-width="0.5"/><text x="{x + 17:.1f}" y="{yy:.1f}">{_e(name)}</text>')
        x += w
    return out, (line + 1) * 20 if items else 0


def _svg(chart_id: str, title: str, desc: str, height: float, body: list[str]) -> str:
    return (f'<svg class="chart" data-chart="{_e(chart_id)}" viewBox="0 0 {W} {height:.0f}" role="img" '
            f'aria-labelledby="{chart_id}-t {chart_id}-d" xmlns="http://www.w3.org/2000/svg" '
            f'font-size="{FONT}"><title id="{chart_id}-t">{_e(title)}</title><desc id="{chart_id}-d">{_e(desc)}</desc>'
            + "".join(body) + "</svg>")


def stacked_columns(chart_id: str, title: str, categories: list[str], series: list[Series], y_label: str) -> str:
    """Vertical stacked columns, one per category (days), one colour per series (sources)."""
    left, right, top = 56, 16, 12
    legend, legend_h = _legend([(s.name, s.colour) for s in series], left, top + 10, W - left - right)
    top += legend_h + 8
    plot_h, label_h = 260, 64 if len(categories) > 14 else 28
    height = top + plot_h + label_h + 8
    totals = [sum(s.values[i] for s in series) for i in range(len(categories))]
    ticks = nice_ticks(max(totals, default=0))
    ymax = ticks[-1]
    plot_w = W - left - right
    slot = plot_w / max(1, len(categories))
    bar_w = max(2.0, min(48.0, slot * 0.7))
    body = list(legend)
    for t in ticks:
        y = top + plot_h - plot_h * t / ymax
        body.append(f'<line class="grid" x1="{left}" x2="{W - right}" y1="{y:.1f}" y2="{y:.1f}"/>'
                    f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{_fmt(t)}</text>')
    body.append(f'<text x="14" y="{top + plot_h / 2:.0f}" transform="rotate(-90 14 {top + plot_h / 2:.0f})" '
                f'text-anchor="middle">{_e(y_label)}</text>')
    for i, cat in enumerate(categories):
        x = left + slot * i + (slot - bar_w) / 2
        base = top + plot_h
        for s in series:
            v = s.values[i]
            if v <= 0:
                continue
            h = plot_h * v / ymax
            base -= h
            body.append(f'<rect class="mark" x="{x:.1f}" y="{base:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
                        f'fill="{s.colour}"><title>{_e(cat)} · {_e(s.name)}: {_fmt(v)}</title></rect>')
        cx = left + slot * i + slot / 2
        if len(categories) > 14:
            body.append(f'<text x="{cx:.1f}" y="{top + plot_h + 12}" transform="rotate(-45 {cx:.1f} '
                        f'{top + plot_h + 12})" text-anchor="end">{_e(cat)}</text>')
        else:
            body.append(f'<text x="{cx:.1f}" y="{top + plot_h + 18}" text-anchor="middle">{_e(cat)}</text>')
    body.append(f'<line class="axis" x1="{left}" x2="{W - right}" y1="{top + plot_h}" y2="{top + plot_h}"/>')
    return _svg(chart_id, title, f"Stacked columns: {y_label} per day, one colour per source.", height, body)


def hbars(chart_id: str, title: str, labels: list[str], series: list[Series], *, stacked: bool = False,
          percent: bool = False, x_label: str = "", notes: list[str] | None = None, label_w: int = 190,
          label_chars: int = 28) -> str:
    """Horizontal bars, one row per label: grouped (one bar per series) or stacked; optionally in percent
    of each row's total (stacked) or as rates in [0, 1] (grouped). `notes` are printed right of each row."""
    # Room on the right for the value printed after a full-length bar, then for the notes.
    left, right, top = label_w, (0 if stacked else 52) + (120 if notes else 24), 12
    legend, legend_h = _legend([(s.name, s.colour) for s in series], left, top + 10, W - left - right)
    top += legend_h + 8
    band = 22 if stacked else 8 + 12 * len(series)
    plot_h = band * len(labels)
    height = top + plot_h + 40
    plot_w = W - left - right
    if stacked:
        totals = [sum(s.values[i] for s in series) for i in range(len(labels))]
        ticks = [0, 0.25, 0.5, 0.75, 1.0] if percent else nice_ticks(max(totals, default=0))
    else:
        totals = []
        ticks = [0, 0.25, 0.5, 0.75, 1.0] if percent else nice_ticks(max((v for s in series for v in s.values),
                                                                         default=0))
    xmax = ticks[-1] or 1
    body = list(legend)
    for t in ticks:
        x = left + plot_w * t / xmax
        tl = f"{t * 100:.0f}%" if percent else _fmt(t)
        body.append(f'<line class="grid" x1="{x:.1f}" x2="{x:.1f}" y1="{top}" y2="{top + plot_h}"/>'
                    f'<text x="{x:.1f}" y="{top + plot_h + 16}" text-anchor="middle">{tl}</text>')
    if x_label:
        body.append(f'<text x="{left + plot_w / 2:.0f}" y="{top + plot_h + 34}" text-anchor="middle">{_e(x_label)}</text>')
    for i, label in enumerate(labels):
        y0 = top + band * i
        body.append(f'<text x="{left - 8}" y="{y0 + band / 2 + 4:.1f}" text-anchor="end"><title>{_e(label)}</title>'
                    f'{_e(_clip(label, label_chars))}</text>')
        if stacked:
            x = left
            total = totals[i] or 1
            for s in series:
                v = s.values[i]
                if v <= 0:
                    continue
                w = plot_w * (v / total if percent else v / xmax)
                shown = f"{v / total * 100:.0f}% ({_fmt(v)})" if percent else _fmt(v)
                body.append(f'<rect class="mark" x="{x:.1f}" y="{y0 + 3}" width="{w:.1f}" height="{band - 6}" '
                            f'fill="{s.colour}"><title>{_e(label)} · {_e(s.name)}: {shown}</title></rect>')
                x += w
        else:
            for k, s in enumerate(series):
                v = s.values[i]
                w = plot_w * v / xmax
                shown = f"{v * 100:.0f}%" if percent else _fmt(v)
                y = y0 + 4 + 12 * k
                if v > 0:
                    body.append(f'<rect class="mark" x="{left}" y="{y}" width="{max(w, 1.5):.1f}" height="10" '
                                f'fill="{s.colour}"><title>{_e(label)} · {_e(s.name)}: {shown}</title></rect>')
                body.append(f'<text class="value" x="{left + w + 4:.1f}" y="{y + 9}">{shown}</text>')
        if notes:
            body.append(f'<text class="value" x="{W - 120 + 8}" y="{y0 + band / 2 + 4:.1f}">{_e(notes[i])}</text>')
    body.append(f'<line class="axis" x1="{left}" x2="{left}" y1="{top}" y2="{top + plot_h}"/>')
    kind = "stacked 100% bars" if stacked and percent else "stacked bars" if stacked else "grouped bars"
    return _svg(chart_id, title, f"Horizontal {kind}, one row per {x_label or 'item'}.", height, body)


def latency_chart(chart_id: str, title: str, rows: list[dict[str, Any]]) -> str:
    """Per host: a bar to the median and a whisker to the 95th percentile, in milliseconds."""
    left, right, top = 190, 120, 12
    items = [("median (p50)", "#0072B2"), ("95th percentile (p95)", "#D55E00")]
    legend, legend_h = _legend(items, left, top + 10, W - left - right)
    top += legend_h + 8
    band = 24
    plot_h = band * len(rows)
    height = top + plot_h + 40
    plot_w = W - left - right
    ticks = nice_ticks(max((r["p95_ms"] or 0 for r in rows), default=0))
    xmax = ticks[-1] or 1
    body = list(legend)
    for t in ticks:
        x = left + plot_w * t / xmax
        body.append(f'<line class="grid" x1="{x:.1f}" x2="{x:.1f}" y1="{top}" y2="{top + plot_h}"/>'
                    f'<text x="{x:.1f}" y="{top + plot_h + 16}" text-anchor="middle">{_fmt(t)}</text>')
    body.append(f'<text x="{left + plot_w / 2:.0f}" y="{top + plot_h + 34}" text-anchor="middle">'
                'milliseconds per request (whole response, retries included)</text>')
    for i, r in enumerate(rows):
        y0 = top + band * i
        p50, p95 = r["p50_ms"] or 0, r["p95_ms"] or 0
        x50, x95 = left + plot_w * p50 / xmax, left + plot_w * p95 / xmax
        body.append(f'<text x="{left - 8}" y="{y0 + 16}" text-anchor="end"><title>{_e(r["host"])}</title>'
                    f'{_e(_clip(r["host"], 28))}</text>')
        body.append(f'<rect class="mark" x="{left}" y="{y0 + 6}" width="{max(x50 - left, 1.5):.1f}" height="12" '
                    f'fill="#0072B2"><title>{_e(r["host"])}: p50 {p50:.0f} ms</title></rect>')
        body.append(f'<line class="mark" x1="{x50:.1f}" x2="{max(x95, x50 + 1.5):.1f}" y1="{y0 + 12}" y2="{y0 + 12}" '
                    f'stroke="#D55E00" stroke-width="2"/>'
                    f'<rect class="mark" x="{x95 - 2:.1f}" y="{y0 + 4}" width="4" height="16" fill="#D55E00">'
                    f'<title>{_e(r["host"])}: p95 {p95:.0f} ms</title></rect>'
                    f'<text class="value" x="{x95 + 6:.1f}" y="{y0 + 16}">{p50:.0f} / {p95:.0f} ms</text>')
    body.append(f'<line class="axis" x1="{left}" x2="{left}" y1="{top}" y2="{top + plot_h}"/>')
    return _svg(chart_id, title, "Horizontal bars to the median latency per host, whiskers to the 95th percentile.",
                height, body)


# ---------------------------------------------------------------------------------------------- HTML


def _table(columns: list[str], rows: list[list[Any]], *, caption: str = "Data table", open_: bool = False) -> str:
    head = "".join(f"<th>{_e(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{_cell(v)}</td>" for v in row) + "</tr>" for row in rows[:TABLE_ROWS])
    more = f"<p class='note'>{len(rows) - TABLE_ROWS} more rows not shown.</p>" if len(rows) > TABLE_ROWS else ""
    return (f"<details{' open' if open_ else ''}><summary>{_e(caption)}</summary><div class='scroll'><table>"
            f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>{more}</details>")


def _cell(v: Any) -> str:
    if v is None:
        return '<span class="muted">–</span>'
    if isinstance(v, datetime):
        return _e(v.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC"))
    if isinstance(v, float):
        return _e(f"{v:.1f}")
    if isinstance(v, list | tuple):
        return _e(", ".join(map(str, v)))
    return _e(v)


def _duration(seconds: float) -> str:
    if seconds >= 86400:
        return f"{seconds / 86400:.1f} days"
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 60:.0f} min"


def _pct(part: int, whole: int) -> str:
    return f"{part / whole * 100:.0f}%" if whole else "–"


def _section(anchor: str, title: str, intro: str, content: str) -> str:
    return (f'<section id="{anchor}"><h2>{_e(title)}</h2><p class="intro">{intro}</p>{content}</section>')


def _empty(text: str) -> str:
    return f'<p class="empty">{_e(text)}</p>'


CSS = """
:root { --fg: #1d1d1f; --muted: #6b6b70; --line: #d8d8dc; --bg: #ffffff; --panel: #f6f6f8; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
       color: var(--fg); background: var(--bg); }
header, main, footer { max-width: 1040px; margin: 0 auto; padding: 0 24px; }
header { padding-top: 24px; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 20px; margin: 36px 0 4px; padding-top: 12px; border-top: 1px solid var(--line); }
.sub, .intro, .note, footer { color: var(--muted); }
.intro { margin: 0 0 10px; max-width: 860px; }
nav { margin: 12px 0 0; display: flex; flex-wrap: wrap; gap: 4px 14px; font-size: 14px; }
nav a { color: #0060a0; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(150px, 1fr)); gap: 10px; margin-top: 18px; }
.card { background: var(--panel); border-radius: 8px; padding: 10px 12px; }
.card b { display: block; font-size: 24px; }
.card span { color: var(--muted); font-size: 13px; }
.card.alert { background: #fbe9e0; }
svg.chart { width: 100%; height: auto; display: block; margin: 6px 0; }
svg.chart text { fill: #333; font-family: system-ui, "DejaVu Sans", sans-serif; }
svg.chart text.value { fill: #555; font-size: 11px; }
svg.chart .grid { stroke: #e4e4e8; stroke-width: 1; }
svg.chart .axis { stroke: #777; stroke-width: 1; }
details { margin: 4px 0 8px; }
summary { cursor: pointer; color: #0060a0; font-size: 14px; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; font-size: 13px; margin: 8px 0; }
th, td { border-bottom: 1px solid var(--line); padding: 4px 10px 4px 0; text-align: left; vertical-align: top; }
th { font-weight: 600; }
td.num, th.num { text-align: right; }
.muted { color: var(--muted); }
.empty { background: var(--panel); border-radius: 8px; padding: 14px; color: var(--muted); }
.badge { display: inline-block; padding: 0 6px; border-radius: 4px; font-size: 12px; background: #fbe9e0; color: #8a2c00; }
.badge.recent { background: #eef3f8; color: #234; }
footer { margin: 40px auto 24px; font-size: 13px; }
"""


def render_html(data: dict[str, Any], *, warehouse: str, generated_at: datetime) -> str:
    from pipeline import __version__

    ov = data["overview"]
    charts: list[str] = []

    # -- articles per source per day
    axis, per_day, older = data["per_day"]
    if axis:
        colours = {name: (OTHER if name == "other" else PALETTE[i % len(PALETTE)])
                   for i, (name, _) in enumerate(per_day)}
        series = [Series(n, colours[n], [float(v) for v in vals]) for n, vals in per_day]
        chart = stacked_columns("per-day", "Articles per source per day", [d.strftime("%b %d") for d in axis], series,
                                "articles")
        table = _table(["day"] + [n for n, _ in per_day] + ["total"],
                       [[d.isoformat()] + [vals[i] for _, vals in per_day] + [sum(v[i] for _, v in per_day)]
                        for i, d in enumerate(axis)])
        note = f"<p class='note'>{older} older articles are outside this window.</p>" if older else ""
        content = chart + note + table
    else:
        content = _empty("No articles yet.")
    charts.append(_section("per-day", "Articles per source per day",
                           "Articles stored per publication day (UTC; the first-seen day when the page gives no date), "
                           f"one colour per feed; the last {data['days']} days with data. Sources beyond "
                           f"{MAX_SERIES - 1} are summed as “other”.", content))

    # -- duplicate and syndication rates
    rates = data["rates"]
    if rates:
        labels = [r["source"] for r in rates]
        dup = [r["duplicates"] / r["with_text"] if r["with_text"] else 0.0 for r in rates]
        syn = [r["syndicated"] / r["with_text"] if r["with_text"] else 0.0 for r in rates]
        chart = hbars("rates", "Duplicate and syndication rates per source", labels,
                      [Series("duplicate rate", "#D55E00", dup), Series("syndication rate", "#0072B2", syn)],
                      percent=True, x_label="share of the source's articles with text",
                      notes=[f"{r['with_text']} with text" for r in rates])
        table = _table(["source", "articles", "with text", "duplicates", "duplicate rate", "in multi-outlet stories",
                        "syndication rate", "credit an origin"],
                       [[r["source"], r["articles"], r["with_text"], r["duplicates"], _pct(r["duplicates"], r["with_text"]),
                         r["syndicated"], _pct(r["syndicated"], r["with_text"]), r["credited"]] for r in rates])
        content = chart + table
    else:
        content = _empty("No articles yet.")
    charts.append(_section("rates", "Duplicate and syndication rates per source",
                           "<b>Duplicate rate</b>: share of a source's articles that copy a story stored earlier (exact "
                           "or near-duplicate text). <b>Syndication rate</b>: share that belong to a story carried by "
                           "more than one outlet, the original included. A wire service has a high syndication rate and "
                           "a low duplicate rate; an aggregator has both high.", content))

    # -- extraction status mix
    mix = data["mix"]
    if mix:
        sources = sorted({r["source"] for r in mix})
        statuses = [s for s in STATUS_COLOURS if any(r["status"] == s for r in mix)]
        statuses += sorted({r["status"] for r in mix} - set(statuses))
        counts = {(r["source"], r["status"]): r["n"] for r in mix}
        labels = ["all sources", *sources]
        series = []
        for st in statuses:
            vals = [float(sum(counts.get((s, st), 0) for s in sources))] + [float(counts.get((s, st), 0)) for s in sources]
            series.append(Series(st, STATUS_COLOURS.get(st, OTHER), vals))
        totals = [int(sum(s.values[i] for s in series)) for i in range(len(labels))]
        chart = hbars("extraction", "Extraction status mix", labels, series, stacked=True, percent=True,
                      x_label="share of stored articles", notes=[f"{t} articles" for t in totals])
        table = _table(["source", *statuses, "total"],
                       [[lab, *[int(s.values[i]) for s in series], totals[i]] for i, lab in enumerate(labels)])
        content = chart + table
    else:
        content = _empty("No articles yet.")
    charts.append(_section("extraction", "Extraction status mix",
                           "What extraction made of each stored item: <b>ok</b> is an article body; <b>no_article</b>, "
                           "<b>too_short</b>, <b>consent_wall</b>, <b>paywalled</b>, <b>not_html</b> keep the feed's "
                           "title and summary; <b>fetch_failed</b> pages were given up after their retries.", content))

    # -- fetch outcomes and latency per host
    hosts = data["hosts"]
    if hosts:
        shown = hosts[:MAX_ROWS]
        outcomes = [o for o in OUTCOME_COLOURS if any(o in h["outcomes"] for h in hosts)]
        outcomes += sorted({o for h in hosts for o in h["outcomes"]} - set(outcomes))
        series = [Series(o, OUTCOME_COLOURS.get(o, OTHER), [float(h["outcomes"].get(o, 0)) for h in shown])
                  for o in outcomes]
        chart = hbars("fetch-outcomes", "Fetch outcomes per host", [h["host"] for h in shown], series, stacked=True,
                      percent=True, x_label="share of requests (feeds, pages, robots.txt)",
                      notes=[f"{h['requests']} requests" for h in shown])
        lat_rows = [h for h in shown if h["p95_ms"] is not None]
        lat = latency_chart("latency", "Fetch latency per host", lat_rows) if lat_rows else ""
        table = _table(["host", "requests", "feeds", "pages", *outcomes, "p50 ms", "p95 ms", "max ms"],
                       [[h["host"], h["requests"], h["feed_requests"], h["page_requests"],
                         *[h["outcomes"].get(o, 0) for o in outcomes],
                         None if h["p50_ms"] is None else round(h["p50_ms"]),
                         None if h["p95_ms"] is None else round(h["p95_ms"]), h["max_ms"]] for h in hosts])
        more = (f"<p class='note'>The {MAX_ROWS} busiest of {len(hosts)} hosts are drawn; the table has all.</p>"
                if len(hosts) > MAX_ROWS else "")
        content = chart + lat + more + table
    else:
        content = _empty("No fetches recorded yet.")
    charts.append(_section("fetch", "Fetch outcomes and latency per host",
                           "Every HTTP request of committed runs, by outcome (<b>not_modified</b> is a healthy "
                           "conditional GET; <b>deferred</b> was not attempted because the host asked us to wait), and "
                           "its duration: the median and the 95th percentile.", content))

    # -- failing feeds
    failing = data["failing"]
    over = [f for f in failing if f["over_a_day"]]
    if failing:
        rows = [[f["source"], f["url"],
                 '<span class="badge">over a day</span>' if f["over_a_day"] else '<span class="badge recent">recent</span>',
                 f["failing_since"], _duration(f["failing_for_s"]), f["failed_attempts"], f["last_outcome"],
                 f["last_status"], f["last_error"], f["last_success"]] for f in failing]
        cols = ["feed", "url", "", "failing since", "for", "failed attempts", "last outcome", "HTTP", "last error",
                "last success"]
        head = "".join(f"<th>{_e(c)}</th>" for c in cols)
        body = "".join("<tr>" + "".join(f"<td>{v if k == 2 else _cell(v)}</td>" for k, v in enumerate(r)) + "</tr>"
                       for r in rows)
        lead = (f"<p><b>{len(over)}</b> feed{'s' if len(over) != 1 else ''} failing for more than a day"
                f"{', ' + str(len(failing) - len(over)) + ' more failing more recently' if len(failing) > len(over) else ''}."
                "</p>")
        content = lead + f"<div class='scroll'><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>"
    else:
        content = _empty("No feed is failing: every feed's latest fetch succeeded or was not modified.")
    charts.append(_section("failing", "Feeds failing for more than a day",
                           "Feeds whose latest fetch failed, with the first failure after their last success. Those "
                           "failing for more than a day need a look: open the URL, then fix or disable the feed in the "
                           "config. Failures of shorter standing are listed too, marked recent.", content))

    # -- top stories
    stories = data["stories"]
    if stories:
        shown = stories[:MAX_ROWS]
        series = [Series("copies", "#0072B2", [float(s["copies"]) for s in shown])]
        chart = hbars("top-stories", "Top stories by number of copies", [s["title"] or s["cluster_id"] for s in shown],
                      series, x_label="copies (the original included)", label_w=360, label_chars=46,
                      notes=[f"{s['sources']} outlet{'s' if s['sources'] != 1 else ''}" for s in shown])
        table = _table(["story (canonical title)", "copies", "outlets", "origin", "first published", "cluster id"],
                       [[s["title"], s["copies"], s["outlets"], s["origin"], s["first_published_at"], s["cluster_id"]]
                        for s in stories], open_=True, caption="Stories and their outlets")
        content = chart + table
    else:
        content = _empty("No story has more than one copy yet.")
    charts.append(_section("stories", "Top stories by number of copies",
                           "Stories carried by several outlets (syndicated wire copies, rewrites, aggregator reposts), "
                           "by number of stored copies; the title is the canonical copy's (the earliest, or the outlet "
                           "the copies credit).", content))

    # -- runs
    runs = data["runs"]
    if runs:
        content = _table(["run", "started", "committed", "trigger", "feeds", "articles written", "duplicates",
                          "feeds failed", "pages failed", "retries pending"],
                         [[r["run_id"], r["started_at"], r["committed_at"], r["trigger"], r["feeds"], r["articles_written"],
                           r["duplicates"], r["feeds_failed"], r["pages_failed"], r["retries_pending"]] for r in runs],
                         open_=True, caption="The last committed run" if len(runs) == 1 else
                         f"The last {len(runs)} committed runs")
    else:
        content = _empty("No committed run yet.")
    charts.append(_section("runs", "Recent runs", "Committed runs, newest first.", content))

    cards = [
        (ov["articles"], "articles stored", False),
        (ov["with_text"], "with article text", False),
        (ov["stories"], "distinct stories", False),
        (ov["sources"], "sources with articles", False),
        (_pct(ov["duplicates"], ov["with_text"]), "duplicate rate overall", False),
        (ov["runs"], "committed runs", False),
        (ov["fetches"], f"requests to {ov['hosts']} host{'s' if ov['hosts'] != 1 else ''}", False),
        (len(over), "feeds failing > 1 day", bool(over)),
    ]
    card_html = "".join(f"<div class='card{' alert' if alert else ''}'><b>{_e(v)}</b><span>{_e(label)}</span></div>"
                        for v, label, alert in cards)
    span = ""
    if ov["first_run"] is not None:
        span = f" · runs from {_cell(ov['first_run'])} to {_cell(ov['last_run'])}"
    nav = "".join(f'<a href="#{a}">{_e(t)}</a>' for a, t in (
        ("per-day", "Articles per day"), ("rates", "Duplicates & syndication"), ("extraction", "Extraction"),
        ("fetch", "Fetch outcomes & latency"), ("failing", "Failing feeds"), ("stories", "Top stories"),
        ("runs", "Runs")))
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<meta name="generator" content="newsingest {_e(__version__)}">
<title>newsingest report · {_e(Path(warehouse).name or warehouse)}</title>
<style>{CSS}</style>
</head>
<body>
<header>
<h1>Ingestion report</h1>
<p class="sub">warehouse <code>{_e(warehouse)}</code> · generated {_cell(generated_at)}{span}</p>
<nav>{nav}</nav>
<div class="cards">{card_html}</div>
</header>
<main>
{"".join(charts)}
</main>
<footer>Generated by newsingest {_e(__version__)} from the DuckDB views of the warehouse (committed runs only).
Self-contained: this page loads nothing from the network. Colours: Okabe–Ito palette.</footer>
</body>
</html>
"""


def gather(warehouse: str | Path, *, now: datetime | None = None, days: int = 30) -> dict[str, Any]:
    from pipeline.views import connect

    con = connect(warehouse)
    try:
        return {
            "overview": overview(con),
            "per_day": articles_per_day(con, days),
            "days": days,
            "rates": source_rates(con),
            "mix": extraction_mix(con),
            "hosts": fetch_by_host(con),
            "failing": failing_feeds(con, now),
            "stories": top_stories(con),
            "runs": recent_runs(con),
        }
    finally:
        con.close()


def write_report(warehouse: str | Path, out_path: str | Path, *, now: datetime | None = None,
                 days: int = 30) -> dict[str, Any]:
    """Write the report page atomically; return small counts (for the CLI summary or a DAG task's XCom)."""
    from pipeline.warehouse import Warehouse, atomic_write_bytes

    root = Warehouse(warehouse, create=False).root
    now = now or datetime.now(UTC)
    data = gather(root, now=now, days=days)
    page = render_html(data, warehouse=str(root), generated_at=now)
    out = Path(out_path)
    atomic_write_bytes(out, page.encode("utf-8"))
    ov = data["overview"]
    return {
        "path": str(out.absolute()),
        "bytes": len(page.encode("utf-8")),
        "articles": int(ov["articles"]),
        "stories": int(ov["stories"]),
        "sources": int(ov["sources"]),
        "runs": int(ov["runs"]),
        "charts": page.count('<svg class="chart"'),
        "feeds_failing": len(data["failing"]),
        "feeds_failing_over_a_day": sum(1 for f in data["failing"] if f["over_a_day"]),
    }


# ---------------------------------------------------------------------------------------------- CLI


def cmd_report(args: argparse.Namespace) -> int:
    import json

    from pipeline.cli import _die, warehouse_problem
    from pipeline.warehouse import WarehouseError

    problem = warehouse_problem(args.warehouse, writable=False)
    if problem:
        return _die(problem)
    out_dir = Path(args.out).absolute().parent
    if not out_dir.is_dir():
        return _die(f"cannot write {args.out}: directory {out_dir} does not exist; create it or choose another --out")
    now = datetime.fromisoformat(args.now) if args.now else None
    if now is not None and now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    try:
        result = write_report(args.warehouse, args.out, now=now, days=args.days)
    except WarehouseError as exc:
        return _die(str(exc))
    except OSError as exc:
        return _die(f"cannot write the report {args.out}: {exc.strerror or exc}; check the directory's permissions")
    if args.json:
        print(json.dumps(result))
    else:
        print(f"wrote {result['path']} ({result['bytes'] // 1024} KiB, {result['charts']} charts): "
              f"{result['articles']} articles, {result['stories']} stories from {result['sources']} sources in "
              f"{result['runs']} runs; {result['feeds_failing_over_a_day']} feeds failing for more than a day")
    return 0


def register(subparsers: Any) -> None:
    from pipeline.settings import default_warehouse

    sp = subparsers.add_parser("report", help="one self-contained HTML page with charts of ingestion health",
                               description="Write an HTML report (inline SVG charts, no network needed to view it): "
                               "articles per source per day, duplicate and syndication rates, extraction status mix, "
                               "fetch outcomes and latency per host, failing feeds, top stories by copies, runs.")
    sp.add_argument("--warehouse", default=default_warehouse(),
                    help="warehouse directory (default: $NEWSINGEST_WAREHOUSE or ./warehouse)")
    sp.add_argument("--out", default="report.html", help="the HTML file to write (default report.html)")
    sp.add_argument("--days", type=int, default=30, help="days shown in the articles-per-day chart (default 30)")
    sp.add_argument("--now", help=argparse.SUPPRESS)  # reproducible reports in tests: ISO time of "now"
    sp.add_argument("--json", action="store_true", help="print the counts as JSON")
    sp.set_defaults(func=cmd_report)
