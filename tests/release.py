"""The pipeline's own release, deployed once when it is not there yet (`python -m tests.release`).

Deployment velocity/velocity-app from `playbooks/site.yml` on inventory/local (the pushed image by digest,
the secrets stage's Secret manifest). The deploy tests that start from it use the `pipeline_release`
fixture; `make pytest` runs this module before its parallel pass, so that no two workers run site.yml at
once and the tests that run site.yml themselves (tests/parallel.py, group "pipeline") find it in place.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STATE = Path(os.environ.get("VELOCITY_STATE_DIR", "/tmp/velocity"))


def serving(deployment: dict | None) -> bool:
    """Whether the Deployment's current template runs every replica, Available (its readiness probe checks the
    database with the release's own credentials: a test that revoked them leaves it unavailable)."""
    if deployment is None:
        return False
    spec, status = deployment.get("spec") or {}, deployment.get("status") or {}
    replicas = spec.get("replicas", 1)
    return (status.get("observedGeneration", 0) >= (deployment.get("metadata") or {}).get("generation", 0)
            and status.get("updatedReplicas") == status.get("availableReplicas") == replicas)


def ensure_pipeline_release(kubeconfig: str, serving_now: bool = False) -> dict:
    """The live Deployment velocity/velocity-app; site.yml runs first when it or the secrets stage's Secret manifest
    is missing, and with ``serving_now`` also when it is not serving (site.yml issues new credentials for a
    revoked lease).

    The fixture does not ask for ``serving_now``: during the parallel pass the "pipeline" group may be rolling the
    release out at that moment, and a second site.yml would run into it. `make pytest` asks for it once, before.
    """
    from ansible_collections.velocity.platform.plugins.module_utils.k8s.client import K8sClient

    client = K8sClient.from_params({"kubeconfig": kubeconfig})
    try:
        live = client.get("apps/v1", "Deployment", "velocity-app", "velocity")
        if live is None or (serving_now and not serving(live)) or not (STATE / "secrets" / "app-secret.json").is_file():
            env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ANSIBLE_FORCE_COLOR": "0"}
            run = subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), "playbooks/site.yml"],
                                 cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
            assert run.returncode == 0, "playbooks/site.yml failed:\n" + run.stdout[-4000:]
            live = client.get("apps/v1", "Deployment", "velocity-app", "velocity")
        assert live is not None, "playbooks/site.yml left no Deployment velocity/velocity-app"
        assert serving(live) or not serving_now, f"velocity/velocity-app is not serving: {live.get('status')}"
        return live
    finally:
        client.close()


def main() -> int:
    sys.path.insert(0, str(ROOT / "collections"))  # as the root conftest.py does for the tests
    from tests.fixtures.k8s import _script as cluster_sh

    started = cluster_sh("start")
    lines = started.stdout.strip().splitlines()
    if started.returncode != 0 or not lines or not Path(lines[-1]).is_file():
        print(f"hack/k8s/cluster.sh start failed (exit {started.returncode}):\n{started.stderr[-4000:]}",
              file=sys.stderr)
        return 1
    try:
        live = ensure_pipeline_release(lines[-1], serving_now=True)
    except AssertionError as exc:
        print(f"tests.release: {exc}", file=sys.stderr)
        return 1
    revision = (live.get("metadata", {}).get("annotations") or {}).get("deployment.kubernetes.io/revision")
    print(f"tests.release: velocity/velocity-app in place (revision {revision})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
