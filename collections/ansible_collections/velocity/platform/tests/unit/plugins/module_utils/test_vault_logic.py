# -*- coding: utf-8 -*-
"""Unit tests for the vault_* module_utils: no network, a scripted fake HTTP session."""
from __future__ import annotations

import json
import os
import shlex
import subprocess
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.velocity.platform.plugins.module_utils.common import files
from ansible_collections.velocity.platform.plugins.module_utils.vault import auth as vault_auth
from ansible_collections.velocity.platform.plugins.module_utils.vault import db as vault_db
from ansible_collections.velocity.platform.plugins.module_utils.vault import kv as vault_kv
from ansible_collections.velocity.platform.plugins.module_utils.vault import output as vault_output
from ansible_collections.velocity.platform.plugins.module_utils.vault.client import (
    VaultAuthError,
    VaultClient,
    VaultConfigError,
    VaultConnection,
    VaultKeyMissing,
    VaultPermissionDenied,
    VaultSealed,
    VaultTokenInvalid,
    VaultUnreachable,
)

requests = pytest.importorskip("requests")

TOKEN = "s.unit-test-token-value"


class FakeResponse:
    def __init__(self, status: int, body: dict | None = None):
        self.status_code = status
        self._body = body
        self.content = json.dumps(body).encode() if body is not None else b""

    def json(self):
        if self._body is None:
            raise ValueError("no body")
        return self._body


class FakeSession:
    """Answers by (method, path) from a routing function; records every call."""

    def __init__(self, route):
        self.route = route
        self.calls = []
        self.lock = threading.Lock()

    def request(self, method, url, json=None, headers=None, timeout=None, verify=None):
        path = url.split("/v1/", 1)[1]
        with self.lock:
            self.calls.append((method, path, dict(headers or {})))
        answer = self.route(method, path, json)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def close(self):
        pass


def make_client(route, token=TOKEN, retries=2):
    sleeps = []
    client = VaultClient(VaultConnection(url="http://vault.test:8200", retries=retries, retry_backoff=0.1),
                         token=token, sleep=sleeps.append)
    client.session = FakeSession(route)
    return client, sleeps


def kv_route(secrets: dict, version: int = 3):
    def route(method, path, body):
        if path == "sys/internal/ui/mounts/secret":
            return FakeResponse(200, {"data": {"type": "kv", "options": {"version": "2"}}})
        if path.startswith("secret/data/"):
            p = path[len("secret/data/"):].split("?")[0]
            if p in secrets:
                return FakeResponse(200, {"data": {"data": secrets[p], "metadata": {"version": version}}})
            return FakeResponse(404, {"errors": []})
        return FakeResponse(404, {"errors": []})
    return route


# -- references ---------------------------------------------------------------------------------

@pytest.mark.parametrize("ref,expected", [
    ("velocity/app#secret_key", ("velocity/app", "secret_key", None)),
    ("/velocity/app/#k@4", ("velocity/app", "k", 4)),
])
def test_ref_parsing(ref, expected):
    r = vault_kv.SecretRef.parse("SECRET_KEY", ref)
    assert (r.path, r.key, r.version) == expected


@pytest.mark.parametrize("env,ref,needle", [
    ("1BAD", "a#b", "not a valid environment variable name"),
    ("OK", "no-key", "is not of the form 'path#key'"),
    ("OK", "a#b@x", "is not of the form"),
    ("OK", 42, "is not of the form"),
])
def test_bad_refs_name_the_variable(env, ref, needle):
    with pytest.raises(VaultConfigError, match=needle):
        vault_kv.SecretRef.parse(env, ref)


def test_each_path_is_read_once_and_keys_are_mapped():
    client, dummy = make_client(kv_route({"velocity/app": {"a": "1", "b": "2"}, "velocity/x": {"c": 3}}))
    refs = vault_kv.parse_refs({"A": "velocity/app#a", "B": "velocity/app#b", "C": "velocity/x#c"})
    values, versions = vault_kv.read_secrets(client, refs)
    assert values == {"A": "1", "B": "2", "C": "3"}
    reads = [c for c in client.session.calls if c[1].startswith("secret/data/")]
    assert len(reads) == 2
    assert all(c[2]["X-Vault-Token"] == TOKEN for c in client.session.calls)
    assert versions == {"velocity/app": {"version": 3}, "velocity/x": {"version": 3}}


