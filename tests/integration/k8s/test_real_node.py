"""The real node of the local cluster (hack/k8s/node.sh): containers really run.

A kubelet and kube-proxy built from the control plane's k8s.io/kubernetes
module, containerd v2 with Debian's runc and CNI bridge networking. Pods land
there only with the toleration and nodeSelector below (the kwok nodes stay the
default for untolerating pods). The test image is `velocity.local/nettest:1`,
built from hack/k8s/node/nettest and imported into the node's containerd at
start (imagePullPolicy Never: nothing is pulled).

Every address a test sends to is on this machine: loopback, the node IP, the
pod CIDR and the service CIDR. The one exception, the "refused locally" test,
first checks that the node's egress rule is in place and then shows that the
packet to a TEST-NET-3 address (never a local network here) is rejected by
that rule, by its packet counter.

The last test stops and restarts the node (after a kill -9 of the kubelet and
containerd) and compares bridges, netns, iptables chains, mounts, cgroups and
the kernel tunables the kubelet sets with a snapshot taken while the node was stopped.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.k8s import wait_until
from tests.runner import CACHE_DIR

kubernetes = pytest.importorskip("kubernetes")
from kubernetes import client  # noqa: E402
from kubernetes.client.rest import ApiException  # noqa: E402

pytestmark = pytest.mark.k8s

ROOT = Path(__file__).resolve().parents[3]
NODE_SH = ROOT / "hack" / "k8s" / "node.sh"
CLUSTER_SH = ROOT / "hack" / "k8s" / "cluster.sh"
STATE = Path(os.environ.get("VELOCITY_STATE_DIR", "/tmp/velocity")) / "k8s"
NODE = os.environ.get("VELOCITY_K8S_NODE_NAME", "velocity-node")
IMAGE = "velocity.local/nettest:1"
BRIDGE = "velocity0"
EGRESS_CHAIN = "VELOCITY-NODE-EGRESS"
POD_CIDR = ipaddress.ip_network("10.88.0.0/16")
SERVICE_CIDR = ipaddress.ip_network("10.96.0.0/16")
# What a manifest needs to land on the real node.
ON_REAL_NODE = {
    "nodeSelector": {"velocity.dev/node": "real"},
    "tolerations": [{"key": "velocity.dev/real-node", "operator": "Equal", "value": "true", "effect": "NoSchedule"}],
}



def run(*cmd: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    out = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout, check=False,
                         stdin=subprocess.DEVNULL)
    if check and out.returncode != 0:
        progress = "\n".join(line for line in out.stderr.splitlines() if line.startswith("[")) or out.stderr[-3000:]
        raise AssertionError(f"{' '.join(cmd)} exited {out.returncode}:\n{out.stdout[-3000:]}\n{progress[-4000:]}")
    return out


@pytest.fixture(scope="module")
def kubectl(k8s_cluster) -> Callable[..., subprocess.CompletedProcess[str]]:
    if k8s_cluster.external:
        pytest.fail("the real-node tests need the local cluster (hack/k8s), not VELOCITY_K8S_EXTERNAL")
    binary = run("bash", str(CLUSTER_SH), "bindir").stdout.strip() + "/kubectl"

    def _kubectl(*args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return run(binary, "--kubeconfig", k8s_cluster.kubeconfig, *args, check=check, timeout=timeout)

    return _kubectl


@pytest.fixture(scope="module")
def core(k8s_api_client):
    return client.CoreV1Api(k8s_api_client)


@pytest.fixture(scope="module")
def real_node(core) -> client.V1Node:
    try:
        node = core.read_node(NODE)
    except ApiException as exc:
        if exc.status == 404:
            pytest.fail(f"no node {NODE}: the real node is not running (hack/k8s/node.sh start; "
                        f"cluster.sh starts it unless VELOCITY_K8S_REAL_NODE=0)", pytrace=False)
        raise
    return node


def node_ip(node: client.V1Node) -> str:
    return next(a.address for a in node.status.addresses if a.type == "InternalIP")


def pod_ready(pod: client.V1Pod) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in (pod.status.conditions or []))


@pytest.fixture(scope="module")
def namespace(core, real_node):
    name = f"velocity-node-{uuid.uuid4().hex[:8]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels={"velocity.dev/test": "k8s"})))
    try:
        yield name
    finally:
        try:
            core.delete_namespace(name)
        except ApiException as exc:
            if exc.status != 404:
                raise


def web_deployment(name: str, ready_after: str = "3s") -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    **ON_REAL_NODE,
                    "terminationGracePeriodSeconds": 2,
                    "containers": [{
                        "name": "web",
                        "image": IMAGE,
                        "imagePullPolicy": "Never",
                        "args": ["serve", "-addr", ":8080", "-ready-after", ready_after],
                        "ports": [{"containerPort": 8080, "name": "http"}],
                        "readinessProbe": {"httpGet": {"path": "/readyz", "port": 8080}, "periodSeconds": 1},
                        "livenessProbe": {"httpGet": {"path": "/healthz", "port": 8080}, "periodSeconds": 5},
                    }],
                },
            },
        },
    }


@pytest.fixture(scope="module")
def web(core, namespace, k8s_api_client):
    """A Deployment of the test image on the real node, Ready, with a ClusterIP Service."""
    apps = client.AppsV1Api(k8s_api_client)
    apps.create_namespaced_deployment(namespace, web_deployment("web"))
    core.create_namespaced_service(namespace, {
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]},
    })

    def ready_pod():
        pods = [p for p in core.list_namespaced_pod(namespace, label_selector="app=web").items
                if p.metadata.deletion_timestamp is None]
        return pods[0] if len(pods) == 1 and pod_ready(pods[0]) else None

    pod = wait_until("the web pod on the real node to be Ready", ready_pod)
    svc = core.read_namespaced_service("web", namespace)
    return {"pod": pod, "service_ip": svc.spec.cluster_ip, "namespace": namespace}


def exec_get(kubectl, namespace: str, pod: str, url: str, timeout: str = "3s") -> subprocess.CompletedProcess[str]:
    return kubectl("exec", "-n", namespace, pod, "--", "/nettest", "get", "-timeout", timeout, url, check=False)


def iptables_counters(chain: str, table: str = "filter") -> list[tuple[int, str]]:
    """(packets, rule text) for each rule of a chain, from iptables -v -x."""
    out = run("iptables", "-w", "-t", table, "-L", chain, "-n", "-v", "-x").stdout.splitlines()[2:]
    return [(int(line.split()[0]), line) for line in out if line.strip()]


# ---------------------------------------------------------------------------


def test_real_node_is_ready_tainted_and_on_the_primary_address(core, real_node):
    assert any(c.type == "Ready" and c.status == "True" for c in real_node.status.conditions)
    assert real_node.metadata.labels.get("velocity.dev/node") == "real"
    taints = [(t.key, t.value, t.effect) for t in (real_node.spec.taints or [])]
    assert ("velocity.dev/real-node", "true", "NoSchedule") in taints
    ip = ipaddress.ip_address(node_ip(real_node))
    assert not ip.is_loopback
    assert str(ip) in run("ip", "-4", "-o", "addr", "show", "scope", "global").stdout
    assert real_node.status.node_info.kubelet_version == run(
        "bash", str(CLUSTER_SH), "bindir").stdout.strip().split("/")[-2].split("-etcd-")[0]
    assert real_node.status.node_info.container_runtime_version.startswith("containerd://2.")
    # The kwok nodes are still there, untainted, for everything that does not ask for the real node.
    kwok = core.list_node(label_selector="type=kwok").items
    assert kwok and all(not n.spec.taints for n in kwok)


def test_untolerating_pod_does_not_land_on_the_real_node(core, namespace):
    core.create_namespaced_pod(namespace, {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "plain"},
        "spec": {"containers": [{"name": "c", "image": "velocity/not-pullable:1"}]},
    })
    pod = wait_until("the plain pod to be scheduled",
                     lambda: (p := core.read_namespaced_pod("plain", namespace)).spec.node_name and p)
    assert pod.spec.node_name.startswith("kwok-node-"), pod.spec.node_name


def test_pod_becomes_ready_through_a_real_readiness_probe(kubectl, web):
    pod = web["pod"]
    assert pod.spec.node_name == NODE
    assert POD_CIDR.supernet_of(ipaddress.ip_network(pod.status.pod_ip + "/32"))
    started = pod.status.container_statuses[0].state.running.started_at
    ready = next(c.last_transition_time for c in pod.status.conditions if c.type == "Ready")
    # The server answers 503 on /readyz for its first 3 s: Ready cannot come earlier.
    assert (ready - started).total_seconds() >= 2.5, (started, ready)
    logs = kubectl("logs", "-n", web["namespace"], pod.metadata.name).stdout
    assert "nettest serving on :8080" in logs
    assert re.search(r"GET /readyz from \d+\.\d+\.\d+\.\d+", logs), logs[-2000:]


def test_kubectl_exec_and_port_forward(kubectl, web):
    ns, name = web["namespace"], web["pod"].metadata.name
    out = exec_get(kubectl, ns, name, "http://127.0.0.1:8080/")
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"hello from {name}" in out.stdout
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    binary = run("bash", str(CLUSTER_SH), "bindir").stdout.strip() + "/kubectl"
    kubeconfig = str(STATE / "kubeconfig")
    proc = subprocess.Popen([binary, "--kubeconfig", kubeconfig, "port-forward", "-n", ns, name, f"{port}:8080"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        def answer():
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as resp:
                    return resp.read().decode()
            except OSError:
                return None
        assert f"hello from {name}" in wait_until("kubectl port-forward to answer", answer, timeout=30)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_kubelet_api_needs_credentials(real_node):
    ctx = ssl.create_default_context(cafile=str(STATE / "pki" / "ca.crt"))  # the kubelet's cert is from the cluster CA
    url = f"https://{node_ip(real_node)}:10250/pods"
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(url, timeout=5, context=ctx)
    assert err.value.code == 401, err.value.read()[:300]


def test_kubelet_api_authorizes_by_webhook(real_node):
    """The API server's kubelet client may use the kubelet API; another valid cluster identity may not."""
    url = f"https://{node_ip(real_node)}:10250/pods"
    pki = STATE / "pki"

    def get(identity: str) -> int:
        ctx = ssl.create_default_context(cafile=str(pki / "ca.crt"))
        ctx.load_cert_chain(str(pki / f"{identity}.crt"), str(pki / f"{identity}.key"))
        try:
            with urllib.request.urlopen(url, timeout=5, context=ctx) as resp:
                return resp.status
        except urllib.error.HTTPError as exc:
            return exc.code

    assert get("apiserver-kubelet-client") == 200
    assert get("kube-proxy") == 403  # authenticated (x509), denied by SubjectAccessReview


