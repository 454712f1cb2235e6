"""A task's KV reads go back to back on the login's connection; without pipelining, the connections for its
parallel reads open while its login is in flight.

Pipelined (the default), the reads leave together on one connection, and a connection that closes half-way
costs a fall-back, not a failure. Without pipelining, each new connection costs a TCP (and, over https, a TLS) handshake; opened only once the login has answered,
they would add two round trips to every task with more than one path. A relay in front of the real server
holds the login request for a while and notes how many connections it has accepted meanwhile: all of the
reads' connections, and no more than the pool's size in all. Over TLS (the OpenBao TLS dev server), the
connections opened ahead carry the server's session tickets unread; they must still be used, not taken for
closed ones and replaced.
"""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from benchmarks.relay import Relay, _shutdown
from tests.fixtures.vault import _script_env, vault_sh
from tests.runner import run_module

pytestmark = [pytest.mark.vault]
PATHS = 12
HOLD_S = 0.5


@pytest.mark.parametrize("max_workers, expected", [(8, 8), (1, 1)])
def test_read_connections_open_during_the_login(vault, tmp_path, max_workers, expected):
    base = f"velocity/conn-{uuid.uuid4().hex[:8]}"
    secrets = {}
    for i in range(PATHS):
        vault.put_secret(f"{base}/s{i:02d}", {"value": f"v{i}"})
        secrets[f"S{i:02d}"] = f"{base}/s{i:02d}#value"
    seen_during_login: list[int] = []
    lock = threading.Lock()

    def hold_the_login(method: str, path: str, headers: dict) -> None:
        if path.endswith("/login"):
            time.sleep(HOLD_S)
            with lock:
                seen_during_login.append(relay.connections)

    with Relay(urlsplit(vault.addr).port, on_request=hold_the_login) as relay:
        result, _ = run_module(tmp_path, "velocity.platform.vault_secrets", {
            "url": f"http://127.0.0.1:{relay.port}", "auth_method": "approle",
            "role_id": vault.role_id, "secret_id": vault.secret_id, "max_workers": max_workers,
            "pipelining": False, "secrets": secrets, "env_file": str(tmp_path / "app.env"),
        })
        total = relay.connections
    assert not result.get("failed"), result.get("msg")
    assert result["stats"]["logins"] == 1 and result["stats"]["requests"] == PATHS + 1
    # Accepted before the login was even forwarded: the login's own connection and one per parallel reader.
    assert seen_during_login == [expected], (seen_during_login, total)
    # And none opened later: the reads ran on those.
    assert total == expected


def _read_over_tls(tmp_path: Path, **options) -> tuple[dict, int]:
    """vault_secrets with a token over TLS (the OpenBao TLS dev server) through a relay: result, connections."""
    assert vault_sh("start", "tls").returncode == 0
    env = _script_env("tls")
    token = Path(env["VELOCITY_VAULT_TOKEN_FILE"]).read_text().strip()
    from ansible_collections.velocity.platform.plugins.module_utils.vault.client import VaultClient, VaultConnection
    from ansible_collections.velocity.platform.plugins.module_utils.vault.kv import write_kv

    base = f"velocity/tls-{uuid.uuid4().hex[:8]}"
    with VaultClient(VaultConnection(url=env["VAULT_ADDR"], ca_cert=env["VAULT_CACERT"]), token=token) as admin:
        for i in range(PATHS):
            write_kv(admin, "secret", f"{base}/s{i:02d}", {"value": f"v{i}"})
    with Relay(urlsplit(env["VAULT_ADDR"]).port) as relay:
        result, _ = run_module(tmp_path, "velocity.platform.vault_secrets", {
            "url": f"https://127.0.0.1:{relay.port}", "ca_cert": env["VAULT_CACERT"], "auth_method": "token",
            "token": token, "env_file": str(tmp_path / "app.env"),
            "secrets": {f"S{i:02d}": f"{base}/s{i:02d}#value" for i in range(PATHS)}, **options,
        })
        return result, relay.connections


def test_read_connections_opened_ahead_are_used_over_tls(tmp_path):
    result, total = _read_over_tls(tmp_path, max_workers=8, pipelining=False)
    assert not result.get("failed"), result.get("msg")
    assert result["stats"]["requests"] == PATHS
    # Seven opened ahead (the token needs no login) and at most one more for the eighth reader: none replaced.
    assert 7 <= total <= 8


def _secrets(vault, count: int = PATHS) -> dict:
    base = f"velocity/pipe-{uuid.uuid4().hex[:8]}"
    mapping = {}
    for i in range(count):
        vault.put_secret(f"{base}/s{i:02d}", {"value": f"v{i}"})
        mapping[f"S{i:02d}"] = f"{base}/s{i:02d}#value"
    return mapping


def _expected_env(mapping: dict) -> dict:
    return {name: f"v{int(name[1:])}" for name in mapping}


def _env_file(path: Path) -> dict:
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if line and not line.startswith("#"))


def _read_through(relay: Relay, vault, tmp_path: Path, secrets: dict) -> dict:
    """vault_secrets with AppRole (the module's defaults: pipelined reads) through ``relay``."""
    result, _ = run_module(tmp_path, "velocity.platform.vault_secrets", {
        "url": f"http://127.0.0.1:{relay.port}", "auth_method": "approle",
        "role_id": vault.role_id, "secret_id": vault.secret_id,
        "secrets": secrets, "env_file": str(tmp_path / "app.env"),
    })
    return result


