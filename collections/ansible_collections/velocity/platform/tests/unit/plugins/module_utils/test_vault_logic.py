# -*- coding: utf-8 -*-
"""Unit tests for the vault module_utils.

The Vault side is a scripted HTTP server on loopback: our code, hvac, requests
and urllib3's retries all run as in production; only the answers are scripted.
The hvac traps (a session overriding ``verify``, a missing token read from
VAULT_TOKEN or ~/.vault-token) are tested over real TLS and with canaries.
"""
from __future__ import annotations

import contextlib
import datetime
import ipaddress
import json
import os
import shlex
import socket
import ssl
import subprocess
import threading
import types
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.velocity.platform.plugins.module_utils.common import files
from ansible_collections.velocity.platform.plugins.module_utils.vault import auth as vault_auth
from ansible_collections.velocity.platform.plugins.module_utils.vault import client as vault_client
from ansible_collections.velocity.platform.plugins.module_utils.vault import db as vault_db
from ansible_collections.velocity.platform.plugins.module_utils.vault import kv as vault_kv
from ansible_collections.velocity.platform.plugins.module_utils.vault import module as vault_module
from ansible_collections.velocity.platform.plugins.module_utils.vault import output as vault_output
from ansible_collections.velocity.platform.plugins.module_utils.vault.client import (
    VaultAuthError,
    VaultClient,
    VaultConfigError,
    VaultConnection,
    VaultKeyMissing,
    VaultPermissionDenied,
    VaultRequestError,
    VaultSealed,
    VaultTokenInvalid,
    VaultUnreachable,
)

hvac = pytest.importorskip("hvac")
urllib3_retry = pytest.importorskip("urllib3.util.retry")

TOKEN = "s.unit-test-token-value"
DROP = object()  # a route answer: close the connection without answering


# -- a scripted Vault on loopback ----------------------------------------------------------------

class Call:
    def __init__(self, method, path, query, body, headers, port):
        self.method, self.path, self.query, self.body, self.headers, self.port = method, path, query, body, headers, port

    def __repr__(self):
        return "%s %s" % (self.method, self.path)