def test_reads_run_in_parallel():
    barrier = threading.Barrier(4, timeout=5)
    inner = kv_route({f"p{i}": {"k": str(i)} for i in range(4)})

    def route(method, path, body):
        if path.startswith("secret/data/"):
            barrier.wait()  # deadlocks (BrokenBarrierError) unless 4 reads are in flight together
        return inner(method, path, body)

    client, dummy = make_client(route)
    refs = vault_kv.parse_refs({f"E{i}": f"p{i}#k" for i in range(4)})
    values, dummy = vault_kv.read_secrets(client, refs, max_workers=4)
    assert values == {f"E{i}": str(i) for i in range(4)}


def test_missing_key_message_has_names_not_values():
    client, dummy = make_client(kv_route({"velocity/app": {"present": "TOPSECRETVALUE"}}))
    with pytest.raises(VaultKeyMissing) as err:
        vault_kv.read_secrets(client, vault_kv.parse_refs({"X": "velocity/app#absent"}))
    assert "keys there: present" in str(err.value) and "TOPSECRETVALUE" not in str(err.value)


# -- client: retries and error mapping ------------------------------------------------------------

def test_transient_errors_are_retried_with_backoff():
    answers = iter([FakeResponse(502, {"errors": ["bad gateway"]}), requests.exceptions.ConnectionError("reset"),
                    FakeResponse(200, {"data": {"ok": True}})])
    client, sleeps = make_client(lambda *a: next(answers))
    assert client.read("some/path") == {"data": {"ok": True}}
    assert len(sleeps) == 2 and 0.1 <= sleeps[0] < 0.13 and 0.2 <= sleeps[1] < 0.26


def test_unreachable_after_retries_names_the_address():
    client, sleeps = make_client(lambda *a: requests.exceptions.ConnectionError("refused"), retries=1)
    with pytest.raises(VaultUnreachable, match=r"vault.test:8200 is unreachable after 2 attempt"):
        client.read("x")
    assert len(sleeps) == 1


def test_sealed_is_reported_not_retried():
    def route(method, path, body):
        if path == "sys/seal-status":
            return FakeResponse(200, {"initialized": True, "sealed": True})
        return FakeResponse(503, {"errors": ["Vault is sealed"]})
    client, sleeps = make_client(route)
    with pytest.raises(VaultSealed, match="is sealed: unseal it"):
        client.read("secret/data/x")
    assert sleeps == []


@pytest.mark.parametrize("lookup_status,error", [(403, VaultTokenInvalid), (200, VaultPermissionDenied)])
def test_403_tells_bad_token_from_policy(lookup_status, error):
    def route(method, path, body):
        if path == "auth/token/lookup-self":
            return FakeResponse(lookup_status, {"data": {}} if lookup_status == 200 else {"errors": ["permission denied"]})
        return FakeResponse(403, {"errors": ["permission denied"]})
    client, dummy = make_client(route)
    with pytest.raises(error) as err:
        client.read("secret/data/other")
    assert TOKEN not in str(err.value)


