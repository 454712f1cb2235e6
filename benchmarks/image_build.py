#!/usr/bin/env python3
"""Benchmark 4: no-change rebuild of the app image, and its size.

The app image context is prepared as the image role does (scripts/build-wheelhouse, then
app/ with app/Dockerfile, target runtime, the local velocity/base image as BASE_IMAGE and fixed
VERSION/REVISION/CREATED/SOURCE build args). Each variant builds its own tag of
velocity/app-bench once (warm-up, not recorded), then rebuilds with nothing changed, interleaved:
  - ours:               velocity.platform.image_build (content digest of the context + build args)
  - docker_image:       community.docker.docker_image, source: build (skips when the tag exists)
  - docker_image_force: the same with force_source: true (what catches source changes)
community.docker.docker_image_build needs buildx, which Debian's docker.io 20.10 lacks (checked
at run time with `docker buildx version`). Docker API requests are counted in-process (urllib3,
benchmarks/reqcount). Loopback only: Docker Engine is a local unix socket.
Size: our multi-stage image vs benchmarks/naive.Dockerfile (one stage, same base and wheelhouse).

    benchmarks/image_build.py [--reps 5]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, fmt, machine, summary, write_result
from playbook import run_playbook_output, task_seconds

HERE = Path(__file__).resolve().parent
FULL_ARGS = ["--reps", "5"]
SMOKE_ARGS = ["--reps", "1"]
REPO = "velocity/app-bench"
VARIANTS = ["ours", "docker_image", "docker_image_force"]
HEAD = "- hosts: localhost\n  gather_facts: false\n  tasks:\n"
PLAYBOOKS = {
    "empty": "- hosts: localhost\n  gather_facts: false\n  tasks: []\n",
    "ours": HEAD + """\
    - velocity.platform.image_build:
        path: "{{ ctx }}"
        dockerfile: Dockerfile
        name: velocity/app-bench
        tag: ours
        target: runtime
        build_args: "{{ build_args }}"
""",
    "docker_image": HEAD + """\
    - community.docker.docker_image:
        name: velocity/app-bench
        tag: anchor
        source: build
        build:
          path: "{{ ctx }}"
          dockerfile: Dockerfile
          target: runtime
          args: "{{ build_args }}"
""",
    "docker_image_force": HEAD + """\
    - community.docker.docker_image:
        name: velocity/app-bench
        tag: anchor-force
        source: build
        force_source: true
        build:
          path: "{{ ctx }}"
          dockerfile: Dockerfile
          target: runtime
          args: "{{ build_args }}"
