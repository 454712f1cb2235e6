"""Rollback takes the whole release back, on the real node (hack/k8s/node.sh): the app's real image really runs.

The deploy role names the ConfigMap and the Secret by a hash of their data, so each ReplicaSet names its own
configuration. In one namespace of its own, through playbooks/deploy.yml and playbooks/rollback.yml:

- release A (config X, secret S1) serves; re-running it changes nothing and creates no ConfigMap/Secret, and
  `--check --diff` after it reports changed=0 and no diff;
- release B (config Y, secret S2 whose database password is wrong: /readyz never passes) fails its rollout, is
  rolled back automatically, and the running pods' environment (the served process's /proc/1/environ, read
  through the API server with kubectl exec: the ConfigMap's variables and the mounted Secret's files that
  `velocity-app serve` read) is A's, not B's;
- release C (config Z, secret S3) serves; pruning keeps exactly the configurations a ReplicaSet names
  (revisionHistoryLimit=1 drops B's); a manual rollback to A's revision brings back A's environment;
- C's Secret records a Vault lease that has expired since: rolling back to C is refused with a message naming
  the revision, the Secret and the lease, and nothing changes.

The image is the one the pipeline deployed to the `velocity` namespace (by digest). Each release gets its own
dynamic database user issued by the real Vault (database engine, role velocity-app), in the URL shape the secrets
stage writes (the node reaches PostgreSQL at the host of that URL), so /readyz really checks the shared
PostgreSQL; the leases are revoked at the end. Migrations are left to the pipeline.
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

pytestmark = [pytest.mark.k8s, pytest.mark.slow, pytest.mark.postgres]

ROOT = Path(__file__).resolve().parents[3]
BIN = Path(sys.executable).parent
STATE = Path(os.environ.get("VELOCITY_STATE_DIR", "/tmp/velocity"))
APP = "velocity-app"
LABEL = "velocity.dev/release-config"


def playbook(name: str, extra: dict, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ANSIBLE_FORCE_COLOR": "0"}
    path = extra["_file"]
    path.write_text(json.dumps({k: v for k, v in extra.items() if k != "_file"}))
    path.chmod(0o600)
    return subprocess.run([str(BIN / "ansible-playbook"), f"playbooks/{name}", "-e", f"@{path}", *args],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200)


def changed(out: str) -> int:
    return sum(int(n) for n in re.findall(r"^localhost\s+:.*\bchanged=(\d+)", out, re.M))


@pytest.fixture(scope="module")
def setup(k8s_cluster, vault, postgres, tmp_path_factory, pipeline_release):
    from ansible_collections.velocity.platform.plugins.module_utils.k8s.client import K8sClient

    client = K8sClient.from_params({"kubeconfig": k8s_cluster.kubeconfig})
    live = pipeline_release
    image = live["spec"]["template"]["spec"]["containers"][0]["image"]
    assert "@sha256:" in image, image
    manifest = json.loads((STATE / "secrets" / "app-secret.json").read_text())
    # Only the address part of the secrets stage's URL (scheme://host:port/db); the user comes from Vault here.
    address = re.sub(r"://[^@]*@", "://", base64.b64decode(manifest["data"]["DATABASE_URL"]).decode())
    leases: list[str] = []

    def issue() -> tuple[str, dict]:
        with vault.client() as c:
            out = c.hvac.secrets.database.generate_credentials(name="velocity-app", mount_point="database")
        leases.append(out["lease_id"])
        user, password = out["data"]["username"], out["data"]["password"]
        url = address.replace("://", f"://{user}:{password}@", 1)
        return url, {"lease_id": out["lease_id"], "expires_at": int(time.time()) + int(out["lease_duration"])}
    namespace = "wrr-" + uuid.uuid4().hex[:8]
    tmp = tmp_path_factory.mktemp("wrr")
    # The registry pull Secret the secrets stage wrote, for this namespace (the node pulls by digest with it).
    pull = json.loads((STATE / "secrets" / "registry-pull-secret.json").read_text())
    pull["metadata"]["namespace"] = namespace
    pull_file = tmp / "pull-secret.json"
    pull_file.touch(mode=0o600)
    pull_file.write_text(json.dumps(pull))
    base = {
        "_file": tmp / "vars.json",
        "deploy_namespace": namespace, "rollback_namespace": namespace,
        "deploy_image": image, "deploy_image_digest": image.split("@")[1],
        # Pinned: other commits landing on HEAD between two runs would rightly change the provenance annotations.
        "deploy_source_revision": subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True,
                                                 text=True, check=True).stdout.strip(),
        "deploy_secret_file": "", "deploy_secret_lease": {},
        "deploy_image_pull_secret_file": str(pull_file), "deploy_image_pull_secret_name": pull["metadata"]["name"],
        "deploy_revision_history_limit": 1, "deploy_progress_deadline_seconds": 90, "deploy_wait_timeout": 300,
        "deploy_replicas": 1, "deploy_migration_enabled": False, "deploy_smoke_enabled": False,
        "deploy_dora_events_file": str(tmp / "events.jsonl"), "rollback_dora_events_file": str(tmp / "events.jsonl"),
    }
    state = {"client": client, "namespace": namespace, "base": base, "kubeconfig": k8s_cluster.kubeconfig,
             "issue": issue, "releases": {}, "vault": vault}
    yield state
    client.delete({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    client.close()
    with vault.client() as c:
        for lease_id in leases:
            c.hvac.sys.revoke_lease(lease_id=lease_id)


def release(state, mark: str, database_url: str | None = None, lease: dict | None = None) -> dict:
    """A release's variables and what its pods must see (fresh database credentials and their lease)."""
    secret_key = "canary-" + mark + "-" + secrets.token_urlsafe(32)
    url, issued = state["issue"]()
    url = database_url or url
    lease = lease or issued
    config = {"LOG_LEVEL": "info", "GUNICORN_TIMEOUT": "30", "RELEASE_MARK": mark}
    extra = dict(state["base"], deploy_config=config,
                 deploy_secret_data={"SECRET_KEY": secret_key, "DATABASE_URL": url})
    extra["deploy_secret_lease"] = lease
    env = {"RELEASE_MARK": mark, "SECRET_KEY": secret_key, "DATABASE_URL": url}
    return {"extra": extra, "env": env}


