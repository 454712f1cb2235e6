"""The real app image: SBOM content, smoke test against PostgreSQL, and the failing case with a canary."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ansible_collections.velocity.platform.plugins.module_utils.image import sbom, smoke
from tests.runner import ROOT, ansible_env

pytestmark = [pytest.mark.docker, pytest.mark.slow]
CANARY = "canary-7f3Kq9ZtXw2M"


def test_image_runs_as_fixed_non_root_user_with_a_healthcheck(docker_engine, app_image):
    config = docker_engine.api.inspect_image(app_image)["Config"]
    assert config["User"] == "10001:10001"
    assert "velocity-app" in config["Healthcheck"]["Test"]
    assert config["Labels"]["org.opencontainers.image.version"] == "0.1.0"


def test_image_history_holds_no_secret_build_arg(docker_engine, app_image):
    history = json.dumps(docker_engine.api.history(app_image))
    for word in ("SECRET_KEY=", "DATABASE_URL=", "PASSWORD"):
        assert word not in history


def test_sbom_lists_os_and_python_packages_and_names_the_image(docker_engine, app_image, tmp_path):
    dest = tmp_path / "app.cdx.json"
    result = sbom.generate(docker_engine, app_image, str(dest))
    doc = json.loads(dest.read_text())
    image_id = docker_engine.api.inspect_image(app_image)["Id"]
    assert sbom.properties(doc)[sbom.PROP_IMAGE_ID] == image_id
    assert {"flask", "gunicorn", "structlog", "velocity-app"} <= set(result.stats["python_packages"])
    assert result.stats["components_by_type"]["deb"] > 50
    again = sbom.generate(docker_engine, app_image, str(dest))
    assert not again.changed and again.sha256 == result.sha256


def test_smoke_test_passes_against_the_real_database(docker_engine, app_image, postgres, fresh_database):
    # Only this test's containers count: one another run left behind (killed mid-test) is not ours to judge.
    before = set(smoke.leftover_containers(docker_engine))
    env = {"SECRET_KEY": CANARY + "-0123456789", "DATABASE_URL": postgres.url(database=fresh_database)}
    result = smoke.run_smoke_test(docker_engine, smoke.SmokeRequest(image=app_image, env=env, migrate=True))
    assert result.checks["readyz"] == 200 and result.checks["docker_health"] == "healthy"
    assert result.checks["uid"] == 10001 and result.checks["read_only_rootfs"] is True
    assert result.checks["capabilities"] == "none"
    assert not any(CANARY in line for line in result.logs_tail)
    assert set(smoke.leftover_containers(docker_engine)) - before == set()


def test_unreachable_database_fails_clearly_leaks_nothing_and_leaves_no_container(docker_engine, app_image, tmp_path):
    before = set(smoke.leftover_containers(docker_engine))
    env_file = tmp_path / "app.env"
    env_file.write_text(f"SECRET_KEY={CANARY}-key\nDATABASE_URL=postgresql://app:{CANARY}@127.0.0.1:1/velocity\n")
    env_file.chmod(0o600)
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "ansible"), "localhost", "-vvv", "-m", "velocity.platform.container_smoke_test",
         "-a", f"image={app_image} env_file={env_file} ready_timeout=5"],
        cwd=ROOT, env=ansible_env(), capture_output=True, text=True, timeout=600,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "/readyz answered 503" in output and "database" in output
    assert CANARY not in output
    assert set(smoke.leftover_containers(docker_engine)) - before == set()


def test_build_record_lists_the_tags_this_stage_gave_not_every_tag_of_the_image(docker_engine, app_image, tmp_path):
    """Another job's tag of the same image (a registry test's push, an operator's `docker tag`) is not part of
    the image stage's record: a re-run of the pipeline would otherwise rewrite it (check mode could not predict
    that). Its own additional tag is."""
    foreign = f"velocity/app:foreign-{tmp_path.name[-8:].lower()}"
    subprocess.run(["docker", "tag", app_image, foreign], check=True)
    try:
        proc = subprocess.run(
            [str(Path(sys.executable).parent / "ansible-playbook"), str(ROOT / "playbooks" / "build.yml"),
             "-e", "image_smoke_test_enabled=false", "-e", "image_sbom_enabled=false",
             "-e", f"image_artifacts_dir={tmp_path}", "-e", "image_registry=",
             "-e", json.dumps({"image_additional_tags": ["record-check"]})],
            cwd=ROOT, env=ansible_env(), capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stdout[-4000:]
        record = json.loads((tmp_path / "velocity_app-0.1.0.build.json").read_text())
        assert record["tags"] == ["velocity/app:0.1.0", "velocity/app:record-check"], record["tags"]
        held = docker_engine.images.get(app_image).tags
        assert foreign in held  # the engine does hold it: the record leaves it out
    finally:
        subprocess.run(["docker", "rmi", foreign, "velocity/app:record-check"], capture_output=True)
