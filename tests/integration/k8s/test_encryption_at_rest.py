"""Secrets are encrypted at rest in the local cluster's etcd, and read back in clear through the API."""

from __future__ import annotations

import base64
import json
import os
import urllib.request
import uuid
from pathlib import Path

import pytest

pytestmark = pytest.mark.k8s

STATE = Path(os.environ.get("VELOCITY_STATE_DIR", "/tmp/velocity")) / "k8s"
ETCD = "http://127.0.0.1:%s" % os.environ.get("VELOCITY_K8S_ETCD_PORT", "23790")


def etcd_value(key: str) -> bytes:
    body = json.dumps({"key": base64.b64encode(key.encode()).decode()}).encode()
    req = urllib.request.Request(ETCD + "/v3/kv/range", data=body, method="POST")
    with urllib.request.urlopen(req, timeout=10) as resp:
        kvs = json.load(resp).get("kvs") or []
    return base64.b64decode(kvs[0]["value"]) if kvs else b""


def test_a_canary_secret_is_in_no_etcd_file_and_comes_back_through_the_api(k8s_api_client):
    from kubernetes import client

    config = STATE / "pki" / "encryption-config.yaml"
    assert config.stat().st_mode & 0o777 == 0o600
    canary = "canary-at-rest-" + uuid.uuid4().hex
    name = "it-at-rest-" + uuid.uuid4().hex[:8]
    core = client.CoreV1Api(k8s_api_client)
    core.create_namespaced_secret("default", client.V1Secret(metadata=client.V1ObjectMeta(name=name),
                                                             string_data={"SECRET_KEY": canary}))
    try:
        assert base64.b64decode(core.read_namespaced_secret(name, "default").data["SECRET_KEY"]).decode() == canary
        stored = etcd_value(f"/registry/secrets/default/{name}")
        assert stored.startswith(b"k8s:enc:secretbox:v1:key1:"), stored[:40]
        forms = [canary.encode(), base64.b64encode(canary.encode()), base64.b64encode(canary.encode()).rstrip(b"=")]
        hits = [str(p) for p in (STATE / "etcd").rglob("*") if p.is_file() and any(f in p.read_bytes() for f in forms)]
        assert hits == [], f"the canary is in clear in etcd's files: {hits}"
    finally:
        core.delete_namespaced_secret(name, "default")
