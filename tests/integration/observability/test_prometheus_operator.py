"""deploy/prometheus/operator.yml (PodMonitor + PrometheusRule) for Prometheus Operator clusters.

No CRD schema is available offline (no PyPI package ships the kube-prometheus openAPI
schemas; cloudcoil-models-prometheus-operator has generated models only), so the check is a
JSON schema written here for the fields these objects use, with the types, patterns and
enums of the monitoring.coreos.com/v1 CRDs, and unknown fields refused (the API server's
strict field validation would refuse them too). Then: the PodMonitor selects the rendered
Deployment's pods on a port they name, and the PrometheusRule carries the rules file unchanged.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
OPERATOR = ROOT / "deploy" / "prometheus" / "operator.yml"
RULES = ROOT / "deploy" / "prometheus" / "velocity-rules.yml"
RENDERED = ROOT / "deploy" / "k8-deployments.yaml"

# CRD: Duration and label-name patterns as monitoring.coreos.com/v1 declares them.
DURATION = r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"
LABEL_NAME = r"^[a-zA-Z_][a-zA-Z0-9_]*$"
STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
METADATA = {"type": "object", "required": ["name", "namespace"], "additionalProperties": False,
            "properties": {"name": {"type": "string"}, "namespace": {"type": "string"}, "labels": STRING_MAP}}
RELABEL = {"type": "object", "additionalProperties": False, "properties": {
    "sourceLabels": {"type": "array", "items": {"type": "string", "pattern": LABEL_NAME}},
    "targetLabel": {"type": "string"}, "regex": {"type": "string"}, "replacement": {"type": "string"},
    "separator": {"type": "string"},
    "action": {"enum": ["replace", "Replace", "keep", "Keep", "drop", "Drop", "hashmod", "HashMod", "labelmap",
                        "LabelMap", "labeldrop", "LabelDrop", "labelkeep", "LabelKeep", "lowercase", "Lowercase",
                        "uppercase", "Uppercase", "keepequal", "KeepEqual", "dropequal", "DropEqual"]}}}
POD_MONITOR = {
    "type": "object", "required": ["apiVersion", "kind", "metadata", "spec"], "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"}, "kind": {"const": "PodMonitor"}, "metadata": METADATA,
        "spec": {"type": "object", "required": ["selector"], "additionalProperties": False, "properties": {
            "selector": {"type": "object", "additionalProperties": False, "properties": {"matchLabels": STRING_MAP}},
            "namespaceSelector": {"type": "object", "additionalProperties": False, "properties": {
                "any": {"type": "boolean"}, "matchNames": {"type": "array", "items": {"type": "string"}}}},
            "podMetricsEndpoints": {"type": "array", "minItems": 1, "items": {
                "type": "object", "additionalProperties": False, "properties": {
                    "port": {"type": "string", "minLength": 1}, "path": {"type": "string"},
                    "interval": {"type": "string", "pattern": DURATION},
                    "scrapeTimeout": {"type": "string", "pattern": DURATION},
                    "relabelings": {"type": "array", "items": RELABEL}}}}}}}}
RULE = {"type": "object", "required": ["expr"], "additionalProperties": False, "oneOf": [
            {"required": ["record"]}, {"required": ["alert"]}], "properties": {
    "record": {"type": "string"}, "alert": {"type": "string"}, "expr": {"type": ["string", "integer"]},
    "for": {"type": "string", "pattern": DURATION}, "keep_firing_for": {"type": "string", "pattern": DURATION},
    "labels": STRING_MAP, "annotations": STRING_MAP}}
PROMETHEUS_RULE = {
    "type": "object", "required": ["apiVersion", "kind", "metadata", "spec"], "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"}, "kind": {"const": "PrometheusRule"}, "metadata": METADATA,
        "spec": {"type": "object", "additionalProperties": False, "properties": {"groups": {"type": "array", "items": {
            "type": "object", "required": ["name"], "additionalProperties": False, "properties": {
                "name": {"type": "string", "minLength": 1}, "interval": {"type": "string", "pattern": DURATION},
                "rules": {"type": "array", "items": RULE}}}}}}}}
SCHEMAS = {"PodMonitor": POD_MONITOR, "PrometheusRule": PROMETHEUS_RULE}


@pytest.fixture(scope="module")
def objects() -> dict[str, dict]:
    docs = [d for d in yaml.safe_load_all(OPERATOR.read_text()) if d]
    return {d["kind"]: d for d in docs}


def test_objects_match_the_crd_fields_they_use(objects):
    assert set(objects) == set(SCHEMAS)
    for kind, doc in objects.items():
        jsonschema.validate(doc, SCHEMAS[kind])


@pytest.mark.parametrize("change", [
    lambda d: d["spec"]["podMetricsEndpoints"][0].update(interval="15 seconds"),
    lambda d: d["spec"]["podMetricsEndpoints"][0].update(targetPort="http"),  # a misspelt field
    lambda d: d["spec"].update(selector={"matchLabel": {"a": "b"}}),
])
def test_the_schema_refuses_what_the_crd_refuses(objects, change):
    doc = yaml.safe_load(yaml.safe_dump(objects["PodMonitor"]))
    change(doc)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, POD_MONITOR)


def test_pod_monitor_selects_the_deployments_pods_on_a_named_port(objects):
    monitor = objects["PodMonitor"]
    rendered = [d for d in yaml.safe_load_all(RENDERED.read_text()) if d]
    deployment = next(d for d in rendered if d["kind"] == "Deployment")
    pod = deployment["spec"]["template"]
    assert monitor["metadata"]["namespace"] == deployment["metadata"]["namespace"]
    assert monitor["spec"]["namespaceSelector"]["matchNames"] == [deployment["metadata"]["namespace"]]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    ports = {p["name"] for c in pod["spec"]["containers"] for p in c.get("ports", [])}
    for endpoint in monitor["spec"]["podMetricsEndpoints"]:
        assert endpoint["port"] in ports
        assert endpoint["path"] == pod["metadata"]["annotations"]["prometheus.io/path"]


def test_prometheus_rule_carries_the_rules_file_unchanged(objects, tmp_path, prometheus):
    groups = objects["PrometheusRule"]["spec"]["groups"]
    assert groups == yaml.safe_load(RULES.read_text())["groups"]
    extracted = tmp_path / "rules.yml"
    extracted.write_text(yaml.safe_dump({"groups": groups}))
    assert shutil.which("promtool")
    proc = subprocess.run(["promtool", "check", "rules", str(extracted)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
