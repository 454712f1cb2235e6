#!/usr/bin/env python3
"""Generated files of the local cluster (hack/k8s/cluster.sh and node.sh); stdlib and the openssl CLI only.

    cluster_config.py control-plane --state DIR --api-url URL [--kwok-nodes N]
        DIR/pki: the cluster CA and the front-proxy CA, the certificates of the API server, its kubelet
        client, the front-proxy client, the admin, controller-manager, scheduler and kwok clients, the
        service-account key pair, the encryption-at-rest config (a fresh secretbox key);
        DIR: controller-manager.kubeconfig, scheduler.kubeconfig, kwok.kubeconfig, admin.kubeconfig.tmp
        (cluster.sh renames it to kubeconfig once everything is up), kwok-nodes.yaml.
    cluster_config.py node --pki DIR --out DIR --admin-kubeconfig FILE --node-name NAME --node-ip IP
        the real node's certificates (kubelet client and server, kube-proxy client), signed by the CA in
        --pki, and kubelet.kubeconfig and kube-proxy.kubeconfig in --out, for the API server that the
        admin kubeconfig names.

Every file is written atomically; keys and kubeconfigs are 0600, the pki directory 0700. A bad value is
reported with the option that carried it.
"""
from __future__ import annotations

import argparse
import base64
import ipaddress
import json
import os
import re
import secrets
import subprocess
import sys
import tempfile
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from node_config import atomic_write  # the one atomic writer of hack/k8s

CA_DAYS = 3650
CERT_DAYS = 365
CLIENT = "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth"
SERVER = "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth"
# The API server answers on loopback and, for pods, on the first address of the service CIDR (10.96.0.0/16).
APISERVER_SANS = ["IP:127.0.0.1", "IP:10.96.0.1", "DNS:localhost", "DNS:kubernetes", "DNS:kubernetes.default",
                  "DNS:kubernetes.default.svc", "DNS:kubernetes.default.svc.cluster.local"]
# name -> (subject, extensions): the control plane's certificates, all signed by the cluster CA.
CONTROL_PLANE_CERTS = {
    "apiserver": ("/CN=kube-apiserver", SERVER + "\nsubjectAltName=" + ",".join(APISERVER_SANS)),
    "admin": ("/O=system:masters/CN=velocity-admin", CLIENT),
    "controller-manager": ("/CN=system:kube-controller-manager", CLIENT),
    "scheduler": ("/CN=system:kube-scheduler", CLIENT),
    "kwok": ("/O=system:masters/CN=kwok-controller", CLIENT),
    # The API server's client for the kubelet API (logs, exec, port-forward); the real node's kubelet
    # authorises it by webhook (node.sh binds system:kubelet-api-admin).
    "apiserver-kubelet-client": ("/CN=kube-apiserver-kubelet-client", CLIENT),
}
# The components that reach the API server with a kubeconfig of their own (client certificate above).
CONTROL_PLANE_KUBECONFIGS = {"controller-manager": "controller-manager.kubeconfig", "scheduler": "scheduler.kubeconfig",
                             "kwok": "kwok.kubeconfig", "admin": "admin.kubeconfig.tmp"}
DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")


