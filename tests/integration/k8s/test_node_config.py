"""hack/k8s/node_config.py: the real node's generated files, and bad input named by its option.

No cluster needed: this renders into a temporary directory and parses what it wrote.
"""

from __future__ import annotations

import importlib.util
import io
import json
import tarfile
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
_spec = importlib.util.spec_from_file_location("node_config", ROOT / "hack" / "k8s" / "node_config.py")
node_config = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(node_config)


def render_args(tmp_path: Path, **overrides: str) -> list[str]:
    values = {
        "--out": str(tmp_path), "--state": str(tmp_path), "--pki": str(tmp_path / "pki"),
        "--node-ip": "192.0.2.2", "--node-name": "velocity-node", "--pod-cidr": "10.88.0.0/16",
        "--service-cidr": "10.96.0.0/16", "--bridge": "velocity0", "--cni-bin": "/opt/cni",
        "--runc": "/usr/sbin/runc", "--sandbox-image": "velocity.local/pause:1",
        "--registry": "127.0.0.1:5000", "--registry-ca": "/tmp/velocity/registry/ca.crt",
    }
    values.update(overrides)
    return ["render", *[x for kv in values.items() for x in kv]]


def test_render_writes_what_the_node_needs(tmp_path):
    assert node_config.main(render_args(tmp_path)) == 0
    ctd = tomllib.loads((tmp_path / "containerd.toml").read_text())
    assert ctd["version"] == 3 and ctd["imports"] == []
    assert ctd["grpc"]["address"] == f"{tmp_path}/containerd/containerd.sock"  # never /run/containerd
    runtime = ctd["plugins"]["io.containerd.cri.v1.runtime"]
    assert runtime["restrict_oom_score_adj"] is True
    assert runtime["containerd"]["runtimes"]["runc"]["options"] == {"BinaryName": "/usr/sbin/runc",
                                                                    "SystemdCgroup": False}
    images = ctd["plugins"]["io.containerd.cri.v1.images"]
    assert images["pinned_images"]["sandbox"] == "velocity.local/pause:1"
    hosts = tomllib.loads((Path(images["registry"]["config_path"]) / "127.0.0.1:5000" / "hosts.toml").read_text())
    assert hosts["host"]["https://127.0.0.1:5000"]["ca"] == "/tmp/velocity/registry/ca.crt"

    kubelet = yaml.safe_load((tmp_path / "kubelet.yaml").read_text())
    assert kubelet["failCgroupV1"] is False and kubelet["cgroupDriver"] == "cgroupfs"
    assert kubelet["authentication"]["anonymous"]["enabled"] is False
    assert kubelet["authentication"]["webhook"]["enabled"] is True
    assert kubelet["authorization"]["mode"] == "Webhook"
    assert kubelet["readOnlyPort"] == 0 and kubelet["address"] == "192.0.2.2"
    assert {"key": "velocity.dev/real-node", "value": "true", "effect": "NoSchedule"} in kubelet["registerWithTaints"]

    proxy = yaml.safe_load((tmp_path / "kube-proxy.yaml").read_text())
    assert proxy["mode"] == "iptables" and proxy["clusterCIDR"] == "10.88.0.0/16"

    cni = json.loads((tmp_path / "cni" / "net.d" / "10-velocity.conflist").read_text())
    bridge = cni["plugins"][0]
    assert bridge["bridge"] == "velocity0" and bridge["ipMasq"] is False
    assert bridge["ipam"]["ranges"] == [[{"subnet": "10.88.0.0/16", "gateway": "10.88.0.1"}]]


@pytest.mark.parametrize(("option", "value", "message"), [
    ("--node-ip", "127.0.0.1", "loopback"),
    ("--node-ip", "not-an-ip", "not an IP address"),
    ("--pod-cidr", "10.96.0.0/12", "overlaps the service CIDR"),
    ("--pod-cidr", "10.88.0.1/16", "not a network"),
    ("--node-name", "Velocity_Node", "not a DNS label"),
    ("--bridge", "a-bridge-name-too-long", "at most 15 characters"),
    ("--registry", "https://127.0.0.1:5000", "not host:port"),
    ("--runc", "runc", "absolute path"),
])
def test_bad_input_is_named(tmp_path, option, value, message):
    with pytest.raises(SystemExit) as err:
        node_config.main(render_args(tmp_path, **{option: value}))
    assert option in str(err.value) and message in str(err.value)
    assert not (tmp_path / "kubelet.yaml").exists()


def test_image_archive_is_deterministic_and_named(tmp_path):
    binary = tmp_path / "pause"
    binary.write_bytes(b"\x7fELF not really, but bytes")
    one = node_config.oci_image(str(binary), "velocity.local/pause:1", [])
    assert one == node_config.oci_image(str(binary), "velocity.local/pause:1", [])
    with tarfile.open(fileobj=io.BytesIO(one)) as tar:
        index = json.loads(tar.extractfile("index.json").read())
        assert index["manifests"][0]["annotations"]["io.containerd.image.name"] == "velocity.local/pause:1"
        blobs = {m.name for m in tar.getmembers() if m.name.startswith("blobs/")}
    assert len(blobs) == 3  # layer, config, manifest
    with pytest.raises(SystemExit) as err:
        node_config.oci_image(str(binary), "pause", [])
    assert "--name" in str(err.value)
