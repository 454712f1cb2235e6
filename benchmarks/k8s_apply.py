#!/usr/bin/env python3
"""Benchmark 3: apply 50 Kubernetes objects, and roll a Deployment back.

Apply: 25 ConfigMaps + 25 Services into a namespace created fresh for every run, by
  - ours:      velocity.platform.manifest_apply, one task, `definitions` list (server-side dry run of all, then apply)
  - k8s_loop:  kubernetes.core.k8s looped over the 50 objects (`definition: "{{ item }}"`)
  - k8s_src:   kubernetes.core.k8s with one multi-document `src` file
Rollback: a Deployment with 2 revisions (kwok makes its pods Ready), back to revision 1, by
  - ours_undo:        velocity.platform.rollout_undo (waits until Available, its default)
  - ours_undo_nowait: the same with wait: false
  - k8s_rollback:     kubernetes.core.k8s_rollback (does not wait)
plus an empty playbook (the fixed cost of ansible-playbook). Each is a whole `ansible-playbook`
run, timed from outside; the variants are interleaved (rotated order every repetition).
API round trips: every HTTP request urllib3 sends from ansible-playbook and its modules
(benchmarks/reqcount/sitecustomize.py), so the CI run sharing the API server does not count.
Twice: on loopback (https://127.0.0.1:16443) and behind RemotePath (10 ms round trip, TLS end to
end; a kubeconfig copy with server https://10.203.0.6:16443
(its own /30, so it can run beside another benchmark's RemotePath) and tls-server-name: kubernetes, a
name in the apiserver certificate's SANs, which the kubernetes Python client honours).

With --baseline REV, one more apply variant, `ours_base`: the same task with the collection as
it was at git revision REV (extracted with git archive), interleaved with the rest: before and
after a change of ours, in the same run.

    benchmarks/k8s_apply.py [--reps 3] [--objects 50] [--paths loopback remote] [--baseline REV]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import netns
from common import ROOT, fmt, machine, summary, write_result
from netns import RemotePath
from playbook import run_playbook_timed

FULL_ARGS = ["--reps", "3", "--loop-objects", "5"]
BASELINE = True  # run_all.py passes --baseline REV
SMOKE_ARGS = ["--reps", "1", "--objects", "4", "--loop-objects", "2", "--paths", "loopback", "--warmup", "0"]
APPLY = ["ours", "k8s_loop", "k8s_src"]
ROLLBACK = ["ours_undo", "ours_undo_nowait", "k8s_rollback"]
HEAD = "- hosts: localhost\n  gather_facts: false\n  tasks:\n"

PLAYBOOKS = {
    "empty": "- hosts: localhost\n  gather_facts: false\n  tasks: []\n",
    "ours": HEAD + """\
    - velocity.platform.manifest_apply:
        kubeconfig: "{{ kc }}"
        namespace: "{{ ns }}"
        definitions: "{{ objs }}"
""",
    "k8s_loop": HEAD + """\
    - kubernetes.core.k8s:
        kubeconfig: "{{ kc }}"
        namespace: "{{ ns }}"
        definition: "{{ item }}"
      loop: "{{ loop_objs }}"
""",
    "k8s_src": HEAD + """\
    - kubernetes.core.k8s:
        kubeconfig: "{{ kc }}"
        namespace: "{{ ns }}"
        src: "{{ src }}"
""",
    "ours_undo": HEAD + """\
    - velocity.platform.rollout_undo:
        kubeconfig: "{{ kc }}"
        namespace: "{{ ns }}"
        name: "{{ dep }}"
""",
    "ours_undo_nowait": HEAD + """\
    - velocity.platform.rollout_undo:
        kubeconfig: "{{ kc }}"
        namespace: "{{ ns }}"
        name: "{{ dep }}"
        wait: false
""",
    "k8s_rollback": HEAD + """\
    - kubernetes.core.k8s_rollback:
        kubeconfig: "{{ kc }}"
        namespace: "{{ ns }}"
        name: "{{ dep }}"
        kind: Deployment
        api_version: apps/v1  # its default, v1, sends the PATCH to /apis/v1/... (404)