def test_host_traffic_to_a_kwok_backed_service_stays_on_the_machine(core, namespace, k8s_api_client):
    """kube-proxy translates a ClusterIP to kwok's simulated pod IPs, which are nowhere:
    the node's OUTPUT guard refuses them instead of letting them out by the default route."""
    run("iptables", "-w", "-C", "OUTPUT", "-j", "VELOCITY-NODE-OUTPUT")
    apps = client.AppsV1Api(k8s_api_client)
    apps.create_namespaced_deployment(namespace, {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "on-kwok"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "on-kwok"}},
                 "template": {"metadata": {"labels": {"app": "on-kwok"}},
                              "spec": {"containers": [{"name": "c", "image": "velocity/simulated:1"}]}}},
    })
    core.create_namespaced_service(namespace, {
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "on-kwok"},
        "spec": {"selector": {"app": "on-kwok"}, "ports": [{"port": 80, "targetPort": 8080}]},
    })
    pod = wait_until("the kwok pod to be Ready", lambda: next(
        (p for p in core.list_namespaced_pod(namespace, label_selector="app=on-kwok").items if pod_ready(p)), None))
    assert pod.spec.node_name.startswith("kwok-node-") and pod.status.pod_ip.startswith("10.244.")
    ip = core.read_namespaced_service("on-kwok", namespace).spec.cluster_ip
    wait_until("kube-proxy's DNAT to the kwok pod", lambda: pod.status.pod_ip in run("iptables-save", "-t", "nat").stdout,
               timeout=30)

    def kwok_rule() -> int:
        return sum(n for n, rule in iptables_counters("VELOCITY-NODE-OUTPUT") if "10.244.0.0/16" in rule)

    before = kwok_rule()
    with pytest.raises(OSError) as err:
        urllib.request.urlopen(f"http://{ip}/", timeout=5)
    assert "No route to host" in str(err.value), err.value
    assert kwok_rule() > before


