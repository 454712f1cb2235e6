"""Env-file parsing and secret masking of container_smoke_test (no Docker needed)."""

from __future__ import annotations

import pytest

from ansible_collections.velocity.platform.plugins.module_utils.image.engine import DockerModuleError
from ansible_collections.velocity.platform.plugins.module_utils.image.smoke import (
    MASK,
    SmokeRequest,
    SmokeTest,
    parse_env_file,
    scrub,
    sensitive_values,
)

CANARY = "canary-Zq8xWv2pLm"


def test_env_file_is_read_as_docker_reads_it(tmp_path):
    path = tmp_path / "app.env"
    # docker --env-file keeps quotes: a value is everything after the first '='.
    path.write_text(f"# comment\n\nSECRET_KEY='{CANARY}'\nDATABASE_URL=postgresql://u:p@h:1/d?x=1\nEMPTY=\nLOG_LEVEL=INFO\n")
    env = parse_env_file(str(path))
    assert env == {"SECRET_KEY": f"'{CANARY}'", "DATABASE_URL": "postgresql://u:p@h:1/d?x=1", "EMPTY": "",
                   "LOG_LEVEL": "INFO"}


def test_shell_format_env_file_is_unquoted(tmp_path):
    path = tmp_path / "app.env"
    path.write_text("# Written by velocity.platform.vault_secrets (shell format). Do not edit.\n"
                    f"export SECRET_KEY='{CANARY}'\nDATABASE_URL='postgresql://u:p@h:1/d'\n")
    assert parse_env_file(str(path)) == {"SECRET_KEY": CANARY, "DATABASE_URL": "postgresql://u:p@h:1/d"}


def test_a_bad_env_line_is_reported_by_number_never_by_content(tmp_path):
    path = tmp_path / "app.env"
    path.write_text(f"SECRET_KEY=ok\n{CANARY}\n")
    with pytest.raises(DockerModuleError) as exc:
        parse_env_file(str(path))
    assert "line 2" in str(exc.value)
    assert CANARY not in str(exc.value)


def test_missing_env_file_names_the_path(tmp_path):
    with pytest.raises(DockerModuleError, match="env_file"):
        parse_env_file(str(tmp_path / "nope.env"))


def test_sensitive_values_cover_secret_keys_long_values_and_url_passwords():
    env = {"SECRET_KEY": "abc", "DATABASE_URL": "postgresql://app:pw1@db:5432/x", "LOG_LEVEL": "INFO", "SERVICE_NAME": "velocity-app"}
    values = sensitive_values(env)
    assert {"abc", "postgresql://app:pw1@db:5432/x", "pw1", "velocity-app"} <= values
    assert "INFO" not in values


def test_scrub_masks_urls_whole_and_passwords_alone():
    secrets = sensitive_values({"DATABASE_URL": f"postgresql://app:{CANARY}@db/x"})
    text = scrub(f"url postgresql://app:{CANARY}@db/x and password {CANARY}", secrets)
    assert CANARY not in text
    assert text.count(MASK) == 2


class FakeImageApi:
    def inspect_image(self, ref):
        return {"Config": {"Healthcheck": {"Test": ["CMD", "velocity-app", "healthcheck", "--url", "http://127.0.0.1:8000/healthz"]}}}


class FakeClient:
    api = FakeImageApi()


def test_failure_messages_never_carry_env_values():
    test = SmokeTest(FakeClient(), SmokeRequest(image="x", env={"SECRET_KEY": CANARY}))
    exc = test.failure(f"something echoed {CANARY}")
    assert CANARY not in str(exc)
    assert CANARY not in repr(test.req)


def test_host_network_points_the_health_check_at_the_chosen_port():
    test = SmokeTest(FakeClient(), SmokeRequest(image="x", port=18123))
    hc = test._healthcheck(FakeClient.api.inspect_image("x"))
    assert hc["test"][-1] == "http://127.0.0.1:18123/healthz"
    assert test._env()["GUNICORN_BIND"] == "127.0.0.1:18123"


def test_an_image_without_healthcheck_is_refused():
    test = SmokeTest(FakeClient(), SmokeRequest(image="x"))
    with pytest.raises(DockerModuleError, match="HEALTHCHECK"):
        test._healthcheck({"Config": {}})
