"""Bad input to image_push and image_pull_secret: refused before any service, naming the field, nothing written.

The same rules as tests/reliability/test_bad_input.py (issue 7), for the two registry modules of issue 13:
the module file runs as Ansible runs it (``ANSIBLE_MODULE_ARGS`` on stdin), the Docker Engine is a closed
local port (a case that reached it would fail with "cannot reach", which the test refuses), the password
is a canary that must never be echoed, and the workspace (an existing pull Secret file, a Git working
tree) is byte-for-byte and mode-for-mode the same afterwards. Controls: valid input does reach the closed
port (image_push) or writes the file (image_pull_secret).
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MODULES_PKG = "ansible_collections.velocity.platform.plugins.modules"
CANARY = "bad-input-registry-password-0123456789"
UNSUPPORTED = "Unsupported parameters"

PUSH = {"image": "velocity/app:0.1.0", "registry": "127.0.0.1:5000", "repository": "velocity/app", "tag": "0.1.0",
        "username": "velocity", "password": CANARY, "docker_host": "{docker_host}", "api_timeout": 5}
PULL = {"dest": "{ws}/out/pull-secret.json", "name": "velocity-registry", "namespace": "velocity",
        "registry": "127.0.0.1:5000", "username": "velocity", "password": CANARY}
DROP = object()

CASES = [
    # image_push
    ("image_push", "api_timeout_not_an_int", {"api_timeout": "slow"}, ["api_timeout"]),
    ("image_push", "unknown_option", {"tags": ["x"]}, [UNSUPPORTED, "tags"]),
    ("image_push", "image_empty", {"image": ""}, ["image ''", "empty"]),
    ("image_push", "registry_empty", {"registry": ""}, ["registry ''", "empty"]),
    ("image_push", "password_without_username", {"username": ""}, ["username is empty", "give both"]),
    ("image_push", "username_without_password", {"password": ""}, ["password is empty", "give both"]),
    ("image_push", "image_uppercase", {"image": "Velocity/App:1"}, ["image 'Velocity/App:1'", "lowercase"]),
    ("image_push", "registry_with_scheme", {"registry": "https://127.0.0.1:5000"}, ["registry", "without a scheme"]),
    ("image_push", "registry_with_path", {"registry": "127.0.0.1:5000/velocity"}, ["registry", "without a path"]),
    ("image_push", "registry_port_out_of_range", {"registry": "127.0.0.1:70000"}, ["registry", "out of range"]),
    ("image_push", "repository_uppercase", {"repository": "Velocity/App"}, ["repository 'Velocity/App'", "lowercase"]),
    ("image_push", "tag_with_a_space", {"tag": "v1 beta"}, ["tag 'v1 beta'", "at most 128"]),
    # image_pull_secret
    ("image_pull_secret", "labels_is_a_list", {"labels": ["a"]}, ["labels"]),
    ("image_pull_secret", "unknown_option", {"data": {}}, [UNSUPPORTED, "data"]),
    ("image_pull_secret", "password_missing", {"password": DROP}, ["password"]),
    ("image_pull_secret", "password_empty", {"password": ""}, ["password is empty", "secret/velocity/registry"]),
    ("image_pull_secret", "username_empty", {"username": ""}, ["username is empty"]),
    ("image_pull_secret", "username_with_a_colon", {"username": "a:b"}, ["username must not contain ':'"]),
    ("image_pull_secret", "name_not_dns1123", {"name": "Bad_Name"}, ["name 'Bad_Name'", "DNS-1123"]),
    ("image_pull_secret", "namespace_not_dns1123", {"namespace": "Bad.NS"}, ["namespace 'Bad.NS'", "DNS-1123"]),
    ("image_pull_secret", "registry_with_scheme", {"registry": "https://r.example.com"}, ["registry", "without a scheme"]),
    ("image_pull_secret", "dest_in_a_git_tree", {"dest": "{ws}/repo/pull-secret.json"}, ["dest", "Git working tree"]),
    ("image_pull_secret", "dest_is_a_directory", {"dest": "{ws}/adir"}, ["dest {ws}/adir is a directory"]),
]


def fill(value, mapping: dict):
    if isinstance(value, str):
        for key, repl in mapping.items():
            value = value.replace("{%s}" % key, repl)
        return value
    if isinstance(value, dict):
        return {k: fill(v, mapping) for k, v in value.items() if v is not DROP}
    return value


@pytest.fixture(scope="module")
def closed_port():
    """A local port that is bound but never accepts: anything that connects fails at once."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    yield str(sock.getsockname()[1])
    sock.close()