def test_cluster_ip_service_answers_from_the_host(web):
    ip = web["service_ip"]
    assert SERVICE_CIDR.supernet_of(ipaddress.ip_network(ip + "/32"))

    def answer():
        try:
            with urllib.request.urlopen(f"http://{ip}/", timeout=2) as resp:
                return resp.read().decode()
        except OSError:
            return None  # kube-proxy lags a new endpoint by about a second

    assert f"hello from {web['pod'].metadata.name}" in wait_until("the ClusterIP to answer", answer, timeout=30)


def test_pod_reaches_a_service_through_kube_proxy(kubectl, web):
    out = exec_get(kubectl, web["namespace"], web["pod"].metadata.name, f"http://{web['service_ip']}/")
    assert out.returncode == 0 and "status: 200" in out.stdout, out.stdout + out.stderr


def test_service_without_endpoints_is_rejected_on_the_node(core, kubectl, web):
    ns = web["namespace"]
    core.create_namespaced_service(ns, {
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "nobody"},
        "spec": {"selector": {"app": "nobody-matches-this"}, "ports": [{"port": 80, "targetPort": 8080}]},
    })
    ip = core.read_namespaced_service("nobody", ns).spec.cluster_ip

    def rejecting_rules() -> int:
        """Packets counted by the REJECT rules for this Service IP (kube-proxy's) or the service CIDR (ours)."""
        total = 0
        for chain in ("KUBE-SERVICES", EGRESS_CHAIN):
            total += sum(n for n, rule in iptables_counters(chain)
                         if "REJECT" in rule and (f" {ip} " in rule or f" {SERVICE_CIDR} " in rule))
        return total

    # kube-proxy writes the REJECT for the new Service within about a second.
    wait_until("kube-proxy's REJECT rule for the Service", lambda: any(
        f" {ip} " in rule and "REJECT" in rule for _, rule in iptables_counters("KUBE-SERVICES")), timeout=30)
    before = rejecting_rules()
    t0 = time.monotonic()
    out = exec_get(kubectl, ns, web["pod"].metadata.name, f"http://{ip}/")
    assert out.returncode != 0, out.stdout
    assert "connection refused" in out.stdout, out.stdout
    assert time.monotonic() - t0 < 10
    assert rejecting_rules() > before


