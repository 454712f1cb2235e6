"""The stage contract holds for both inventories (inventory/local and inventory/example).

Each role publishes one fact (vault_secrets_delivery, image_build_result, deploy_release) and the next role's
defaults read it. tests/integration/contract/inventory_contract.yml resolves, through ansible-playbook with the
inventory, every role's defaults and each role's tasks/output.yml on stub results of the work (no Vault,
registry, Docker or cluster is called); this test asserts that what one stage writes is what the next one reads,
that a stage run alone falls back to the same paths, that the inventories re-derive none of it, and that the
example inventory is runnable once its addresses are real (site.yml passes --syntax-check with it and every role
variable resolves). A copy of the example inventory with the old drift (smoke test reading /run/velocity/app.env,
two Secret names) must be caught.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.runner import BIN, ROOT, ansible_env

ROLES = ROOT / "collections" / "ansible_collections" / "velocity" / "platform" / "roles"
CONTRACT_PLAY = ROOT / "tests" / "integration" / "contract" / "inventory_contract.yml"
STAGES = ("vault_secrets", "image", "deploy", "rollback")
# The inputs a stage takes from the previous one: an inventory setting them re-derives the wiring.
WIRED_INPUTS = ("image_smoke_env_file", "deploy_image", "deploy_image_id", "deploy_image_digest", "deploy_sbom_sha256",
                "deploy_app_version", "deploy_secret_file", "deploy_secret_name", "deploy_secret_lease",
                "deploy_image_pull_secret_file", "deploy_image_pull_secret_name", "deploy_dora_events_file",
                "rollback_dora_events_file", "rollback_deployment")
# What no inventory may need: its lookups are answered by these (an AWX credential or the CI's environment).
STUB_ENV = {"VELOCITY_PG_POD_HOST": "192.0.2.10", "VAULT_ROLE_ID": "contract-role-id",
            "VAULT_SECRET_ID": "contract-secret-id"}


def _env(state_dir: Path) -> dict[str, str]:
    return ansible_env({**STUB_ENV, "VELOCITY_STATE_DIR": str(state_dir)})


def resolve(inventory: Path, tmp_path: Path, extra: tuple[str, ...] = ()) -> dict:
    """Every stage's variables and published facts, resolved by ansible with ``inventory`` (and ``extra`` -e)."""
    names = {role: list(yaml.safe_load((ROLES / role / "defaults" / "main.yml").read_text())) for role in STAGES}
    names_file = tmp_path / "names.json"
    names_file.write_text(json.dumps({"contract_names": names}))
    out = tmp_path / "contract.json"
    run = subprocess.run([str(BIN / "ansible-playbook"), "-i", str(inventory), str(CONTRACT_PLAY),
                          "-e", f"@{names_file}", "-e", f"contract_out={out}", *extra],
                         capture_output=True, text=True, env=_env(tmp_path / "state"), cwd=str(ROOT), timeout=600)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    return json.loads(out.read_text())


