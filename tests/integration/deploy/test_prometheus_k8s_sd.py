"""The project's Prometheus finds the pipeline's pods through the Kubernetes API and scrapes them.

scripts/services/prometheus.sh (Prometheus built from the Go module proxy with kubernetes service
discovery) loads the job kubernetes-pods of deploy/prometheus/kubernetes-sd.yml once the local cluster's PKI
exists: role pod against the local API server, kept when annotated prometheus.io/scrape=true with an IP in the
real node's pod CIDR, address from the pod IP and prometheus.io/port. Against the pipeline's own release (Deployment velocity/velocity-app,
2 replicas on the real node): every Ready pod is a healthy target, labelled with its namespace and pod;
requests sent to each pod show up in that pod's http_requests_total, exactly, and in the latency buckets.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.fixtures.k8s import wait_until
from tests.fixtures.observability import http

pytestmark = [pytest.mark.k8s, pytest.mark.slow, pytest.mark.postgres]

ROOT = Path(__file__).resolve().parents[3]
PROMETHEUS_SH = ROOT / "scripts" / "services" / "prometheus.sh"
NS, APP = "velocity", "velocity-app"
SEL = f'job="kubernetes-pods", namespace="{NS}"'


def _ready_pods(k8s_api_client) -> dict[str, str]:
    """name -> pod IP of the release's Ready pods on the real node."""
    from kubernetes import client

    pods = client.CoreV1Api(k8s_api_client).list_namespaced_pod(NS, label_selector=f"app.kubernetes.io/name={APP}")
    return {p.metadata.name: p.status.pod_ip for p in pods.items
            if not p.metadata.deletion_timestamp and p.status.phase == "Running"
            and any(c.type == "Ready" and c.status == "True" for c in p.status.conditions or [])}


def _per_pod(prometheus, promql: str) -> dict[str, float]:
    return {r["metric"]["pod"]: float(r["value"][1]) for r in prometheus.query(promql)}


def test_prometheus_discovers_the_release_pods_and_counts_each_pods_requests(
        pipeline_release, prometheus, k8s_cluster, k8s_api_client):
    # The session's Prometheus may have started before the cluster: write the configuration again (with the
    # kubernetes-pods job now that the cluster's PKI exists) and reload it.
    subprocess.run(["bash", str(PROMETHEUS_SH), "reload"], check=True, timeout=60)
    pods = wait_until("the release's Ready pods", lambda: _ready_pods(k8s_api_client))
    assert len(pods) == pipeline_release["spec"]["replicas"], pods

    seen: dict[str, float] = {}

    def all_up():
        # Only the release's pods: a pod that a rollout just replaced keeps its last `up` (0 while it stopped) in
        # instant queries for the 5-minute lookback when the reload above came before Prometheus marked it stale.
        seen.clear()
        seen.update(_per_pod(prometheus, f"up{{{SEL}}}"))
        current = {pod: value for pod, value in seen.items() if pod in pods}
        return current if set(current) == set(pods) and all(v == 1 for v in current.values()) else None

    try:
        up = wait_until("up == 1 for every pod of the release", all_up)
    except AssertionError:
        targets = [(t["labels"].get("pod"), t["health"], t.get("lastError"))
                   for t in prometheus.api("targets", state="active")["activeTargets"]
                   if t["scrapePool"] == "kubernetes-pods"]
        pytest.fail(f"up{{{SEL}}} is {seen}, expected 1 for each of {sorted(pods)}; "
                    f"kubernetes-pods targets: {targets}")
    assert set(up) == set(pods)
    targets = [t for t in prometheus.api("targets", state="active")["activeTargets"]
               if t["scrapePool"] == "kubernetes-pods" and t["labels"].get("namespace") == NS]
    for target in targets:
        # Discovered from the API server (the __meta_kubernetes_* labels), addressed by pod IP and annotated port.
        assert target["discoveredLabels"]["__meta_kubernetes_pod_node_name"] == "velocity-node"
        assert target["labels"]["instance"] == f"{pods[target['labels']['pod']]}:8000"
        assert target["health"] == "up", target

    # A request no probe sends (400: limit is not a number), a different number to each pod.
    metric = f'http_requests_total{{{SEL}, endpoint="/api/visits", status="400"}}'
    before = _per_pod(prometheus, f"sum by (pod) ({metric})")
    sent = {}
    for n, (name, ip) in enumerate(sorted(pods.items()), start=3):
        for _ in range(n):
            status, _, _ = http(f"http://{ip}:8000/api/visits?limit=abc")
            assert status == 400
        sent[name] = n
    want = {name: before.get(name, 0.0) + n for name, n in sent.items()}

    def counted():
        got = {pod: value for pod, value in _per_pod(prometheus, f"sum by (pod) ({metric})").items() if pod in pods}
        return got if got == want else None

    try:
        wait_until("each pod's request count in Prometheus", counted)
    except AssertionError:
        pytest.fail(f"Prometheus has {_per_pod(prometheus, f'sum by (pod) ({metric})')}, expected {want}")

    buckets = prometheus.query(
        f'sum by (le) (http_request_duration_seconds_bucket{{{SEL}, endpoint="/api/visits", method="GET"}})')
    by_le = sorted((float(r["metric"]["le"]), float(r["value"][1])) for r in buckets)
    assert by_le and by_le[-1][0] == float("inf") and by_le[-1][1] >= sum(sent.values()), by_le
    assert [v for _, v in by_le] == sorted(v for _, v in by_le), f"buckets are not cumulative: {by_le}"