def _unreachable_test_address() -> str:
    """A TEST-NET address in no network this machine is attached to (192.0.2.0/24 can be the VM's own)."""
    local = [ipaddress.ip_network(line.split()[3], strict=False)
             for line in run("ip", "-4", "-o", "addr", "show").stdout.splitlines()]
    for candidate in ("203.0.113.1", "198.51.100.1"):
        if not any(ipaddress.ip_address(candidate) in net for net in local):
            return candidate
    pytest.fail(f"every TEST-NET candidate is on a local network here: {local}")


def test_pod_traffic_off_the_machine_is_refused_on_the_node(kubectl, web):
    target = _unreachable_test_address()
    # Only with the guard in place: the rule that hooks the pod bridge into our chain, and its final REJECT.
    run("iptables", "-w", "-C", "FORWARD", "-i", BRIDGE, "-j", EGRESS_CHAIN)
    rules = iptables_counters(EGRESS_CHAIN)
    assert rules and "REJECT" in rules[-1][1] and "admin-prohib" in rules[-1][1], rules
    before = rules[-1][0]
    out = exec_get(kubectl, web["namespace"], web["pod"].metadata.name, f"http://{target}/", timeout="3s")
    assert out.returncode != 0, out.stdout
    assert "no route to host" in out.stdout, out.stdout  # ICMP admin-prohibited from the node
    assert iptables_counters(EGRESS_CHAIN)[-1][0] > before


