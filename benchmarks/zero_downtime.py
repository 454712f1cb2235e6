#!/usr/bin/env python3
"""Benchmark 7: zero downtime, MTTR and release lead time on the real node, through the real pipeline.

A load generator (keep-alive clients and new-connection-per-request clients, threads with http.client)
sends GET /healthz through the app's Service ClusterIP (kube-proxy on this machine) the whole time, and
every response's X-Served-By header (the pod's name, hence its ReplicaSet and revision) says which release
answered. Phases, each run --reps times, in their own namespace (--namespace, deleted at the end):

  update    a rolling update: `ansible-playbook playbooks/deploy.yml` with a configuration change
            (deploy_config gains ZD_RELEASE=<n>: new ConfigMap, new config-checksum, new pods).
  failed    a failed release: the same playbook with an image that crashes on start (the app image plus
            GUNICORN_THREADS=crash-on-start: Gunicorn refuses its configuration and exits); the rollout
            ends in ProgressDeadlineExceeded and manifest_apply rolls back. MTTR = from the playbook's
            start until the Deployment is back on the previous template, fully rolled out, no crashing
            pod left, and only the previous release answers.
  rollback  `ansible-playbook playbooks/rollback.yml -e rollback_to_revision=N` to the revision before
            the update. Time = from the command's start until every response comes from the chosen
            revision's pods (and the first such response).
  lead      release lead time, commit -> new pods serving, through the whole pipeline
            (playbooks/site.yml): a commit is made in the benchmark's clone of this repository, then
            site.yml runs; lead time = from the commit until every response comes from the new pods.
            warm: the commit changes no file of the image (docs): the image is cached, the rollout comes
            from the new source-revision annotation. cold: the commit changes the app's source, so the
            image stage builds a new layer, pushes it, and the node pulls it.

Failed requests = connection errors, timeouts (5 s) and non-2xx answers, counted per phase. No retries.

The pipeline runs from a clone of this repository's HEAD (--source, default $VELOCITY_STATE_DIR/zdbench/src)
as a user runs it (`ansible-playbook -i inventory/local ...` in that directory), with its own namespace,
image repository (zdbench/app), secrets files, artifacts and DORA file, so the shared release in namespace
`velocity` and the shared velocity/app image are not touched.

    scripts/in-venv python benchmarks/zero_downtime.py [--reps 3] [--lead-reps 2] [--phases update failed rollback lead]
    scripts/in-venv python benchmarks/zero_downtime.py --smoke   # the load generator against a local server
                                                                  # that goes away mid-run (no cluster)
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import http.client
import http.server
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, machine, summary, write_result
from pipeline import STAGE

FULL_ARGS = ["--reps", "3", "--lead-reps", "2"]
SMOKE_ARGS = ["--smoke"]
STATE = Path(os.environ.get("VELOCITY_STATE_DIR", "/tmp/velocity"))
APP = "velocity-app"
SERVED_BY = "X-Served-By"
CRASH_ENV = "GUNICORN_THREADS=crash-on-start"


# --------------------------------------------------------------------------- load generator


@dataclass
class Sample:
    t: float  # monotonic start of the request
    phase: str
    ok: bool
    status: int  # 0: no HTTP answer
    error: str  # exception class name, or "" / "HTTP <status>"
    served_by: str
    keepalive: bool


@dataclass
class Phase:
    name: str
    started: float
    ended: float = 0.0
    marks: dict[str, float] = field(default_factory=dict)


def error_kind(exc: BaseException) -> str:
    """The failure's kind for the report: its class, and for a bare OSError (whose class says nothing: no route
    to the host, network unreachable, ...) its errno's name too."""
    name = type(exc).__name__
    if type(exc) is OSError and exc.errno:
        name += f"[{errno.errorcode.get(exc.errno, exc.errno)}]"
    return name