def test_connection_options_fall_back_to_environment(tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    conn = VaultConnection.from_options({}, environ={"VAULT_ADDR": "https://v:8200/", "VAULT_NAMESPACE": "team",
                                                     "VAULT_CACERT": str(ca)})
    assert (conn.url, conn.namespace, conn.ca_cert, conn.validate_certs) == ("https://v:8200", "team", str(ca), True)
    assert VaultConnection.from_options({"url": "http://a"}, environ={"VAULT_SKIP_VERIFY": "true"}).validate_certs is False
    with pytest.raises(VaultConfigError, match="VAULT_ADDR"):
        VaultConnection.from_options({}, environ={})
    with pytest.raises(VaultConfigError, match="not a file"):
        VaultConnection.from_options({"url": "http://a", "ca_cert": str(tmp_path / "nope")}, environ={})


def test_namespace_header_and_one_session():
    client = VaultClient(VaultConnection(url="http://v", namespace="team"), token=TOKEN)
    assert client.session.headers["X-Vault-Namespace"] == "team"


# -- auth selector -------------------------------------------------------------------------------

def test_selector_knows_every_method_and_rejects_others():
    assert sorted(vault_auth.AUTH_METHODS) == ["approle", "jwt", "kubernetes", "token"]
    with pytest.raises(VaultConfigError, match="not supported; use one of approle, jwt, kubernetes, token"):
        vault_auth.select_auth_method({"auth_method": "ldap"}, environ={})


@pytest.mark.parametrize("options,needle", [
    ({"auth_method": "token"}, "needs a token"),
    ({"auth_method": "approle"}, "needs role_id"),
    ({"auth_method": "jwt", "role_id": "r"}, "needs 'jwt' or 'jwt_file'"),
    ({"auth_method": "kubernetes", "role_id": "r", "kubernetes_token_path": "/nonexistent/token"}, "cannot read"),
])
def test_validation_happens_before_any_request(options, needle):
    with pytest.raises(VaultConfigError, match=needle):
        vault_auth.select_auth_method(options, environ={})


def test_token_sources_in_order(tmp_path):
    f = tmp_path / "token"
    f.write_text("from-file\n")
    assert vault_auth.select_auth_method({"token_file": str(f)}, environ={})._token == "from-file"
    assert vault_auth.select_auth_method({"token_file": str(f)}, environ={"VAULT_TOKEN": "env"})._token == "env"
    assert vault_auth.select_auth_method({"token": "param"}, environ={"VAULT_TOKEN": "env"})._token == "param"


def test_kubernetes_login_sends_role_and_sa_token(tmp_path):
    token_file = tmp_path / "sa"
    token_file.write_text("eyJsa-token")
    method = vault_auth.select_auth_method({"auth_method": "kubernetes", "role_id": "velocity-app",
                                            "kubernetes_token_path": str(token_file)}, environ={})
    seen = {}

    def route(m, path, body):
        seen.update(path=path, body=body)
        return FakeResponse(200, {"auth": {"client_token": "new-token", "policies": ["velocity-app"]}})

    client, dummy = make_client(route, token=None)
    auth = method.authenticate(client)
    assert seen == {"path": "auth/kubernetes/login", "body": {"role": "velocity-app", "jwt": "eyJsa-token"}}
    assert client.token == "new-token" and "client_token" not in auth and client.login_count == 1


def test_failed_login_is_an_auth_error_without_credentials():
    method = vault_auth.select_auth_method({"auth_method": "approle", "role_id": "rid", "secret_id": "SID-VALUE"},
                                           environ={})
    client, dummy = make_client(lambda *a: FakeResponse(400, {"errors": ["invalid role or secret ID"]}), token=None)
    with pytest.raises(VaultAuthError) as err:
        method.authenticate(client)
    assert "invalid role or secret ID" in str(err.value) and "SID-VALUE" not in str(err.value)


# -- outputs -------------------------------------------------------------------------------------

def test_env_rendering_and_checksum():
    values = {"B": "two words", "A": "x=y"}
    assert vault_output.render_env(values).decode().splitlines()[1:] == ["A=x=y", "B=two words"]
    assert vault_output.checksum(values) == vault_output.checksum(dict(reversed(list(values.items()))))
    assert vault_output.checksum(values) != vault_output.checksum({"A": "x=y", "B": "two words "})
    with pytest.raises(VaultConfigError, match="B: the value has a line break"):
        vault_output.render_env({"B": "a\nb"})


@settings(max_examples=50, deadline=None)
@given(st.dictionaries(st.from_regex(r"V_[A-Z0-9_]{0,10}", fullmatch=True),  # V_: not a bash special like _ or PATH
                       st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
                               max_size=30), min_size=1, max_size=4))
def test_shell_format_round_trips_through_bash(tmp_path_factory, values):
    path = tmp_path_factory.mktemp("env") / "app.env"
    path.write_bytes(vault_output.render_env(values, "shell"))
    script = "set -a; . %s; set +a; python3 -c 'import json,os,sys; print(json.dumps({k: os.environ[k] for k in sys.argv[1:]}))' %s" % (
        shlex.quote(str(path)), " ".join(values))
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env={"PATH": os.environ["PATH"]},
                         check=True)
    assert json.loads(out.stdout) == values