# ---------------------------------------------------------------------------
# pulls from the project's registry (scripts/services/registry.sh): containerd trusts its CA via hosts.toml


def push_oci_archive(registry, archive: Path, repository: str, tag: str) -> str:
    """Push the single-image OCI archive the node build made; return the registry's manifest digest."""
    import tarfile

    auth = "Basic " + base64.b64encode(f"{registry.username}:{registry.password}".encode()).decode()
    ctx = ssl.create_default_context(cafile=str(registry.ca))

    def call(method: str, url: str, data: bytes | None = None, ctype: str | None = None):
        req = urllib.request.Request(url, method=method, data=data, headers={"Authorization": auth})
        if ctype:
            req.add_header("Content-Type", ctype)
        with urllib.request.urlopen(req, timeout=30, context=ctx) as resp:
            return resp.status, resp.headers

    with tarfile.open(archive) as tar:
        blobs = {m.name.rsplit("/", 1)[1]: tar.extractfile(m).read() for m in tar.getmembers()
                 if m.name.startswith("blobs/sha256/")}
        index = json.loads(tar.extractfile("index.json").read())
    manifest = json.loads(blobs.pop(index["manifests"][0]["digest"].split(":", 1)[1]))
    # A config of its own, so the pushed image has an image ID of its own: the kubelet remembers which
    # credentials pulled an image ID, and a pod without them could no longer use velocity.local/nettest:1.
    config = json.loads(blobs.pop(manifest["config"]["digest"].split(":", 1)[1]))
    config["config"]["Labels"] = {"velocity.dev/pushed-by": "test_real_node"}
    config_blob = json.dumps(config, sort_keys=True).encode()
    blobs[hashlib.sha256(config_blob).hexdigest()] = config_blob
    manifest["config"].update(digest="sha256:" + hashlib.sha256(config_blob).hexdigest(), size=len(config_blob))
    manifest = json.dumps(manifest, sort_keys=True).encode()
    manifest_digest = hashlib.sha256(manifest).hexdigest()
    for digest, data in blobs.items():
        _, headers = call("POST", f"{registry.url}/v2/{repository}/blobs/uploads/")
        location = urllib.parse.urljoin(registry.url, headers["Location"])
        sep = "&" if "?" in location else "?"
        call("PUT", f"{location}{sep}digest=sha256:{digest}", data, "application/octet-stream")
    _, headers = call("PUT", f"{registry.url}/v2/{repository}/manifests/{tag}", manifest,
                      "application/vnd.oci.image.manifest.v1+json")
    assert headers["Docker-Content-Digest"] == "sha256:" + manifest_digest
    return headers["Docker-Content-Digest"]


