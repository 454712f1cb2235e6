"""Which tests may run side by side (`make pytest` runs the suite on pytest-xdist workers, then a serial pass).

The services are single instances on this machine, so a test that changes shared state must not overlap
with another that changes or reads the same state. Every test file runs in parallel with the others unless
it is listed here:

- GROUPS: the files of one group run one after the other on one worker, in parallel with everything
  outside the group (the scheduler is in the root conftest.py: each other file is one unit of work);
- BESIDE: files that mostly wait (lease TTLs, rollouts, progress deadlines) and use little CPU meanwhile. They
  run in a lane of their own beside the parallel pass (``-m beside``, on LANE_WORKERS (2) pytest-xdist workers
  of their own, longest first): lanes that do not take a worker's place. Two CPU-bound workers on the two
  cores, with these sleeping beside them, where a third worker would have made three CPU-bound tests share
  the cores (tried: slower and a timing test failed). A file here must be free to run beside any other
  (namespace, records of its own) and must use little CPU: a file that computes belongs in the parallel pass.
- SERIAL: run after the parallel pass, alone (``-m serial``): they stop or snapshot what every other test
  uses, or they time things that a busy machine slows down. A single test that must run alone, in a file
  whose other tests need not, carries ``@pytest.mark.serial`` itself, with the reason beside it
  (test_vault_db_credentials.py: revoking by prefix revokes every velocity-app lease).

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

BESIDE: dict[str, str] = {
    "tests/integration/vault/test_scheduled_renewal.py": "waits out three 40 s lease TTLs and an expiry: about "
                                                          "170 s, 25 CPU s",
    "tests/integration/deploy/test_whole_release_rollback.py": "waits for five rollouts and a 90 s progress "
                                                               "deadline: about 195 s, 50 CPU s",
    "tests/integration/deploy/test_schema_window.py": "waits for four rollouts on the real node and two migration "
                                                      "Jobs: about 120 s, 5 CPU s",
    "tests/integration/deploy/test_real_failures.py": "waits for a progress deadline and a crash loop: about 45 s, "
                                                      "1 CPU s",
    "tests/integration/k8s/test_local_cluster.py": "waits for kwok's stages and a progress deadline: about 30 s, "
                                                   "1 CPU s",
    "tests/integration/deploy/test_real_node_hooks.py": "waits for hook Jobs' pods on the real node: about 11 s, "
                                                        "under 1 CPU s",
    "tests/integration/deploy/test_k8s_token_refresh.py": "waits out the API server's cache of accepted tokens three "
                                                          "times: about 35 s, 3 CPU s",
}

SERIAL: dict[str, str] = {
    "tests/integration/k8s/test_real_node.py": "stops the node (every pod) and snapshots the host's links, "
                                               "namespaces, iptables and mounts",
    "tests/integration/vault/test_vault_leak.py": "walks ~/.ansible/tmp, which other runs clean up meanwhile",
    "app/tests/test_gunicorn_shutdown.py": "times the shutdown delay after SIGTERM",
}


# Seconds each slow file took in the parallel pass of a `.ci/run` (2026-12-04, 2 workers; setup and teardown
# included). The scheduler hands out the longest units of work first, so that no long file starts last and
# keeps one worker busy after the others are done (xdist's own order is by number of tests). A group counts
# the sum of its files; a file not named here counts 0.2 s per test. Rough figures are enough: only the order
# matters.
SECONDS: dict[str, int] = {
    "tests/integration/deploy/test_whole_release_rollback.py": 191,
    "tests/integration/test_check_mode.py": 150,
    "tests/integration/vault/test_scheduled_renewal.py": 167,
    "tests/integration/test_awx_configure.py": 115,
    "tests/integration/deploy/test_schema_window.py": 112,
    "tests/integration/image/test_remote_tls_engine.py": 30,  # its engine's build cache kept since 2026-12-05
    "tests/integration/test_pipeline.py": 55,
    "tests/integration/image/test_app_image.py": 44,
    "tests/integration/deploy/test_real_failures.py": 44,
    "tests/integration/image/test_registry.py": 39,
    "tests/benchmarks/test_k8s_apply_smoke.py": 35,
    "tests/integration/k8s/test_local_cluster.py": 31,
    "tests/benchmarks/test_image_build_smoke.py": 28,
    "tests/integration/test_packaging.py": 20,
    "tests/benchmarks/test_vault_fetch_smoke.py": 19,
    "tests/integration/deploy/test_render_only.py": 18,
    "tests/integration/vault/test_vault_faults.py": 18,
    "tests/reliability/test_faults.py": 17,
    "tests/integration/deploy/test_k8s_read.py": 17,
    "tests/integration/deploy/test_running_leak.py": 16,
    "tests/integration/test_dora_report.py": 15,
    "tests/integration/vault/test_vault_db_credentials.py": 33,  # serial before 2026-12-04 (3 of its 4 tests)
}


def expected_seconds(nodeids: list[str]) -> float:
    """How long a unit of work (these tests, of one or more files) is expected to take; see SECONDS."""
    per_file: dict[str, int] = {}
    for nodeid in nodeids:
        path = nodeid.split("::", 1)[0]
        per_file[path] = per_file.get(path, 0) + 1
    return sum(SECONDS.get(path, 0.2 * count) for path, count in per_file.items())


def longest_first(units: dict[str, list[str]]) -> list[str]:
    """The names of these units of work (name: its test ids), longest expected first; ties keep their order."""
    return sorted(units, key=lambda name: -expected_seconds(units[name]))


def placement(path: str) -> tuple[str, str]:
    """("serial", reason), ("beside", reason), ("group", name) or ("free", "") for the test file at ``path``."""
    if path in SERIAL:
        return "serial", SERIAL[path]
    if path in BESIDE:
        return "beside", BESIDE[path]
    for name, files in GROUPS.items():
        if path in files:
            return "group", name
    return "free", ""