class ScriptedVault:
    """Answers ``route(call) -> (status, body) | DROP``; records every request and the client port it came from."""

    def __init__(self, route, tls_context=None):
        self.route = route
        self.calls = []
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as Vault: connection reuse is observable

            def handle_one(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                split = urlsplit(self.path)
                call = Call(self.command, split.path.split("/v1/", 1)[-1], parse_qs(split.query),
                            json.loads(raw) if raw else None, dict(self.headers), self.client_address[1])
                with outer.lock:
                    outer.calls.append(call)
                answer = outer.route(call)
                if answer is DROP:
                    self.close_connection = True
                    return
                status, body = answer
                data = json.dumps(body).encode() if body is not None else b""
                self.send_response(status)
                if data:
                    self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = do_LIST = handle_one

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        if tls_context is not None:
            self.server.socket = tls_context.wrap_socket(self.server.socket, server_side=True)
        self.url = "%s://127.0.0.1:%d" % ("https" if tls_context else "http", self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def paths(self):
        with self.lock:
            return [c.path for c in self.calls]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def scripted():
    servers = []

    def start(route, tls_context=None):
        server = ScriptedVault(route, tls_context)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


@pytest.fixture
def sleeps(monkeypatch):
    """urllib3's Retry sleeps through this list instead of the clock (no timed unit tests)."""
    recorded = []
    fake_time = types.SimpleNamespace(sleep=recorded.append, time=__import__("time").time,
                                      monotonic=__import__("time").monotonic)
    monkeypatch.setattr(urllib3_retry, "time", fake_time)
    return recorded


def make_client(server, token=TOKEN, retries=2, **options):
    conn = VaultConnection(url=server.url, retries=retries, retry_backoff=0.1, **options)
    return VaultClient(conn, token=token)


def ok(body=None):
    return 200, body if body is not None else {}


def kv_route(secrets: dict, version: int = 3):
    def route(call):
        if call.path == "sys/internal/ui/mounts/secret":
            return ok({"data": {"type": "kv", "options": {"version": "2"}}})
        if call.path.startswith("secret/data/"):
            p = call.path[len("secret/data/"):]
            if p in secrets:
                return ok({"data": {"data": secrets[p], "metadata": {"version": version}}})
        return 404, {"errors": []}
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


# -- KV reads through hvac --------------------------------------------------------------------------

def test_each_path_is_read_once_and_keys_are_mapped(scripted):
    server = scripted(kv_route({"velocity/app": {"a": "1", "b": "2"}, "velocity/x": {"c": 3}}))
    client = make_client(server)
    refs = vault_kv.parse_refs({"A": "velocity/app#a", "B": "velocity/app#b", "C": "velocity/x#c"})
    values, versions = vault_kv.read_secrets(client, refs)
    assert values == {"A": "1", "B": "2", "C": "3"}
    # One request per path, no mount lookup when every read succeeds.
    assert sorted(server.paths()) == ["secret/data/velocity/app", "secret/data/velocity/x"]
    assert all(c.headers["X-Vault-Token"] == TOKEN and c.headers["X-Vault-Request"] == "true" for c in server.calls)
    assert versions == {"velocity/app": {"version": 3}, "velocity/x": {"version": 3}}
    assert client.request_count == 2


def test_a_pinned_version_is_asked_for(scripted):
    server = scripted(kv_route({"velocity/app": {"k": "v"}}))
    values, versions = vault_kv.read_secrets(make_client(server), vault_kv.parse_refs({"K": "velocity/app#k@2"}))
    assert values == {"K": "v"} and versions == {"velocity/app@2": {"version": 3}}
    assert [c.query for c in server.calls if c.path.startswith("secret/data/")] == [{"version": ["2"]}]


def test_reads_run_in_parallel(scripted):
    barrier = threading.Barrier(4, timeout=5)
    inner = kv_route({"p%d" % i: {"k": str(i)} for i in range(4)})

    def route(call):
        if call.path.startswith("secret/data/"):
            barrier.wait()  # BrokenBarrierError (then a 500) unless 4 reads are in flight together
        return inner(call)

    client = make_client(scripted(route), retries=0)
    refs = vault_kv.parse_refs({"E%d" % i: "p%d#k" % i for i in range(4)})
    values, dummy = vault_kv.read_secrets(client, refs, max_workers=4, pipelining=False)
    assert values == {"E%d" % i: str(i) for i in range(4)}


def test_reads_are_pipelined_on_one_connection_by_default(scripted):
    server = scripted(kv_route({"p%02d" % i: {"k": str(i)} for i in range(12)}))
    client = make_client(server)
    refs = vault_kv.parse_refs({"E%02d" % i: "p%02d#k" % i for i in range(12)})
    values, dummy = vault_kv.read_secrets(client, refs)
    assert values == {"E%02d" % i: str(i) for i in range(12)} and len(server.calls) == 12
    assert len({c.port for c in server.calls}) == 1  # every read on one connection
    assert client.request_count == 12


def test_parallel_reads_share_one_pool_sized_to_the_workers(scripted):
    server = scripted(kv_route({"p%02d" % i: {"k": str(i)} for i in range(12)}))
    client = make_client(server, max_workers=3)
    refs = vault_kv.parse_refs({"E%02d" % i: "p%02d#k" % i for i in range(12)})
    values, dummy = vault_kv.read_secrets(client, refs, max_workers=3, pipelining=False)
    assert len(values) == 12 and len(server.calls) == 12
    # 12 requests over at most 3 kept-alive connections: the pool holds as many as there are workers.
    assert len({c.port for c in server.calls}) <= 3


def test_missing_key_message_has_names_not_values(scripted):
    client = make_client(scripted(kv_route({"velocity/app": {"present": "TOPSECRETVALUE"}})))
    with pytest.raises(VaultKeyMissing) as err:
        vault_kv.read_secrets(client, vault_kv.parse_refs({"X": "velocity/app#absent"}))
    assert "keys there: present" in str(err.value) and "TOPSECRETVALUE" not in str(err.value)


def test_missing_path_and_kv_version_mismatch(scripted):
    client = make_client(scripted(kv_route({})))
    with pytest.raises(vault_client.VaultNotFound, match=r"no secret at 'secret/velocity/none' \(KV v2"):
        vault_kv.read_secrets(client, vault_kv.parse_refs({"X": "velocity/none#k"}))
    with pytest.raises(vault_client.VaultKVVersionMismatch, match="is KV version 2 but kv_version=1"):
        vault_kv.read_secrets(client, vault_kv.parse_refs({"X": "velocity/none#k"}), kv_version=1)


def test_the_mount_is_looked_up_only_after_a_failure_and_names_the_cause(scripted):
    def kv1_route(call):
        if call.path == "sys/internal/ui/mounts/secret":
            return ok({"data": {"type": "kv", "options": {"version": "1"}}})
        if call.path == "secret/data/app":  # a KV v1 secret that happens to live at data/app: no metadata
            return ok({"data": {"k": "v"}})
        return 404, {"errors": []}

    server = scripted(kv1_route)
    with pytest.raises(vault_client.VaultKVVersionMismatch, match="mount 'secret/' is KV version 1 but kv_version=2"):
        vault_kv.read_secrets(make_client(server), vault_kv.parse_refs({"X": "app#k"}))
    assert server.paths() == ["secret/data/app", "sys/internal/ui/mounts/secret"]

    # The mount is right: the read's own error stands.
    server = scripted(kv_route({}))
    with pytest.raises(vault_client.VaultNotFound, match="no secret at 'secret/gone'"):
        vault_kv.read_secrets(make_client(server), vault_kv.parse_refs({"X": "gone#k"}))
    assert server.paths() == ["secret/data/gone", "sys/internal/ui/mounts/secret"]


# -- retries (urllib3.Retry on the session's adapter) and error mapping -------------------------------

def test_transient_errors_are_retried_with_backoff(scripted, sleeps):
    answers = iter([(502, {"errors": ["bad gateway"]}), DROP, ok({"data": {"ok": True}})])
    server = scripted(lambda call: next(answers))
    client = make_client(server)
    assert client.read("some/path") == {"data": {"ok": True}}
    assert len(server.calls) == 3
    assert len(sleeps) == 2 and 0.1 <= sleeps[0] < 0.13 and 0.2 <= sleeps[1] < 0.26


def test_retries_give_up_with_the_last_answer(scripted, sleeps):
    server = scripted(lambda call: (500, {"errors": ["storage backend down"]}))
    with pytest.raises(VaultRequestError, match="HTTP 500 for 'x': storage backend down") as err:
        make_client(server, retries=1).read("x")
    assert err.value.status == 500 and len(server.calls) == 2 and len(sleeps) == 1


def test_unreachable_after_retries_names_the_address(scripted, sleeps):
    server = scripted(lambda call: ok())
    url = server.url
    server.close()  # nothing listens there any more
    client = VaultClient(VaultConnection(url=url, retries=1, retry_backoff=0.1), token=TOKEN)
    with pytest.raises(VaultUnreachable, match=r"127.0.0.1:\d+ is unreachable after 2 attempt") as err:
        client.read("x")
    assert len(sleeps) == 1 and TOKEN not in str(err.value)


def test_sealed_is_reported_not_retried(scripted, sleeps):
    def route(call):
        if call.path == "sys/seal-status":
            return ok({"initialized": True, "sealed": True})
        return 503, {"errors": ["Vault is sealed"]}
    server = scripted(route)
    with pytest.raises(VaultSealed, match="is sealed: unseal it"):
        make_client(server).read("secret/data/x")
    assert sleeps == [] and server.paths() == ["secret/data/x", "sys/seal-status"]


@pytest.mark.parametrize("lookup_status,error", [(403, VaultTokenInvalid), (200, VaultPermissionDenied)])
def test_403_tells_bad_token_from_policy(scripted, lookup_status, error):
    def route(call):
        if call.path == "auth/token/lookup-self":
            return (200, {"data": {}}) if lookup_status == 200 else (403, {"errors": ["permission denied"]})
        return 403, {"errors": ["permission denied"]}
    with pytest.raises(error) as err:
        make_client(scripted(route)).read("secret/data/other")
    assert "'secret/data/other'" in str(err.value) and TOKEN not in str(err.value)


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


def test_namespace_header_is_sent(scripted):
    server = scripted(lambda call: ok({"data": {}}))
    make_client(server, namespace="team").read("x")
    assert server.calls[0].headers["X-Vault-Namespace"] == "team"


def test_missing_hvac_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(vault_client, "HAS_HVAC", False)
    with pytest.raises(VaultConfigError, match="Python library 'hvac' is required"):
        VaultClient(VaultConnection(url="http://127.0.0.1:1"))

    class Module:
        def fail_json(self, **kwargs):
            raise SystemExit(kwargs["msg"])

    with pytest.raises(SystemExit, match="hvac"):
        vault_module.require_libraries(Module())


# -- the hvac traps ----------------------------------------------------------------------------------

def test_no_token_is_taken_from_vault_token_or_home(scripted, monkeypatch, tmp_path):
    """hvac.Client(token=None) reads VAULT_TOKEN, then ~/.vault-token: an unauthenticated client must send neither."""
    monkeypatch.setenv("VAULT_TOKEN", "CANARY-ENV-TOKEN")
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / ".vault-token").write_text("CANARY-FILE-TOKEN")

    def route(call):
        if call.path == "auth/approle/login":
            return ok({"auth": {"client_token": "login-token", "accessor": "acc", "policies": ["velocity-app"]}})
        if call.path == "sys/seal-status":
            return ok({"initialized": True, "sealed": False})
        return ok({"data": {"policies": ["velocity-app"]}})
    server = scripted(route)
    client = VaultClient(VaultConnection(url=server.url))
    assert client.token == "" and client.seal_state() == "unsealed"
    client = vault_auth.connect({"url": server.url, "auth_method": "approle", "role_id": "r", "secret_id": "s"},
                                environ={})
    assert client.lookup_self()["policies"] == ["velocity-app"]
    sent = [(c.path, c.headers.get("X-Vault-Token")) for c in server.calls]
    assert sent == [("sys/seal-status", None), ("auth/approle/login", None), ("auth/token/lookup-self", "login-token")]


@pytest.fixture(scope="module")
def tls_pki(tmp_path_factory):
    """A CA and a server certificate for 127.0.0.1 signed by it, plus a second CA that signed nothing."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    out = tmp_path_factory.mktemp("pki")
    now = datetime.datetime.now(datetime.timezone.utc)

    def pem(cert):
        return cert.public_bytes(serialization.Encoding.PEM)

    def ca(name):
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
                .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
                .not_valid_after(now + datetime.timedelta(days=1))
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                             content_commitment=False, key_encipherment=False, data_encipherment=False,
                                             key_agreement=False, encipher_only=False, decipher_only=False),
                               critical=True)
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
                .sign(key, hashes.SHA256()))
        return key, cert

    ca_key, ca_cert = ca("unit-test-ca")
    dummy, other_ca = ca("unit-test-other-ca")
    key = ec.generate_private_key(ec.SECP256R1())
    server = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "vault")]))
              .issuer_name(ca_cert.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
              .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
              .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                             critical=False)
              .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
              .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
              .sign(ca_key, hashes.SHA256()))
    (out / "ca.pem").write_bytes(pem(ca_cert))
    (out / "other-ca.pem").write_bytes(pem(other_ca))
    (out / "server.pem").write_bytes(pem(server))
    (out / "server.key").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                       serialization.PrivateFormat.PKCS8,
                                                       serialization.NoEncryption()))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(out / "server.pem"), str(out / "server.key"))
    return types.SimpleNamespace(ca=str(out / "ca.pem"), other_ca=str(out / "other-ca.pem"), context=context,
                                 server_cert=str(out / "server.pem"), server_key=str(out / "server.key"))


@pytest.mark.filterwarnings("ignore:Unverified HTTPS request")  # validate_certs=false, on purpose
def test_ca_path_is_kept_although_hvac_is_given_a_session(scripted, tls_pki, monkeypatch, sleeps):
    """A session passed to hvac.Client overrides its verify: the CA path must be on the session too."""
    server = scripted(lambda call: ok({"data": {"ok": True}}), tls_context=tls_pki.context)
    # Neither a CA bundle from the environment nor hvac's VAULT_CLIENT_CERT (read when hvac is imported) may
    # replace what the options say.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", tls_pki.other_ca)
    monkeypatch.setattr(hvac.v1, "VAULT_CLIENT_CERT", "/nonexistent/client.pem")
    assert make_client(server, ca_cert=tls_pki.ca).read("x") == {"data": {"ok": True}}
    assert make_client(server, validate_certs=False).read("x") == {"data": {"ok": True}}
    for options in ({}, {"ca_cert": tls_pki.other_ca}):
        with pytest.raises(VaultUnreachable, match=r"TLS error talking to Vault at https://127.0.0.1:\d+: .* Set "
                                                   r"ca_cert") as err:
            make_client(server, **options).read("x")
        assert TOKEN not in str(err.value)
    assert len(server.calls) == 2 and sleeps == []  # a refused certificate is not retried, and no token was sent


def test_read_connections_open_during_the_login_over_tls(scripted, tls_pki, monkeypatch):
    """The readers' connections are opened while the login is in flight, into the pool the reads then use
    (the same TLS settings, even with a CA bundle in the environment): no other connection is opened."""
    login_done = threading.Event()
    secrets = {f"p{i}": {"k": f"v{i}"} for i in range(6)}
    reads = kv_route(secrets)

    def route(call):
        if call.path == "auth/approle/login":
            # Held until every other connection has sent its TLS handshake: opened during the login.
            login_done.wait(5)
            return ok({"auth": {"client_token": "login-token", "lease_duration": 60}})
        return reads(call)

    # No session tickets: when Python's server sends them is up to its threads, and a ticket that arrives after
    # the connection was checked makes urllib3 replace it (the OpenBao TLS test covers tickets).
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tls_pki.server_cert, tls_pki.server_key)
    context.num_tickets = 0
    server = scripted(route, tls_context=context)
    accepted = []
    real_accept = server.server.socket.accept

    def counting_accept():
        sock, address = real_accept()
        accepted.append(address[1])
        if len(accepted) == 4:
            login_done.set()
        return sock, address

    server.server.socket.accept = counting_accept
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", tls_pki.other_ca)
    client = vault_auth.connect({"url": server.url, "auth_method": "approle", "role_id": "r", "secret_id": "s",
                                 "ca_cert": tls_pki.ca, "max_workers": 4}, environ={}, connections=4)
    assert login_done.is_set()  # four connections were accepted while the login waited
    refs = vault_kv.parse_refs({f"E{i}": f"p{i}#k" for i in range(6)})
    values, dummy = vault_kv.read_secrets(client, refs, max_workers=4)
    client.close()
    assert values == {f"E{i}": f"v{i}" for i in range(6)}
    assert len(accepted) == 4 and {call.port for call in server.calls} <= set(accepted)


def test_no_connection_is_opened_ahead_through_a_proxy(monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    client = VaultClient(VaultConnection(url="https://vault.example.test:8200", max_workers=4))
    assert client.open_connections(3).pool is None


def test_a_connection_that_cannot_open_gives_its_slot_back():
    with socket_closed_port() as port:
        client = VaultClient(VaultConnection(url=f"http://127.0.0.1:{port}", max_workers=4, timeout=2))
        opening = client.open_connections(3)
        opening.finish()
    pool = opening.pool
    assert pool.pool.qsize() == 4 and all(conn is None for conn in pool.pool.queue)


@contextlib.contextmanager
def socket_closed_port():
    """A loopback port that nothing listens on (bound, never listening)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


# -- auth selector ---------------------------------------------------------------------------------

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


@pytest.mark.parametrize("method,mount,expected_body", [
    ("kubernetes", "kubernetes", {"role": "velocity-app", "jwt": "eyJsa-token"}),
    ("jwt", "ci-jwt", {"role": "velocity-app", "jwt": "eyJsa-token"}),
    ("approle", "approle", {"role_id": "velocity-app", "secret_id": "sid"}),
])
def test_each_method_logs_in_once_through_hvac(scripted, tmp_path, method, mount, expected_body):
    token_file = tmp_path / "sa"
    token_file.write_text("eyJsa-token")
    options = {"auth_method": method, "role_id": "velocity-app", "kubernetes_token_path": str(token_file),
               "jwt_file": str(token_file), "secret_id": "sid"}
    if mount != method:
        options["mount_point"] = mount
    auth_method = vault_auth.select_auth_method(options, environ={})
    server = scripted(lambda call: ok({"auth": {"client_token": "new-token", "accessor": "a",
                                                "policies": ["velocity-app"]}}))
    client = make_client(server, token=None)
    auth = auth_method.authenticate(client)
    assert [(c.method, c.path, c.body) for c in server.calls] == [("POST", "auth/%s/login" % mount, expected_body)]
    assert client.token == "new-token" and client.login_count == 1
    assert auth == {"policies": ["velocity-app"]}


def test_failed_login_is_an_auth_error_without_credentials(scripted):
    method = vault_auth.select_auth_method({"auth_method": "approle", "role_id": "rid", "secret_id": "SID-VALUE"},
                                           environ={})
    client = make_client(scripted(lambda call: (400, {"errors": ["invalid role or secret ID"]})), token=None)
    with pytest.raises(VaultAuthError, match=r"AppRole login at http://127.0.0.1:\d+/v1/auth/approle/login failed "
                                             r"\(HTTP 400: invalid role or secret ID\)") as err:
        method.authenticate(client)
    assert "SID-VALUE" not in str(err.value) and client.token == ""


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
    assert manifest["metadata"]["annotations"]["velocity.dev/secret-checksum"].startswith("sha256:")
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
    def route(call):
        if call.path == "sys/leases/lookup":
            return ok({"data": {"ttl": ttl_left}}) if known else (400, {"errors": ["invalid lease"]})
        if call.path == "database/creds/velocity-app":
            return ok({"lease_id": "database/creds/velocity-app/NEW", "lease_duration": 3600,
                       "renewable": True, "data": {"username": "v-new", "password": "pw-new"}})
        if call.path == "sys/leases/renew":
            return ok({"lease_id": call.body["lease_id"], "lease_duration": 30, "renewable": True})
        if call.path == "sys/leases/revoke":
            return 204, None
        return 404, {"errors": []}
    return route


@pytest.mark.parametrize("ttl_left,known,how,changed", [
    (3000, True, "reused", False),
    (100, True, "issued", True),      # renewal gives too little: replace and revoke the old lease
    (3000, False, "issued", True),    # Vault no longer knows the lease (expired or revoked)
])
def test_lease_reuse_rules(scripted, tmp_path, ttl_left, known, how, changed):
    state = tmp_path / "lease.json"
    vault_db.save_state(str(state), vault_db.Lease("database/creds/velocity-app/OLD", 3600, True, 0, "v-old", "pw-old",
                                                   "velocity-app", "database"))
    assert state.stat().st_mode & 0o777 == 0o600
    server = scripted(_db_route(ttl_left, known))
    _lease, was_changed, got = vault_db.ensure(make_client(server), "database", "velocity-app", str(state),
                                               min_ttl=600)
    assert (got, was_changed) == (how, changed)
    calls = [(c.method, c.path) for c in server.calls]
    assert (("PUT", "sys/leases/revoke") in calls) == (how == "issued" and known)
    assert (("PUT", "sys/leases/renew") in calls) == (how == "issued" and known)
    assert json.loads(state.read_text())["lease_id"].endswith("OLD" if how == "reused" else "NEW")


def test_renew_sends_the_increment_and_updates_the_lease(scripted):
    server = scripted(_db_route(3000))
    lease = vault_db.renew(make_client(server), vault_db.Lease("database/creds/velocity-app/L", 10, True, 0), 900)
    assert server.calls[0].body == {"lease_id": "database/creds/velocity-app/L", "increment": 900}
    assert (lease.lease_duration, lease.renewable) == (30, True)


def test_revoke_prefix_lists_then_revokes(scripted):
    def route(call):
        if call.method == "LIST":
            return ok({"data": {"keys": ["a", "b"]}})
        return 204, None
    server = scripted(route)
    assert vault_db.revoke_prefix(make_client(server), "/database/creds/velocity-app/") == 2
    assert [(c.method, c.path) for c in server.calls] == [
        ("LIST", "sys/leases/lookup/database/creds/velocity-app"),
        ("PUT", "sys/leases/revoke-prefix/database/creds/velocity-app")]


def test_check_mode_issues_nothing(scripted, tmp_path):
    server = scripted(_db_route(0, known=False))
    lease, changed, _how = vault_db.ensure(make_client(server), "database", "velocity-app", str(tmp_path / "s.json"),
                                           check_mode=True)
    assert lease is None and changed and "database/creds/velocity-app" not in server.paths()


def test_a_namespace_with_a_line_break_is_never_written_into_pipelined_requests(scripted):
    """Header values are checked before any raw request is built: the reads go the ordinary way instead."""
    server = scripted(kv_route({"p%02d" % i: {"k": str(i)} for i in range(3)}))
    client = make_client(server)
    client.connection.namespace = "team\r\nX-Injected: yes"
    assert client.get_pipelined(["/v1/secret/data/p00", "/v1/secret/data/p01"]) is None
    assert server.calls == []
