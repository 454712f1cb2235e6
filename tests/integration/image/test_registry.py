"""The local registry (scripts/services/registry.sh) and the modules that use it, against the real engine.

- the registry refuses anonymous and wrong-password access (401) and serves only over TLS from its CA;
- image_push pushes the app image, returns the digest the registry reports as Docker-Content-Digest,
  and a second push is changed=false (check mode agrees);
- the image can be pulled by that digest;
- a wrong password fails with a message naming the registry and Vault, and the password never shows,
  not even at -vvvv;
- the secrets stage turns the credentials in Vault into a 0600 kubernetes.io/dockerconfigjson Secret
  manifest, and none of the values appears in the task output at -vvvv.
"""

from __future__ import annotations

import base64
import json
import ssl
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

from tests.runner import Playbook

ROOT = Path(__file__).resolve().parents[3]
BIN = Path(sys.executable).parent
REPOSITORY = "velocity/app"
pytestmark = [pytest.mark.docker]


def run_play(tmp: Path, tasks: str, extra_vars: dict, verbosity: int = 0, check: bool = False
             ) -> subprocess.CompletedProcess:
    return Playbook(tmp).run(tasks, extra_vars, verbosity=verbosity, check=check)


PUSH_TASKS = """\
- name: Push
  velocity.platform.image_push:
    image: "{{ source }}"
    registry: "{{ registry_host }}"
    repository: "{{ repository }}"
    tag: "{{ tag }}"
    username: "{{ registry_user }}"
    password: "{{ registry_password }}"
  register: pushed
- name: Keep the result
  ansible.builtin.copy:
    content: "{{ pushed | to_json }}"
    dest: "{{ result_file }}"
    mode: "0600"
  check_mode: false
"""


def push(tmp: Path, registry, source: str, tag: str, password: str | None = None, verbosity: int = 0,
         check: bool = False) -> tuple[dict | None, subprocess.CompletedProcess]:
    result_file = tmp / f"result-{uuid.uuid4().hex[:6]}.json"
    proc = run_play(tmp, PUSH_TASKS, {
        "source": source, "registry_host": registry.host, "repository": REPOSITORY, "tag": tag,
        "registry_user": registry.username, "registry_password": registry.password if password is None else password,
        "result_file": str(result_file)}, verbosity=verbosity, check=check)
    return (json.loads(result_file.read_text()) if result_file.exists() else None), proc


def _forms(value: str, username: str = "velocity") -> list[str]:
    auth = base64.b64encode(f"{username}:{value}".encode()).decode()
    return [value, base64.b64encode(value.encode()).decode().rstrip("="), auth, auth.rstrip("=")]


@pytest.fixture(scope="module")
def test_tag() -> str:
    return f"itest-{uuid.uuid4().hex[:10]}"


def test_anonymous_and_wrong_password_requests_are_refused(registry):
    canary = f"WrongCanary-{uuid.uuid4().hex}"
    for auth in (None, (registry.username, canary), ("nobody", registry.password)):
        assert registry.request("GET", "/v2/", auth=auth)[0] == 401, auth
        assert registry.request("GET", f"/v2/{REPOSITORY}/tags/list", auth=auth)[0] == 401, auth
        # Starting a blob upload is the first step of a push.
        assert registry.request("POST", f"/v2/{REPOSITORY}/blobs/uploads/", auth=auth, data=b"")[0] == 401, auth
    _, headers, _ = registry.request("GET", "/v2/")
    assert 'realm="velocity-registry"' in headers.get("Www-Authenticate", "")
    assert registry.request("GET", "/v2/", auth=(registry.username, registry.password))[0] == 200


def test_the_registry_speaks_only_tls_from_its_own_ca(registry):
    # A client that trusts only the system CAs refuses the certificate.
    with pytest.raises(urllib.error.URLError) as exc:
        urllib.request.urlopen(f"{registry.url}/v2/", timeout=5, context=ssl.create_default_context())
    assert "CERTIFICATE_VERIFY_FAILED" in str(exc.value)
    assert registry.ca.stat().st_mode & 0o777 == 0o644
    for secret in ("password", "htpasswd", "ca.key", "server.key", "config.yml"):
        assert (registry.ca.parent / secret).stat().st_mode & 0o777 == 0o600, secret
    docker_trust = Path("/etc/docker/certs.d") / registry.host / "ca.crt"
    assert docker_trust.read_bytes() == registry.ca.read_bytes()


def test_push_returns_the_registry_digest_and_a_second_push_changes_nothing(registry, app_image, docker_engine,
                                                                             tmp_path, test_tag):
    planned, proc = push(tmp_path, registry, app_image, test_tag, check=True)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert planned["changed"] and not planned["pushed"] and "not in the registry" in planned["reason"]
    assert registry.manifest_digest(REPOSITORY, test_tag) is None, "check mode pushed"

    first, proc = push(tmp_path, registry, app_image, test_tag)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert first["changed"] and first["pushed"]
    reported = registry.manifest_digest(REPOSITORY, test_tag)
    assert reported and first["digest"] == reported
    assert first["repo_digest"] == f"{registry.host}/{REPOSITORY}@{reported}"
    assert first["image_id"] == docker_engine.images.get(app_image).id
    assert test_tag in registry.tags(REPOSITORY)

    second, proc = push(tmp_path, registry, app_image, test_tag)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert not second["changed"] and not second["pushed"] and second["reason"] == "up to date"
    assert second["digest"] == reported
    again, proc = push(tmp_path, registry, app_image, test_tag, check=True)
    assert proc.returncode == 0 and not again["changed"]


