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

from __future__ import absolute_import, division, print_function

__metaclass__ = type

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
    parts = ['<figure class="chart" id="%s"><figcaption>%s</figcaption>' % (_esc(chart_id), _esc(title)),
             '<svg viewBox="0 0 %d %d" role="img" aria-label="%s">' % (width, height, _esc(title))]
    for tick in range(5):
        value = top_value * tick / 4.0
        y = top + plot_h - plot_h * tick / 4.0
        parts.append('<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" class="grid"/>' % (left, y, width - 12, y))
        parts.append('<text x="%d" y="%.1f" class="tick" text-anchor="end">%s</text>' % (left - 6, y + 4, _esc(unit(value))))
    if not bars:
        parts.append('<text x="%d" y="%d" class="empty">no data yet</text>' % (left + 12, top + plot_h // 2))
    slot = plot_w / float(max(len(bars), 1))
    bar_w = max(min(slot * 0.7, 48), 2)
    for index, (label, segments) in enumerate(bars):
        x = left + slot * index + (slot - bar_w) / 2.0
        y = top + plot_h
        for value, colour, tooltip in segments:
            h = plot_h * min(value, top_value) / float(top_value)
            y -= h
            parts.append('<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s</title></rect>'
                         % (x, y, bar_w, h, colour, _esc(tooltip)))
        if len(bars) <= 12 or index % max(len(bars) // 12, 1) == 0:
            parts.append('<text x="%.1f" y="%d" class="tick" text-anchor="middle">%s</text>'
                         % (x + bar_w / 2.0, height - bottom + 16, _esc(label)))
    parts.append("</svg></figure>")
    return "".join(parts)


def _minutes(seconds):
    return human_duration(seconds)


def _tile(key, label, value, text, hint):
    return ('<div class="tile" data-metric="%s" data-value="%s"><div class="label">%s</div>'
            '<div class="value">%s</div><div class="hint">%s</div></div>'
            % (_esc(key), _esc(_raw(value)), _esc(label), _esc(text), _esc(hint)))


def _tiles(report):
    ci = report["ci"]
    return "".join([
        _tile("deployment_frequency_per_day", "Deployment frequency", report["deployment_frequency_per_day"],
              "%.3f / day" % report["deployment_frequency_per_day"],
              "%d successful in %.1f days" % (report["successful_deployments"], report["window_days"])),
        _tile("lead_time_for_change_seconds", "Lead time for change", report["lead_time_for_change_seconds"],
              human_duration(report["lead_time_for_change_seconds"]), "median, commit to deployed"),
        _tile("change_failure_rate", "Change failure rate", report["change_failure_rate"],
              "%.1f%%" % (report["change_failure_rate"] * 100),
              "%d of %d deployments failed" % (report["failed_deployments"], report["deployments"])),
        _tile("time_to_restore_seconds", "Time to restore", report["time_to_restore_seconds"],
              human_duration(report["time_to_restore_seconds"]),
              "mean" + ("; %d not restored" % report["unrestored_failures"] if report["unrestored_failures"] else "")),
        _tile("ci_pass_rate", "CI runs", ci["pass_rate"],
              "%d / %d passed" % (ci["passed"], ci["runs"]) if ci["runs"] else "none yet",
              "median %s; last %s" % (human_duration(ci["median_duration_seconds"]), ci["last_result"] or "n/a")),
    ])


def _environments(events):
    envs = OrderedDict()
    for event in events:
        if event["type"] != "ci":
            envs.setdefault(event.get("environment") or "unnamed", []).append(event)
    rows = []
    for name, env_events in envs.items():
        r = compute(env_events)
        rows.append('<tr data-environment="%s"><td>%s</td><td>%d</td><td>%.3f / day</td><td>%s</td><td>%.1f%%</td>'
                    '<td>%s</td><td>%d</td></tr>'
                    % (_esc(name), _esc(name), r["deployments"], r["deployment_frequency_per_day"],
                       _esc(human_duration(r["lead_time_for_change_seconds"])), r["change_failure_rate"] * 100,
                       _esc(human_duration(r["time_to_restore_seconds"])), r["rollbacks"]))
    if not rows:
        rows.append('<tr><td colspan="7">no deployments yet</td></tr>')
    return ('<table id="environments"><thead><tr><th>Environment</th><th>Deployments</th><th>Frequency</th>'
            '<th>Lead time (median)</th><th>Change failure rate</th><th>Time to restore (mean)</th>'
            '<th>Rollbacks</th></tr></thead><tbody>%s</tbody></table>' % "".join(rows))


def _charts(events):
    deploy_days = _by_day([e for e in events if e["type"] == "deploy"])
    deployments, lead, cfr = [], [], []
    for day, day_events in deploy_days.items():
        ok = [e for e in day_events if e["result"] == "success"]
        bad = [e for e in day_events if e["result"] == "failure"]
        label = day[5:]
        deployments.append((label, [(len(ok), GREEN, "%s: %d successful" % (day, len(ok))),
                                    (len(bad), RED, "%s: %d failed" % (day, len(bad)))]))
        leads = [(e["finished_at"] - e["commit_time"]).total_seconds() for e in ok if e.get("commit_time")]
        day_median = median(leads)
        lead.append((label, [(day_median or 0, BLUE, "%s: median lead time %s" % (day, human_duration(day_median)))]))
        rate = len(bad) / float(len(day_events))
        cfr.append((label, [(rate, RED if bad else GREY, "%s: %.0f%% of %d failed" % (day, rate * 100, len(day_events)))]))
    restore = []
    restores = restorations(events)[-MAX_DAYS:]
    # A failure never restored stands as a full-height pale bar: the longest wait there is.
    ceiling = max([seconds for dummy, seconds in restores if seconds is not None] or [60])
    for failure, seconds in restores:
        stamp = failure["started_at"].strftime("%m-%d %H:%M")
        if seconds is None:
            restore.append((stamp, [(ceiling, PALE_RED, "%s: not restored" % stamp)]))
        else:
            restore.append((stamp, [(seconds, BLUE, "%s: restored in %s" % (stamp, human_duration(seconds)))]))
    runs = [e for e in events if e["type"] == "ci"][-MAX_DAYS:]
    ci = [(e["started_at"].strftime("%m-%d %H:%M"),
           [((e["finished_at"] - e["started_at"]).total_seconds(), GREEN if e["result"] == "success" else RED,
             "%s %s: %s in %s" % (e["started_at"].strftime("%Y-%m-%d %H:%M"), (e.get("commit") or "")[:10],
                                  e["result"], human_duration((e["finished_at"] - e["started_at"]).total_seconds())))])
          for e in runs]
    return "".join([
        _bar_chart("chart-deployments", "Deployments per day (green: successful, red: failed)", deployments,
                   lambda v: "%g" % round(v, 1)),
        _bar_chart("chart-lead-time", "Lead time for change, median per day", lead, _minutes),
        _bar_chart("chart-failure-rate", "Change failure rate per day", cfr, lambda v: "%.0f%%" % (v * 100), y_max=1.0),
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
    window = ("%s to %s" % (report["window_start"][:16].replace("T", " "), report["window_end"][:16].replace("T", " "))
              if report["window_start"] else "no deployments yet")
    data = json.dumps(report, sort_keys=True).replace("</", "<\\/")
    return "".join([
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">',
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; style-src \'unsafe-inline\'">',
        "<title>%s</title><style>%s</style></head><body>" % (_esc(title), STYLE),
        "<h1>%s</h1>" % _esc(title),
        '<div class="meta">Window: %s UTC &middot; %d deployments, %d rollbacks, %d CI runs%s</div>' % (
            _esc(window), report["deployments"], report["rollbacks"], report["ci"]["runs"],
            " &middot; generated %s" % _esc(generated_at) if generated_at else ""),
        '<section class="tiles" id="metrics">%s</section>' % _tiles(report),
        "<h2>Per environment</h2>", _environments(events),
        "<h2>History (last %d days with events)</h2>" % MAX_DAYS,
        '<section class="charts">%s</section>' % _charts(events),
        '<script type="application/json" id="dora-report">%s</script>' % data,
        "</body></html>\n",
    ])
