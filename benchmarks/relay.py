"""A TCP relay on 127.0.0.1 that a test can cut, or that can act on each HTTP request before it passes.

Used by the reliability tests (tests/reliability/test_midrun.py) and, counting requests, by the Vault
benchmark (CountingRelay in vault_fetch.py).

Put it between a module and a real service (the Kubernetes API over TLS, Vault
over plain HTTP) to make the service "go away" at a chosen moment without
stopping the shared server: `cut()` closes every open connection and refuses
new ones. With `on_request`, the relay reads each plain-HTTP request head and
calls `on_request(method, path, headers)` before forwarding it, so a test can
change the world (revoke a token, say) between two requests of one task.
Requests a client pipelines leave before the server has answered the earlier
ones: `answered` counts the bytes the service has sent back, so a callback can
wait with `wait_answered(more_than)` until an earlier request has been handled.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable

OnRequest = Callable[[str, str, dict], None]


def _shutdown(*socks: socket.socket) -> None:
    for sock in socks:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            sock.close()


class Relay:
    def __init__(self, target_port: int, on_request: OnRequest | None = None, target_host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self.on_request = on_request
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.lock = threading.Lock()
        self.open: list[socket.socket] = []
        self.upstreams: set[socket.socket] = set()
        self.connections = 0
        self.requests: list[tuple[str, str]] = []
        self.cut_done = False
        self.answered = 0  # bytes the service has sent back, all connections
        self._answer = threading.Condition()
        threading.Thread(target=self._accept, daemon=True).start()

    def __enter__(self) -> Relay:
        return self

    def __exit__(self, *exc: object) -> None:
        self.cut()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            with self.lock:
                if self.cut_done:
                    _shutdown(client)
                    continue
                upstream = socket.create_connection(self.target)
                self.open += [client, upstream]
                self.upstreams.add(upstream)
                self.connections += 1
            forward = self._http if self.on_request else self._copy
            threading.Thread(target=forward, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._copy, args=(upstream, client), daemon=True).start()

    def _copy(self, src: socket.socket, dst: socket.socket) -> None:
        """Copy one direction until either side closes; what comes from the service is counted."""
        with self.lock:
            answers = src in self.upstreams
        try:
            while data := src.recv(65536):
                if answers:
                    with self._answer:
                        self.answered += len(data)
                        self._answer.notify_all()
                dst.sendall(data)
        except OSError:
            pass
        finally:
            _shutdown(src, dst)

    def wait_answered(self, more_than: int, timeout: float = 10.0) -> int:
        """Wait until the service has sent back more than ``more_than`` bytes in all; return the count."""
        with self._answer:
            if not self._answer.wait_for(lambda: self.answered > more_than, timeout):
                raise TimeoutError(f"the service sent back nothing more than {more_than} bytes in {timeout}s")
            return self.answered

    def _http(self, src: socket.socket, dst: socket.socket) -> None:
        """Forward requests one by one, calling on_request once each head is complete."""
        buf, body_left = b"", 0
        try:
            while data := src.recv(65536):
                buf += data
                while buf:
                    if body_left:
                        taken = min(body_left, len(buf))
                        dst.sendall(buf[:taken])
                        buf, body_left = buf[taken:], body_left - taken
                        continue
                    head, sep, rest = buf.partition(b"\r\n\r\n")
                    if not sep:
                        break
                    lines = head.decode("latin-1").split("\r\n")
                    method, path = lines[0].split(" ")[:2]
                    headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in lines[1:])}
                    with self.lock:
                        self.requests.append((method, path.split("?")[0]))
                    assert self.on_request is not None
                    self.on_request(method, path.split("?")[0], headers)
                    dst.sendall(head + sep)
                    buf, body_left = rest, int(headers.get("content-length") or 0)
        except OSError:
            pass
        finally:
            _shutdown(src, dst)

    def cut(self) -> None:
        """The service is gone: close every connection and refuse new ones."""
        with self.lock:
            self.cut_done = True
            socks, self.open = self.open, []
        _shutdown(self.listener, *socks)
