"""hack/k8s/cluster_config.py: the local cluster's PKI, kubeconfigs, encryption config and kwok nodes.

No cluster needed: this generates into a temporary directory and reads what it wrote with openssl and a
YAML parser (what kubectl, the components and the tests' clients do). The files are used for real by every
`hack/k8s/cluster.sh start` (tests/integration/k8s/test_local_cluster.py, test_real_node.py).
"""

from __future__ import annotations

import base64
import importlib.util
import stat
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
_spec = importlib.util.spec_from_file_location("cluster_config", ROOT / "hack" / "k8s" / "cluster_config.py")
cluster_config = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(cluster_config)

API = "https://127.0.0.1:16443"


def openssl(*args: str) -> str:
    return subprocess.run(["openssl", *args], capture_output=True, text=True, check=True).stdout


def cert_text(path: Path) -> str:
    return openssl("x509", "-in", str(path), "-noout", "-text")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(scope="module")
def state(tmp_path_factory) -> Path:
    state = tmp_path_factory.mktemp("k8s")
    assert cluster_config.main(["control-plane", "--state", str(state), "--api-url", API, "--kwok-nodes", "3"]) == 0
    return state


def test_control_plane_certificates_chain_to_their_cas(state):
    pki = state / "pki"
    signed_by_ca = ["apiserver", "admin", "controller-manager", "scheduler", "kwok", "apiserver-kubelet-client"]
    openssl("verify", "-CAfile", str(pki / "ca.crt"), *[str(pki / f"{n}.crt") for n in signed_by_ca])
    openssl("verify", "-CAfile", str(pki / "front-proxy-ca.crt"), str(pki / "front-proxy-client.crt"))
    # ... and not across: the front-proxy CA trusts no component certificate.
    wrong = subprocess.run(["openssl", "verify", "-CAfile", str(pki / "front-proxy-ca.crt"), str(pki / "admin.crt")],
                           capture_output=True, text=True, check=False)
    assert wrong.returncode != 0
    ca = cert_text(pki / "ca.crt")
    assert "CA:TRUE" in ca and "Certificate Sign" in ca
    api = cert_text(pki / "apiserver.crt")
    assert "TLS Web Server Authentication" in api
    for san in ("IP Address:127.0.0.1", "IP Address:10.96.0.1", "DNS:kubernetes.default.svc.cluster.local"):
        assert san in api
    admin = cert_text(pki / "admin.crt")
    assert "O = system:masters, CN = velocity-admin" in admin and "TLS Web Client Authentication" in admin
    assert "CN = system:kube-controller-manager" in cert_text(pki / "controller-manager.crt")
    assert "(2048 bit)" in openssl("pkey", "-in", str(pki / "sa.key"), "-noout", "-text_pub")  # RS256 tokens
    assert (pki / "sa.pub").read_text().startswith("-----BEGIN PUBLIC KEY-----")
    assert not list(pki.glob("*.srl")) and not list(pki.glob("*.csr")) and not list(pki.glob(".tmp-*"))


def test_keys_and_kubeconfigs_are_private(state):
    pki = state / "pki"
    assert mode(pki) == 0o700
    keys = list(pki.glob("*.key"))
    assert len(keys) == 10 and all(mode(k) == 0o600 for k in keys)
    assert mode(pki / "encryption-config.yaml") == 0o600
    for name in ("controller-manager.kubeconfig", "scheduler.kubeconfig", "kwok.kubeconfig", "admin.kubeconfig.tmp"):
        assert mode(state / name) == 0o600, name


@pytest.mark.parametrize("user, file", [("admin", "admin.kubeconfig.tmp"), ("scheduler", "scheduler.kubeconfig"),
                                        ("controller-manager", "controller-manager.kubeconfig"), ("kwok", "kwok.kubeconfig")])
def test_kubeconfigs_carry_their_component_identity(state, user, file):
    config = yaml.safe_load((state / file).read_text())
    cluster = config["clusters"][0]["cluster"]
    assert cluster["server"] == API
    assert base64.b64decode(cluster["certificate-authority-data"]) == (state / "pki" / "ca.crt").read_bytes()
    creds = config["users"][0]["user"]
    assert base64.b64decode(creds["client-certificate-data"]) == (state / "pki" / f"{user}.crt").read_bytes()
    assert base64.b64decode(creds["client-key-data"]) == (state / "pki" / f"{user}.key").read_bytes()
    assert config["current-context"] == config["contexts"][0]["name"]


