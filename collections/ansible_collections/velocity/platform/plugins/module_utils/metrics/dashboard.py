# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Velocity platform team
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The DORA dashboard: one self-contained HTML page a person can open from a file.

Inline CSS and SVG only: no script, no font, nothing fetched, so it opens the
same from a CI artifact, a mail attachment or an air-gapped laptop. The four
metrics stand at the top as tiles (each tile carries its raw value in
``data-value``, so a test can compare the rendered page with the JSON report);
below them, per environment, and then the history day by day: deployments
(successful and failed), lead time, change failure rate, time to restore for
each failed deploy, and the CI runs with their duration and result.
"""

from __future__ import annotations

import html
import json
from collections import OrderedDict

from ansible_collections.velocity.platform.plugins.module_utils.metrics.dora import (
    compute,
    human_duration,
    median,
    restorations,
)

GREEN, RED, PALE_RED, BLUE, GREY = "#2e7d32", "#c62828", "#ef9a9a", "#1565c0", "#9e9e9e"
MAX_DAYS = 30


def _esc(value):
    return html.escape("" if value is None else str(value), quote=True)


def _raw(value):
    return "null" if value is None else json.dumps(value)


def _day(event):
    return event["started_at"].date().isoformat()


def _by_day(events):
    days = OrderedDict()
    for event in sorted(events, key=lambda e: e["started_at"]):
        days.setdefault(_day(event), []).append(event)
    return OrderedDict(list(days.items())[-MAX_DAYS:])


def _bar_chart(chart_id, title, bars, unit, y_max=None):
    """An SVG bar chart. ``bars``: [(label, [(value, colour, tooltip), ...])], segments stacked."""
    width, height, left, bottom, top = 720, 220, 56, 40, 28
    plot_w, plot_h = width - left - 12, height - bottom - top
    totals = [sum(v for v, dummy, dummy2 in segs) for dummy3, segs in bars]
    top_value = y_max if y_max is not None else max([*totals, 0])
    top_value = top_value or 1
    parts = [f'<figure class="chart" id="{_esc(chart_id)}"><figcaption>{_esc(title)}</figcaption>',
             f'<svg viewBox="0 0 {width} {height}" role="img" aria-label="{_esc(title)}">']
    for tick in range(5):
        value = top_value * tick / 4.0
        y = top + plot_h - plot_h * tick / 4.0
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{width - 12}" y2="{y:.1f}" class="grid"/>')
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" class="tick" text-anchor="end">{_esc(unit(value))}</text>')
    if not bars:
        parts.append(f'<text x="{left + 12}" y="{top + plot_h // 2}" class="empty">no data yet</text>')
    slot = plot_w / float(max(len(bars), 1))
    bar_w = max(min(slot * 0.7, 48), 2)
    for index, (label, segments) in enumerate(bars):
        x = left + slot * index + (slot - bar_w) / 2.0
        y = top + plot_h
        for value, colour, tooltip in segments:
            h = plot_h * min(value, top_value) / float(top_value)
            y -= h
            parts.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}" fill="{colour}">'
                         f'<title>{_esc(tooltip)}</title></rect>')
        if len(bars) <= 12 or index % max(len(bars) // 12, 1) == 0:
            parts.append(f'<text x="{x + bar_w / 2.0:.1f}" y="{height - bottom + 16}" class="tick" '
                         f'text-anchor="middle">{_esc(label)}</text>')
    parts.append("</svg></figure>")
    return "".join(parts)


def _minutes(seconds):
    return human_duration(seconds)


def _tile(key, label, value, text, hint):
    return (f'<div class="tile" data-metric="{_esc(key)}" data-value="{_esc(_raw(value))}">'
            f'<div class="label">{_esc(label)}</div><div class="value">{_esc(text)}</div>'
            f'<div class="hint">{_esc(hint)}</div></div>')


def _tiles(report):
    ci = report["ci"]
    unrestored = report["unrestored_failures"]
    return "".join([
        _tile("deployment_frequency_per_day", "Deployment frequency", report["deployment_frequency_per_day"],
              f"{report['deployment_frequency_per_day']:.3f} / day",
              f"{report['successful_deployments']} successful in {report['window_days']:.1f} days"),
        _tile("lead_time_for_change_seconds", "Lead time for change", report["lead_time_for_change_seconds"],
              human_duration(report["lead_time_for_change_seconds"]), "median, commit to deployed"),
        _tile("change_failure_rate", "Change failure rate", report["change_failure_rate"],
              f"{report['change_failure_rate'] * 100:.1f}%",
              f"{report['failed_deployments']} of {report['deployments']} deployments failed"),
        _tile("time_to_restore_seconds", "Time to restore", report["time_to_restore_seconds"],
              human_duration(report["time_to_restore_seconds"]),
              "mean" + (f"; {unrestored} not restored" if unrestored else "")),
        _tile("ci_pass_rate", "CI runs", ci["pass_rate"],
              f"{ci['passed']} / {ci['runs']} passed" if ci["runs"] else "none yet",
              f"median {human_duration(ci['median_duration_seconds'])}; last {ci['last_result'] or 'n/a'}"),
    ])


def _environments(events):
    envs = OrderedDict()
    for event in events:
        if event["type"] != "ci":
            envs.setdefault(event.get("environment") or "unnamed", []).append(event)
    rows = []
    for name, env_events in envs.items():
        r = compute(env_events)
        lead = _esc(human_duration(r["lead_time_for_change_seconds"]))
        restore = _esc(human_duration(r["time_to_restore_seconds"]))
        rows.append(f'<tr data-environment="{_esc(name)}"><td>{_esc(name)}</td><td>{r["deployments"]}</td>'
                    f'<td>{r["deployment_frequency_per_day"]:.3f} / day</td><td>{lead}</td>'
                    f'<td>{r["change_failure_rate"] * 100:.1f}%</td><td>{restore}</td><td>{r["rollbacks"]}</td></tr>')
    if not rows:
        rows.append('<tr><td colspan="7">no deployments yet</td></tr>')
    body = "".join(rows)
    return ('<table id="environments"><thead><tr><th>Environment</th><th>Deployments</th><th>Frequency</th>'
            '<th>Lead time (median)</th><th>Change failure rate</th><th>Time to restore (mean)</th>'
            f'<th>Rollbacks</th></tr></thead><tbody>{body}</tbody></table>')


def _charts(events):
    deploy_days = _by_day([e for e in events if e["type"] == "deploy"])
    deployments, lead, cfr = [], [], []
    for day, day_events in deploy_days.items():
        ok = [e for e in day_events if e["result"] == "success"]
        bad = [e for e in day_events if e["result"] == "failure"]
        label = day[5:]
        deployments.append((label, [(len(ok), GREEN, f"{day}: {len(ok)} successful"),
                                    (len(bad), RED, f"{day}: {len(bad)} failed")]))
        leads = [(e["finished_at"] - e["commit_time"]).total_seconds() for e in ok if e.get("commit_time")]
        day_median = median(leads)
        lead.append((label, [(day_median or 0, BLUE, f"{day}: median lead time {human_duration(day_median)}")]))
        rate = len(bad) / float(len(day_events))
        cfr.append((label, [(rate, RED if bad else GREY, f"{day}: {rate * 100:.0f}% of {len(day_events)} failed")]))
    restore = []
    restores = restorations(events)[-MAX_DAYS:]
    # A failure never restored stands as a full-height pale bar: the longest wait there is.
    ceiling = max([seconds for dummy, seconds in restores if seconds is not None] or [60])
    for failure, seconds in restores:
        stamp = failure["started_at"].strftime("%m-%d %H:%M")
        if seconds is None:
            restore.append((stamp, [(ceiling, PALE_RED, f"{stamp}: not restored")]))
        else:
            restore.append((stamp, [(seconds, BLUE, f"{stamp}: restored in {human_duration(seconds)}")]))
    runs = [e for e in events if e["type"] == "ci"][-MAX_DAYS:]
    ci = []
    for e in runs:
        took = (e["finished_at"] - e["started_at"]).total_seconds()
        started = e["started_at"].strftime("%Y-%m-%d %H:%M")
        commit = (e.get("commit") or "")[:10]
        ci.append((e["started_at"].strftime("%m-%d %H:%M"),
                   [(took, GREEN if e["result"] == "success" else RED,
                     f"{started} {commit}: {e['result']} in {human_duration(took)}")]))
    return "".join([
        _bar_chart("chart-deployments", "Deployments per day (green: successful, red: failed)", deployments,
                   lambda v: f"{round(v, 1):g}"),
        _bar_chart("chart-lead-time", "Lead time for change, median per day", lead, _minutes),
        _bar_chart("chart-failure-rate", "Change failure rate per day", cfr, lambda v: f"{v * 100:.0f}%", y_max=1.0),
        _bar_chart("chart-restore", "Time to restore, each failed deployment (pale red: not restored)", restore, _minutes),
        _bar_chart("chart-ci", "CI runs: duration (green: passed, red: failed)", ci, _minutes),
    ])


STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;margin:24px;color:#212121;
background:#fafafa;max-width:1200px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:16px;margin:28px 0 8px}.meta{color:#616161;font-size:13px}
.tiles{display:grid;grid-template-columns:repeat(5,1fr);gap:12px;margin-top:16px}
.tile{background:#fff;border:1px solid #e0e0e0;border-radius:8px;padding:12px 14px}
.tile .label{font-size:12px;color:#616161;text-transform:uppercase;letter-spacing:.04em}
.tile .value{font-size:26px;font-weight:600;margin:6px 0}.tile .hint{font-size:12px;color:#757575}
table{border-collapse:collapse;background:#fff;width:100%;font-size:13px}
th,td{border:1px solid #e0e0e0;padding:6px 8px;text-align:left}th{background:#f5f5f5}
.charts{display:grid;grid-template-columns:1fr 1fr;gap:12px}
figure.chart{background:#fff;border:1px solid #e0e0e0;border-radius:8px;margin:0;padding:8px}
figcaption{font-size:13px;font-weight:600;margin:2px 4px 4px}svg{width:100%;height:auto}
.grid{stroke:#eeeeee}.tick{font-size:11px;fill:#757575}.empty{font-size:13px;fill:#9e9e9e}
"""


