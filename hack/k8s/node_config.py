#!/usr/bin/env python3
"""Generated files of the local real node (hack/k8s/node.sh); stdlib only.

    node_config.py image --binary B --name REF --out TAR [--cmd ARG ...]
        a deterministic single-layer OCI image archive holding one static binary
        at /<basename>, for `ctr -n k8s.io images import`.
    node_config.py render --out DIR --node-ip IP --node-name NAME --state DIR ...
        containerd config.toml, registry hosts.toml, CNI conflist, kubelet and
        kube-proxy configuration, all written atomically into DIR.

Every value is checked and a bad one is reported with the option that carried it.
"""
from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import ipaddress
import json
import os
import re
import sys
import tarfile
import tempfile


def atomic_write(path, data, mode=0o644):
    """Write bytes or text to path through a temp file in the same directory."""
    if isinstance(data, str):
        data = data.encode()
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def fail(field, message):
    sys.exit(f"node_config.py: {field}: {message}")


# ---------------------------------------------------------------------------
# OCI image archive


def _blob(data):
    return "sha256:" + hashlib.sha256(data).hexdigest(), data


def oci_image(binary, name, cmd):
    """Return the bytes of an OCI image layout tar with `binary` as /<name>."""
    if not os.path.isfile(binary):
        fail("--binary", f"{binary} is not a file")
    if not re.fullmatch(r"[a-z0-9.\-]+(:\d+)?(/[a-z0-9._\-]+)+:[A-Za-z0-9._\-]+", name):
        fail("--name", f"{name!r} is not a full image reference like velocity.local/pause:1")
    target = os.path.basename(binary)
    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tar.gettarinfo(binary, arcname=target)
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        info.mtime = 0
        info.mode = 0o755
        with open(binary, "rb") as fh:
            tar.addfile(info, fh)
    raw_layer = layer.getvalue()
    gz = io.BytesIO()
    with gzip.GzipFile(fileobj=gz, mode="wb", mtime=0) as zf:
        zf.write(raw_layer)
    layer_digest, layer_blob = _blob(gz.getvalue())
    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": {"Entrypoint": ["/" + target], "Cmd": list(cmd) or None, "Env": ["PATH=/"]},
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(raw_layer).hexdigest()]},
        "history": [{"created_by": "hack/k8s/node_config.py image"}],
    }
    if not cmd:
        del config["config"]["Cmd"]
    config_digest, config_blob = _blob(json.dumps(config, sort_keys=True).encode())
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": config_digest, "size": len(config_blob)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": layer_digest, "size": len(layer_blob)}],
    }
    manifest_digest, manifest_blob = _blob(json.dumps(manifest, sort_keys=True).encode())
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_digest, "size": len(manifest_blob),
            "annotations": {"io.containerd.image.name": name,
                            "org.opencontainers.image.ref.name": name.rsplit(":", 1)[1]},
        }],
    }
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        def add(path, data):
            info = tarfile.TarInfo(path)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
        add("oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        add("index.json", json.dumps(index, sort_keys=True).encode())
        for digest, blob in ((layer_digest, layer_blob), (config_digest, config_blob),
                             (manifest_digest, manifest_blob)):
            add("blobs/sha256/" + digest.split(":", 1)[1], blob)
    return out.getvalue()


# ---------------------------------------------------------------------------
# configuration files


def _net(field, value):
    try:
        return ipaddress.ip_network(value, strict=True)
    except ValueError as exc:
        fail(field, f"{value!r} is not a network: {exc}")


def _ip(field, value):
    try:
        addr = ipaddress.ip_address(value)
    except ValueError as exc:
        fail(field, f"{value!r} is not an IP address: {exc}")
    if addr.is_loopback:
        fail(field, f"{value} is a loopback address; a node IP cannot be loopback")
    return addr


def _abs(field, value):
    if not os.path.isabs(value):
        fail(field, f"{value!r} must be an absolute path")
    return value


def toml_str(value):
    return json.dumps(value)  # a TOML basic string is a JSON string for these values


def containerd_toml(a):
    c = a.state + "/containerd"
    return "\n".join([
        "# Generated by hack/k8s/node_config.py: the local real node's own containerd.",
        "version = 3",
        "root = {}".format(toml_str(c + "/root")),
        "state = {}".format(toml_str(c + "/state")),
        "imports = []",
        "",
        "[grpc]",
        "  address = {}".format(toml_str(c + "/containerd.sock")),
        "[ttrpc]",
        "  address = {}".format(toml_str(c + "/containerd.sock.ttrpc")),
        "[debug]",
        "  address = \"\"",
        "[metrics]",
        "  address = \"\"",
        "",
        "[plugins.'io.containerd.shim.v1.manager']",
        "  socket_dir = {}".format(toml_str(a.state + "/s")),
        "",
        "[plugins.'io.containerd.cri.v1.images']",
        "  snapshotter = 'overlayfs'",
        "  [plugins.'io.containerd.cri.v1.images'.pinned_images]",
        f"    sandbox = {toml_str(a.sandbox_image)}",
        "  [plugins.'io.containerd.cri.v1.images'.registry]",
        "    config_path = {}".format(toml_str(a.state + "/certs.d")),
        "",
        "[plugins.'io.containerd.cri.v1.runtime']",
        "  enable_selinux = false",
        "  disable_apparmor = true",
        "  # root here lacks CAP_SYS_RESOURCE: runc cannot lower oom_score_adj.",
        "  restrict_oom_score_adj = true",
        "  [plugins.'io.containerd.cri.v1.runtime'.containerd]",
        "    default_runtime_name = 'runc'",
        "    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]",
        "      runtime_type = 'io.containerd.runc.v2'",
        "      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]",
        f"        BinaryName = {toml_str(a.runc)}",
        "        SystemdCgroup = false",
        "  [plugins.'io.containerd.cri.v1.runtime'.cni]",
        f"    bin_dirs = [{toml_str(a.cni_bin)}]",
        "    conf_dir = {}".format(toml_str(a.state + "/cni/net.d")),
        "    max_conf_num = 1",
        "",
        "[plugins.'io.containerd.grpc.v1.cri']",
        "  stream_server_address = '127.0.0.1'",
        "  stream_server_port = '0'",
        "",
    ])


def hosts_toml(a):
    return "\n".join([
        "# Generated by hack/k8s/node_config.py: the project's local registry (scripts/services/registry.sh).",
        "server = {}".format(toml_str("https://" + a.registry)),
        "",
        "[host.{}]".format(toml_str("https://" + a.registry)),
        "  capabilities = ['pull', 'resolve']",
        f"  ca = {toml_str(a.registry_ca)}",
        "  skip_verify = false",
        "",
    ])


def cni_conflist(a):
    pod = _net("--pod-cidr", a.pod_cidr)
    gateway = str(next(pod.hosts()))
    return json.dumps({
        "cniVersion": "1.0.0",
        "name": "velocity",
        "plugins": [
            {
                "type": "bridge",
                "bridge": a.bridge,
                "isGateway": True,
                "ipMasq": False,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": str(pod), "gateway": gateway}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "dataDir": a.state + "/cni/ipam",
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }, indent=2) + "\n"


def kubelet_yaml(a):
    pki = a.pki
    return "\n".join([
        "# Generated by hack/k8s/node_config.py.",
        "apiVersion: kubelet.config.k8s.io/v1beta1",
        "kind: KubeletConfiguration",
        f"address: {a.node_ip}",
        "port: 10250",
        "readOnlyPort: 0",
        "healthzBindAddress: 127.0.0.1",
        "healthzPort: 10248",
        f"tlsCertFile: {pki}/kubelet-server.crt",
        f"tlsPrivateKeyFile: {pki}/kubelet-server.key",
        "rotateCertificates: false",
        "serverTLSBootstrap: false",
        "authentication:",
        "  anonymous:",
        "    enabled: false",
        "  webhook:",
        "    enabled: true",
        "    cacheTTL: 30s",
        "  x509:",
        f"    clientCAFile: {pki}/ca.crt",
        "authorization:",
        "  mode: Webhook",
        "  webhook:",
        "    cacheAuthorizedTTL: 30s",
        "    cacheUnauthorizedTTL: 5s",
        f"containerRuntimeEndpoint: unix://{a.state}/containerd/containerd.sock",
        f"imageServiceEndpoint: unix://{a.state}/containerd/containerd.sock",
        "# This machine is on cgroup v1 (hybrid); the kubelet refuses it unless told.",
        "failCgroupV1: false",
        "cgroupDriver: cgroupfs",
        "cgroupsPerQOS: true",
        "failSwapOn: false",
        "# No cluster DNS: pods get no resolver, so nothing resolves names off this machine.",
        "resolvConf: \"\"",
        "clusterDomain: cluster.local",
        f"podCIDR: {a.pod_cidr}",
        "maxPods: 110",
        "registerNode: true",
        "registerWithTaints:",
        "- key: velocity.dev/real-node",
        "  value: \"true\"",
        "  effect: NoSchedule",
        "nodeStatusUpdateFrequency: 10s",
        "syncFrequency: 10s",
        "fileCheckFrequency: 20s",
        "# A shared test machine: never evict for disk or memory pressure, never GC images.",
        "evictionHard:",
        "  memory.available: 1Mi",
        "  nodefs.available: 0%",
        "  imagefs.available: 0%",
        "  nodefs.inodesFree: 0%",
        "imageGCHighThresholdPercent: 100",
        "imageGCLowThresholdPercent: 99",
        "serializeImagePulls: false",
        "shutdownGracePeriod: 0s",
        "containerLogMaxSize: 10Mi",
        "containerLogMaxFiles: 2",
        "",
    ])


def kube_proxy_yaml(a):
    return "\n".join([
        "# Generated by hack/k8s/node_config.py.",
        "apiVersion: kubeproxy.config.k8s.io/v1alpha1",
        "kind: KubeProxyConfiguration",
        "clientConnection:",
        f"  kubeconfig: {a.state}/kube-proxy.kubeconfig",
        f"hostnameOverride: {a.node_name}",
        "mode: iptables",
        f"clusterCIDR: {a.pod_cidr}",
        "detectLocalMode: ClusterCIDR",
        f"bindAddress: {a.node_ip}",
        "healthzBindAddress: 127.0.0.1:10256",
        "metricsBindAddress: 127.0.0.1:10249",
        f"nodePortAddresses: [\"{a.node_ip}/32\"]",
        "iptables:",
        "  localhostNodePorts: false",
        "  masqueradeAll: false",
        "  syncPeriod: 30s",
        "  minSyncPeriod: 1s  # batches rule writes while benchmarks create many Services",
        "# Leave the host's conntrack sysctls alone.",
        "conntrack:",
        "  maxPerCore: 0",
        "  min: 0",
        "  tcpEstablishedTimeout: 0s",
        "  tcpCloseWaitTimeout: 0s",
        "",
    ])


def render(a):
    _abs("--out", a.out)
    _abs("--state", a.state)
    _abs("--pki", a.pki)
    _abs("--cni-bin", a.cni_bin)
    _abs("--runc", a.runc)
    _abs("--registry-ca", a.registry_ca)
    _ip("--node-ip", a.node_ip)
    pod = _net("--pod-cidr", a.pod_cidr)
    svc = _net("--service-cidr", a.service_cidr)
    if pod.overlaps(svc):
        fail("--pod-cidr", f"{pod} overlaps the service CIDR {svc}")
    if not re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", a.node_name):
        fail("--node-name", f"{a.node_name!r} is not a DNS label")
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,14}", a.bridge):
        fail("--bridge", f"{a.bridge!r} is not an interface name (at most 15 characters)")
    if not re.fullmatch(r"[A-Za-z0-9.\-]+:\d+", a.registry):
        fail("--registry", f"{a.registry!r} is not host:port")
    atomic_write(os.path.join(a.out, "containerd.toml"), containerd_toml(a))
    atomic_write(os.path.join(a.state, "certs.d", a.registry, "hosts.toml"), hosts_toml(a))
    atomic_write(os.path.join(a.state, "cni", "net.d", "10-velocity.conflist"), cni_conflist(a))
    atomic_write(os.path.join(a.out, "kubelet.yaml"), kubelet_yaml(a))
    atomic_write(os.path.join(a.out, "kube-proxy.yaml"), kube_proxy_yaml(a))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    img = sub.add_parser("image", help="build an OCI image archive from one static binary")
    img.add_argument("--binary", required=True)
    img.add_argument("--name", required=True)
    img.add_argument("--out", required=True)
    img.add_argument("--cmd", action="append", default=[])
    r = sub.add_parser("render", help="write the node's configuration files")
    r.add_argument("--out", required=True, help="where containerd.toml, kubelet.yaml, kube-proxy.yaml go")
    r.add_argument("--state", required=True, help="the node's state directory")
    r.add_argument("--pki", required=True)
    r.add_argument("--node-ip", required=True)
    r.add_argument("--node-name", required=True)
    r.add_argument("--pod-cidr", required=True)
    r.add_argument("--service-cidr", required=True)
    r.add_argument("--bridge", required=True)
    r.add_argument("--cni-bin", required=True)
    r.add_argument("--runc", required=True)
    r.add_argument("--sandbox-image", required=True)
    r.add_argument("--registry", required=True)
    r.add_argument("--registry-ca", required=True)
    a = parser.parse_args(argv)
    if a.command == "image":
        atomic_write(a.out, oci_image(a.binary, a.name, a.cmd))
    else:
        render(a)
    return 0


if __name__ == "__main__":
    sys.exit(main())
