"""The Argo CD path: the deploy role only renders (deploy_render_only=true) and touches no cluster.

- The rendered set (for git) and the Argo CD Application hold no Secret value (canaries); the Secret of the
  release is written apart (0600, outside the committed directory) under its content-addressed name, which the
  Deployment and the hook Jobs name; the provenance (image by digest, SBOM, source revision) is kept.
- Rendering against the local cluster changes nothing there: the target namespace is not even created.
- The rendered files pass a server-side dry run against the real API server (the Application's CRD is Argo CD's
  and not installed here: it is checked for shape).
- Values without a place for the Secret, or a Secret destination inside the committed directory, are refused;
  without values the set names the plain Secret name that Vault (Argo CD Vault plugin, External Secrets) provides.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import yaml

pytestmark = [pytest.mark.k8s, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[3]
BIN = Path(sys.executable).parent
DIGEST = "sha256:" + "ab" * 32
IMAGE = "127.0.0.1:5000/velocity/app@" + DIGEST
CANARY_KEY = "canary-key-" + uuid.uuid4().hex + uuid.uuid4().hex
CANARY_PASSWORD = "canary-pw-" + uuid.uuid4().hex[:8]


def render(tmp: Path, **extra) -> subprocess.CompletedProcess:
    env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ANSIBLE_FORCE_COLOR": "0"}
    values = {"deploy_render_only": True, "deploy_image": IMAGE, "deploy_image_digest": DIGEST,
              "deploy_sbom_sha256": "cd" * 32, "deploy_secret_file": "", "deploy_secret_lease": {}, **extra}
    varfile = tmp / f"vars-{uuid.uuid4().hex[:6]}.json"
    varfile.write_text(json.dumps(values))
    varfile.chmod(0o600)
    return subprocess.run([str(BIN / "ansible-playbook"), "playbooks/deploy.yml", "-e", f"@{varfile}"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)


def dry_run(kubeconfig: str, namespace: str, path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["kubectl", "--kubeconfig", kubeconfig, "apply", "--server-side", "--dry-run=server",
                           "--field-manager=velocity-render-test", "-n", namespace, "-f", str(path)],
                          capture_output=True, text=True, timeout=120)


@pytest.fixture
def client(k8s_cluster):
    from ansible_collections.velocity.platform.plugins.module_utils.k8s.client import K8sClient

    c = K8sClient.from_params({"kubeconfig": k8s_cluster.kubeconfig})
    yield c
    c.close()


def test_render_only_writes_git_files_without_secrets_and_touches_no_cluster(tmp_path, client, k8s_cluster):
    git_dir, private = tmp_path / "git" / "deploy", tmp_path / "private"
    git_dir.mkdir(parents=True)
    private.mkdir()
    target = "it-render-" + uuid.uuid4().hex[:8]
    run = render(tmp_path, deploy_namespace=target, deploy_kubeconfig=k8s_cluster.kubeconfig,
                 deploy_render_dest=str(git_dir / "k8-deployments.yaml"),
                 deploy_argocd_application_dest=str(git_dir / "application.yaml"),
                 deploy_render_secret_dest=str(private / "secret.json"),
                 deploy_secret_data={"SECRET_KEY": CANARY_KEY,
                                     "DATABASE_URL": f"postgresql://app:{CANARY_PASSWORD}@db.example:5432/app"})
    assert run.returncode == 0, run.stdout[-4000:]
    # Nothing in the cluster: the namespace the set targets was not created, nothing was applied.
    assert client.get("v1", "Namespace", target) is None
    # No value in anything meant for git, nor in the task output.
    for path in git_dir.iterdir():
        text = path.read_text()
        assert CANARY_KEY not in text and CANARY_PASSWORD not in text, path
    assert CANARY_KEY not in run.stdout and CANARY_PASSWORD not in run.stdout

    docs = [d for d in yaml.safe_load_all((git_dir / "k8-deployments.yaml").read_text()) if d]
    kinds = sorted(d["kind"] for d in docs)
    assert "Secret" not in kinds and {"ConfigMap", "Deployment", "Service", "ServiceAccount"} <= set(kinds)
    secret_file = private / "secret.json"
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    secret = json.loads(secret_file.read_text())
    assert secret["stringData"]["SECRET_KEY"] == CANARY_KEY
    assert CANARY_PASSWORD not in secret["metadata"]["name"] and CANARY_KEY not in secret["metadata"]["name"]
    config_map = next(d for d in docs if d["kind"] == "ConfigMap")
    assert config_map["metadata"]["labels"]["velocity.dev/release-config"] == "velocity-app"
    # Every pod (app, migration and smoke hooks) names this release's content-addressed configuration.
    pods = [d["spec"]["template"]["spec"] for d in docs if d["kind"] in ("Deployment", "Job")]
    assert len(pods) == 3
    for spec in pods:
        for container in spec["containers"]:
            refs = {k: v["name"] for source in container.get("envFrom", []) for k, v in source.items()}
            if refs:
                assert refs == {"configMapRef": config_map["metadata"]["name"]}
    # The app and the migration read the Secret as a read-only volume (never as variables); the smoke Job not at all.
    mounted = [v["secret"] for spec in pods for v in spec.get("volumes", []) if "secret" in v]
    assert mounted == [{"secretName": secret["metadata"]["name"], "defaultMode": 0o440}] * 2
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    assert annotations["velocity.dev/image-digest"] == DIGEST
    assert annotations["velocity.dev/source-revision"] == head
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == IMAGE

    app = yaml.safe_load((git_dir / "application.yaml").read_text())
    assert app["kind"] == "Application" and app["apiVersion"] == "argoproj.io/v1alpha1"
    assert app["spec"]["destination"]["namespace"] == target
    assert app["spec"]["source"]["directory"]["include"] == "k8-deployments.yaml"
    assert app["metadata"]["annotations"]["velocity.dev/image-digest"] == DIGEST
    assert app["metadata"]["annotations"]["velocity.dev/source-revision"] == head
    assert app["metadata"]["annotations"]["velocity.dev/secret"] == secret["metadata"]["name"]

    # The rendered files are valid for the real API server (server-side dry run in an existing namespace).
    check_ns = "it-render-dry-" + uuid.uuid4().hex[:8]
    client.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": check_ns}})
    try:
        for path in (git_dir / "k8-deployments.yaml", secret_file):
            patched = tmp_path / ("dry-" + path.name)
            patched.write_text(path.read_text().replace(f"namespace: {target}", f"namespace: {check_ns}")
                               .replace(f'"namespace": "{target}"', f'"namespace": "{check_ns}"'))
            patched.chmod(0o600)
            result = dry_run(k8s_cluster.kubeconfig, check_ns, patched)
            assert result.returncode == 0, result.stderr
            assert "(server dry run)" in result.stdout
        assert client.list("v1", "ConfigMap", namespace=check_ns, label_selector="velocity.dev/release-config") == []
    finally:
        client.delete({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": check_ns}})


def test_render_only_refuses_a_secret_without_a_safe_place_and_names_the_vault_secret_without_values(tmp_path):
    git_dir = tmp_path / "deploy"
    git_dir.mkdir()
    values = {"SECRET_KEY": CANARY_KEY, "DATABASE_URL": f"postgresql://app:{CANARY_PASSWORD}@db:5432/app"}
    nowhere = render(tmp_path, deploy_render_dest=str(git_dir / "k8-deployments.yaml"), deploy_secret_data=values)
    assert nowhere.returncode != 0
    assert "deploy_render_secret_dest" in nowhere.stdout
    inside = render(tmp_path, deploy_render_dest=str(git_dir / "k8-deployments.yaml"), deploy_secret_data=values,
                    deploy_render_secret_dest=str(git_dir / "secret.json"))
    assert inside.returncode != 0 and "outside the directory you commit" in inside.stdout
    assert not (git_dir / "secret.json").exists()
    for out in (nowhere.stdout, inside.stdout):
        assert CANARY_KEY not in out and CANARY_PASSWORD not in out

    plain = render(tmp_path, deploy_render_dest=str(git_dir / "k8-deployments.yaml"))
    assert plain.returncode == 0, plain.stdout[-4000:]
    text = (git_dir / "k8-deployments.yaml").read_text()
    assert '"secretName": "velocity-app-secrets"' in text and "secretRef" not in text