def render_html(events, report=None, title="Velocity delivery: DORA metrics", generated_at=None):
    """The dashboard page for parsed ``events`` (see dora.read_events) as a string."""
    report = compute(events) if report is None else report
    if report["window_start"]:
        start = report["window_start"][:16].replace("T", " ")
        end = report["window_end"][:16].replace("T", " ")
        window = f"{start} to {end}"
    else:
        window = "no deployments yet"
    data = json.dumps(report, sort_keys=True).replace("</", "<\\/")
    generated = f" &middot; generated {_esc(generated_at)}" if generated_at else ""
    return "".join([
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">',
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; style-src \'unsafe-inline\'">',
        f"<title>{_esc(title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{_esc(title)}</h1>",
        f'<div class="meta">Window: {_esc(window)} UTC &middot; {report["deployments"]} deployments, '
        f'{report["rollbacks"]} rollbacks, {report["ci"]["runs"]} CI runs{generated}</div>',
        f'<section class="tiles" id="metrics">{_tiles(report)}</section>',
        "<h2>Per environment</h2>", _environments(events),
        f"<h2>History (last {MAX_DAYS} days with events)</h2>",
        f'<section class="charts">{_charts(events)}</section>',
        f'<script type="application/json" id="dora-report">{data}</script>',
        "</body></html>\n",
    ])