def pod_envs(state) -> list[dict]:
    """The environment of the process serving in every running, ready, not terminating app pod (kubectl exec).

    PID 1 is Gunicorn, exec'd by `velocity-app serve` after it read the mounted Secret (VELOCITY_SECRETS_DIR):
    its environ holds the ConfigMap's variables and the Secret's values the pod really runs with."""
    pods = state["client"].list("v1", "Pod", namespace=state["namespace"], label_selector=f"app.kubernetes.io/name={APP}")
    envs = []
    for pod in pods:
        ready = any(c.get("type") == "Ready" and c.get("status") == "True"
                    for c in (pod.get("status") or {}).get("conditions") or [])
        if pod["metadata"].get("deletionTimestamp") or not ready:
            continue
        out = subprocess.run(["kubectl", "--kubeconfig", state["kubeconfig"], "-n", state["namespace"], "exec",
                              pod["metadata"]["name"], "--", "cat", "/proc/1/environ"],
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        envs.append(dict(item.split("=", 1) for item in out.stdout.split("\0") if "=" in item))
    return envs


def wait_env(state, want: dict, timeout: float = 120) -> list[dict]:
    """Wait until every serving pod's environment has `want` (terminating pods of the old revision drain)."""
    deadline = time.monotonic() + timeout
    while True:
        envs = pod_envs(state)
        if envs and all(all(e.get(k) == v for k, v in want.items()) for e in envs):
            return envs
        if time.monotonic() > deadline:
            marks = [e.get("RELEASE_MARK") for e in envs]
            pytest.fail(f"pods did not all run with RELEASE_MARK={want['RELEASE_MARK']}: {marks}")
        time.sleep(3)


def labelled(state) -> set[tuple[str, str]]:
    client, ns = state["client"], state["namespace"]
    return {(kind, o["metadata"]["name"]) for kind in ("ConfigMap", "Secret")
            for o in client.list("v1", kind, namespace=ns, label_selector=f"{LABEL}={APP}")}


def referenced_by_replicasets(state) -> set[tuple[str, str]]:
    from ansible_collections.velocity.platform.plugins.module_utils.k8s.rollout import config_refs

    names = set()
    for rs in state["client"].list("apps/v1", "ReplicaSet", namespace=state["namespace"]):
        cms, secs = config_refs(rs["spec"]["template"]["spec"], pull_secrets=False)
        names |= {("ConfigMap", n) for n in cms} | {("Secret", n) for n in secs}
    return names


def pod_spec_names(pod_spec: dict) -> tuple[str, str]:
    """(ConfigMap, Secret) a pod spec names: the ConfigMap by envFrom, the Secret as the mounted volume."""
    env_from = pod_spec["containers"][0]["envFrom"]
    assert not any("secretRef" in source for source in env_from), "the Secret must be a volume, not envFrom"
    secret_volumes = [v["secret"]["secretName"] for v in pod_spec.get("volumes") or [] if "secret" in v]
    assert len(secret_volumes) == 1, pod_spec.get("volumes")
    return env_from[0]["configMapRef"]["name"], secret_volumes[0]


def template_names(state) -> tuple[str, str]:
    dep = state["client"].get("apps/v1", "Deployment", APP, state["namespace"])
    return pod_spec_names(dep["spec"]["template"]["spec"])


def revision_naming(state, config_map: str) -> int:
    for rs in state["client"].list("apps/v1", "ReplicaSet", namespace=state["namespace"]):
        if pod_spec_names(rs["spec"]["template"]["spec"])[0] == config_map:
            return int(rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"])
    pytest.fail(f"no ReplicaSet names ConfigMap {config_map}")


def test_release_a_serves_and_a_rerun_changes_nothing(setup):
    a = release(setup, "X")
    setup["releases"]["A"] = a
    first = playbook("deploy.yml", a["extra"])
    assert first.returncode == 0, first.stdout[-4000:]
    wait_env(setup, a["env"])
    a["names"] = template_names(setup)
    assert a["names"][0].startswith(APP + "-") and a["names"][1].startswith("velocity-app-secrets-")
    # No value of the Secret is in its name (the name hashes the whole mapping; SECRET_KEY is random).
    for value in a["env"].values():
        assert value not in a["names"][1]
    objects = labelled(setup)
    assert objects == {("ConfigMap", a["names"][0]), ("Secret", a["names"][1])}

    again = playbook("deploy.yml", a["extra"])
    assert again.returncode == 0, again.stdout[-4000:]
    assert changed(again.stdout) == 0, again.stdout[-6000:]
    assert labelled(setup) == objects

    check = playbook("deploy.yml", a["extra"], "--check", "--diff")
    assert check.returncode == 0, check.stdout[-4000:]
    assert changed(check.stdout) == 0, check.stdout[-6000:]
    assert re.findall(r"^--- before", check.stdout, re.M) == [], check.stdout[-6000:]
    for value in a["env"].values():
        assert value not in first.stdout + again.stdout + check.stdout


def test_a_failed_release_is_rolled_back_with_its_configuration(setup):
    a = setup["releases"]["A"]
    good_url, _lease = setup["issue"]()
    bad_url = re.sub(r"://([^:]+):([^@]+)@", r"://\1:wrong-password@", good_url)
    assert bad_url != good_url
    b = release(setup, "Y", database_url=bad_url)
    setup["releases"]["B"] = b
    run = playbook("deploy.yml", b["extra"])
    assert run.returncode != 0, run.stdout[-4000:]
    assert "rolled " in run.stdout and "back from revision" in run.stdout, run.stdout[-6000:]
    # The Deployment names A's configuration again, and the pods run with A's environment, not B's.
    assert template_names(setup) == a["names"]
    envs = wait_env(setup, a["env"])
    assert all(e["SECRET_KEY"] != b["env"]["SECRET_KEY"] for e in envs)
    # B's configuration is kept (its ReplicaSet is in the history) until the history drops it.
    b_names = {n for kind, n in labelled(setup)} - set(a["names"])
    assert len(b_names) == 2, labelled(setup)
    b["names"] = tuple(sorted(b_names, key=lambda n: "secrets" in n))


def test_pruning_keeps_exactly_what_a_revision_names_and_manual_rollback_restores_it(setup):
    a = setup["releases"]["A"]
    # C's Secret records its lease as expiring 40 s after the deploy (a short-TTL lease): the next test rolls
    # back to C after that.
    c = release(setup, "Z")
    lease = c["extra"]["deploy_secret_lease"] = dict(c["extra"]["deploy_secret_lease"], expires_at=int(time.time()) + 40)
    c["lease"] = lease
    setup["releases"]["C"] = c
    run = playbook("deploy.yml", c["extra"])
    assert run.returncode == 0, run.stdout[-4000:]
    wait_env(setup, c["env"])
    c["names"] = template_names(setup)
    secret = setup["client"].get("v1", "Secret", c["names"][1], setup["namespace"])
    assert secret["metadata"]["annotations"]["velocity.dev/vault-lease-id"] == lease["lease_id"]

    # revisionHistoryLimit=1: the controller keeps A's ReplicaSet (the newest old one) and drops B's.
    deadline = time.monotonic() + 120
    while len(setup["client"].list("apps/v1", "ReplicaSet", namespace=setup["namespace"])) > 2:
        assert time.monotonic() < deadline, "the Deployment controller kept more than revisionHistoryLimit ReplicaSets"
        time.sleep(2)
    again = playbook("deploy.yml", c["extra"])  # prunes what the history no longer names
    assert again.returncode == 0, again.stdout[-4000:]
    kept = labelled(setup)
    assert kept == referenced_by_replicasets(setup)
    assert {n for _k, n in kept} == set(a["names"]) | set(c["names"])

    rev_a = revision_naming(setup, a["names"][0])
    back = playbook("rollback.yml", dict(setup["base"], rollback_to_revision=rev_a))
    assert back.returncode == 0, back.stdout[-4000:]
    assert template_names(setup) == a["names"]
    wait_env(setup, a["env"])


def test_rollback_to_a_revision_with_an_expired_lease_is_refused(setup):
    a, c = setup["releases"]["A"], setup["releases"]["C"]
    time.sleep(max(0.0, c["lease"]["expires_at"] + 1 - time.time()))
    rev_c = revision_naming(setup, c["names"][0])
    refused = playbook("rollback.yml", dict(setup["base"], rollback_to_revision=rev_c))
    assert refused.returncode != 0
    out = refused.stdout
    assert f"refusing to roll Deployment {setup['namespace']}/{APP} back to revision {rev_c}" in out, out[-4000:]
    assert c["lease"]["lease_id"] in out and c["names"][1] in out
    assert "Deploy that revision's release again" in out
    assert template_names(setup) == a["names"]  # nothing changed
    wait_env(setup, a["env"], timeout=30)


def test_rollback_to_a_revision_whose_lease_was_revoked_is_refused_after_asking_vault(setup):
    a = setup["releases"]["A"]
    d = release(setup, "W")
    run = playbook("deploy.yml", d["extra"])
    assert run.returncode == 0, run.stdout[-4000:]
    wait_env(setup, d["env"])
    d_names = template_names(setup)
    # A's lease is revoked in Vault (an operator, a leaked credential): its recorded expiry is still ahead.
    lease_id = a["extra"]["deploy_secret_lease"]["lease_id"]
    with setup["vault"].client() as c:
        c.hvac.sys.revoke_lease(lease_id=lease_id)
    rev_a = revision_naming(setup, a["names"][0])
    refused = playbook("rollback.yml", dict(setup["base"], rollback_to_revision=rev_a,
                                            rollback_vault_url=setup["vault"].addr,
                                            rollback_vault_token_file=str(setup["vault"].token_file)))
    assert refused.returncode != 0
    out = refused.stdout
    assert f"back to revision {rev_a}: its Secret {a['names'][1]}" in out, out[-4000:]
    assert lease_id in out and "Vault no longer knows" in out
    assert setup["vault"].root_token not in out
    assert template_names(setup) == d_names  # nothing changed