class LoadGenerator:
    """`clients` threads sending GET `path` to host:port until stop(); half reuse one connection (keep-alive),
    half open a new connection per request. Every request is a Sample; phase(name) labels the ones that start
    while it is open."""

    def __init__(self, host: str, port: int, path: str = "/healthz", clients: int = 4, pause: float = 0.02,
                 timeout: float = 5.0) -> None:
        self.host, self.port, self.path = host, port, path
        self.clients, self.pause, self.timeout = clients, pause, timeout
        self.samples: list[Sample] = []
        self.phases: list[Phase] = []
        self.current = "idle"
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def __enter__(self) -> LoadGenerator:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        for i in range(self.clients):
            thread = threading.Thread(target=self._client, args=(i % 2 == 0,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(self.timeout + 1)

    @contextlib.contextmanager
    def phase(self, name: str):
        record = Phase(name, time.monotonic())
        self.phases.append(record)
        self.current = name
        try:
            yield record
        finally:
            self.current = "idle"
            record.ended = time.monotonic()

    def _client(self, keepalive: bool) -> None:
        conn: http.client.HTTPConnection | None = None
        headers = {"Connection": "keep-alive" if keepalive else "close"}
        while not self._stop.is_set():
            started, phase = time.monotonic(), self.current
            if conn is None:
                conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            try:
                conn.request("GET", self.path, headers=headers)
                resp = conn.getresponse()
                resp.read()
                ok = 200 <= resp.status < 300
                self.samples.append(Sample(started, phase, ok, resp.status, "" if ok else f"HTTP {resp.status}",
                                           resp.getheader(SERVED_BY, ""), keepalive))
                if not keepalive or resp.will_close:
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException) as exc:
                self.samples.append(Sample(started, phase, False, 0, error_kind(exc), "", keepalive))
                conn.close()
                conn = None
            self._stop.wait(self.pause)
        if conn is not None:
            conn.close()

    def in_phase(self, name: str) -> list[Sample]:
        return [s for s in self.samples if s.phase == name]

    def count(self, name: str) -> dict[str, Any]:
        samples = self.in_phase(name)
        failed = [s for s in samples if not s.ok]
        started = next((p.started for p in self.phases if p.name == name), None)
        return {
            "requests": len(samples),
            "failed": len(failed),
            "errors": dict(Counter(s.error for s in failed)),
            "failed_keepalive": sum(1 for s in failed if s.keepalive),
            # When each failed request started, in seconds after the phase did (what it coincided with).
            "failed_at": [[round(s.t - started, 2), s.error, "keep-alive" if s.keepalive else "new connection"]
                          for s in failed] if started is not None else [],
            "served_by": dict(Counter(s.served_by for s in samples if s.ok)),
        }

    def all_from(self, since: float, until: float, accept) -> float | None:
        """The first start time t >= since after which every answered request up to `until` satisfies accept
        (served_by -> bool) and at least one did; None if there is none."""
        window = sorted((s for s in self.samples if since <= s.t <= until and s.ok), key=lambda s: s.t)
        first = None
        for s in window:
            if accept(s.served_by):
                first = s.t if first is None else first
            else:
                first = None
        return first

    def first_from(self, since: float, accept) -> float | None:
        hits = [s.t for s in self.samples if s.t >= since and s.ok and accept(s.served_by)]
        return min(hits) if hits else None


# --------------------------------------------------------------------------- the cluster and the pipeline


def pod_hash(pod_name: str) -> str:
    """The pod-template-hash in a Deployment pod's name (<deployment>-<hash>-<suffix>)."""
    parts = pod_name.rsplit("-", 2)
    return parts[1] if len(parts) == 3 else ""


class Cluster:
    def __init__(self, namespace: str) -> None:
        from kubernetes import client, config

        self.namespace = namespace
        self.api = config.new_client_from_config(config_file=str(STATE / "k8s" / "kubeconfig"))
        self.core, self.apps = client.CoreV1Api(self.api), client.AppsV1Api(self.api)

    def service(self) -> tuple[str, int]:
        svc = self.core.read_namespaced_service(APP, self.namespace)
        return svc.spec.cluster_ip, svc.spec.ports[0].port

    def deployment(self):
        return self.apps.read_namespaced_deployment(APP, self.namespace)

    def revisions(self) -> dict[int, str]:
        """revision -> pod-template-hash of the Deployment's ReplicaSets."""
        out = {}
        for rs in self.apps.list_namespaced_replica_set(self.namespace, label_selector=f"app.kubernetes.io/name={APP}").items:
            rev = (rs.metadata.annotations or {}).get("deployment.kubernetes.io/revision")
            if rev:
                out[int(rev)] = rs.metadata.labels.get("pod-template-hash", "")
        return out

    def current(self) -> tuple[int, str]:
        dep = self.deployment()
        rev = int(dep.metadata.annotations["deployment.kubernetes.io/revision"])
        return rev, self.revisions()[rev]

    def settled_on(self, template_hash: str) -> bool:
        """The Deployment's current ReplicaSet is template_hash, fully rolled out, and no other pod is left."""
        dep = self.deployment()
        st, want = dep.status, dep.spec.replicas
        if (st.observed_generation or 0) < dep.metadata.generation:
            return False
        if not (st.updated_replicas == st.ready_replicas == st.available_replicas == st.replicas == want):
            return False
        pods = self.core.list_namespaced_pod(self.namespace, label_selector=f"app.kubernetes.io/name={APP}").items
        return bool(pods) and all(p.metadata.labels.get("pod-template-hash") == template_hash for p in pods) \
            and len(pods) == want and self.current()[1] == template_hash

    def wait_settled(self, template_hash: str, since: float, timeout: float = 300) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.settled_on(template_hash):
                return time.monotonic() - since
            time.sleep(0.5)
        raise RuntimeError(f"the Deployment did not settle on ReplicaSet hash {template_hash} in {timeout}s")

    def delete_namespace(self) -> None:
        from kubernetes.client.rest import ApiException

        try:
            self.core.delete_namespace(self.namespace)
        except ApiException as exc:
            if exc.status != 404:
                raise


class Watch:
    """Polls the Deployment in its own thread while a playbook runs: when it has settled on ReplicaSet hash
    `target` (after first leaving it, with leave_first: a new template was applied). `when` is the monotonic time."""

    def __init__(self, namespace: str, target: str, leave_first: bool) -> None:
        self.cluster = Cluster(namespace)
        self.target, self.leave_first = target, leave_first
        self.left: float | None = None
        self.when: float | None = None
        self.error = ""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        while not self._stop.is_set():
            now = time.monotonic()
            try:
                if self.left is None and (not self.leave_first or self.cluster.current()[1] != self.target):
                    self.left = now
                if self.left is not None and self.cluster.settled_on(self.target):
                    self.when = now
                    return
            except Exception as exc:  # a transient API error: poll again
                self.error = repr(exc)
            self._stop.wait(0.5)

    def result(self, timeout: float = 300) -> float:
        self._thread.join(timeout)
        self._stop.set()
        if self.when is None:
            raise RuntimeError(f"the Deployment did not settle on ReplicaSet hash {self.target} ({self.error})")
        return self.when


class Pipeline:
    """ansible-playbook in the benchmark's clone, as a user runs it, with the isolating extra vars."""

    def __init__(self, source: Path, work: Path, namespace: str) -> None:
        self.source, self.work, self.namespace = source, work, namespace
        self.vars_file = work / "vars.json"

    def prepare(self) -> None:
        self.work.mkdir(parents=True, exist_ok=True)
        if not (self.source / ".git").exists():
            subprocess.run(["git", "clone", "--quiet", str(ROOT), str(self.source)], check=True)
        else:  # a clone left by an earlier run: this repository's committed HEAD, not the code of that day
            subprocess.run(["git", "-C", str(self.source), "fetch", "--quiet", str(ROOT), "HEAD"], check=True)
            subprocess.run(["git", "-C", str(self.source), "reset", "--quiet", "--hard", "FETCH_HEAD"], check=True)
        wheelhouse = ROOT / "app" / "wheelhouse"
        if wheelhouse.is_dir() and not (self.source / "app" / "wheelhouse").exists():
            shutil.copytree(wheelhouse, self.source / "app" / "wheelhouse")
        secrets = self.work / "secrets"
        self.vars_file.write_text(json.dumps({
            "deploy_namespace": self.namespace,
            "vault_secrets_output_dir": str(secrets),
            "vault_secrets_k8s_secret_file": str(secrets / "app-secret.json"),
            "vault_secrets_registry_pull_secret_file": str(secrets / "registry-pull-secret.json"),
            "velocity_app_env_file": str(secrets / "app.env"),
            "velocity_artifacts_dir": str(self.work / "artifacts"),
            "deploy_dora_events_file": str(self.work / "dora" / "events.jsonl"),
            "rollback_dora_events_file": str(self.work / "dora" / "events.jsonl"),
            "image_name": "zdbench/app",
        }, indent=1))

    def run(self, playbook: str, *extra: str, expect_ok: bool = True) -> tuple[float, subprocess.CompletedProcess]:
        bin_dir = Path(sys.executable).parent
        env = {**os.environ, "ANSIBLE_CONFIG": str(self.source / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1",
               "PATH": f"{bin_dir}:{os.environ.get('PATH', '')}"}
        cmd = [str(bin_dir / "ansible-playbook"), "-i", "inventory/local", playbook, "-e", f"@{self.vars_file}", *extra]
        started = time.monotonic()
        proc = subprocess.run(cmd, cwd=self.source, env=env, capture_output=True, text=True, timeout=1800)
        elapsed = time.monotonic() - started
        (self.work / "logs").mkdir(exist_ok=True)
        (self.work / "logs" / f"{int(time.time())}-{Path(playbook).stem}.log").write_text(proc.stdout + proc.stderr)
        if expect_ok and proc.returncode:
            raise RuntimeError(f"{playbook} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-2000:]}")
        if not expect_ok and not proc.returncode:
            raise RuntimeError(f"{playbook} was expected to fail and succeeded:\n{proc.stdout[-3000:]}")
        return elapsed, proc

    def commit(self, path: str, line: str) -> float:
        """Append a line to a file of the clone and commit it; the wall-clock time of the commit."""
        target = self.source / path
        with target.open("a") as fh:
            fh.write(line + "\n")
        git = ["git", "-C", str(self.source), "-c", "user.name=zdbench", "-c", "user.email=zdbench@localhost"]
        subprocess.run([*git, "commit", "--quiet", "-am", f"zdbench: {line}"], check=True)
        return time.monotonic()


def registry_login(work: Path) -> tuple[str, list[str]]:
    """A private docker config logged in to the local registry (never ~/.docker): (registry, docker args)."""
    env = dict(line.split("=", 1) for line in subprocess.run(
        ["bash", str(ROOT / "scripts" / "services" / "registry.sh"), "env"], check=True, capture_output=True,
        text=True).stdout.splitlines() if "=" in line)
    config = work / "docker"
    config.mkdir(mode=0o700, exist_ok=True)
    password = Path(env["VELOCITY_REGISTRY_PASSWORD_FILE"]).read_text().strip()
    subprocess.run(["docker", "--config", str(config), "login", "-u", env["VELOCITY_REGISTRY_USERNAME"],
                    "--password-stdin", env["VELOCITY_REGISTRY"]], input=password, text=True, check=True,
                   capture_output=True)
    return env["VELOCITY_REGISTRY"], ["docker", "--config", str(config)]


def build_crash_image(work: Path, good_image: str) -> str:
    """The app image plus GUNICORN_THREADS=crash-on-start, pushed; returns repo@digest."""
    registry, docker = registry_login(work)
    subprocess.run([*docker, "pull", "--quiet", good_image], check=True, capture_output=True)
    tag = f"{registry}/zdbench/app:crash"
    subprocess.run([*docker, "build", "--quiet", "-t", tag, "-"], input=f"FROM {good_image}\nENV {CRASH_ENV}\n",
                   text=True, check=True, capture_output=True)
    out = subprocess.run([*docker, "push", tag], check=True, capture_output=True, text=True).stdout
    digest = next(w for line in out.splitlines() if "digest:" in line for w in line.split() if w.startswith("sha256:"))
    return f"{registry}/zdbench/app@{digest}"


# --------------------------------------------------------------------------- phases


def config_for(release: str, shutdown_delay: str = "") -> str:
    config = {"LOG_LEVEL": "info", "GUNICORN_TIMEOUT": "30", "ZD_RELEASE": release}
    if shutdown_delay:
        config["GUNICORN_SHUTDOWN_DELAY"] = shutdown_delay
    return json.dumps({"deploy_config": config})


def run_cluster(args: argparse.Namespace) -> dict[str, Any]:
    work = Path(args.work)
    pipe = Pipeline(Path(args.source), work, args.namespace)
    pipe.prepare()
    print("prepare: site.yml into the benchmark namespace", file=sys.stderr, flush=True)
    # Not measured: the image stage's smoke test (a Docker health check with a 5 s timeout) is skipped here, as
    # it can time out on a loaded machine; the lead-time runs below keep it.
    prep_s, _ = pipe.run("playbooks/site.yml", "-e", "image_smoke_test_enabled=false")
    cluster = Cluster(args.namespace)
    image = cluster.deployment().spec.template.spec.containers[0].image
    host, port = cluster.service()
    crash = build_crash_image(work, image) if "failed" in args.phases else ""
    results: dict[str, Any] = {"prepare_seconds": prep_s, "image": image, "crash_image": crash,
                               "control": [], "update": [], "failed": [], "rollback": [], "lead": []}
    load = LoadGenerator(host, port, clients=args.clients, pause=args.pause)
    release = int(time.time())
    try:
        with load:
            time.sleep(2)
            for rep in range(args.reps):
                base_rev, base_hash = cluster.current()
                # (a) rolling update: a configuration change. First, once, the control: the same update while
                # the pods being replaced run with GUNICORN_SHUTDOWN_DELAY=0 (what the fix is measured against);
                # then an unmeasured update puts the default back.
                kinds = (["control"] if "control" in args.phases and rep == 0 else []) + \
                    (["update"] if "update" in args.phases else [])
                for kind in kinds:
                    delay = "0" if kind == "control" else ""
                    if kind == "control":
                        release += 1
                        pipe.run("playbooks/deploy.yml", "-e", f"deploy_image={image}", "-e", config_for(str(release), "0"))
                    elif "control" in kinds:
                        release += 1
                        pipe.run("playbooks/deploy.yml", "-e", f"deploy_image={image}", "-e", config_for(str(release)))
                        base_rev, base_hash = cluster.current()
                        # The pods this replaced ran at GUNICORN_SHUTDOWN_DELAY=0 and fail requests as they go
                        # (counted as idle): the measured update starts once the last of them is gone.
                        cluster.wait_settled(base_hash, time.monotonic())
                        time.sleep(args.tail)
                    release += 1
                    with load.phase(f"{kind}-{rep}") as ph:
                        secs, _ = pipe.run("playbooks/deploy.yml", "-e", f"deploy_image={image}",
                                           "-e", config_for(str(release), delay))
                        new_rev, new_hash = cluster.current()
                        settled = cluster.wait_settled(new_hash, ph.started)
                        time.sleep(args.tail)
                    first_new = load.first_from(ph.started, lambda sb, h=new_hash: pod_hash(sb) == h)
                    all_new = load.all_from(ph.started, ph.ended, lambda sb, h=new_hash: pod_hash(sb) == h)
                    results[kind].append({**load.count(ph.name), "playbook_s": secs, "settled_s": settled,
                                              "first_new_s": first_new and first_new - ph.started,
                                              "all_new_s": all_new and all_new - ph.started,
                                              "revision": [base_rev, new_rev]})
                    print(f"{kind} {rep}: {results[kind][-1]}", file=sys.stderr, flush=True)
                # (b) a release that crashes on start, rolled back by manifest_apply.
                if "failed" in args.phases:
                    good_rev, good_hash = cluster.current()
                    with load.phase(f"failed-{rep}") as ph:
                        watch = Watch(args.namespace, good_hash, leave_first=True)
                        secs, proc = pipe.run("playbooks/deploy.yml", "-e", f"deploy_image={crash}",
                                              "-e", config_for(str(release)), expect_ok=False)
                        restored = watch.result() - ph.started
                        time.sleep(args.tail)
                    reason = next((line.split("rollout failed: ", 1)[1] for line in proc.stdout.splitlines()
                                   if "[ERROR]" in line and "rollout failed: " in line), "")
                    results["failed"].append({**load.count(ph.name), "playbook_s": secs, "mttr_s": restored,
                                              "only_old_served": set(map(pod_hash, load.count(ph.name)["served_by"])) <= {good_hash},
                                              "revision_before": good_rev, "revision_after": cluster.current()[0],
                                              "reason": reason[:300]})
                    print(f"failed {rep}: {results['failed'][-1]}", file=sys.stderr, flush=True)
                # (c) manual rollback to the revision before this repetition's update.
                if "rollback" in args.phases:
                    revisions = cluster.revisions()
                    target = max((r for r, h in revisions.items() if h == base_hash), default=base_rev)
                    with load.phase(f"rollback-{rep}") as ph:
                        watch = Watch(args.namespace, base_hash, leave_first=False)
                        secs, _ = pipe.run("playbooks/rollback.yml", "-e", f"rollback_to_revision={target}")
                        settled = watch.result() - ph.started
                        time.sleep(args.tail)
                    first = load.first_from(ph.started, lambda sb, h=base_hash: pod_hash(sb) == h)
                    serving = load.all_from(ph.started, ph.ended, lambda sb, h=base_hash: pod_hash(sb) == h)
                    results["rollback"].append({**load.count(ph.name), "playbook_s": secs, "settled_s": settled,
                                                "first_chosen_s": first and first - ph.started,
                                                "chosen_serving_s": serving and serving - ph.started,
                                                "to_revision": target})
                    print(f"rollback {rep}: {results['rollback'][-1]}", file=sys.stderr, flush=True)
            # Release lead time through the whole pipeline, warm (image cached) and cold (new layer), alternating.
            if "lead" in args.phases:
                for rep in range(args.lead_reps):
                    for variant in ("warm", "cold"):
                        old_hash = cluster.current()[1]
                        stamp = f"{variant} {rep} {time.time():.0f}"
                        path = "docs/zdbench-lead-time.txt" if variant == "warm" else "app/src/velocity_app/__init__.py"
                        line = stamp if variant == "warm" else f"# zdbench lead time: {stamp}"
                        if variant == "warm" and not (pipe.source / path).exists():
                            (pipe.source / path).write_text("Lead-time commits of benchmarks/zero_downtime.py.\n")
                            subprocess.run(["git", "-C", str(pipe.source), "add", path], check=True)
                        committed = pipe.commit(path, line)
                        with load.phase(f"lead-{variant}-{rep}") as ph:
                            try:
                                secs, proc = pipe.run("playbooks/site.yml")
                            except RuntimeError as exc:  # recorded, not retried: a retry would hide its time
                                results["lead"].append({**load.count(ph.name), "variant": variant, "lead_time_s": None,
                                                        "pipeline_s": None, "error": str(exc)[-1500:]})
                                print(f"lead {variant} {rep}: FAILED {str(exc)[-800:]}", file=sys.stderr, flush=True)
                                continue
                            new_rev, new_hash = cluster.current()
                            settled = cluster.wait_settled(new_hash, committed)
                            time.sleep(args.tail)
                        assert new_hash != old_hash, "the pipeline did not roll out new pods"
                        serving = load.all_from(committed, ph.ended, lambda sb, h=new_hash: pod_hash(sb) == h)
                        stages = {n.strip(): float(sec) for n, _st, sec in STAGE.findall(proc.stdout)}
                        results["lead"].append({**load.count(ph.name), "variant": variant, "pipeline_s": secs,
                                                "lead_time_s": serving and serving - committed,
                                                "settled_s": settled, "stages": stages, "revision": new_rev})
                        print(f"lead {variant} {rep}: {results['lead'][-1]}", file=sys.stderr, flush=True)
            results["idle"] = load.count("idle")
    finally:
        if not args.keep:
            cluster.delete_namespace()
    return results


def run_smoke() -> dict[str, Any]:
    """The load generator against a local HTTP server that answers, then goes away (port closed)."""

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header(SERVED_BY, "smoke-abc123-xyz")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: object) -> None:
            pass

    class Server(http.server.ThreadingHTTPServer):
        request_queue_size = 128  # socketserver's 5 drops connections of a busy machine: not what is measured

    server = Server(("127.0.0.1", 0), Handler)
    port = server.server_address[1]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    load = LoadGenerator("127.0.0.1", port, clients=4, pause=0.01, timeout=2)
    with load:
        with load.phase("serving"):
            time.sleep(1)
        # Let the requests that started while serving finish (each ends within the timeout) before the server goes.
        time.sleep(load.timeout)
        server.shutdown()
        server.server_close()
        with load.phase("closed"):
            time.sleep(1)
    return {"serving": load.count("serving"), "closed": load.count("closed")}


# --------------------------------------------------------------------------- report


def _s(values: list[float | None]) -> dict | None:
    vals = [v for v in values if v is not None]
    return summary(vals) if vals else None


def _f(s: dict | None, unit: str = " s") -> str:
    if not s:
        return "n/a"
    return f"{s['median']:.1f}{unit} ({s['min']:.1f}–{s['max']:.1f}, n={s['n']})"


def goal_list(r: dict) -> list[dict]:
    """Issue 13's goal: no failed request during a rolling update or a failed release and its rollback."""
    if r.get("smoke"):
        return []
    res = r["results"]
    runs = res["update"] + res["failed"]
    failed = sum(x["failed"] for x in runs)
    return [{"goal": "zero downtime: 0 failed requests during a rolling update and during a failed release with its "
                     "automatic rollback (real node, through the Service)",
             "figure": f"{failed} failed of {sum(x['requests'] for x in runs)} ({len(runs)} runs)",
             "met": bool(runs) and failed == 0,
             "command": "scripts/in-venv python benchmarks/zero_downtime.py " + " ".join(FULL_ARGS)}]


def render(r: dict) -> str:
    lines = ["## 7. Zero downtime, MTTR and release lead time on the real node", ""]
    if r.get("smoke"):
        return "\n".join([*lines, "Smoke run only (the load generator against a local server): no figures."])
    res, st = r["results"], r["settings"]
    lines += [
        f"`scripts/in-venv python benchmarks/zero_downtime.py --reps {st['reps']} --lead-reps {st['lead_reps']}` "
        f"(run {r['date']}; how loaded the machine was is in the table at the top of this file). "
        f"{st['clients']} clients (half keep-alive, half a new connection per request, {st['pause'] * 1000:.0f} ms "
        "between requests each) send GET /healthz through the Service's ClusterIP the whole time, no retries; a "
        "failed request is a connection error, a 5 s timeout or a non-2xx answer. The app's `X-Served-By` header "
        "(the pod's name) tells which ReplicaSet, hence revision, answered. The pipeline runs as a user runs it "
        "(`ansible-playbook -i inventory/local playbooks/...` in a clone of the repository), 2 replicas on the real "
        "node, `RollingUpdate` maxSurge 1 / maxUnavailable 0, progressDeadlineSeconds 60 (inventory/local), "
        "Gunicorn keeps accepting for 5 s after SIGTERM (`shutdown_delay`) while the endpoint is withdrawn.",
        "",
        *([r["note"], ""] if r.get("note") else []),
        "| phase | requests | failed | figure, median (min–max, n) |",
        "|---|---|---|---|",
    ]

    def row(name: str, runs: list[dict], figure: str) -> None:
        if runs:
            lines.append(f"| {name} | {sum(x['requests'] for x in runs)} | "
                         f"{sum(x['failed'] for x in runs)} ({', '.join(str(x['failed']) for x in runs)}) | {figure} |")

    row("(a) rolling update (config change, `deploy.yml`)", res["update"],
        f"all answers from the new pods after {_f(_s([x['all_new_s'] for x in res['update']]))}; "
        f"playbook {_f(_s([x['playbook_s'] for x in res['update']]))}")
    row("control: (a) with the replaced pods at `GUNICORN_SHUTDOWN_DELAY=0`", res.get("control", []),
        f"all answers from the new pods after {_f(_s([x['all_new_s'] for x in res.get('control', [])]))}: "
        "what the shutdown delay is for")
    row("(b) failed release (crashes on start) + automatic rollback", res["failed"],
        f"**MTTR {_f(_s([x['mttr_s'] for x in res['failed']]))}** (start of the deploy → back on the previous "
        f"release, rolled out, no crashing pod); playbook fails after {_f(_s([x['playbook_s'] for x in res['failed']]))}; "
        f"only the previous release answered throughout: {all(x['only_old_served'] for x in res['failed'])}")
    row("(c) manual `rollback.yml -e rollback_to_revision=N`", res["rollback"],
        f"**{_f(_s([x['chosen_serving_s'] for x in res['rollback']]))}** from the command to only the chosen "
        f"revision answering (first answer from it {_f(_s([x['first_chosen_s'] for x in res['rollback']]))}); "
        f"playbook {_f(_s([x['playbook_s'] for x in res['rollback']]))}")
    for variant in ("warm", "cold"):
        what = "image cached (docs-only commit)" if variant == "warm" else "new image layer (app source commit)"
        name = f"lead time, {variant}: {what}, `site.yml`"
        runs = [x for x in res["lead"] if x["variant"] == variant and not x.get("error")]
        broken = [x for x in res["lead"] if x["variant"] == variant and x.get("error")]
        note = f"; {len(broken)} run(s) failed, not retried: {broken[0]['error'][-260:]}" if broken else ""
        if runs:
            row(name, runs, f"**commit → only new pods answering {_f(_s([x['lead_time_s'] for x in runs]))}**; "
                f"pipeline {_f(_s([x['pipeline_s'] for x in runs]))}{note}")
        elif broken:
            lines.append(f"| {name} | — | — | not measured{note} |")
    errors = Counter()
    for key in ("control", "update", "failed", "rollback", "lead"):
        for x in res[key]:
            if x.get("error"):
                continue
            errors.update({f"{key}: {k}": v for k, v in x["errors"].items()})
    idle = res.get("idle") or {}
    when = [f"{key} {rep}: " + ", ".join(f"+{at} s {kind} ({how})" for at, kind, how in x["failed_at"])
            for key in ("update", "failed") for rep, x in enumerate(res[key]) if x.get("failed_at")]
    if when:
        lines += ["", "Failed requests of (a) and (b), by when they started (seconds after the playbook did): "
                  + "; ".join(when) + "."]
    lines += ["", f"Errors by kind over all phases: {dict(errors) or 'none'}."
              + (f" Between phases (idle): {idle['requests']} requests, {idle['failed']} failed." if idle.get("requests") else "")]
    lines += ["", "Reading the figures: the MTTR of an automatic rollback = Ansible's start-up and the tasks before the "
              "apply + the Sync migration hook (run with the new image) + detection + the rollback and its wait. "
              "Detection of a pod that crashes on start: manifest_apply fails fast once it has restarted twice in "
              "CrashLoopBackOff (since commit c43d747; the runbook's section 4 lists each reason and its time); before "
              "that, and still for a readiness that never passes, it waits for progressDeadlineSeconds (60 s here). "
              "The old pods keep serving throughout (maxUnavailable 0): no request of (b) needs the new pods"
              + (". " if not sum(x["failed"] for x in res["failed"]) else
                 ", yet some failed in this run (see the errors by kind above). ")
              + "The rolling update and rollback times include the readiness probe's 5 s period for each new pod "
              "and, at the end, the last old pod answering kept-alive connections during its 5 s shutdown delay."]
    lines += ["", "Goal (issue 13): 0 failed requests during (a) and (b) — "
              + ("**met**." if all(x["failed"] == 0 for x in res["update"] + res["failed"]) else "**not met**.")]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--lead-reps", type=int, default=2)
    parser.add_argument("--phases", nargs="*", default=["control", "update", "failed", "rollback", "lead"])
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--pause", type=float, default=0.02, help="seconds between a client's requests")
    parser.add_argument("--tail", type=float, default=3.0, help="seconds of load after each phase settled")
    parser.add_argument("--namespace", default="zdbench")
    parser.add_argument("--work", default=str(STATE / "zdbench"))
    parser.add_argument("--source", default="", help="the clone the pipeline runs from (default WORK/src)")
    parser.add_argument("--keep", action="store_true", help="keep the namespace afterwards")
    parser.add_argument("--smoke", action="store_true", help="only the load generator against a local server")
    args = parser.parse_args()
    args.source = args.source or str(Path(args.work) / "src")
    date = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    if args.smoke:
        result = {"benchmark": "zero_downtime", "smoke": True, "machine": machine(), "date": date, "results": run_smoke()}
    else:
        result = {"benchmark": "zero_downtime", "machine": machine(), "date": date, "settings": vars(args),
                  "results": run_cluster(args)}
    path = write_result("zero_downtime", result)
    print(f"wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
