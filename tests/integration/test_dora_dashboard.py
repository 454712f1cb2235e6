"""The DORA dashboard as a person sees it: rendered by headless Chromium from the file.

The page is written by `scripts/dora-report --html` from deployment, rollback and
CI-run events; Chromium loads it, the rendered DOM must show the four metrics with
the values of the JSON report computed from the same events, and a screenshot is
kept under out/ (the hosted workflow uploads it with the page).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "collections" / "ansible_collections" / "velocity" / "platform" / "tests" / "unit" / "plugins" / "module_utils"))
from test_dora import SERIES  # noqa: E402

FOUR = ("deployment_frequency_per_day", "lead_time_for_change_seconds", "change_failure_rate", "time_to_restore_seconds")
CI_RUNS = [
    {"type": "ci", "result": "success", "commit": "a1", "started_at": "2026-01-01T07:00:00Z", "finished_at": "2026-01-01T07:14:00Z"},
    {"type": "ci", "result": "failure", "commit": "b2", "started_at": "2026-01-02T09:00:00Z", "finished_at": "2026-01-02T09:03:00Z"},
    {"type": "ci", "result": "success", "commit": "c3", "started_at": "2026-01-02T10:30:00Z", "finished_at": "2026-01-02T10:45:00Z"},
]


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    pytest.fail("headless Chromium is not installed: scripts/setup installs Debian's chromium")


def headless(*args: str) -> subprocess.CompletedProcess:
    cmd = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
           "--user-data-dir=" + str(ROOT / "out" / ".chromium-profile"), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


class Dom(HTMLParser):
    """What the rendered DOM shows: the metric tiles (raw value and visible text) and the charts' bars."""

    def __init__(self) -> None:
        super().__init__()
        self.tiles: dict[str, dict] = {}
        self.bars: dict[str, int] = {}
        self.env_rows: list[str] = []
        self._tile: str | None = None
        self._in_value = False
        self._chart: str | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "data-metric" in a:
            self._tile = a["data-metric"]
            self.tiles[self._tile] = {"raw": json.loads(a["data-value"]), "text": ""}
        elif tag == "div" and a.get("class") == "value" and self._tile:
            self._in_value = True
        elif tag == "figure":
            self._chart = a.get("id")
            self.bars[self._chart] = 0
        elif tag == "rect" and self._chart:
            self.bars[self._chart] += 1
        elif tag == "tr" and "data-environment" in a:
            self.env_rows.append(a["data-environment"])

    def handle_endtag(self, tag):
        if tag == "div" and self._in_value:
            self._in_value = False
            self._tile = None
        elif tag == "figure":
            self._chart = None

    def handle_data(self, data):
        if self._in_value and self._tile:
            self.tiles[self._tile]["text"] += data


def test_dashboard_in_chromium_shows_the_reports_metrics(tmp_path):
    events = [dict(e, environment="production") for e in SERIES] + CI_RUNS
    events[0]["environment"] = "staging"
    sink = tmp_path / "events.jsonl"
    sink.write_text("".join(json.dumps(e) + "\n" for e in events))
    page = tmp_path / "dora.html"
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "dora-report"), "--json", "--html", str(page), str(sink)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)

    dumped = headless("--dump-dom", page.as_uri())
    assert dumped.returncode == 0, dumped.stderr[-2000:]
    dom = Dom()
    dom.feed(dumped.stdout)

    for key in FOUR:
        assert dom.tiles[key]["raw"] == report[key], key
    assert dom.tiles["deployment_frequency_per_day"]["text"] == "%.3f / day" % report["deployment_frequency_per_day"]
    assert dom.tiles["change_failure_rate"]["text"] == "%.1f%%" % (report["change_failure_rate"] * 100)
    assert dom.tiles["lead_time_for_change_seconds"]["text"] == "%.1f min" % (report["lead_time_for_change_seconds"] / 60)
    assert dom.tiles["time_to_restore_seconds"]["text"] == "%.1f min" % (report["time_to_restore_seconds"] / 60)
    assert dom.tiles["ci_pass_rate"]["raw"] == report["ci"]["pass_rate"] == round(2 / 3, 4)
    assert dom.tiles["ci_pass_rate"]["text"] == "2 / 3 passed"
    assert dom.env_rows == ["staging", "production"]
    # One bar segment per day and result (5 days, one with a success and a failure), one per failed deploy, one per CI run.
    assert dom.bars == {"chart-deployments": 10, "chart-lead-time": 5, "chart-failure-rate": 5, "chart-restore": 3,
                        "chart-ci": 3}

    shot = ROOT / "out" / "dora-dashboard.png"
    shot.parent.mkdir(exist_ok=True)
    taken = headless("--window-size=1280,1500", "--screenshot=" + str(shot), page.as_uri())
    assert taken.returncode == 0, taken.stderr[-2000:]
    data = shot.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 20_000
