"""A "remote" service for the benchmarks: behind a network namespace and added latency.

    with RemotePath(target_port=8200, delay_ms=5) as (host, port):
        ...  # connect to host:port instead of 127.0.0.1:8200

Lays out: a namespace with a veth pair on a private /30 (10.203.0.1 on this side,
10.203.0.2 inside); inside the namespace a delay_proxy on 10.203.0.2:PORT holds each
chunk DELAY ms in each direction and forwards to 10.203.0.1:RELAY, where a plain
relay on this side hands the bytes to the real service on 127.0.0.1. A request and
its response so gain 2 x DELAY ms: DELAY=5 gives the 10 ms round trip asked for
(measured: 0.8 ms per Vault health request on loopback, 12.5 ms through the path).
This kernel has no sch_netem, hence the userspace delay instead of `tc netem`.
Everything is torn down on exit. Needs root and iproute2; every address is this
machine's own.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
HOST_IP, NS_IP = "10.203.0.1", "10.203.0.2"


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


def _start(cmd: list[str]) -> subprocess.Popen:
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = proc.stdout.readline().strip()
    if line != "ready":
        proc.kill()
        raise RuntimeError(f"{cmd[0]} did not start: {line!r}")
    return proc


class RemotePath:
    def __init__(self, target_port: int, delay_ms: float = 5.0, name: str | None = None) -> None:
        self.target_port = target_port
        self.delay_ms = delay_ms
        self.name = name or f"velo-bench-{os.getpid()}"
        self.veth = f"vb{os.getpid() % 100000}"
        self.procs: list[subprocess.Popen] = []

    def __enter__(self) -> tuple[str, int]:
        if os.geteuid() != 0:
            raise RuntimeError("RemotePath needs root (network namespaces)")
        _ip("netns", "add", self.name)
        try:
            _ip("link", "add", self.veth, "type", "veth", "peer", "name", self.veth + "p")
            _ip("link", "set", self.veth + "p", "netns", self.name)
            _ip("addr", "add", f"{HOST_IP}/30", "dev", self.veth)
            _ip("link", "set", self.veth, "up")
            _ip("netns", "exec", self.name, "ip", "addr", "add", f"{NS_IP}/30", "dev", self.veth + "p")
            _ip("netns", "exec", self.name, "ip", "link", "set", self.veth + "p", "up")
            _ip("netns", "exec", self.name, "ip", "link", "set", "lo", "up")
            relay_port = self.target_port + 10000
            self.procs.append(_start([sys.executable, str(HERE / "delay_proxy.py"), HOST_IP, str(relay_port),
                                      "127.0.0.1", str(self.target_port), "0"]))
            self.procs.append(_start(["ip", "netns", "exec", self.name, sys.executable, str(HERE / "delay_proxy.py"),
                                      NS_IP, str(self.target_port), HOST_IP, str(relay_port), str(self.delay_ms)]))
        except Exception:
            self.__exit__(None, None, None)
            raise
        return NS_IP, self.target_port

    def __exit__(self, *exc: object) -> None:
        for proc in self.procs:
            proc.kill()
            proc.wait()
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True)
        subprocess.run(["ip", "link", "del", self.veth], capture_output=True)
