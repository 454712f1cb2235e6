# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""K8sClient after a 401, against a small local HTTP server that accepts one token at a time (the real API
server refusing a voided token: tests/integration/deploy/test_k8s_token_refresh.py). Requests refused together
fetch one fresh token between them; a refresh that fails or gives the same token reports the 401."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ansible_collections.velocity.platform.plugins.module_utils.k8s.client import Endpoint, K8sApiError, K8sClient


class Server:
    """Answers 200 to a request with the accepted token, 401 to any other; counts what it saw."""

    def __init__(self):
        self.accepted = "new"
        self.seen = []
        self.lock = threading.Condition()
        self.hold = 0  # the first this many requests are answered only once they have all arrived
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                token = self.headers.get("Authorization", "")[len("Bearer "):]
                with server.lock:
                    server.seen.append(token)
                    ok = token == server.accepted
                    if len(server.seen) <= server.hold:
                        server.lock.notify_all()
                        server.lock.wait_for(lambda: len(server.seen) >= server.hold, 10)
                body = json.dumps({"kind": "Namespace", "metadata": {"name": "default"}} if ok else
                                  {"kind": "Status", "message": "Unauthorized", "reason": "Unauthorized"}).encode()
                self.send_response(200 if ok else 401)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = Server()
    yield s
    s.close()


def client_for(server, refresh):
    return K8sClient(Endpoint(server.url, token="old", refresh=refresh))


def test_requests_refused_together_fetch_one_fresh_token(server):
    calls = []

    def refresh():
        calls.append(1)
        return "new"

    server.hold = 8  # the 8 first requests are refused together
    c = client_for(server, refresh)
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda i: c.call("get", "Namespace default", "GET", "/api/v1/namespaces/default"),
                                range(8)))
    assert [a["metadata"]["name"] for a in answers] == ["default"] * 8
    assert len(calls) == 1 and c.token_refreshes == 1
    assert sorted(server.seen) == ["new"] * 8 + ["old"] * 8
    # Later requests carry the fresh token from the start.
    c.call("get", "Namespace default", "GET", "/api/v1/namespaces/default")
    assert server.seen[-1] == "new" and len(server.seen) == 17


def test_the_same_token_again_is_not_retried_and_the_401_says_so(server):
    server.accepted = "never"
    c = client_for(server, lambda: "old")
    with pytest.raises(K8sApiError, match=r"refused \(HTTP 401\): Unauthorized\. The token was refused, and so was "
                                          r"the one its source gives now") as err:
        c.call("get", "Namespace default", "GET", "/api/v1/namespaces/default")
    assert err.value.status == 401 and server.seen == ["old"] and c.token_refreshes == 0


def test_a_refresh_that_fails_is_named_by_its_type_only(server):
    def refresh():
        raise OSError("cannot read /secret/CANARY-token-path")

    c = client_for(server, refresh)
    with pytest.raises(K8sApiError, match=r"The token was refused and fetching a fresh token failed \(OSError\)\.") \
            as err:
        c.call("get", "Namespace default", "GET", "/api/v1/namespaces/default")
    assert "CANARY" not in str(err.value) and server.seen == ["old"]


def test_without_a_source_a_401_is_the_answer(server):
    c = client_for(server, None)
    with pytest.raises(K8sApiError, match=r"refused \(HTTP 401\): Unauthorized\. Check the credentials"):
        c.call("get", "Namespace default", "GET", "/api/v1/namespaces/default")
    assert server.seen == ["old"]
