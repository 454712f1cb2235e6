"""Which tests may run side by side (`make pytest` runs the suite on pytest-xdist workers, then a serial pass).

The services are single instances on this machine, so a test that changes shared state must not overlap
with another that changes or reads the same state. Every test file runs in parallel with the others unless
it is listed here:

- GROUPS: the files of one group run one after the other on one worker, in parallel with everything
  outside the group (the scheduler is in the root conftest.py: each other file is one unit of work);
- SERIAL: run after the parallel pass, alone (``-m serial``): they stop or snapshot what every other test
  uses, or they time things that a busy machine slows down.

The shared release is deployed before the parallel pass (tests/release.py), so the tests that start from it
(the `pipeline_release` fixture: they read its image digest and the secrets stage's files, and deploy into
namespaces of their own) run outside the group that changes it. A file is named by its path from the
repository root. tests/unit/test_suite_layout.py checks that every
name here is a test file that exists.
"""

from __future__ import annotations

GROUPS: dict[str, dict[str, str]] = {
    # The shared release in namespace velocity, the pipeline's files under $VELOCITY_STATE_DIR (secrets,
    # artifacts, DORA events), the app image tag, and the shared lease record secret/velocity/leases/app.
    "pipeline": {
        "tests/integration/test_pipeline.py": "runs site.yml and run-pipeline; a second run must change nothing",
        "tests/integration/test_check_mode.py": "five site.yml runs, one with a configuration change and back",
        "tests/integration/test_awx_configure.py": "the AWX workflow builds, pushes and deploys the release",
        "tests/integration/test_awx_runner.py": "secrets.yml rewrites the shared lease record",
        "tests/integration/vault/test_vault_app_ready.py": "rewrites and revokes the shared lease record",
        "tests/integration/vault/test_vault_auth_methods.py": "re-runs vault-bootstrap --kubeconfig",
        "tests/integration/deploy/test_prometheus_k8s_sd.py": "counts requests per pod of the shared release",
        "tests/integration/image/test_app_image.py": "checks no smoke-test container is left, engine-wide",
        "tests/reliability/test_faults.py": "compares the engine's smoke-test containers before and after",
    },
    # The file-backed and TLS OpenBao servers (8210, 8220): sealed, restarted and started by these tests.
    "vault_servers": {
        "tests/integration/vault/test_vault_faults.py": "seals and restarts the file server, starts the TLS one",
        "tests/integration/vault/test_vault_service_script.py": "seals and unseals the file server",
        "tests/integration/vault/test_vault_connections.py": "starts the TLS server",
        "tests/benchmarks/test_vault_fetch_smoke.py": "starts the TLS server, adds and removes an auth mount",
    },
}

SERIAL: dict[str, str] = {
    "tests/integration/k8s/test_real_node.py": "stops the node (every pod) and snapshots the host's links, "
                                               "namespaces, iptables and mounts",
    "tests/integration/vault/test_vault_db_credentials.py": "revokes every lease of the velocity-app role",
    "tests/integration/vault/test_vault_leak.py": "walks ~/.ansible/tmp, which other runs clean up meanwhile",
    "app/tests/test_gunicorn_shutdown.py": "times the shutdown delay after SIGTERM",
}


def placement(path: str) -> tuple[str, str]:
    """("serial", reason), ("group", name) or ("free", "") for the test file at ``path`` (from the root)."""
    if path in SERIAL:
        return "serial", SERIAL[path]
    for name, files in GROUPS.items():
        if path in files:
            return "group", name
    return "free", ""
