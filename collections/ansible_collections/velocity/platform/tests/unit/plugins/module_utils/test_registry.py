# -*- coding: utf-8 -*-
"""module_utils/image/registry.py: input checks, error wording and the pull Secret, without an engine."""
from __future__ import annotations

import base64
import json

import pytest

from ansible_collections.velocity.platform.plugins.module_utils.image.engine import DockerModuleError
from ansible_collections.velocity.platform.plugins.module_utils.image.registry import (
    PushRequest,
    default_target,
    dockerconfigjson,
    explain,
    pull_secret_manifest,
    pull_secret_problem,
    registry_problem,
    render_manifest,
    scrub,
)

PASSWORD = "s3cret-Canary-0123456789"


@pytest.mark.parametrize("value", ["127.0.0.1:5000", "localhost:5000", "registry.example.com", "r.example.com:443"])
def test_registry_addresses_accepted(value):
    assert registry_problem(value) is None


@pytest.mark.parametrize("value, words", [
    ("", "empty"),
    ("https://127.0.0.1:5000", "without a scheme"),
    ("127.0.0.1:5000/velocity", "without a path"),
    ("bad host", "not a host name"),
    ("127.0.0.1:70000", "out of range"),
])
def test_bad_registry_addresses_say_what_is_wrong(value, words):
    assert words in registry_problem(value)


@pytest.mark.parametrize("source, expected", [
    ("velocity/app:0.1.0", ("velocity/app", "0.1.0")),
    ("velocity/app", ("velocity/app", "latest")),
    ("127.0.0.1:5000/velocity/app:1", ("velocity/app", "1")),
    ("registry.example.com/velocity/app@sha256:" + "a" * 64, ("velocity/app", "latest")),
])
def test_default_target_strips_the_registry_host(source, expected):
    assert default_target(source) == expected


def request(**kw):
    base = dict(source="velocity/app:0.1.0", registry="127.0.0.1:5000", repository="velocity/app", tag="0.1.0",
                username="velocity", password=PASSWORD)
    return PushRequest(**dict(base, **kw))


def test_a_valid_request_passes_and_names_its_reference():
    req = request()
    req.validate()
    assert req.ref == "127.0.0.1:5000/velocity/app:0.1.0"
    assert PASSWORD not in repr(req)


@pytest.mark.parametrize("kw, field", [
    ({"source": "Velocity/App"}, "image"),
    ({"registry": "https://r"}, "registry"),
    ({"repository": "Velocity"}, "repository"),
    ({"tag": "-bad"}, "tag"),
    ({"password": ""}, "password is empty"),
    ({"username": ""}, "username is empty"),
])
def test_bad_requests_name_the_option(kw, field):
    with pytest.raises(DockerModuleError) as exc:
        request(**kw).validate()
    assert str(exc.value).startswith(field)
    assert PASSWORD not in str(exc.value)


def test_a_refused_login_names_the_registry_the_user_and_vault_never_the_password():
    auth = base64.b64encode(f"velocity:{PASSWORD}".encode()).decode()
    msg = explain(request(), f"unauthorized: authentication required (sent {PASSWORD} / {auth})")
    assert "registry 127.0.0.1:5000" in msg and "'velocity'" in msg and "secret/velocity/registry" in msg
    assert PASSWORD not in msg and auth not in msg


@pytest.mark.parametrize("engine_message, words", [
    ("Get https://127.0.0.1:5000/v2/: x509: certificate signed by unknown authority", "/etc/docker/certs.d/127.0.0.1:5000/ca.crt"),
    ("dial tcp 127.0.0.1:5000: connect: connection refused", "scripts/services/registry.sh start"),
    ("denied: requested access to the resource is denied", "push rights"),
])
def test_other_registry_failures_say_what_to_do(engine_message, words):
    assert words in explain(request(), engine_message)


def test_scrub_hides_every_given_secret():
    assert scrub(f"a {PASSWORD} b", [PASSWORD, ""]) == "a ******** b"


def test_pull_secret_is_a_dockerconfigjson_secret_for_the_registry():
    manifest = pull_secret_manifest("velocity-registry", "velocity", "127.0.0.1:5000", "velocity", PASSWORD,
                                    annotations={"argocd.argoproj.io/sync-wave": "-1"})
    assert manifest["type"] == "kubernetes.io/dockerconfigjson"
    assert manifest["metadata"] == {"name": "velocity-registry", "namespace": "velocity",
                                    "annotations": {"argocd.argoproj.io/sync-wave": "-1"}}
    config = json.loads(base64.b64decode(manifest["data"][".dockerconfigjson"]))
    entry = config["auths"]["127.0.0.1:5000"]
    assert entry["username"] == "velocity" and entry["password"] == PASSWORD
    assert base64.b64decode(entry["auth"]).decode() == f"velocity:{PASSWORD}"
    # Stable bytes: the same input renders the same file (changed=false on a second run).
    assert render_manifest(manifest) == render_manifest(json.loads(render_manifest(manifest)))
    assert dockerconfigjson("r", "u", "p") == dockerconfigjson("r", "u", "p")


@pytest.mark.parametrize("args, words", [
    (("Bad_Name", "velocity", "r:5000", "u", "p"), "name"),
    (("ok", "Bad.NS", "r:5000", "u", "p"), "namespace"),
    (("ok", "velocity", "https://r", "u", "p"), "registry"),
    (("ok", "velocity", "r:5000", "", "p"), "username is empty"),
    (("ok", "velocity", "r:5000", "u", ""), "password is empty"),
    (("ok", "velocity", "r:5000", "a:b", "p"), "must not contain ':'"),
])
def test_pull_secret_inputs_are_checked_by_name(args, words):
    problem = pull_secret_problem(*args)
    assert problem and words in problem