""",
}


def kubeconfig() -> Path:
    path = Path(os.environ.get("KUBECONFIG", "/tmp/velocity/k8s/kubeconfig"))
    if not path.exists():
        out = subprocess.run(["bash", str(ROOT / "hack" / "k8s" / "cluster.sh"), "start"], check=True,
                             capture_output=True, text=True).stdout
        path = Path(out.strip().splitlines()[-1])
    return path


def remote_kubeconfig(src: Path, dest: Path, host: str, port: int) -> Path:
    cfg = yaml.safe_load(src.read_text())
    for cluster in cfg["clusters"]:
        cluster["cluster"]["server"] = f"https://{host}:{port}"
        cluster["cluster"]["tls-server-name"] = "kubernetes"
    dest.write_text(yaml.safe_dump(cfg))
    return dest


def objects(n: int) -> list[dict]:
    out = []
    for i in range(n // 2):
        out.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"bench-cm-{i}", "labels": {"app": "bench"}},
                    "data": {"index": str(i), "payload": "x" * 200}})
    for i in range(n - n // 2):
        out.append({"apiVersion": "v1", "kind": "Service", "metadata": {"name": f"bench-svc-{i}", "labels": {"app": "bench"}},
                    "spec": {"selector": {"app": f"bench-{i}"}, "ports": [{"port": 80, "targetPort": 8000}]}})
    return out


class Cluster:
    """Setup and teardown through the kubernetes client on loopback (not timed, not counted)."""

    def __init__(self, kc: Path) -> None:
        from kubernetes import client, config
        self.api = config.new_client_from_config(config_file=str(kc))
        self.core = client.CoreV1Api(self.api)
        self.apps = client.AppsV1Api(self.api)
        self.namespaces: list[str] = []

    def namespace(self, name: str) -> str:
        self.core.create_namespace({"metadata": {"name": name, "labels": {"velocity.dev/bench": "k8s_apply"}}})
        self.namespaces.append(name)
        return name

    def count(self, ns: str) -> int:
        return (len([c for c in self.core.list_namespaced_config_map(ns).items if c.metadata.name.startswith("bench-")])
                + len(self.core.list_namespaced_service(ns).items))

    def two_revisions(self, ns: str, name: str) -> None:
        dep = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
               "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                        "template": {"metadata": {"labels": {"app": name}},
                                     "spec": {"containers": [{"name": "app", "image": "registry.invalid/bench:1"}]}}}}
        self.apps.create_namespaced_deployment(ns, dep)
        self.wait_revision(ns, name, 1)
        self.apps.patch_namespaced_deployment(
            name, ns, {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "registry.invalid/bench:2"}]}}}})
        self.wait_revision(ns, name, 2)

    def wait_revision(self, ns: str, name: str, revision: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            d = self.apps.read_namespaced_deployment(name, ns)
            st = d.status
            if ((d.metadata.annotations or {}).get("deployment.kubernetes.io/revision") == str(revision)
                    and st.observed_generation == d.metadata.generation
                    and (st.updated_replicas or 0) == 1 and (st.available_replicas or 0) == 1
                    and (st.replicas or 0) == 1):
                return
            time.sleep(0.2)
        raise RuntimeError(f"Deployment {ns}/{name} did not reach revision {revision}")

    def image(self, ns: str, name: str) -> str:
        return self.apps.read_namespaced_deployment(name, ns).spec.template.spec.containers[0].image

    def cleanup(self) -> None:
        for ns in self.namespaces:
            try:
                self.core.delete_namespace(ns)
            except Exception as exc:
                print(f"cleanup {ns}: {exc}", file=sys.stderr)


def measure(path_name: str, kc: Path, cluster: Cluster, work: Path, args) -> dict:
    objs = objects(args.objects)
    vars_file = work / "objs.yml"
    vars_file.write_text(yaml.safe_dump({"objs": objs, "loop_objs": objs[:args.loop_objects]}))
    src = work / "objs.yaml"
    src.write_text(yaml.safe_dump_all(objs))
    books = {}
    for name, text in PLAYBOOKS.items():
        books[name] = work / f"{name}.yml"
        books[name].write_text(text)
    reqlog = work / "requests.log"
    tag = f"vb-k8s-{os.getpid()}-{path_name[:3]}"
    apply_variants = APPLY + (["ours_base"] if args.baseline else [])
    books["ours_base"] = books["ours"]
    times: dict[str, list[float]] = {name: [] for name in ["empty", *apply_variants, *ROLLBACK]}
    task_times: dict[str, list[float]] = {name: [] for name in times}
    requests: dict[str, dict] = {}
    common = ["-e", f"kc={kc}", "-e", f"@{vars_file}", "-e", f"src={src}"]

    rb_ns = cluster.namespace(f"{tag}-rb")
    for rep in range(-args.warmup, args.reps):  # rep < 0: warm-up (discovery caches, page cache), not recorded
        for variants in (["empty", *apply_variants], ROLLBACK):
            shift = max(rep, 0) % len(variants)
            for variant in variants[shift:] + variants[:shift]:
                if rep < 0 and variant == "k8s_loop":
                    continue  # the warm-up only fills the discovery caches; k8s_src does that for the anchor
                extra = list(common)
                if variant in ROLLBACK:
                    name = f"dep-{variant.replace('_', '-')}-{rep + 1}"
                    cluster.two_revisions(rb_ns, name)
                    extra += ["-e", f"ns={rb_ns}", "-e", f"dep={name}"]
                else:
                    ns = cluster.namespace(f"{tag}-{variant.replace('_', '-')}-{rep + 1}")
                    extra += ["-e", f"ns={ns}"]
                env = {"ANSIBLE_COLLECTIONS_PATH": str(args.baseline_dir)} if variant == "ours_base" else None
                elapsed, task_s, verbs = run_playbook_timed(books[variant], reqlog=reqlog, extra_args=extra, env=env)
                if variant in apply_variants:
                    got, want = cluster.count(ns), args.loop_objects if variant == "k8s_loop" else len(objs)
                    if got != want:
                        raise RuntimeError(f"{variant}: {got} objects in {ns}, expected {want}")
                elif variant in ROLLBACK and cluster.image(rb_ns, name) != "registry.invalid/bench:1":
                    raise RuntimeError(f"{variant}: {name} was not rolled back")
                print(f"{path_name} rep {rep + 1}/{args.reps} {variant:17s} {elapsed:6.2f}s {dict(verbs)}", file=sys.stderr)
                if rep >= 0:
                    times[variant].append(elapsed)
                    task_times[variant].append(task_s)
                    requests[variant] = {"total": sum(verbs.values()), "by_verb": dict(verbs)}
    out = {name: {"seconds": summary(ts), "task_seconds": summary(task_times[name]), "requests": requests[name]}
           for name, ts in times.items()}
    empty = out["empty"]["seconds"]["median"]
    # The looped anchor costs one module run per object: measured on loop_objects, scaled to all objects.
    scale = len(objs) / args.loop_objects
    loop50 = empty + (out["k8s_loop"]["seconds"]["median"] - empty) * scale
    out["k8s_loop"]["extrapolated_seconds"] = loop50
    out["k8s_loop"]["extrapolated_requests"] = round(out["k8s_loop"]["requests"]["total"] * scale)
    ratios = {
        "k8s_loop_over_ours": loop50 / out["ours"]["seconds"]["median"],
        "k8s_src_over_ours": out["k8s_src"]["seconds"]["median"] / out["ours"]["seconds"]["median"],
        "k8s_rollback_over_ours_undo": out["k8s_rollback"]["seconds"]["median"] / out["ours_undo"]["seconds"]["median"],
        "k8s_rollback_over_ours_undo_nowait":
            out["k8s_rollback"]["seconds"]["median"] / out["ours_undo_nowait"]["seconds"]["median"],
    }
    ratios["k8s_src_over_ours_task"] = (out["k8s_src"]["task_seconds"]["median"]
                                        / out["ours"]["task_seconds"]["median"])
    if "ours_base" in out:
        ratios["ours_base_over_ours"] = out["ours_base"]["seconds"]["median"] / out["ours"]["seconds"]["median"]
        ratios["k8s_src_over_ours_base"] = out["k8s_src"]["seconds"]["median"] / out["ours_base"]["seconds"]["median"]
    net = {name: out[name]["seconds"]["median"] - empty for name in (*apply_variants, *ROLLBACK)}
    net["k8s_loop"] = loop50 - empty
    ratios["net_k8s_loop_over_ours"] = net["k8s_loop"] / net["ours"]
    ratios["net_k8s_src_over_ours"] = net["k8s_src"] / net["ours"]
    if "ours_base" in net:
        ratios["net_k8s_src_over_ours_base"] = net["k8s_src"] / net["ours_base"]
    return {"variants": out, "ratios": ratios, "net_seconds": net}


PARALLEL = 8  # PARALLEL_REQUESTS in module_utils/k8s/client.py
LABELS = {
    "empty": "empty playbook (baseline)",
    "ours": "**ours** `manifest_apply`, one task",
    "k8s_loop": "`kubernetes.core.k8s` looped",
    "k8s_src": "`kubernetes.core.k8s` one multi-doc `src`",
    "ours_undo": "**ours** `rollout_undo` (waits until Available)",
    "ours_undo_nowait": "**ours** `rollout_undo` wait: false",
    "k8s_rollback": "`kubernetes.core.k8s_rollback` (no wait)",
}


GOAL_APPLY = 3.0  # issue 17: manifest_apply at least 3x faster than k8s with one multi-document src, whole process


def render(r: dict) -> str:
    st = r["settings"]
    lines = [
        "## 3. Kubernetes apply and rollback",
        "",
        f"{st['objects']} objects ({st['objects'] // 2} ConfigMaps + {st['objects'] - st['objects'] // 2} Services), each run into "
        f"a fresh namespace; rollback of a Deployment with 2 revisions (kwok-simulated pods). "
        f"{st['reps']} repetitions per variant after {st['warmup']} warm-up round(s), interleaved in rotated order. "
        "*Wall* is the whole `ansible-playbook` run (what a user waits for); *minus empty* subtracts the median wall of "
        "a playbook without tasks; *task* is the task's own start-to-end time (`ansible.posix.json` callback). "
        "Requests = HTTP requests sent by ansible-playbook and its modules, counted "
        "in-process (urllib3), so other clients of the API server do not count. "
        "Remote = behind a network namespace with 10 ms round trip, TLS end to end (kubeconfig copy with "
        "`server: https://10.203.0.6:16443` and `tls-server-name: kubernetes`). "
        "The anchor's modules import the `kubernetes` client library (0.24 s in the project's venv); ours read the "
        "kubeconfig themselves and send their requests over urllib3 (since issue 17's last change), so they do not. "
        "Both sides' requests go through urllib3, where they are counted. "
        f"The looped anchor costs one module run per object (a module start and its requests each), so it ran over "
        f"{st['loop_objects']} objects and its time is scaled linearly (empty playbook + per-object cost × "
        f"{st['objects']}); `--loop-objects {st['objects']}` measures it in full. The \"minus empty\" column uses the scaled figure."
        + (f" `ours` at `{st['baseline']}` is the same task with the collection as it was at that revision (before "
           "the change measured here), in the same interleaving." if st.get("baseline") else ""),
        "",
        "Reproduce: `scripts/in-venv python benchmarks/k8s_apply.py " + " ".join(FULL_ARGS)
        + (f" --baseline {st['baseline']}" if st.get("baseline") else "") + "`.",
        "",
    ]
    for path_name, res in r["paths"].items():
        v = res["variants"]
        lines += [f"**{path_name}** (kubernetes.core {r['versions'].get('kubernetes.core', '?')})", "",
                  "| variant | wall s, median (min–max) | minus empty | task s, median (min–max) | API requests (by verb) |",
                  "|---|---|---|---|---|"]
        names = ["empty", "ours", *(["ours_base"] if "ours_base" in v else []), "k8s_loop", "k8s_src", *ROLLBACK]
        for name in names:
            net = "" if name == "empty" else f"{res['net_seconds'][name]:.2f}"
            task = fmt(v[name]["task_seconds"], digits=2) if v[name].get("task_seconds") else "–"
            if name == "empty":
                task = "–"
            req = v[name]["requests"]
            verbs = ", ".join(f"{k} {n}" for k, n in sorted(req["by_verb"].items()))
            label = LABELS[name] if name != "ours_base" else f"ours `manifest_apply` at `{st['baseline']}` (before)"
            if name == "k8s_loop" and st["loop_objects"] != st["objects"]:
                label += (f" over {st['loop_objects']} objects; scaled to {st['objects']}: "
                          f"**{v[name]['extrapolated_seconds']:.1f} s**, {v[name]['extrapolated_requests']} requests")
            lines.append(f"| {label} | {fmt(v[name]['seconds'], digits=2)} | {net} | {task} | {req['total']} ({verbs}) |")
        ra = res["ratios"]
        lines += ["", f"Apply: multi-doc `src` anchor / ours = **{ra['k8s_src_over_ours']:.2f}× whole process** "
                  f"(net of the empty playbook {ra['net_k8s_src_over_ours']:.2f}×, task time "
                  f"{ra.get('k8s_src_over_ours_task', float('nan')):.2f}×); looped anchor / ours = "
                  f"{ra['k8s_loop_over_ours']:.1f}× (net {ra['net_k8s_loop_over_ours']:.1f}×). "
                  + (f"Before the change (`{st['baseline']}`): multi-doc anchor / ours = {ra['k8s_src_over_ours_base']:.2f}× "
                     f"whole process (net {ra['net_k8s_src_over_ours_base']:.2f}×); the change made ours "
                     f"{ra['ours_base_over_ours']:.2f}× faster whole process. " if "ours_base_over_ours" in ra else "")
                  + f"Rollback: anchor / ours = {ra['k8s_rollback_over_ours_undo']:.2f}× (ours waiting), "
                  f"{ra['k8s_rollback_over_ours_undo_nowait']:.2f}× (ours not waiting).", ""]
    lines += ["", "Goal (issue 17): " + "; ".join(f"{g['goal']}: {g['figure']} — {'met' if g['met'] else 'NOT met'}"
                                                  for g in goal_list(r)) + ".", ""]
    lines.append(r.get("verdict", ""))
    return "\n".join(lines)


def goal_list(r: dict) -> list[dict]:
    """Each goal of this benchmark: text, figure, met (for RESULTS.md's summary)."""
    out = []
    for path_name, res in r["paths"].items():
        ratio = res["ratios"]["k8s_src_over_ours"]
        out.append({"goal": f"`manifest_apply` of {r['settings']['objects']} objects ≥{GOAL_APPLY:g}× faster than "
                            f"`kubernetes.core.k8s` with one multi-document `src`, whole process, {path_name}",
                    "figure": f"{ratio:.2f}×", "met": ratio >= GOAL_APPLY,
                    "command": "scripts/in-venv python benchmarks/k8s_apply.py " + " ".join(FULL_ARGS)})
    return out


def verdict(r: dict) -> str:
    loop = r["paths"]["loopback"]["ratios"]
    remote = r["paths"].get("remote", {}).get("ratios")
    ours = r["paths"]["loopback"]["variants"]["ours"]
    src = r["paths"]["loopback"]["variants"]["k8s_src"]
    empty = r["paths"]["loopback"]["variants"]["empty"]["seconds"]["median"]
    text = (f"Where the time goes: both apply sides are one module run each, so both pay ansible-playbook's fixed "
            f"start-up ({empty:.2f} s here, the empty playbook) and a module start; a whole-process ratio can only "
            f"approach the net one as that fixed cost shrinks. Against the single multi-document `src` task: "
            f"{loop['k8s_src_over_ours']:.2f}× on loopback"
            + (f" and {remote['k8s_src_over_ours']:.2f}× behind 10 ms" if remote else "")
            + f" whole process. Our module sends more requests ({ours['requests']['total']} vs "
            f"{src['requests']['total']}: a GET of the live object, a server-side dry run of every object before any "
            "change, then the apply) — the price of the all-or-nothing validation and the content-based `changed` — but "
            f"sends them {PARALLEL} at a time (the reads, the dry runs, and the applies within one sync wave; waves, "
            "Namespaces/CRDs first and hooks stay in order), where the anchor sends its requests one after another. "
            "Rollback: `rollout_undo` reads the Deployment, its ReplicaSets and history "
            "(and, by default, waits for Available, polling once a second); `k8s_rollback` patches and returns without "
            "waiting, so with waiting on they are about even. Loopback and remote were measured one after the other: "
            "compare variants within a path, not across paths.")
    floor = []
    for name, ratios in (("loopback", loop), ("remote", remote)):
        if not ratios:
            continue
        variants = r["paths"][name]["variants"]
        need = variants["k8s_src"]["seconds"]["median"] / GOAL_APPLY
        base = variants["empty"]["seconds"]["median"]
        floor.append(f"{name}: {GOAL_APPLY:.0f}× needs ours at {need:.2f} s whole, the empty playbook alone takes "
                     f"{base:.2f} s, which leaves {max(need - base, 0):.2f} s for the task (ours: "
                     f"{variants['ours']['task_seconds']['median']:.2f} s)")
    if floor:
        text += (" What the goal leaves for our task, on the same figures: " + "; ".join(floor) + ". A module task "
                 "costs a Python start, Ansible's argument handling and result passing before any request.")
    return text


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--objects", type=int, default=50)
    parser.add_argument("--loop-objects", type=int, default=50,
                        help="objects for the looped anchor (a module run each); its time is scaled to --objects")
    parser.add_argument("--warmup", type=int, default=1, help="unrecorded rounds first")
    parser.add_argument("--paths", nargs="+", default=["loopback", "remote"], choices=["loopback", "remote"])
    parser.add_argument("--baseline", metavar="REV", help="also run `manifest_apply` as it was at this git revision")
    args = parser.parse_args()

    kc = kubeconfig()
    cluster = Cluster(kc)
    work = Path(tempfile.mkdtemp(prefix="velocity-bench-k8s-"))
    args.baseline_dir = extract_collections(args.baseline, work / "baseline") if args.baseline else None
    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    result = {"benchmark": "k8s_apply", "machine": machine(), "settings": settings, "paths": {},
              "versions": collection_versions()}
    try:
        for path_name in args.paths:
            if path_name == "loopback":
                result["paths"][path_name] = measure(path_name, kc, cluster, work, args)
            else:
                # Our own /30, not netns.py's 10.203.0.0/30: another benchmark may hold that one at the same time.
                netns.HOST_IP, netns.NS_IP = "10.203.0.5", "10.203.0.6"
                with RemotePath(16443, 5, name=f"velo-bench-k8s-{os.getpid()}") as (host, port):
                    rkc = remote_kubeconfig(kc, work / "kubeconfig-remote", host, port)
                    result["paths"][path_name] = measure(path_name, rkc, cluster, work, args)
    finally:
        cluster.cleanup()
        shutil.rmtree(work, ignore_errors=True)
    if "loopback" in result["paths"]:
        result["verdict"] = verdict(result)
    path = write_result("k8s_apply", result)
    print(f"wrote {path}", file=sys.stderr)
    return 0


def extract_collections(rev: str, dest: Path) -> Path:
    """The project's collections/ as they were at git revision ``rev`` (read-only: git archive)."""
    dest.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", rev, "collections"],
                             capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest / "collections"


def collection_versions() -> dict[str, str]:
    out = subprocess.run([str(Path(sys.executable).parent / "ansible-galaxy"), "collection", "list"],
                         capture_output=True, text=True).stdout
    versions = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] in ("kubernetes.core", "community.docker", "velocity.platform"):
            versions.setdefault(parts[0], parts[1])
    return versions


if __name__ == "__main__":
    sys.exit(main())
