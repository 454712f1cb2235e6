"""The service's recording and alerting rules: valid for promtool, their unit tests pass,
and the project's Prometheus has them loaded and healthy."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
RULES = ROOT / "deploy" / "prometheus" / "velocity-rules.yml"
RULE_TESTS = ROOT / "deploy" / "prometheus" / "velocity-rules.test.yml"
NAMES = {"VelocityAppHighErrorRate", "VelocityAppHighLatencyP99", "VelocityAppNotReady", "VelocityAppTargetDown",
         "job:http_requests:rate5m", "job:http_request_errors:ratio_rate5m", "job:http_request_duration_seconds:p99_5m",
         "instance:velocity_readyz_failures:rate5m"}


def _promtool(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["promtool", *args], capture_output=True, text=True, cwd=cwd, timeout=120)


@pytest.fixture(scope="module")
def promtool(prometheus) -> None:
    """promtool comes with Debian's prometheus, which the prometheus fixture installs."""
    assert shutil.which("promtool"), "promtool missing after scripts/services/prometheus.sh start"


def test_rules_pass_promtool_check(promtool):
    proc = _promtool("check", "rules", str(RULES))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS: 8 rules found" in proc.stdout


def test_rule_unit_tests_pass(promtool):
    proc = _promtool("test", "rules", str(RULE_TESTS))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout


def test_rule_unit_tests_catch_a_wrong_threshold(promtool, tmp_path):
    # The same tests against rules whose error-rate threshold is off: they must fail.
    shutil.copy(RULE_TESTS, tmp_path / RULE_TESTS.name)
    (tmp_path / RULES.name).write_text(RULES.read_text().replace("ratio_rate5m > 0.05", "ratio_rate5m > 0.5"))
    proc = _promtool("test", "rules", RULE_TESTS.name, cwd=tmp_path)
    assert proc.returncode != 0
    assert "VelocityAppHighErrorRate" in proc.stdout + proc.stderr


def test_prometheus_has_the_rules_loaded(prometheus):
    groups = prometheus.api("rules")["groups"]
    ours = [g for g in groups if g["file"] == str(RULES)]
    assert {g["name"] for g in ours} == {"velocity-app.recording", "velocity-app.alerts"}
    rules = [r for g in ours for r in g["rules"]]
    assert {r["name"] for r in rules} == NAMES
    assert all(r["health"] in ("ok", "unknown") for r in rules), [(r["name"], r.get("lastError")) for r in rules]


def test_kubernetes_scrape_config_is_valid_apart_from_the_discovery_debian_leaves_out(promtool, tmp_path):
    import yaml

    doc = yaml.safe_load((ROOT / "deploy" / "prometheus" / "kubernetes-sd.yml").read_text())
    job = doc["scrape_configs"][0]
    sd = job.pop("kubernetes_sd_configs")
    assert sd[0]["role"] == "pod" and sd[0]["api_server"] == "https://127.0.0.1:16443"
    assert {"ca_file", "cert_file", "key_file"} <= set(sd[0]["tls_config"])
    # Debian's build refuses the block itself; everything else (relabelling included) must pass.
    refused = tmp_path / "as-shipped.yml"
    refused.write_text(yaml.safe_dump({"scrape_configs": [{**job, "kubernetes_sd_configs": sd}]}))
    proc = _promtool("check", "config", str(refused))
    assert proc.returncode != 0 and "kubernetes_sd_configs not found" in proc.stdout + proc.stderr
    job["file_sd_configs"] = [{"files": [str(tmp_path / "targets.json")]}]
    checked = tmp_path / "prometheus.yml"
    checked.write_text(yaml.safe_dump(doc))
    proc = _promtool("check", "config", str(checked))
    assert proc.returncode == 0, proc.stdout + proc.stderr
