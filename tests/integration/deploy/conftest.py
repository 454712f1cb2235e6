"""The deploy tests' shared fixture: our Kubernetes client on the local cluster."""

from __future__ import annotations

import pytest

from ansible_collections.velocity.platform.plugins.module_utils.k8s.client import K8sClient


@pytest.fixture
def client(k8s_cluster):
    c = K8sClient.from_params({"kubeconfig": k8s_cluster.kubeconfig})
    yield c
    c.close()


@pytest.fixture(scope="session")
def pipeline_release(k8s_cluster, vault, postgres, docker_engine):
    """The pipeline's own release (tests/release.py), deployed once when it is not there yet, so the tests that
    start from it do not depend on another test having run the pipeline before them."""
    from tests.release import ensure_pipeline_release

    return ensure_pipeline_release(k8s_cluster.kubeconfig)
