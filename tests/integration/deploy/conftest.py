"""The deploy tests' shared fixture: our Kubernetes client on the local cluster."""

from __future__ import annotations

import pytest

from ansible_collections.velocity.platform.plugins.module_utils.k8s.client import K8sClient


@pytest.fixture
def client(k8s_cluster):
    c = K8sClient.from_params({"kubeconfig": k8s_cluster.kubeconfig})
    yield c
    c.close()