class ConfigError(Exception):
    """A bad value, named by the option that carried it."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")


# ---------------------------------------------------------------------------
# PKI (openssl CLI: no Python crypto package is needed on a fresh machine)


def openssl(*args: str, stdin: bytes | None = None) -> bytes:
    proc = subprocess.run(["openssl", *args], input=stdin, capture_output=True, check=False)  # noqa: S603, S607
    if proc.returncode != 0:
        raise RuntimeError(f"openssl {args[0]} failed: {proc.stderr.decode(errors='replace').strip()[-500:]}")
    return proc.stdout


def _key(path: str, algorithm: str = "EC") -> None:
    opts = ["-pkeyopt", "ec_paramgen_curve:P-256"] if algorithm == "EC" else ["-pkeyopt", "rsa_keygen_bits:2048"]
    atomic_write(path, openssl("genpkey", "-algorithm", algorithm, *opts), 0o600)


def make_ca(pki: str, name: str, subject: str) -> None:
    """A self-signed CA (EC P-256) as <name>.key / <name>.crt."""
    _key(os.path.join(pki, f"{name}.key"))
    crt = openssl("req", "-x509", "-new", "-key", os.path.join(pki, f"{name}.key"), "-subj", subject,
                  "-days", str(CA_DAYS), "-sha256", "-addext", "basicConstraints=critical,CA:TRUE",
                  "-addext", "keyUsage=critical,keyCertSign,cRLSign,digitalSignature")
    atomic_write(os.path.join(pki, f"{name}.crt"), crt)


def issue_cert(pki: str, name: str, subject: str, extensions: str, ca: str = "ca") -> None:
    """A key (EC P-256) and a certificate for it signed by the CA <ca> in pki, as <name>.key / <name>.crt."""
    key = os.path.join(pki, f"{name}.key")
    _key(key)
    csr = openssl("req", "-new", "-key", key, "-subj", subject)
    with tempfile.TemporaryDirectory(dir=pki) as tmp:
        ext = os.path.join(tmp, "ext.cnf")
        with open(ext, "w", encoding="ascii") as fh:
            fh.write(extensions + "\n")
        # A random serial each time: no .srl file left beside the CA.
        serial = "0x" + secrets.token_hex(16)
        crt = openssl("x509", "-req", "-CA", os.path.join(pki, f"{ca}.crt"), "-CAkey", os.path.join(pki, f"{ca}.key"),
                      "-set_serial", serial, "-days", str(CERT_DAYS), "-sha256", "-extfile", ext, stdin=csr)
    atomic_write(os.path.join(pki, f"{name}.crt"), crt)


def service_account_keys(pki: str) -> None:
    """The service-account token signing key pair (RS256: what Vault and every client expect)."""
    _key(os.path.join(pki, "sa.key"), "RSA")
    atomic_write(os.path.join(pki, "sa.pub"), openssl("pkey", "-in", os.path.join(pki, "sa.key"), "-pubout"))


def encryption_config() -> str:
    """Secrets encrypted at rest in etcd (secretbox: XSalsa20-Poly1305) under a fresh key; identity last,
    so that objects written before could still be read."""
    key = base64.b64encode(secrets.token_bytes(32)).decode()
    return (
        "apiVersion: apiserver.config.k8s.io/v1\n"
        "kind: EncryptionConfiguration\n"
        "resources:\n"
        "  - resources: [secrets]\n"
        "    providers:\n"
        "      - secretbox:\n"
        "          keys:\n"
        "            - name: key1\n"
        f"              secret: {key}\n"
        "      - identity: {}\n"
    )


# ---------------------------------------------------------------------------
# kubeconfigs and kwok nodes (JSON, which every YAML reader takes)


def _b64_file(path: str) -> str:
    with open(path, "rb") as fh:
        return base64.b64encode(fh.read()).decode()


def kubeconfig(pki: str, user: str, api_url: str, namespace: str | None = "default") -> str:
    """A kubeconfig for the client certificate <user>.crt/.key in pki, trusting ca.crt."""
    context: dict = {"cluster": "velocity-local", "user": user}
    if namespace:
        context["namespace"] = namespace
    doc = {
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "velocity-local",
                      "cluster": {"server": api_url, "certificate-authority-data": _b64_file(os.path.join(pki, "ca.crt"))}}],
        "users": [{"name": user, "user": {"client-certificate-data": _b64_file(os.path.join(pki, f"{user}.crt")),
                                          "client-key-data": _b64_file(os.path.join(pki, f"{user}.key"))}}],
        "contexts": [{"name": "velocity-local", "context": context}],
        "current-context": "velocity-local",
    }
    return json.dumps(doc, indent=2) + "\n"


def kwok_nodes(count: int) -> str:
    """The kwok-simulated nodes (a v1 List): kwok manages the Nodes annotated kwok.x-k8s.io/node=fake."""
    resources = {"cpu": "32", "memory": "256Gi", "pods": "110"}
    items = [{
        "apiVersion": "v1", "kind": "Node",
        "metadata": {
            "name": f"kwok-node-{i}",
            "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {"type": "kwok", "kubernetes.io/arch": "amd64", "kubernetes.io/os": "linux",
                       "kubernetes.io/hostname": f"kwok-node-{i}", "kubernetes.io/role": "agent",
                       "node-role.kubernetes.io/agent": ""},
        },
        "status": {"allocatable": dict(resources), "capacity": dict(resources)},
    } for i in range(count)]
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": items}, indent=2) + "\n"


# ---------------------------------------------------------------------------
# commands


def _api_url(value: str) -> str:
    url = urllib.parse.urlparse(value)
    if url.scheme != "https" or not url.hostname or not url.port:
        raise ConfigError("--api-url", f"{value!r} is not https://HOST:PORT")
    return value


def _abs(field: str, value: str) -> str:
    if not os.path.isabs(value):
        raise ConfigError(field, f"{value!r} is not an absolute path")
    return value


def control_plane(state: str, api_url: str, kwok_node_count: int) -> None:
    _abs("--state", state)
    _api_url(api_url)
    if not 0 <= kwok_node_count <= 100:
        raise ConfigError("--kwok-nodes", f"{kwok_node_count} is not between 0 and 100")
    pki = os.path.join(state, "pki")
    os.makedirs(pki, exist_ok=True)
    os.chmod(pki, 0o700)
    make_ca(pki, "ca", "/CN=velocity-local-ca")
    for name, (subject, extensions) in CONTROL_PLANE_CERTS.items():
        issue_cert(pki, name, subject, extensions)
    # Front-proxy (request-header) CA: the aggregation layer's trust, which the delegated
    # authentication of the controller-manager and scheduler reads.
    make_ca(pki, "front-proxy-ca", "/CN=velocity-front-proxy-ca")
    issue_cert(pki, "front-proxy-client", "/CN=front-proxy-client", CLIENT, ca="front-proxy-ca")
    service_account_keys(pki)
    atomic_write(os.path.join(pki, "encryption-config.yaml"), encryption_config(), 0o600)
    for user, file in CONTROL_PLANE_KUBECONFIGS.items():
        atomic_write(os.path.join(state, file), kubeconfig(pki, user, api_url), 0o600)
    atomic_write(os.path.join(state, "kwok-nodes.yaml"), kwok_nodes(kwok_node_count))


def server_of(admin_kubeconfig: str) -> str:
    """The API server URL of a kubeconfig (ours are JSON; a YAML one of an older start is read by its line)."""
    try:
        with open(admin_kubeconfig, encoding="utf-8") as fh:
            text = fh.read()
    except OSError as exc:
        raise ConfigError("--admin-kubeconfig", f"cannot read {admin_kubeconfig}: {exc.strerror}") from None
    try:
        return json.loads(text)["clusters"][0]["cluster"]["server"]
    except (ValueError, KeyError, IndexError, TypeError):
        found = re.search(r"^\s*server:\s*(\S+)\s*$", text, re.MULTILINE)
        if not found:
            raise ConfigError("--admin-kubeconfig", f"{admin_kubeconfig} names no API server") from None
        return found.group(1)


def node(pki: str, out: str, admin_kubeconfig: str, node_name: str, node_ip: str) -> None:
    _abs("--pki", pki)
    _abs("--out", out)
    api_url = server_of(admin_kubeconfig)
    try:
        _api_url(api_url)
    except ConfigError:
        raise ConfigError("--admin-kubeconfig", f"its server {api_url!r} is not https://HOST:PORT") from None
    if not DNS_LABEL.fullmatch(node_name):
        raise ConfigError("--node-name", f"{node_name!r} is not a DNS label")
    try:
        ip = ipaddress.ip_address(node_ip)
    except ValueError:
        raise ConfigError("--node-ip", f"{node_ip!r} is not an IP address") from None
    if ip.is_loopback:
        raise ConfigError("--node-ip", f"{node_ip} is loopback: the API server must reach the kubelet there")
    for name in ("ca.crt", "ca.key"):
        if not os.path.isfile(os.path.join(pki, name)):
            raise ConfigError("--pki", f"no {name} in {pki}: start the control plane first (hack/k8s/cluster.sh start)")
    subject = f"/O=system:nodes/CN=system:node:{node_name}"
    issue_cert(pki, "kubelet", subject, CLIENT)
    issue_cert(pki, "kubelet-server", subject, f"{SERVER}\nsubjectAltName=IP:{ip},DNS:{node_name}")
    issue_cert(pki, "kube-proxy", "/CN=system:kube-proxy", CLIENT)
    for user in ("kubelet", "kube-proxy"):
        atomic_write(os.path.join(out, f"{user}.kubeconfig"), kubeconfig(pki, user, api_url, namespace=None), 0o600)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    cp = sub.add_parser("control-plane", help="PKI, encryption config, kubeconfigs and kwok nodes of the control plane")
    cp.add_argument("--state", required=True, help="the cluster's state directory (pki/ goes inside)")
    cp.add_argument("--api-url", required=True, help="https://127.0.0.1:PORT")
    cp.add_argument("--kwok-nodes", type=int, default=2)
    nd = sub.add_parser("node", help="the real node's certificates and kubeconfigs")
    nd.add_argument("--pki", required=True, help="the control plane's pki directory (its CA signs)")
    nd.add_argument("--out", required=True, help="where kubelet.kubeconfig and kube-proxy.kubeconfig go")
    nd.add_argument("--admin-kubeconfig", required=True, help="the cluster's admin kubeconfig (its server URL is used)")
    nd.add_argument("--node-name", required=True)
    nd.add_argument("--node-ip", required=True)
    a = parser.parse_args(argv)
    try:
        if a.command == "control-plane":
            control_plane(a.state, a.api_url, a.kwok_nodes)
        else:
            node(a.pki, a.out, a.admin_kubeconfig, a.node_name, a.node_ip)
    except (ConfigError, RuntimeError, OSError) as exc:
        print(f"cluster_config.py {a.command}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