def disagreements(c: dict) -> list[str]:
    """Where a stage reads something else than what the previous stage wrote (empty: the contract holds)."""
    delivery, built, release = (c["facts"][k] for k in ("vault_secrets_delivery", "image_build_result", "deploy_release"))
    secrets, image, deploy, rollback, alone = c["secrets"], c["image"], c["deploy"], c["rollback"], c["alone"]
    registry = secrets["vault_secrets_registry_path"] != ""
    pairs = [
        # the secrets stage publishes what it writes
        ("vault_secrets_delivery.env_file", delivery["env_file"], "vault_secrets_env_file", secrets["vault_secrets_env_file"]),
        ("vault_secrets_delivery.k8s_secret_file", delivery["k8s_secret_file"],
         "vault_secrets_k8s_secret_file", secrets["vault_secrets_k8s_secret_file"]),
        ("vault_secrets_delivery.k8s_namespace", delivery["k8s_namespace"], "deploy_namespace", deploy["deploy_namespace"]),
        # secrets -> image smoke test, secrets -> deploy
        ("image_smoke_env_file", image["image_smoke_env_file"], "vault_secrets_env_file", secrets["vault_secrets_env_file"]),
        ("deploy_secret_file", deploy["deploy_secret_file"], "vault_secrets_k8s_secret_file",
         secrets["vault_secrets_k8s_secret_file"]),
        ("deploy_secret_name", deploy["deploy_secret_name"], "vault_secrets_k8s_secret_name",
         secrets["vault_secrets_k8s_secret_name"]),
        ("deploy_secret_lease", deploy["deploy_secret_lease"], "vault_secrets_delivery.database_lease",
         delivery["database_lease"]),
        ("deploy_image_pull_secret_file", deploy["deploy_image_pull_secret_file"], "vault_secrets_registry_pull_secret_file",
         secrets["vault_secrets_registry_pull_secret_file"] if registry else ""),
        ("deploy_image_pull_secret_name", deploy["deploy_image_pull_secret_name"], "vault_secrets_registry_pull_secret_name",
         secrets["vault_secrets_registry_pull_secret_name"]),
        # the registry the image pushes to is the one the pull Secret is for
        ("image_registry", image["image_registry"], "vault_secrets_registry_server",
         secrets["vault_secrets_registry_server"] if registry else image["image_registry"]),
        # image -> deploy
        ("deploy_image", deploy["deploy_image"], "image_build_result.repo_digest or .image",
         built["repo_digest"] or built["image"]),
        ("deploy_image_digest", deploy["deploy_image_digest"], "image_build_result.digest", built["digest"]),
        ("deploy_image_id", deploy["deploy_image_id"], "image_build_result.id", built["id"]),
        ("deploy_sbom_sha256", deploy["deploy_sbom_sha256"], "image_build_result.sbom_sha256", built["sbom_sha256"]),
        ("deploy_schema_head", deploy["deploy_schema_head"], "image_build_result.schema_head", built["schema_head"]),
        ("deploy_schema_window", deploy["deploy_schema_window"], "image_build_result.schema_window",
         built["schema_window"]),
        # deploy -> rollback (same Deployment, cluster, environment and DORA sink)
        ("rollback_namespace", rollback["rollback_namespace"], "deploy_release.namespace", release["namespace"]),
        ("rollback_deployment", rollback["rollback_deployment"], "deploy_release.app", release["app"]),
        ("rollback_environment", rollback["rollback_environment"], "deploy_release.environment", release["environment"]),
        ("rollback_kubeconfig", rollback["rollback_kubeconfig"], "deploy_kubeconfig", deploy["deploy_kubeconfig"]),
        ("rollback_dora_events_file", rollback["rollback_dora_events_file"], "deploy_release.dora_events_file",
         release["dora_events_file"]),
        # a stage run alone falls back to where the previous stage writes by default
        ("image_smoke_env_file (alone)", alone["image"]["image_smoke_env_file"], "vault_secrets_env_file",
         secrets["vault_secrets_env_file"]),
        ("deploy_secret_file (alone)", alone["deploy"]["deploy_secret_file"], "vault_secrets_k8s_secret_file",
         secrets["vault_secrets_k8s_secret_file"]),
        ("deploy_secret_name (alone)", alone["deploy"]["deploy_secret_name"], "vault_secrets_k8s_secret_name",
         secrets["vault_secrets_k8s_secret_name"]),
        ("rollback_dora_events_file (alone)", alone["rollback"]["rollback_dora_events_file"], "deploy_dora_events_file",
         alone["deploy"]["deploy_dora_events_file"]),
    ]
    return [f"{a}={va!r} but {b}={vb!r}" for a, va, b, vb in pairs if va != vb]