def test_the_pushed_image_is_pulled_by_its_digest(registry, app_image, docker_engine, tmp_path, test_tag):
    pushed, proc = push(tmp_path, registry, app_image, test_tag)
    assert proc.returncode == 0, proc.stdout[-3000:]
    digest = pushed["digest"]
    # The registry serves the manifest by digest, and its config is the local image.
    status, headers, body = registry.request("GET", f"/v2/{REPOSITORY}/manifests/{digest}",
                                             auth=(registry.username, registry.password))
    assert status == 200 and headers["Docker-Content-Digest"] == digest
    assert json.loads(body)["config"]["digest"] == docker_engine.images.get(app_image).id
    # The engine pulls by digest with the credentials (what a kubelet does with the pull Secret).
    pulled = docker_engine.images.pull(f"{registry.host}/{REPOSITORY}@{digest}",
                                       auth_config={"username": registry.username, "password": registry.password})
    assert pulled.id == docker_engine.images.get(app_image).id
    assert f"{registry.host}/{REPOSITORY}@{digest}" in pulled.attrs["RepoDigests"]


def test_a_wrong_password_fails_clearly_and_never_shows_the_password(registry, app_image, tmp_path, test_tag):
    canary = f"WrongCanary-{uuid.uuid4().hex}"
    result, proc = push(tmp_path, registry, app_image, test_tag + "-wrong", password=canary, verbosity=4)
    assert proc.returncode != 0
    assert result is None  # the play stopped at the push
    output = proc.stdout + proc.stderr
    assert f"registry {registry.host} refused the credentials of user 'velocity'" in output, output[-3000:]
    assert "secret/velocity/registry" in output
    log = (registry.ca.parent / "registry.log").read_text(errors="replace")
    leaks = [form[:6] for form in _forms(canary) if form in output or form in log]
    assert leaks == []
    assert registry.manifest_digest(REPOSITORY, test_tag + "-wrong") is None


def test_the_service_script_is_idempotent_and_never_prints_the_password(registry):
    script = ROOT / "scripts" / "services" / "registry.sh"
    before = {name: (registry.ca.parent / name).read_bytes() for name in ("ca.crt", "server.crt", "htpasswd")}
    again = subprocess.run(["bash", str(script), "start"], capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and "already running" in again.stderr, again.stderr
    assert {name: (registry.ca.parent / name).read_bytes() for name in before} == before
    env = subprocess.run(["bash", str(script), "env"], capture_output=True, text=True, check=True)
    assert f"VELOCITY_REGISTRY_PASSWORD_FILE={registry.password_file}" in env.stdout
    for out in (again.stdout + again.stderr, env.stdout + env.stderr):
        assert registry.password not in out
    assert subprocess.run(["bash", str(script), "status"]).returncode == 0


@pytest.mark.vault
def test_the_secrets_stage_writes_a_0600_pull_secret_and_never_prints_the_values(vault, registry, tmp_path):
    path = f"velocity/registry-canary-{uuid.uuid4().hex[:8]}"
    canary = f"RegistryCanary-{uuid.uuid4().hex}"
    vault.put_secret(path, {"username": "velocity-ci", "password": canary, "server": registry.host})
    token_file = tmp_path / "token"
    token_file.write_text(vault.app_token())
    token_file.chmod(0o600)
    out_dir = tmp_path / "secrets"
    role_vars = {
        "vault_secrets_url": vault.addr, "vault_secrets_auth_method": "token",
        "vault_secrets_token_file": str(token_file), "vault_secrets_env": {"SECRET_KEY": "velocity/app#secret_key"},
        "vault_secrets_database": {}, "vault_secrets_output_dir": str(out_dir), "vault_secrets_k8s_namespace": "velocity",
        "vault_secrets_registry_path": path,
    }
    tasks = """\
    - name: Deliver
      ansible.builtin.include_role:
        name: velocity.platform.vault_secrets
    - name: The image stage gets the credentials (hidden)
      ansible.builtin.assert:
        that:
          - vault_secrets_registry_auth.username == 'velocity-ci'
          - vault_secrets_registry_auth.server == registry_host
        quiet: true
      no_log: true
    - name: Where they went (no values)
      ansible.builtin.debug:
        var: vault_secrets_registry
    """
    try:
        first = run_play(tmp_path, tasks, dict(role_vars, registry_host=registry.host), verbosity=4)
        assert first.returncode == 0, first.stdout[-3000:]
        second = run_play(tmp_path, tasks, dict(role_vars, registry_host=registry.host), verbosity=4)
        assert second.returncode == 0, second.stdout[-3000:]
    finally:
        with vault.client() as c:
            c.delete(f"secret/metadata/{path}")

    manifest_file = out_dir / "registry-pull-secret.json"
    assert manifest_file.stat().st_mode & 0o777 == 0o600
    manifest = json.loads(manifest_file.read_text())
    assert manifest["apiVersion"] == "v1" and manifest["kind"] == "Secret"
    assert manifest["type"] == "kubernetes.io/dockerconfigjson"
    assert manifest["metadata"]["name"] == "velocity-registry" and manifest["metadata"]["namespace"] == "velocity"
    assert list(manifest["data"]) == [".dockerconfigjson"]
    encoded = manifest["data"][".dockerconfigjson"]
    config = json.loads(base64.b64decode(encoded))
    assert config["auths"][registry.host]["username"] == "velocity-ci"
    assert config["auths"][registry.host]["password"] == canary

    output = first.stdout + first.stderr + second.stdout + second.stderr
    assert "registry-pull-secret.json" in output and f"secret/{path}" in output
    leaks = [form[:6] for form in [*_forms(canary, "velocity-ci"), encoded, encoded[:40]] if form in output]
    assert leaks == []
    # Unchanged credentials: the second run leaves the file as it was.
    assert "changed: [localhost]" not in second.stdout.split("Write the registry pull Secret manifest")[1].split("TASK")[0]
