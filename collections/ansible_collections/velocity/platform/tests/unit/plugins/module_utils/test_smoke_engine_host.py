"""The smoke test reaches the container on the engine's host (no Docker needed: the engine's answers are faked)."""

from __future__ import annotations

import pytest

from ansible_collections.velocity.platform.plugins.module_utils.image.engine import DockerModuleError, EngineSettings
from ansible_collections.velocity.platform.plugins.module_utils.image.smoke import SmokeRequest, SmokeTest

IMAGE_ATTRS = {"Config": {"Healthcheck": {"Test": ["CMD", "velocity-app", "healthcheck", "--url",
                                                   "http://127.0.0.1:8000/healthz"]}}}


class FakeContainer:
    def __init__(self, host_ip: str) -> None:
        self.attrs = {"NetworkSettings": {"Ports": {"8000/tcp": [{"HostIp": host_ip, "HostPort": "49153"}]}}}

    def reload(self) -> None:
        pass


class FakeContainers:
    def __init__(self) -> None:
        self.created: dict = {}

    def create(self, image, **kwargs):
        self.created = kwargs
        ports = kwargs.get("ports") or {}
        return FakeContainer(next(iter(ports.values()))[0] if ports else "")


class FakeClient:
    def __init__(self) -> None:
        self.containers = FakeContainers()


def smoke(engine_host: str, network_mode: str) -> SmokeTest:
    return SmokeTest(FakeClient(), SmokeRequest(image="velocity/app:0.1.0", env={"SECRET_KEY": "x"},
                                                network_mode=network_mode, port=18080, engine_host=engine_host))


@pytest.mark.parametrize("docker_host, expected", [
    ("tcp://192.0.2.10:2376", "192.0.2.10"),
    ("unix:///var/run/docker.sock", "127.0.0.1"),
    ("ssh://deploy@192.0.2.10", "127.0.0.1"),
])
def test_the_module_probes_the_tcp_engine_host_else_loopback(docker_host, expected):
    settings = EngineSettings.from_params({"docker_host": docker_host}, environ={})
    assert smoke(settings.probe_host, "host").address == expected


def test_host_network_on_a_remote_engine_binds_and_probes_that_host():
    test = smoke("192.0.2.10", "host")
    assert test._env()["GUNICORN_BIND"] == "192.0.2.10:18080"
    assert test._healthcheck(IMAGE_ATTRS)["test"][-1] == "http://192.0.2.10:18080/healthz"
    assert test.base_url(None) == "http://192.0.2.10:18080"


def test_host_network_on_a_local_engine_stays_on_loopback():
    test = smoke("127.0.0.1", "host")
    assert test._env()["GUNICORN_BIND"] == "127.0.0.1:18080"
    assert test._healthcheck(IMAGE_ATTRS)["test"][-1] == "http://127.0.0.1:18080/healthz"
    assert test.base_url(None) == "http://127.0.0.1:18080"


def test_bridge_network_publishes_on_the_engine_host_and_probes_the_published_port():
    test = smoke("192.0.2.10", "bridge")
    container = test._create(test.name, None, None)
    assert test.client.containers.created["ports"] == {"8000/tcp": ("192.0.2.10", None)}
    assert "GUNICORN_BIND" not in test._env()
    assert test.base_url(container) == "http://192.0.2.10:49153"


def test_localhost_engine_is_loopback_and_an_unresolvable_host_is_named(monkeypatch):
    import socket

    def no_dns(*args, **kwargs):  # no lookup leaves the machine
        raise socket.gaierror(-2, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    assert smoke("localhost", "host").address == "127.0.0.1"
    with pytest.raises(DockerModuleError, match=r"'builder\.example' does not resolve"):
        smoke("builder.example", "host")