class HeldAnswersRelay(Relay):
    """Holds each chunk the server sends back for a moment and notes how many requests it had seen by then."""

    def __init__(self, target_port: int) -> None:
        self.seen_at_answers: list[int] = []
        super().__init__(target_port, on_request=lambda *args: None)

    def _copy(self, src, dst) -> None:
        if src.getpeername()[1] != self.target[1]:
            super()._copy(src, dst)
            return
        try:
            while data := src.recv(65536):
                time.sleep(HOLD_S / 2)
                with self.lock:
                    self.seen_at_answers.append(len(self.requests))
                dst.sendall(data)
        except OSError:
            pass
        finally:
            _shutdown(src, dst)


def test_reads_are_pipelined_on_the_logins_connection(vault, tmp_path):
    """Every read leaves before the first one is answered, on the connection the login used: one in all."""
    secrets = _secrets(vault)
    with HeldAnswersRelay(urlsplit(vault.addr).port) as relay:
        result = _read_through(relay, vault, tmp_path, secrets)
        total, seen, requests = relay.connections, list(relay.seen_at_answers), list(relay.requests)
    assert not result.get("failed"), result.get("msg")
    assert _env_file(tmp_path / "app.env") == _expected_env(secrets)
    assert result["stats"]["logins"] == 1 and result["stats"]["requests"] == PATHS + 1
    assert total == 1
    assert [path for dummy, path in requests].count("/v1/auth/approle/login") == 1 and len(requests) == PATHS + 1
    # The login's answer went back when only the login had been sent; every later answer went back when every
    # read had been sent (sent one after the other, each read would wait for the answer before it). Only the
    # login's answer (one chunk, or two) went back before all the reads were in.
    assert seen[0] == 1 and len([n for n in seen if n < PATHS + 1]) <= 2, seen


def test_pipelined_reads_over_tls_use_one_connection(tmp_path):
    result, total = _read_over_tls(tmp_path)
    assert not result.get("failed"), result.get("msg")
    assert _env_file(tmp_path / "app.env") == {f"S{i:02d}": f"v{i}" for i in range(PATHS)}
    assert result["stats"]["requests"] == PATHS
    assert total == 1  # one TLS handshake for every read


class ClosingRelay(Relay):
    """Forwards the login and the first read, then closes the connection that carries the next request (as a
    load balancer that does not take pipelined requests might); later connections pass untouched."""

    def __init__(self, target_port: int) -> None:
        self.closed = False
        super().__init__(target_port, on_request=self._close_at_the_third_request)

    def _close_at_the_third_request(self, method: str, path: str, headers: dict) -> None:
        with self.lock:
            third = not self.closed and len(self.requests) == 3  # Relay._http counts a request before this call
            self.closed = self.closed or third
        if third:
            time.sleep(HOLD_S)  # the first read's answer goes back meanwhile
            raise OSError("closing the pipelined connection")  # Relay._http closes both sides


def test_a_connection_closed_mid_pipeline_falls_back_to_ordinary_reads(vault, tmp_path):
    secrets = _secrets(vault)
    with ClosingRelay(urlsplit(vault.addr).port) as relay:
        result = _read_through(relay, vault, tmp_path, secrets)
        total = relay.connections
    assert not result.get("failed"), result.get("msg")
    assert _env_file(tmp_path / "app.env") == _expected_env(secrets)
    # The login, every read sent pipelined, then again each read that got no answer, on a second connection.
    assert PATHS + 1 < result["stats"]["requests"] <= 2 * PATHS + 1
    assert total == 2


class LateTicketsRelay(Relay):
    """Holds back, on each connection, whatever the server sends after its first flight: over TLS 1.3 that is
    the session tickets, which then arrive after the client has judged the connection ready."""

    def __init__(self, target_port: int, delay: float) -> None:
        self.delay = delay
        super().__init__(target_port)

    def _copy(self, src, dst) -> None:
        if src.getpeername()[1] != self.target[1]:
            super()._copy(src, dst)
            return
        first = True
        try:
            while data := src.recv(65536):
                if not first:
                    time.sleep(self.delay)
                first = False
                dst.sendall(data)
        except OSError:
            pass
        finally:
            _shutdown(src, dst)


def test_session_tickets_arriving_after_the_check_do_not_replace_opened_connections():
    """A busy server sends its tickets late: the connections opened ahead must still be used, not replaced."""
    assert vault_sh("start", "tls").returncode == 0
    env = _script_env("tls")
    token = Path(env["VELOCITY_VAULT_TOKEN_FILE"]).read_text().strip()
    from ansible_collections.velocity.platform.plugins.module_utils.vault.client import VaultClient, VaultConnection

    with LateTicketsRelay(urlsplit(env["VAULT_ADDR"]).port, delay=0.5) as relay:
        connection = VaultConnection(url=f"https://127.0.0.1:{relay.port}", ca_cert=env["VAULT_CACERT"], max_workers=4)
        with VaultClient(connection, token=token) as client:
            client.open_connections(3).finish()
            assert relay.connections == 3
            time.sleep(1.5)  # the tickets arrive now, after finish() judged the connections ready
            for dummy in range(3):
                looked_up = client.call("auth/token/lookup-self", client.hvac.auth.token.lookup_self)
                assert looked_up["data"]["id"] == token
            assert relay.connections == 3