def test_encryption_config_has_a_fresh_32_byte_key(state, tmp_path):
    config = yaml.safe_load((state / "pki" / "encryption-config.yaml").read_text())
    assert config["kind"] == "EncryptionConfiguration"
    (resource,) = config["resources"]
    assert resource["resources"] == ["secrets"]
    first, last = resource["providers"]
    assert last == {"identity": {}}
    key = first["secretbox"]["keys"][0]["secret"]
    assert len(base64.b64decode(key)) == 32
    assert yaml.safe_load(cluster_config.encryption_config())["resources"][0]["providers"][0]["secretbox"][
        "keys"][0]["secret"] != key


def test_kwok_nodes(state):
    nodes = yaml.safe_load((state / "kwok-nodes.yaml").read_text())
    assert nodes["kind"] == "List"
    assert [n["metadata"]["name"] for n in nodes["items"]] == ["kwok-node-0", "kwok-node-1", "kwok-node-2"]
    assert all(n["metadata"]["annotations"]["kwok.x-k8s.io/node"] == "fake" for n in nodes["items"])
    assert all(n["metadata"]["labels"]["type"] == "kwok" for n in nodes["items"])


def test_node_certificates_and_kubeconfigs(state, tmp_path):
    out = tmp_path / "node"
    assert cluster_config.main(["node", "--pki", str(state / "pki"), "--out", str(out), "--admin-kubeconfig",
                                str(state / "admin.kubeconfig.tmp"), "--node-name", "velocity-node",
                                "--node-ip", "192.0.2.7"]) == 0
    pki = state / "pki"
    openssl("verify", "-CAfile", str(pki / "ca.crt"), str(pki / "kubelet.crt"), str(pki / "kubelet-server.crt"),
            str(pki / "kube-proxy.crt"))
    server = cert_text(pki / "kubelet-server.crt")
    assert "O = system:nodes, CN = system:node:velocity-node" in server
    assert "IP Address:192.0.2.7" in server and "DNS:velocity-node" in server and "TLS Web Server Authentication" in server
    assert "TLS Web Client Authentication" in cert_text(pki / "kubelet.crt")
    for user in ("kubelet", "kube-proxy"):
        config = yaml.safe_load((out / f"{user}.kubeconfig").read_text())
        assert mode(out / f"{user}.kubeconfig") == 0o600
        assert config["clusters"][0]["cluster"]["server"] == API
        assert base64.b64decode(config["users"][0]["user"]["client-certificate-data"]) == (pki / f"{user}.crt").read_bytes()


def test_node_reads_the_server_of_a_yaml_kubeconfig(state, tmp_path):
    admin = tmp_path / "admin.yaml"
    admin.write_text("apiVersion: v1\nclusters:\n- name: x\n  cluster:\n    server: https://127.0.0.1:26443\n")
    assert cluster_config.server_of(str(admin)) == "https://127.0.0.1:26443"


@pytest.mark.parametrize("args, field, words", [
    (["control-plane", "--state", "relative/dir", "--api-url", API], "--state", "not an absolute path"),
    (["control-plane", "--state", "{out}", "--api-url", "http://127.0.0.1:16443"], "--api-url", "https://HOST:PORT"),
    (["control-plane", "--state", "{out}", "--api-url", API, "--kwok-nodes", "-1"], "--kwok-nodes", "between 0 and 100"),
    (["node", "--pki", "/nonexistent/pki", "--out", "{out}", "--admin-kubeconfig", "{admin}", "--node-name",
      "velocity-node", "--node-ip", "192.0.2.7"], "--pki", "start the control plane first"),
    (["node", "--pki", "{pki}", "--out", "{out}", "--admin-kubeconfig", "{admin}", "--node-name", "Velocity_Node",
      "--node-ip", "192.0.2.7"], "--node-name", "not a DNS label"),
    (["node", "--pki", "{pki}", "--out", "{out}", "--admin-kubeconfig", "{admin}", "--node-name", "velocity-node",
      "--node-ip", "127.0.0.1"], "--node-ip", "loopback"),
    (["node", "--pki", "{pki}", "--out", "{out}", "--admin-kubeconfig", "{admin}", "--node-name", "velocity-node",
      "--node-ip", "300.1.1.1"], "--node-ip", "not an IP address"),
    (["node", "--pki", "{pki}", "--out", "{out}", "--admin-kubeconfig", "/nonexistent/kubeconfig", "--node-name",
      "velocity-node", "--node-ip", "192.0.2.7"], "--admin-kubeconfig", "cannot read"),
])
def test_bad_input_is_named_and_writes_nothing(state, tmp_path, capsys, args, field, words):
    out = tmp_path / "x"
    args = [a.format(pki=state / "pki", admin=state / "admin.kubeconfig.tmp", out=out) for a in args]
    before = sorted((state / "pki").iterdir())
    assert cluster_config.main(args) == 1
    err = capsys.readouterr().err
    assert f"{field}: " in err and words in err, err
    assert sorted((state / "pki").iterdir()) == before
    assert not out.exists()