def test_atomic_write_sets_mode_and_keeps_old_file_on_failure(tmp_path, monkeypatch):
    target = tmp_path / "app.env"
    files.atomic_write(str(target), b"A=1\n")
    assert target.stat().st_mode & 0o777 == 0o600 and target.read_bytes() == b"A=1\n"
    assert not files.needs_write(str(target), b"A=1\n")

    def no_space(*args):
        raise OSError(28, "No space left")

    monkeypatch.setattr(os, "replace", no_space)
    with pytest.raises(OSError):
        files.atomic_write(str(target), b"A=2\n")
    assert target.read_bytes() == b"A=1\n"
    assert [p.name for p in tmp_path.iterdir()] == ["app.env"]


def test_secret_manifest_and_names_only_diff(tmp_path):
    manifest = vault_output.secret_manifest({"SECRET_KEY": "v"}, "velocity-app-env", "velocity")
    assert manifest["data"] == {"SECRET_KEY": "dg=="}
    assert manifest["metadata"]["annotations"]["velocity.io/secret-checksum"].startswith("sha256:")
    with pytest.raises(VaultConfigError, match="not a valid Kubernetes object name"):
        vault_output.secret_manifest({}, "Bad_Name")
    old = tmp_path / "app.env"
    old.write_text("# c\nA=old\nB=same\n")
    diff = vault_output.names_diff(str(old), {"A": "new", "B": "same", "C": "added"})
    assert diff["after"] == "A=<hidden, changed>\nB=<hidden>\nC=<hidden, added>\n"
    assert "old" not in diff["before"] + diff["after"] and "new" not in diff["after"]


# -- database leases -----------------------------------------------------------------------------

def test_url_template_encodes_credentials():
    lease = vault_db.Lease("l", 60, True, 0, username="v-user", password="p@ss/w:rd")
    assert vault_db.render_url("postgresql://{username}:{password}@h/db", lease) == "postgresql://v-user:p%40ss%2Fw%3Ard@h/db"
    with pytest.raises(VaultConfigError):
        vault_db.render_url("postgresql://h/db", lease)
    assert "password" not in lease.public() and "p@ss" not in repr(lease)


def _db_route(ttl_left: int, known: bool = True):
    calls = []

    def route(method, path, body):
        calls.append(path)
        if path == "sys/leases/lookup":
            return FakeResponse(200, {"data": {"ttl": ttl_left}}) if known else FakeResponse(400, {"errors": ["invalid lease"]})
        if path == "database/creds/velocity-app":
            return FakeResponse(200, {"lease_id": "database/creds/velocity-app/NEW", "lease_duration": 3600,
                                      "renewable": True, "data": {"username": "v-new", "password": "pw-new"}})
        if path == "sys/leases/renew":
            return FakeResponse(200, {"lease_duration": 30, "renewable": True})
        if path == "sys/leases/revoke":
            return FakeResponse(204)
        return FakeResponse(404, {})
    return route, calls


@pytest.mark.parametrize("ttl_left,known,how,changed", [
    (3000, True, "reused", False),
    (100, True, "issued", True),      # renewal gives too little: replace and revoke the old lease
    (3000, False, "issued", True),    # Vault no longer knows the lease (expired or revoked)
])
def test_lease_reuse_rules(tmp_path, ttl_left, known, how, changed):
    state = tmp_path / "lease.json"
    vault_db.save_state(str(state), vault_db.Lease("database/creds/velocity-app/OLD", 3600, True, 0, "v-old", "pw-old",
                                                   "velocity-app", "database"))
    assert state.stat().st_mode & 0o777 == 0o600
    route, calls = _db_route(ttl_left, known)
    client, dummy = make_client(route)
    _lease, was_changed, got = vault_db.ensure(client, "database", "velocity-app", str(state), min_ttl=600)
    assert (got, was_changed) == (how, changed)
    assert ("sys/leases/revoke" in calls) == (how == "issued" and known)
    assert json.loads(state.read_text())["lease_id"].endswith("OLD" if how == "reused" else "NEW")


def test_check_mode_issues_nothing(tmp_path):
    route, calls = _db_route(0, known=False)
    client, dummy = make_client(route)
    lease, changed, _how = vault_db.ensure(client, "database", "velocity-app", str(tmp_path / "s.json"),
                                           check_mode=True)
    assert lease is None and changed and "database/creds/velocity-app" not in calls