def inventory_vars(inventory: Path, tmp_path: Path) -> dict:
    run = subprocess.run([str(BIN / "ansible-inventory"), "-i", str(inventory), "--list", "--export"],
                         capture_output=True, text=True, env=_env(tmp_path / "state"), cwd=str(ROOT), timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    data = json.loads(run.stdout)
    found: dict = {}
    for group in data.values():
        if isinstance(group, dict):
            found.update(group.get("vars", {}))
    for host in data.get("_meta", {}).get("hostvars", {}).values():
        found.update(host)
    return found


@pytest.fixture(scope="module", params=["local", "example"])
def contract(request, tmp_path_factory):
    tmp = tmp_path_factory.mktemp(f"contract-{request.param}")
    return request.param, resolve(ROOT / "inventory" / request.param, tmp), tmp


def test_every_stage_reads_what_the_previous_one_wrote(contract):
    name, c, _ = contract
    assert disagreements(c) == [], f"inventory/{name}"
    # One Secret name, and the image goes by digest once pushed.
    assert c["facts"]["vault_secrets_delivery"]["k8s_secret_name"] == "velocity-app-secrets"
    assert "@sha256:" in c["deploy"]["deploy_image"], c["deploy"]["deploy_image"]
    # The schema the image asked for reaches the deploy (the pair above would also hold for two empty values).
    assert c["deploy"]["deploy_schema_window"] == ["0002_stub", "0001_visits"]


def test_no_secret_value_is_published(contract):
    _, c, _ = contract
    assert c["secrets"]["vault_secrets_export_facts"] is False
    assert "password" not in c["facts"]["vault_secrets_delivery"]["database_lease"]
    assert "stub-password" not in json.dumps(c["facts"])


def test_the_state_directory_is_located_one_way(contract):
    name, c, tmp = contract
    state = str(tmp / "state") if name == "local" else "/var/lib/velocity"
    for value in (c["secrets"]["vault_secrets_env_file"], c["image"]["image_artifacts_dir"],
                  c["deploy"]["deploy_dora_events_file"], c["rollback"]["rollback_dora_events_file"],
                  c["alone"]["deploy"]["deploy_secret_file"]):
        assert value.startswith(state + "/"), (name, value)
    # Nothing is located relative to a role: the app and the git checkout are this project's.
    assert c["image"]["image_context_dir"] == str(ROOT / "app")
    assert Path(c["deploy"]["deploy_source_dir"]).resolve().is_relative_to(ROOT)


@pytest.mark.parametrize("name", ["local", "example"])
def test_inventories_do_not_rederive_the_wiring(name, tmp_path):
    rederived = sorted(set(inventory_vars(ROOT / "inventory" / name, tmp_path)) & set(WIRED_INPUTS))
    assert rederived == [], f"inventory/{name} sets {rederived}: the role defaults read the previous stage's fact"


def test_the_example_inventory_runs_site_yml():
    """Syntax and every role variable (the contract fixture templates all of them); its addresses are examples."""
    run = subprocess.run([str(BIN / "ansible-playbook"), "-i", str(ROOT / "inventory" / "example"),
                          str(ROOT / "playbooks" / "site.yml"), "--syntax-check"],
                         capture_output=True, text=True, env=_env(Path("/nonexistent")), cwd=str(ROOT), timeout=300)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "playbook: " in run.stdout


def test_the_old_drift_is_caught(tmp_path):
    """The drift this contract replaced: the smoke test read /run/velocity/app.env, the deploy another Secret name."""
    inventory = tmp_path / "inventory"
    shutil.copytree(ROOT / "inventory" / "example", inventory)
    group_vars = inventory / "group_vars" / "all"
    with (group_vars / "image.yml").open("a") as f:
        f.write("image_smoke_env_file: /run/velocity/app.env\n")
    with (group_vars / "vault.yml").open("a") as f:
        f.write("vault_secrets_k8s_secret_name: velocity-app-env\n")
    with (group_vars / "deploy.yml").open("a") as f:
        f.write("deploy_secret_name: velocity-app-secrets\n")
    found = disagreements(resolve(inventory, tmp_path))
    assert any(d.startswith("image_smoke_env_file='/run/velocity/app.env'") for d in found), found
    assert any(d.startswith("deploy_secret_name='velocity-app-secrets' but vault_secrets_k8s_secret_name='velocity-app-env'")
               for d in found), found


def test_a_deploy_run_alone_reads_the_secrets_stage_files_where_the_operator_put_them(tmp_path):
    """Secrets written elsewhere (vault_secrets_output_dir, or one file and name set alone) and then deploy.yml run by
    itself: the deploy applies those files, not the default state directory's (which may hold another release's
    credentials, revoked since)."""
    elsewhere, first, second = tmp_path / "elsewhere", tmp_path / "dir", tmp_path / "file"
    for folder in (elsewhere, first, second):
        folder.mkdir()
    (elsewhere / "registry-pull-secret.json").write_text("{}")
    c = resolve(ROOT / "inventory" / "local", first, ("-e", f"vault_secrets_output_dir={elsewhere}"))
    alone = c["alone"]["deploy"]
    assert alone["deploy_secret_file"] == str(elsewhere / "app-secret.json") == c["secrets"]["vault_secrets_k8s_secret_file"]
    assert alone["deploy_image_pull_secret_file"] == str(elsewhere / "registry-pull-secret.json")
    one = tmp_path / "one" / "s.json"
    c = resolve(ROOT / "inventory" / "local", second,
                ("-e", f"vault_secrets_k8s_secret_file={one}", "-e", "vault_secrets_k8s_secret_name=other-secrets"))
    assert c["alone"]["deploy"]["deploy_secret_file"] == str(one)
    assert c["alone"]["deploy"]["deploy_secret_name"] == "other-secrets"
