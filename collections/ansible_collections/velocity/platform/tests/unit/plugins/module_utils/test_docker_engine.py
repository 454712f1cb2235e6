"""Which Docker Engine the modules talk to, and how (no engine needed: a fake environment and a
temporary DOCKER_CONFIG holding a context laid out as `docker context create` lays it out)."""

from __future__ import annotations

import hashlib
import json

import pytest
from docker.utils import kwargs_from_env

from ansible_collections.velocity.platform.plugins.module_utils.image.engine import (
    DEFAULT_DOCKER_HOST,
    DockerModuleError,
    EngineSettings,
    env_tls,
    probe_host,
)

ENV_VARS = ("DOCKER_HOST", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH", "DOCKER_CONTEXT", "DOCKER_CONFIG")


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    """No Docker variable from the machine, and an empty Docker config dir (no current context)."""
    for var in ENV_VARS:
        monkeypatch.delenv(var, raising=False)
    config = tmp_path / "docker-config"
    config.mkdir()
    monkeypatch.setenv("DOCKER_CONFIG", str(config))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return config


def tls_dir(path, names=("ca.pem", "cert.pem", "key.pem")):
    path.mkdir(parents=True, exist_ok=True)
    for name in names:
        (path / name).write_text(f"-----BEGIN {name}-----\n")
    return path


def add_context(config, name, host, tls=True, skip_verify=False):
    """A context as the Docker CLI stores it: meta/<sha256(name)>/meta.json and tls/<sha256(name)>/docker/*.pem."""
    digest = hashlib.sha256(name.encode()).hexdigest()
    meta = config / "contexts" / "meta" / digest
    meta.mkdir(parents=True)
    (meta / "meta.json").write_text(json.dumps({
        "Name": name, "Metadata": {"Description": "test"},
        "Endpoints": {"docker": {"Host": host, "SkipTLSVerify": skip_verify}},
    }))
    if tls:
        return tls_dir(config / "contexts" / "tls" / digest / "docker")
    return None


def set_current(config, name):
    (config / "config.json").write_text(json.dumps({"currentContext": name}))


def resolve(params=None, **env):
    """Resolve against the (cleaned) process environment plus `env`; os.environ itself is never changed."""
    import os

    return EngineSettings.from_params(dict(params or {}), environ={**os.environ, **env})


def test_nothing_set_is_the_default_socket_without_tls(clean_env):
    s = resolve()
    assert (s.docker_host, s.source, s.use_tls) == (DEFAULT_DOCKER_HOST, "default", False)


def test_docker_host_with_tls_verify_and_cert_path_is_read_as_docker_py_reads_it(clean_env, tmp_path):
    certs = tls_dir(tmp_path / "certs")
    env = {"DOCKER_HOST": "tcp://builder.example:2376", "DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": str(certs)}
    s = resolve(**env)
    assert s.docker_host == "tcp://builder.example:2376" and s.source == "DOCKER_HOST"
    assert s.validate_certs and s.ca_path == str(certs / "ca.pem")
    assert (s.client_cert, s.client_key) == (str(certs / "cert.pem"), str(certs / "key.pem"))
    # The same TLS material docker.utils.kwargs_from_env builds for docker.from_env().
    reference = kwargs_from_env(environment=env)["tls"]
    ours = s.tls_config()
    assert (ours.cert, ours.ca_cert, ours.verify) == (reference.cert, reference.ca_cert, reference.verify)


@pytest.mark.parametrize("verify, expected", [("1", True), ("0", True), ("", False)])
def test_docker_tls_verify_counts_when_set_to_anything_but_empty(clean_env, tmp_path, verify, expected):
    certs = tls_dir(tmp_path / "certs")
    env = {"DOCKER_TLS_VERIFY": verify, "DOCKER_CERT_PATH": str(certs)}
    assert env_tls(env)["validate_certs"] is expected
    assert bool(kwargs_from_env(environment=env)["tls"].verify) is expected


def test_docker_tls_verify_alone_uses_certificates_in_home_docker(clean_env, tmp_path):
    s = resolve(DOCKER_HOST="tcp://h:2376", DOCKER_TLS_VERIFY="1")
    assert s.ca_path == str(tmp_path / "home" / ".docker" / "ca.pem")


def test_module_options_override_the_environment(clean_env, tmp_path):
    env_certs, opt_certs = tls_dir(tmp_path / "env"), tls_dir(tmp_path / "opt")
    s = resolve({"docker_host": "tcp://opt.example:2376", "ca_path": str(opt_certs / "ca.pem")},
                DOCKER_HOST="tcp://env.example:2376", DOCKER_TLS_VERIFY="1", DOCKER_CERT_PATH=str(env_certs))
    assert s.docker_host == "tcp://opt.example:2376" and s.source == "option docker_host"
    # The option replaces the one value it sets; the environment still gives the client certificate.
    assert s.ca_path == str(opt_certs / "ca.pem") and s.client_cert == str(env_certs / "cert.pem")
    assert "module options" in s.tls_source
    off = resolve({"validate_certs": False, "tls": False}, DOCKER_TLS_VERIFY="1", DOCKER_CERT_PATH=str(env_certs))
    assert off.use_tls is False


def test_validate_certs_option_alone_turns_tls_on(clean_env):
    s = resolve({"docker_host": "tcp://h:2376", "validate_certs": True})
    assert s.tls and s.validate_certs


def test_the_environment_wins_over_the_current_context(clean_env):
    add_context(clean_env, "remote", "tcp://ctx.example:2376")
    set_current(clean_env, "remote")
    assert resolve(DOCKER_HOST="tcp://env.example:2375").docker_host == "tcp://env.example:2375"


def test_current_context_of_the_config_file_with_its_tls_material(clean_env):
    certs = add_context(clean_env, "remote", "tcp://ctx.example:2376")
    set_current(clean_env, "remote")
    s = resolve()
    assert s.docker_host == "tcp://ctx.example:2376" and s.source.startswith("context 'remote'")
    assert s.validate_certs and s.ca_path == str(certs / "ca.pem")
    assert (s.client_cert, s.client_key) == (str(certs / "cert.pem"), str(certs / "key.pem"))
    assert s.probe_host == "ctx.example"


def test_docker_context_variable_wins_over_current_context(clean_env):
    add_context(clean_env, "one", "tcp://one.example:2376", tls=False)
    add_context(clean_env, "two", "ssh://me@two.example")
    set_current(clean_env, "one")
    s = resolve(DOCKER_CONTEXT="two")
    assert s.docker_host == "ssh://me@two.example" and "DOCKER_CONTEXT" in s.source
    assert s.probe_host == "127.0.0.1"


def test_context_option_wins_over_docker_host_and_skip_verify_is_kept(clean_env):
    add_context(clean_env, "lab", "tcp://lab.example:2376", skip_verify=True)
    s = resolve({"docker_context": "lab"}, DOCKER_HOST="tcp://env.example:2375")
    assert s.docker_host == "tcp://lab.example:2376" and s.tls and not s.validate_certs


def test_context_without_tls_material_is_plain(clean_env):
    add_context(clean_env, "plain", "tcp://plain.example:2375", tls=False)
    s = resolve({"docker_context": "plain"})
    assert s.use_tls is False


def test_default_context_name_means_the_socket(clean_env):
    set_current(clean_env, "default")
    assert resolve().docker_host == DEFAULT_DOCKER_HOST


def test_an_unknown_context_names_it_and_what_to_do(clean_env):
    with pytest.raises(DockerModuleError, match=r"context 'nope' \(DOCKER_CONTEXT\) does not exist in .*contexts: create it with `docker context create"):
        resolve(DOCKER_CONTEXT="nope")


def test_docker_host_and_docker_context_options_together_are_refused(clean_env):
    with pytest.raises(DockerModuleError, match="mutually exclusive"):
        resolve({"docker_host": "tcp://a:2376", "docker_context": "b"})


def test_a_missing_certificate_file_is_named_with_where_it_came_from(clean_env, tmp_path):
    s = resolve(DOCKER_HOST="tcp://h:2376", DOCKER_TLS_VERIFY="1", DOCKER_CERT_PATH=str(tmp_path / "missing"))
    with pytest.raises(DockerModuleError, match=r"ca_path '.*missing/ca.pem' \(from DOCKER_CERT_PATH"):
        s.tls_config()


def test_a_client_certificate_without_its_key_is_refused(clean_env, tmp_path):
    certs = tls_dir(tmp_path / "certs")
    s = resolve({"docker_host": "tcp://h:2376", "validate_certs": True, "client_cert": str(certs / "cert.pem")})
    with pytest.raises(DockerModuleError, match="client_key is missing"):
        s.tls_config()


@pytest.mark.parametrize("host, expected", [
    ("tcp://10.1.2.3:2376", "10.1.2.3"),
    ("tcp://builder.example:2376", "builder.example"),
    ("https://builder.example:2376", "builder.example"),
    ("unix:///var/run/docker.sock", "127.0.0.1"),
    ("ssh://me@builder.example", "127.0.0.1"),
])
def test_probe_host_is_the_tcp_engine_host_else_loopback(host, expected):
    assert probe_host(host) == expected


def test_a_context_is_found_in_a_docker_config_dir_without_config_json(clean_env):
    # docker-py's ContextAPI would look in ./contexts here; the CLI looks beside DOCKER_CONFIG.
    add_context(clean_env, "fresh", "tcp://fresh.example:2376", tls=False)
    assert not (clean_env / "config.json").exists()
    assert resolve(DOCKER_CONTEXT="fresh").docker_host == "tcp://fresh.example:2376"


@pytest.mark.parametrize("validate", [True, False])
def test_the_engine_ca_wins_over_requests_ca_bundle(clean_env, tmp_path, monkeypatch, validate):
    # requests#3829: a session's verify loses against REQUESTS_CA_BUNDLE unless passed per request.
    from ansible_collections.velocity.platform.plugins.module_utils.image.engine import _client_class

    certs = tls_dir(tmp_path / "certs")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tmp_path / "system-bundle.pem"))
    s = resolve({"docker_host": "tcp://127.0.0.1:1", "tls": True, "validate_certs": validate,
                 "ca_path": str(certs / "ca.pem"), "client_cert": str(certs / "cert.pem"),
                 "client_key": str(certs / "key.pem")})
    client = _client_class()(base_url=s.docker_host, tls=s.tls_config(), version="1.41")
    settings = client.api.merge_environment_settings("https://127.0.0.1:1/_ping", {}, False, None, None)
    assert settings["verify"] == (str(certs / "ca.pem") if validate else False)


def test_tls_without_verification_needs_no_ca_file(clean_env, tmp_path):
    certs = tls_dir(tmp_path / "certs", names=("cert.pem", "key.pem"))
    s = resolve(DOCKER_HOST="tcp://h:2376", DOCKER_TLS_VERIFY="", DOCKER_CERT_PATH=str(certs))
    assert s.tls and not s.validate_certs
    config = s.tls_config()
    assert config.verify is False and config.cert == (str(certs / "cert.pem"), str(certs / "key.pem"))


def test_an_engine_that_does_not_answer_is_named_with_its_source_and_what_to_do(clean_env):
    import socket

    from ansible_collections.velocity.platform.plugins.module_utils.image.engine import connect

    with socket.socket() as sock:  # a loopback port that nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    s = resolve(DOCKER_HOST=f"tcp://127.0.0.1:{port}")
    with pytest.raises(DockerModuleError) as exc:
        connect(s)
    message = str(exc.value)
    assert f"cannot reach the Docker Engine at tcp://127.0.0.1:{port} (from DOCKER_HOST)" in message
    assert "docker_host / docker_context, DOCKER_HOST or DOCKER_CONTEXT" in message