def workspace(ws: Path) -> None:
    (ws / "out").mkdir(parents=True)
    (ws / "out" / "pull-secret.json").write_text('{"old": true}\n')
    (ws / "out" / "pull-secret.json").chmod(0o600)
    (ws / "adir").mkdir()
    (ws / "adir" / "keep.txt").write_text("keep\n")
    subprocess.run(["git", "init", "-q", str(ws / "repo")], check=True)


def snapshot(root: Path) -> dict:
    state = {}
    for dirpath, dirnames, filenames in os.walk(root):
        if ".git" in dirpath.split(os.sep):
            continue
        for name in dirnames + filenames:
            path = Path(dirpath, name)
            info = path.lstat()
            digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else ""
            state[str(path.relative_to(root))] = (info.st_mode, digest)
    return state


def run(module: str, args: dict, port: str, ws: Path) -> tuple[dict, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "collections"), os.environ.get("PYTHONPATH")]))
    env["DOCKER_HOST"] = f"tcp://127.0.0.1:{port}"
    proc = subprocess.run([sys.executable, "-m", f"{MODULES_PKG}.{module}"],
                          input=json.dumps({"ANSIBLE_MODULE_ARGS": args}), capture_output=True, text=True, env=env,
                          cwd=ws, timeout=120)
    try:
        result = json.loads(proc.stdout)
    except ValueError:
        result = {"failed": True, "msg": "<no JSON result>"}
    return result, proc.stdout + proc.stderr


@pytest.mark.parametrize("module, name, overrides, expect", CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_bad_input_is_refused_before_the_engine_and_writes_nothing(module, name, overrides, expect, closed_port,
                                                                    tmp_path):
    workspace(tmp_path)
    mapping = {"ws": str(tmp_path), "docker_host": f"tcp://127.0.0.1:{closed_port}"}
    base = PUSH if module == "image_push" else PULL
    before = snapshot(tmp_path)
    result, output = run(module, fill(dict(base, **overrides), mapping), closed_port, tmp_path)
    msg = str(result.get("msg", ""))
    assert result.get("failed") is True, output
    assert not result.get("changed"), output
    for needle in expect:
        assert fill(needle, mapping) in msg, (needle, msg)
    assert "Traceback (most recent call last)" not in output
    assert "cannot reach" not in msg and closed_port not in msg, "the module contacted the engine first: " + msg
    assert CANARY not in output
    assert snapshot(tmp_path) == before


def test_valid_push_input_does_reach_the_closed_port(closed_port, tmp_path):
    result, output = run("image_push", fill(PUSH, {"docker_host": f"tcp://127.0.0.1:{closed_port}"}), closed_port,
                         tmp_path)
    assert result.get("failed") is True and "cannot reach the Docker Engine" in result["msg"], output
    assert closed_port in result["msg"] and CANARY not in output


def test_valid_pull_secret_input_writes_the_file_0600(closed_port, tmp_path):
    workspace(tmp_path)
    result, output = run("image_pull_secret", fill(PULL, {"ws": str(tmp_path)}), closed_port, tmp_path)
    assert result.get("changed") is True and not result.get("failed"), output
    dest = tmp_path / "out" / "pull-secret.json"
    assert dest.stat().st_mode & 0o777 == 0o600
    assert json.loads(dest.read_text())["type"] == "kubernetes.io/dockerconfigjson"
    assert CANARY not in output
    again, _ = run("image_pull_secret", fill(PULL, {"ws": str(tmp_path)}), closed_port, tmp_path)
    assert again.get("changed") is False