def pull_secret(core, namespace: str, name: str, registry, password: str) -> None:
    auth = base64.b64encode(f"{registry.username}:{password}".encode()).decode()
    config = json.dumps({"auths": {registry.host: {"auth": auth}}})
    core.create_namespaced_secret(namespace, {
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": name},
        "type": "kubernetes.io/dockerconfigjson",
        "data": {".dockerconfigjson": base64.b64encode(config.encode()).decode()},
    })


def registry_pod(name: str, image: str, secret: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
        "spec": {
            **ON_REAL_NODE,
            "terminationGracePeriodSeconds": 1,
            "imagePullSecrets": [{"name": secret}],
            "containers": [{"name": "web", "image": image, "imagePullPolicy": "Always",
                            "args": ["serve"], "readinessProbe": {"httpGet": {"path": "/readyz", "port": 8080}}}],
        },
    }


def test_pod_pulls_by_digest_from_the_local_registry(core, namespace, registry, real_node):
    bindir = Path(run("bash", str(NODE_SH), "bindir").stdout.strip())
    digest = push_oci_archive(registry, bindir / "nettest.oci.tar", "velocity/nettest", "node-test")
    image = f"{registry.host}/velocity/nettest@{digest}"
    pull_secret(core, namespace, "registry-good", registry, registry.password)
    pull_secret(core, namespace, "registry-bad", registry, "not-the-password")
    core.create_namespaced_pod(namespace, registry_pod("pulled", image, "registry-good"))
    core.create_namespaced_pod(namespace, registry_pod("denied", image, "registry-bad"))

    pod = wait_until("the pod pulled from the registry to be Ready",
                     lambda: (p := core.read_namespaced_pod("pulled", namespace)) and pod_ready(p) and p)
    status = pod.status.container_statuses[0]
    assert status.image_id.endswith(digest), status.image_id

    def pull_failure():
        p = core.read_namespaced_pod("denied", namespace)
        waiting = p.status.container_statuses and p.status.container_statuses[0].state.waiting
        return waiting if waiting and waiting.reason in ("ErrImagePull", "ImagePullBackOff") else None

    waiting = wait_until("the pod with a wrong registry password to fail its pull", pull_failure, timeout=60)
    assert "401" in waiting.message or "unauthorized" in waiting.message.lower(), waiting.message


def test_docker_image_imported_into_the_node_runs(core, namespace, docker_engine, tmp_path):
    """node.sh import-image: docker save | ctr import, for an image the Docker Engine built."""
    import tarfile

    bindir = Path(run("bash", str(NODE_SH), "bindir").stdout.strip())
    with tarfile.open(bindir / "nettest.oci.tar") as tar:
        def blob(digest: str) -> bytes:
            return tar.extractfile("blobs/sha256/" + digest.split(":", 1)[1]).read()

        manifest = json.loads(blob(json.loads(tar.extractfile("index.json").read())["manifests"][0]["digest"]))
        (tmp_path / "rootfs.tar.gz").write_bytes(blob(manifest["layers"][0]["digest"]))
    image = f"velocity.local/nettest-docker:{uuid.uuid4().hex[:8]}"
    run("docker", "import", "--change", 'ENTRYPOINT ["/nettest"]', "--change", 'CMD ["serve"]',
        str(tmp_path / "rootfs.tar.gz"), image)
    try:
        run("bash", str(NODE_SH), "import-image", image)
        core.create_namespaced_pod(namespace, {
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "from-docker"},
            "spec": {**ON_REAL_NODE, "terminationGracePeriodSeconds": 1, "containers": [{
                "name": "web", "image": image, "imagePullPolicy": "IfNotPresent",
                "readinessProbe": {"httpGet": {"path": "/readyz", "port": 8080}, "periodSeconds": 1}}]},
        })
        pod = wait_until("the pod of the imported Docker image to be Ready",
                         lambda: (p := core.read_namespaced_pod("from-docker", namespace)) and pod_ready(p) and p)
        assert pod.status.container_statuses[0].image.endswith(image.split("/", 1)[1])
    finally:
        run("docker", "rmi", image, check=False)


