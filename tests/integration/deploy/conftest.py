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
    """The pipeline's own release (playbooks/site.yml on inventory/local: Deployment velocity/velocity-app, the
    pushed image by digest, the secrets stage's Secret manifest), deployed once when it is not there yet, so the
    tests that start from it do not depend on another test having run the pipeline before them."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[3]
    state = Path(os.environ.get("VELOCITY_STATE_DIR", "/tmp/velocity"))
    c = K8sClient.from_params({"kubeconfig": k8s_cluster.kubeconfig})
    try:
        live = c.get("apps/v1", "Deployment", "velocity-app", "velocity")
        if live is None or not (state / "secrets" / "app-secret.json").is_file():
            env = {**os.environ, "ANSIBLE_CONFIG": str(root / "ansible.cfg"), "ANSIBLE_FORCE_COLOR": "0"}
            run = subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), "playbooks/site.yml"],
                                 cwd=root, env=env, capture_output=True, text=True, timeout=1800)
            assert run.returncode == 0, "playbooks/site.yml failed:\n" + run.stdout[-4000:]
            live = c.get("apps/v1", "Deployment", "velocity-app", "velocity")
        assert live is not None, "playbooks/site.yml left no Deployment velocity/velocity-app"
        return live
    finally:
        c.close()
