"""The env file the secrets stage writes is read by the smoke test exactly as Docker reads it."""

from __future__ import annotations

import subprocess

import pytest

from ansible_collections.velocity.platform.plugins.module_utils.common import envfile
from ansible_collections.velocity.platform.plugins.module_utils.image.smoke import parse_env_file

pytestmark = pytest.mark.docker

TRICKY = {
    "QUOTED": "'single'",
    "DOUBLE": '"double"',
    "EQUALS": "a=b=c",
    "SPACES": "two  words ",
    "HASH": "x #not-a-comment",
    "DOLLAR": "$HOME and ${PATH}",
    "BACKSLASH": "a\\nb\\t",
    "EMPTY": "",
}


def test_docker_and_the_smoke_test_read_the_same_values(app_image, tmp_path):
    path = tmp_path / "app.env"
    path.write_bytes(envfile.render(TRICKY, "docker"))
    out = subprocess.run(["docker", "run", "--rm", "--env-file", str(path), "--entrypoint", "env", app_image],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    seen = dict(line.split("=", 1) for line in out.stdout.splitlines() if line.split("=", 1)[0] in TRICKY)
    assert seen == TRICKY
    assert parse_env_file(str(path)) == TRICKY