# ---------------------------------------------------------------------------
# clean stop: runs last, on the node alone (the control plane stays up)


def snapshot() -> dict[str, set[str]]:
    """What a node could leave behind. What other tests may change meanwhile is left out: Docker's
    containers (veths on docker0, mounts under /var/lib/docker and /run/docker) and the image builds'
    mounts in the cache dir."""
    chains = set()
    for cmd in ("iptables-save", "ip6tables-save"):
        table = ""
        for line in run(cmd).stdout.splitlines():
            if line.startswith("*"):
                table = line[1:]
            elif line.startswith(":"):
                chains.add(f"{cmd}:{table}:{line[1:].split()[0]}")
    links = {line.split(":")[1].strip().split("@")[0] for line in run("ip", "-o", "link").stdout.splitlines()
             if "master docker0" not in line}
    mounts = {line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()}
    return {
        "chains": chains,
        "links": links,
        "netns": set(run("ip", "netns", "list").stdout.split()),
        # (the node mounts nothing in the cache dir, where other tests' image builds mount and unmount)
        "mounts": {m for m in mounts if not m.startswith(("/var/lib/docker/", "/run/docker/", str(CACHE_DIR) + "/"))},
        "cgroups": {str(p) for p in Path("/sys/fs/cgroup").glob("*/*") if p.is_dir() and p.name != "docker"},
        # the kernel tunables the kubelet sets (node.sh stop puts them back)
        "sysctls": {f"{name}={Path('/proc/sys', name.replace('.', '/')).read_text().strip()}" for name in (
            "vm.overcommit_memory", "vm.panic_on_oom", "kernel.panic", "kernel.panic_on_oops",
            "kernel.keys.root_maxkeys", "kernel.keys.root_maxbytes")},
    }


def test_node_stop_leaves_nothing_behind_even_after_kill_9(core, kubectl, namespace):
    run("bash", str(NODE_SH), "stop", timeout=180)
    wait_until("the Node object to be deleted", lambda: NODE not in {n.metadata.name for n in core.list_node().items})
    before = snapshot()
    assert not any(c.split(":")[2].startswith(("KUBE-", "CNI-", "VELOCITY-NODE-")) for c in before["chains"])
    try:
        run("bash", str(NODE_SH), "start", timeout=300)
        apps = client.AppsV1Api(core.api_client)
        dep = web_deployment("leftover", ready_after="0s")
        dep["spec"]["template"]["spec"]["containers"][0]["ports"][0]["hostPort"] = 18080  # portmap chains too
        dep["spec"]["template"]["spec"]["containers"][0]["ports"].append({"containerPort": 8081})
        apps.create_namespaced_deployment(namespace, dep)
        wait_until("a leftover pod to be Ready", lambda: any(
            pod_ready(p) for p in core.list_namespaced_pod(namespace, label_selector="app=leftover").items))
        during = snapshot()
        assert BRIDGE in during["links"]
        assert any(n.startswith("cni-") for n in during["netns"])
        assert any(c.split(":")[2].startswith("CNI-") for c in during["chains"])
        assert any(m.startswith(str(STATE / "node") + "/") for m in during["mounts"])
        assert any(c.endswith("/kubepods") for c in during["cgroups"])
        for name in ("kubelet", "containerd"):
            os.kill(int((STATE / f"{name}.pid").read_text()), signal.SIGKILL)
        time.sleep(1)
        run("bash", str(NODE_SH), "stop", timeout=180)
        after = snapshot()
        for key in before:
            assert after[key] - before[key] == set(), f"{key} left behind: {sorted(after[key] - before[key])}"
            assert before[key] - after[key] == set(), f"{key} removed that was not ours: {sorted(before[key] - after[key])}"
    finally:
        run("bash", str(NODE_SH), "start", timeout=300)