""",
}
TAGS = {"ours": "ours", "docker_image": "anchor", "docker_image_force": "anchor-force"}


def sh(*cmd: str, **kw) -> str:
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw).stdout.strip()


def base_image(work: Path) -> str:
    """The local velocity/base image the Dockerfile builds on; on a fresh machine, built first with the
    base_image role, as the pipeline builds it (not timed: both sides build on the same base)."""
    refs = sh("docker", "images", "velocity/base", "--format", "{{.Repository}}:{{.Tag}}").splitlines()
    if not refs:
        print("no velocity/base image yet: building it with the base_image role (not timed)", file=sys.stderr)
        play = work / "base_image.yml"
        play.write_text("- hosts: localhost\n  gather_facts: false\n  roles:\n    - velocity.platform.base_image\n")
        run_playbook_output(play)
        refs = sh("docker", "images", "velocity/base", "--format", "{{.Repository}}:{{.Tag}}").splitlines()
    if not refs:
        raise RuntimeError("the base_image role ran but no velocity/base image exists: see `docker images`")
    return refs[0]


def image_size(ref: str) -> int:
    return int(sh("docker", "image", "inspect", "-f", "{{.Size}}", ref))


def changed_of(stdout: str) -> bool | None:
    plays = json.loads(stdout[stdout.index("{"):])["plays"]
    tasks = plays[0]["tasks"]
    return bool(tasks[0]["hosts"]["localhost"].get("changed")) if tasks else None


def buildx_available() -> bool:
    return subprocess.run(["docker", "buildx", "version"], capture_output=True).returncode == 0


def render(r: dict) -> str:
    v = r["variants"]
    s = r["sizes"]
    labels = {"empty": "empty playbook (baseline)", "ours": "**ours** `image_build`",
              "docker_image": "`community.docker.docker_image` source: build",
              "docker_image_force": "`docker_image` source: build, force_source: true"}
    lines = [
        "## 4. Image build: no-change rebuild and size",
        "",
        f"App image context prepared as the image role does (wheelhouse from the lock file, `app/Dockerfile` target "
        f"`runtime`, base `{r['base_image']}`), each side with its own tag of `{REPO}`, built once first (not recorded), "
        f"then rebuilt with nothing changed, {r['settings']['reps']} repetitions interleaved in rotated order. "
        "*Wall*: whole `ansible-playbook` runs (what a user waits for); *task*: the task's own start-to-end time "
        "(JSON callback). Docker API requests counted in-process (urllib3). "
        "Loopback only: Docker Engine is a local unix socket, there is no network path to add. "
        + ("`community.docker.docker_image_build` was measured too." if r["buildx"] else
           "`community.docker.docker_image_build` was **not** measured: it needs buildx, and Debian's docker.io "
           f"{r['docker_version']} has none (`docker buildx version`: unknown command)."),
        "",
        f"Reproduce: `scripts/in-venv python benchmarks/image_build.py {' '.join(FULL_ARGS)}`.",
        "",
        "| variant | no-change rebuild, wall s, median (min–max) | minus empty | task s | reported `changed` | Docker API requests |",
        "|---|---|---|---|---|---|",
    ]
    empty = v["empty"]["seconds"]["median"]
    for name in ["empty", *VARIANTS]:
        net = "" if name == "empty" else f"{v[name]['seconds']['median'] - empty:.2f}"
        changed = "" if name == "empty" else ", ".join(sorted({str(c).lower() for c in v[name]["changed"]}))
        task = "–" if name == "empty" or "task_seconds" not in v[name] else fmt(v[name]["task_seconds"], digits=2)
        lines.append(f"| {labels[name]} | {fmt(v[name]['seconds'], digits=2)} | {net} | {task} | {changed} | "
                     f"{v[name]['requests']} |")
    mb = 1e6
    lines += [
        "",
        f"Ratios of medians: `docker_image` / ours = {r['ratios']['docker_image_over_ours']:.2f}×, "
        f"`docker_image` force_source / ours = **{r['ratios']['docker_image_force_over_ours']:.2f}×**.",
        "",
        "| image | size |",
        "|---|---|",
        f"| base `{r['base_image']}` | {s['base'] / mb:.0f} MB |",
        f"| **ours** (`app/Dockerfile`, multi-stage, runtime target) | {s['ours'] / mb:.0f} MB |",
        f"| naive single stage (`benchmarks/naive.Dockerfile`, same base and wheelhouse) | {s['naive'] / mb:.0f} MB |",
        "",
        f"Ours is {s['ours'] / s['naive'] * 100:.0f}% of the naive image's size "
        f"({(s['naive'] - s['ours']) / mb:.0f} MB less; {(s['ours'] - s['base']) / mb:.0f} MB on top of the base vs "
        f"{(s['naive'] - s['base']) / mb:.0f} MB).",
        "",
        "Where we lose, or barely win: on a no-change run every side does little next to ansible-playbook's fixed cost, "
        "so the margins are small (the context here is a few MB of wheels). Plain `docker_image` (no force_source) only "
        "looks the tag up, but it is not correct: it also reports `changed=false` and skips the build after a source or "
        "build-arg change, as long as the tag exists. `force_source: true` is the anchor's correct mode: it sends the "
        "whole context and runs the builder every time (all layer-cache hits) and reports `changed=false` only because "
        "the resulting image ID is the same; its cost grows with the context. Ours hashes the context and the build "
        "arguments on the controller, compares with the label on the existing image (a few GETs), and builds nothing.",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()

    subprocess.run(["bash", str(ROOT / "scripts" / "build-wheelhouse"), str(ROOT / "app" / "wheelhouse"), sys.executable],
                   check=True, stdout=subprocess.DEVNULL)
    work = Path(tempfile.mkdtemp(prefix="velocity-bench-image-"))
    base = base_image(work)
    head = sh("git", "-C", str(ROOT), "log", "-1", "--format=%H %cI").split()
    build_args = {"BASE_IMAGE": base, "VERSION": "0.1.0", "REVISION": head[0], "CREATED": head[1],
                  "SOURCE": "https://example.invalid/velocity/platform"}
    (work / "vars.json").write_text(json.dumps({"ctx": str(ROOT / "app"), "build_args": build_args}))
    books = {}
    for name, text in PLAYBOOKS.items():
        books[name] = work / f"{name}.yml"
        books[name].write_text(text)
    reqlog = work / "requests.log"
    env = {"ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.json"}
    extra = ["-e", f"@{work / 'vars.json'}"]
    first: dict[str, dict] = {}
    times: dict[str, list[float]] = {name: [] for name in PLAYBOOKS}
    changed: dict[str, list] = {name: [] for name in PLAYBOOKS}
    task_times: dict[str, list[float]] = {name: [] for name in PLAYBOOKS}
    requests: dict[str, int] = {}
    order = ["empty", *VARIANTS]
    try:
        for name in VARIANTS:  # first build of each tag (shared layer cache); not the figure we compare
            elapsed, _, out = run_playbook_output(books[name], extra_args=extra, env=env)
            first[name] = {"seconds": elapsed, "changed": changed_of(out)}
            print(f"first build {name:19s} {elapsed:6.2f}s changed={first[name]['changed']}", file=sys.stderr)
        for rep in range(args.reps):
            shift = rep % len(order)
            for name in order[shift:] + order[:shift]:
                elapsed, verbs, out = run_playbook_output(books[name], reqlog=reqlog, extra_args=extra, env=env)
                times[name].append(elapsed)
                task_times[name].append(task_seconds(out))
                changed[name].append(changed_of(out))
                requests[name] = sum(verbs.values())
                print(f"rep {rep + 1}/{args.reps} {name:19s} {elapsed:6.2f}s changed={changed[name][-1]} "
                      f"requests={dict(verbs)}", file=sys.stderr)
        started = time.monotonic()
        sh("docker", "build", "-q", "-f", str(HERE / "naive.Dockerfile"), "--build-arg", f"BASE_IMAGE={base}",
           "-t", f"{REPO}:naive", str(ROOT / "app"))
        naive_seconds = time.monotonic() - started
        sizes = {"base": image_size(base), "ours": image_size(f"{REPO}:ours"), "naive": image_size(f"{REPO}:naive"),
                 "docker_image": image_size(f"{REPO}:anchor")}
    finally:
        for tag in [*TAGS.values(), "naive"]:
            subprocess.run(["docker", "rmi", f"{REPO}:{tag}"], capture_output=True)
    variants = {name: {"seconds": summary(times[name]), "task_seconds": summary(task_times[name]),
                       "changed": changed[name], "requests": requests[name]}
                for name in PLAYBOOKS}
    result = {
        "benchmark": "image_build",
        "machine": machine(),
        "settings": vars(args),
        "base_image": base,
        "docker_version": sh("docker", "version", "--format", "{{.Server.Version}}"),
        "buildx": buildx_available(),
        "first_build": first,
        "naive_build_seconds": naive_seconds,
        "variants": variants,
        "sizes": sizes,
        "ratios": {
            "docker_image_over_ours": variants["docker_image"]["seconds"]["median"] / variants["ours"]["seconds"]["median"],
            "docker_image_force_over_ours":
                variants["docker_image_force"]["seconds"]["median"] / variants["ours"]["seconds"]["median"],
        },
    }
    path = write_result("image_build", result)
    print(f"wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
