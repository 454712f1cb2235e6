#!/usr/bin/env python3
"""Benchmark 2: fetch N Vault KV v2 secrets with AppRole, ours vs community.hashi_vault.

Sides, each a small playbook run with ansible-playbook (local connection), timed
by wall clock, interleaved in every repetition (order reversed every other rep):

  empty         a play with no tasks: the fixed cost of ansible-playbook, subtracted to get task cost
  ours          velocity.platform.vault_secrets, one task (action plugin, in-process on a local connection)
  looped        community.hashi_vault.vault_kv2_get as a module, looped over the N paths
  lookups       N community.hashi_vault.vault_kv2_get lookups, one per secret (set_fact loop)
  lookup_terms  one vault_kv2_get lookup given all N paths as terms (the anchor's best case)

Scenarios: `loopback` is the dev server (http://127.0.0.1:8200); `remote_tls` is the
TLS server (scripts/services/vault.sh tls, 127.0.0.1:8220) behind benchmarks/netns.py's
RemotePath (+10 ms round trip). Its certificate is OpenBao's -dev-tls one, whose SANs
are fixed (localhost, localhost.localdomain, the host name, 127.0.0.1), so the clients
reach 10.203.0.2 by the name localhost.localdomain: each playbook runs in a private
mount namespace (unshare -m) whose /etc/hosts maps that name to 10.203.0.2. TLS is
verified end to end against the server's CA on both sides (ca_cert).

Round trips: OpenBao refuses API-enabled audit devices and the shared servers must
not be restarted, so each side runs once more, untimed, against the dev server through
an HTTP-parsing relay on loopback that counts TCP connections and requests by path
(logins, KV reads, other). The requests a client makes do not depend on latency or TLS;
behind TLS each connection adds its handshake.

Everything lives under the benchmark's own names (auth mount bench-approle, role and
policy velocity-bench, secret/bench/sNN) and is removed at the end.

With --baseline REV one more side, `ours_base`: the same task with the collection as it
was at git revision REV (git archive), interleaved with the rest: before and after.

    benchmarks/vault_fetch.py [--reps 5] [--secrets 20] [--scenarios loopback remote_tls] [--baseline REV]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, fmt, machine, summary, write_result
from relay import Relay

FULL_ARGS = ["--reps", "5", "--secrets", "20"]
BASELINE = True  # run_all.py passes --baseline REV
SMOKE_ARGS = ["--reps", "1", "--secrets", "3", "--no-warmup"]
SIDES = ["empty", "ours", "looped", "lookups", "lookup_terms"]
AUTH_MOUNT = "bench-approle"
ROLE = POLICY = "velocity-bench"
KV_MOUNT = "secret"
TLS_NAME = "localhost.localdomain"
BIN = Path(sys.executable).parent


def vault_env(mode: str) -> dict[str, str]:
    script = ROOT / "scripts" / "services" / "vault.sh"
    subprocess.run(["bash", str(script), "start", mode], check=True, stdout=subprocess.DEVNULL)
    out = subprocess.run(["bash", str(script), "env", mode], check=True, capture_output=True, text=True).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


class BenchVault:
    """The benchmark's own AppRole, policy and secrets on one server."""

    def __init__(self, env: dict[str, str], n: int) -> None:
        import hvac

        self.addr = env["VAULT_ADDR"]
        self.cacert = env.get("VAULT_CACERT")
        token = Path(env["VELOCITY_VAULT_TOKEN_FILE"]).read_text().strip()
        self.client = hvac.Client(url=self.addr, token=token, verify=self.cacert or True)
        self.paths = [f"bench/s{i:02d}" for i in range(n)]

    def setup(self) -> tuple[str, str]:
        c = self.client
        if f"{AUTH_MOUNT}/" not in c.sys.list_auth_methods()["data"]:
            c.sys.enable_auth_method("approle", path=AUTH_MOUNT)
        c.sys.create_or_update_policy(POLICY, f'path "{KV_MOUNT}/data/bench/*" {{ capabilities = ["read"] }}')
        c.auth.approle.create_or_update_approle(ROLE, token_policies=[POLICY], token_ttl="10m", token_max_ttl="30m",
                                                mount_point=AUTH_MOUNT)
        role_id = c.auth.approle.read_role_id(ROLE, mount_point=AUTH_MOUNT)["data"]["role_id"]
        secret_id = c.auth.approle.generate_secret_id(ROLE, mount_point=AUTH_MOUNT)["data"]["secret_id"]
        for path in self.paths:
            c.secrets.kv.v2.create_or_update_secret(path=path, secret={"value": secrets.token_hex(16)},
                                                    mount_point=KV_MOUNT)
        return role_id, secret_id

    def cleanup(self) -> None:
        c = self.client
        for step in (lambda: c.sys.disable_auth_method(AUTH_MOUNT),  # revokes the tokens it issued
                     lambda: c.sys.delete_policy(POLICY),
                     *[(lambda p=p: c.secrets.kv.v2.delete_metadata_and_all_versions(p, mount_point=KV_MOUNT))
                       for p in self.paths]):
            try:
                step()
            except Exception as exc:  # keep cleaning up
                print(f"cleanup: {exc}", file=sys.stderr)


class CountingRelay(Relay):
    """A plain-HTTP relay on 127.0.0.1 that counts connections and requests (by path) on their way to Vault.

    OpenBao refuses to enable audit devices through the API, and the shared dev
    server must not be restarted, so round trips are counted here instead, in one
    extra untimed run of each side over http (the requests a client makes do not
    depend on latency or TLS; TLS adds its handshake per connection)."""

    def __init__(self, target_port: int) -> None:
        super().__init__(target_port, on_request=lambda method, path, headers: None)

    def reset(self) -> None:
        with self.lock:
            self.connections = 0
            self.requests = []

    def counts(self) -> dict[str, int]:
        with self.lock:
            paths, conns = [path for _method, path in self.requests], self.connections
        logins = sum(p.startswith(f"/v1/auth/{AUTH_MOUNT}/login") for p in paths)
        reads = sum(p.startswith(f"/v1/{KV_MOUNT}/data/bench/") for p in paths)
        return {"logins": logins, "kv_reads": reads, "other": len(paths) - logins - reads, "requests": len(paths),
                "connections": conns}

    def close(self) -> None:
        self.cut()


def auth_args(url: str, cacert: str | None, indent: int) -> str:
    pad = " " * indent
    lines = [f"url: {url}", "auth_method: approle", f"mount_point: {AUTH_MOUNT}",
             'role_id: "{{ bench_role_id }}"', 'secret_id: "{{ bench_secret_id }}"']
    if cacert:
        lines.append(f"ca_cert: {cacert}")
    return "\n".join(pad + line for line in lines)


def playbooks(workdir: Path, url: str, cacert: str | None, baseline: Path | None = None) -> dict[str, Path]:
    head = "---\n- name: bench\n  hosts: localhost\n  gather_facts: false\n  tasks:\n"
    lookup_kw = (f"engine_mount_point='{KV_MOUNT}', url='{url}', auth_method='approle', mount_point='{AUTH_MOUNT}', "
                 "role_id=bench_role_id, secret_id=bench_secret_id" + (f", ca_cert='{cacert}'" if cacert else ""))
    bodies = {
        "empty": "    []\n",
        "ours": f"""\
    - name: ours, one task
      velocity.platform.vault_secrets:
{auth_args(url, cacert, 8)}
        kv_mount: {KV_MOUNT}
        secrets: "{{{{ bench_mapping }}}}"
        env_file: "{workdir}/ours.env"
      register: ours
""",
        "looped": f"""\
    - name: anchor module, looped
      community.hashi_vault.vault_kv2_get:
{auth_args(url, cacert, 8)}
        engine_mount_point: {KV_MOUNT}
        path: "{{{{ item }}}}"
      loop: "{{{{ bench_paths }}}}"
      register: anchor
      no_log: true
""",
        "lookups": f"""\
    - name: anchor, one lookup per secret
      ansible.builtin.set_fact:
        bench_values: "{{{{ bench_values | default({{}}) | combine({{item: lookup('community.hashi_vault.vault_kv2_get', item, {lookup_kw}).secret.value}}) }}}}"
      loop: "{{{{ bench_paths }}}}"
      no_log: true
""",
        "lookup_terms": f"""\
    - name: anchor, one lookup with every path as a term
      ansible.builtin.set_fact:
        bench_values: "{{{{ query('community.hashi_vault.vault_kv2_get', *bench_paths, {lookup_kw}) | map(attribute='secret') | map(attribute='value') }}}}"
      no_log: true
""",
    }
    out = {}
    for name, body in bodies.items():
        path = workdir / f"{name}.yml"
        path.write_text(head + body)
        out[name] = path
    if baseline is not None:
        # Its own folder: run_playbook writes an ansible.cfg there whose collections_path is the baseline's.
        (workdir / "base").mkdir(exist_ok=True)
        out["ours_base"] = workdir / "base" / "ours_base.yml"
        out["ours_base"].write_text(head + bodies["ours"].replace("ours.env", "ours_base.env"))
        write_cfg(out["ours_base"].parent, baseline)
    return out


def write_cfg(folder: Path, collections: Path) -> None:
    # The project's ansible.cfg minus its extra callbacks; the json callback gives each task's
    # start and end, so the task time is read directly, not only as a difference of two noisy walls.
    (folder / "ansible.cfg").write_text(
        "[defaults]\ncollections_path = %s\nhost_key_checking = False\nretry_files_enabled = False\n"
        "nocows = True\nstdout_callback = ansible.posix.json\n" % collections)


def hosts_override(workdir: Path, ip: str) -> Path:
    lines = [line for line in Path("/etc/hosts").read_text().splitlines() if TLS_NAME not in line.split()]
    path = workdir / "hosts"
    path.write_text("\n".join([*lines, f"{ip} {TLS_NAME}", ""]))
    return path


def check_san(cacert_dir: Path) -> None:
    from cryptography import x509

    cert = x509.load_pem_x509_certificate((cacert_dir / "vault-cert.pem").read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    if TLS_NAME not in names:
        raise RuntimeError(f"the TLS server's certificate has no SAN {TLS_NAME} (has {names})")


def run_playbook(play: Path, vars_file: Path, hosts: Path | None) -> tuple[float, float, dict | None]:
    """Wall seconds of one ansible-playbook run, the seconds its tasks took, and the first task's result."""
    cfg = play.parent / "ansible.cfg"
    if not cfg.exists():
        write_cfg(play.parent, ROOT / "collections")
    cmd = [str(BIN / "ansible-playbook"), "-i", "localhost,", "-c", "local", str(play), "-e", f"@{vars_file}",
           "-e", f"ansible_python_interpreter={sys.executable}"]
    if hosts:  # private mount namespace: only this playbook sees the name -> 10.203.0.2
        cmd = ["unshare", "-m", "--propagation", "private", "sh", "-c",
               'mount --bind "$0" /etc/hosts && exec "$@"', str(hosts), *cmd]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "BAO_"))}
    env.update({"ANSIBLE_CONFIG": str(cfg), "ANSIBLE_NOCOLOR": "1", "PATH": f"{BIN}:{env.get('PATH', '')}"})
    started = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=str(ROOT), timeout=600)
    elapsed = time.monotonic() - started
    if proc.returncode:
        raise RuntimeError(f"{play.name} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-2000:]}")
    report, _ = json.JSONDecoder().raw_decode(proc.stdout[proc.stdout.index("{"):])
    tasks = report["plays"][0]["tasks"]
    task_s = sum((_ts(t["task"]["duration"]["end"]) - _ts(t["task"]["duration"]["start"])).total_seconds()
                 for t in tasks)
    return elapsed, task_s, (tasks[0]["hosts"]["localhost"] if tasks else None)


def _ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def run_scenario(name: str, env: dict[str, str], args: argparse.Namespace, workdir: Path) -> dict:
    sdir = workdir / name
    sdir.mkdir()
    vault = BenchVault(env, args.secrets)
    remote = None
    try:
        role_id, secret_id = vault.setup()
        vars_file = sdir / "vars.json"
        vars_file.touch(mode=0o600)
        vars_file.write_text(json.dumps({
            "bench_role_id": role_id, "bench_secret_id": secret_id, "bench_paths": vault.paths,
            "bench_mapping": {f"BENCH_{i:02d}": f"{p}#value" for i, p in enumerate(vault.paths)},
        }))
        hosts = None
        port = int(env["VAULT_ADDR"].rsplit(":", 1)[1])
        if name == "remote_tls":
            from netns import RemotePath

            check_san(Path(env["VAULT_CACERT"]).parent)
            remote = RemotePath(port, args.delay_ms)
            ip, port = remote.__enter__()
            hosts = hosts_override(sdir, ip)
            url = f"https://{TLS_NAME}:{port}"
        else:
            url = env["VAULT_ADDR"]
        plays = playbooks(sdir, url, env.get("VAULT_CACERT"), args.baseline_dir)
        sides = [side for side in SIDES if side in args.sides or side in ("empty", "ours")] + (["ours_base"] if args.baseline_dir else [])
        # Warm-up (imports, page cache), not measured; the looped module is skipped (20 runs, ~10 s).
        for side in [s for s in sides if s != "looped"] if args.warmup else []:
            run_playbook(plays[side], vars_file, hosts)
        times: dict[str, list[float]] = {s: [] for s in sides}
        inside_ms: list[float] = []
        task_times: dict[str, list[float]] = {s: [] for s in sides}
        for rep in range(args.reps):
            order = sides if rep % 2 == 0 else sides[::-1]
            for side in order:
                elapsed, task_s, res = run_playbook(plays[side], vars_file, hosts)
                times[side].append(elapsed)
                task_times[side].append(task_s)
                if side == "ours":
                    if len(res.get("env_names", [])) != len(vault.paths) or res["stats"]["logins"] != 1:
                        raise RuntimeError(f"ours did not deliver {len(vault.paths)} secrets with one login: {res}")
                    inside_ms.append(res["stats"]["elapsed_ms"])
            print(f"{name} rep {rep + 1}/{args.reps}: " + ", ".join(
                f"{s} {times[s][-1]:.2f}s/{task_times[s][-1]:.3f}s" for s in sides),
                  file=sys.stderr, flush=True)
        counts = {}
        if not env.get("VAULT_CACERT"):  # plain http: count round trips through the relay
            relay = CountingRelay(port)
            try:
                counted_dir = sdir / "counted"
                counted_dir.mkdir()
                counted = playbooks(counted_dir, f"http://127.0.0.1:{relay.port}", None, args.baseline_dir)
                for side in sides[1:]:
                    relay.reset()
                    run_playbook(counted[side], vars_file, None)
                    counts[side] = relay.counts()
            finally:
                relay.close()
    finally:
        if remote:
            remote.__exit__(None, None, None)
        vault.cleanup()
    empty = statistics.median(times["empty"])
    return {
        "url": url,
        "tls": bool(env.get("VAULT_CACERT")),
        "delay_ms_each_way": args.delay_ms if name == "remote_tls" else 0,
        "wall_s": {s: summary(t) for s, t in times.items()},
        "wall_minus_empty_s": {s: summary([x - empty for x in t]) for s, t in times.items() if s != "empty"},
        "task_s": {s: summary(t) for s, t in task_times.items() if s != "empty"},
        "round_trips": counts,
        "ours_inside_task_ms": summary(inside_ms),
    }


LABELS = {
    "ours": "ours: `velocity.platform.vault_secrets`, one task",
    "looped": "`vault_kv2_get` module, looped",
    "lookups": "`vault_kv2_get` lookup, one per secret",
    "lookup_terms": "`vault_kv2_get`, one lookup with all paths",
}


def render(r: dict) -> str:
    n = r["settings"]["secrets"]
    out = [
        "## 2. Vault: fetch secrets with AppRole",
        "",
        f"{n} KV v2 secrets, AppRole login, ansible-playbook with a local connection, {r['settings']['reps']} "
        "repetitions per side, interleaved (order reversed every other repetition), after one unmeasured run of each side but the looped module. "
        "*Wall* is the whole `ansible-playbook` run; *wall − empty* subtracts the median wall of a playbook without "
        "tasks; *task* is the measured task's own start-to-end time from the `ansible.posix.json` callback (same "
        "callback on every side), the least noisy figure. Round trips were counted in one extra untimed run of each "
        "side through an HTTP-parsing relay in front of the dev server (OpenBao refuses API-enabled audit devices); "
        "they do not depend on the network, and behind TLS each new connection adds a handshake.",
        "`loopback`: dev server over http on 127.0.0.1. `remote_tls`: the TLS dev server behind a network "
        "namespace with +10 ms round trip (userspace delay proxy, no netem on this kernel), certificate verified "
        "against its CA on both sides (the clients reach 10.203.0.2 as localhost.localdomain, a SAN of "
        "OpenBao's -dev-tls certificate, through a private /etc/hosts).",
    ]
    counted = next((s["round_trips"] for s in r["scenarios"].values() if s["round_trips"]), {})
    for name, s in r["scenarios"].items():
        out += ["", f"### {name} ({s['url']})", "",
                "| side | wall s | wall − empty s | task s | logins | HTTP requests | connections | task time vs ours |",
                "|---|---|---|---|---|---|---|---|",
                f"| empty playbook | {fmt(s['wall_s']['empty'], digits=2)} | – | – | – | – | – | – |"]
        ours = s["task_s"]["ours"]["median"]
        labels = dict(LABELS)
        if "ours_base" in s["task_s"]:
            labels = {"ours": LABELS["ours"],
                      "ours_base": f"ours at `{r['settings']['baseline']}` (before)",
                      **{k: v for k, v in LABELS.items() if k != "ours"}}
        for side, label in labels.items():
            if side not in s["task_s"]:
                continue  # not run (--sides)
            rt = counted.get(side, {"logins": "?", "requests": "?", "connections": "?"})
            ratio = s["task_s"][side]["median"] / ours
            out.append(f"| {label} | {fmt(s['wall_s'][side], digits=2)} | {fmt(s['wall_minus_empty_s'][side], digits=2)} "
                       f"| {fmt(s['task_s'][side], digits=3)} | {rt['logins']} | {rt['requests']} | "
                       f"{rt['connections']} | {'1' if side == 'ours' else f'{ratio:.2f}×'} |")
        out += ["", f"Time inside our task (login + reads + env file, its own `stats.elapsed_ms`): "
                f"{fmt(s['ours_inside_task_ms'], ' ms', 0)}; the rest of its task time is Ansible's "
                "(action plugin loading, argument validation, result handling)."]
    out += ["", "Reproduce: `scripts/in-venv python benchmarks/vault_fetch.py " + " ".join(FULL_ARGS)
            + (f" --baseline {r['settings']['baseline']}" if r["settings"].get("baseline") else "") + "`.", ""]
    out += ["Goals (issue 17), behind 10 ms RTT + TLS against the anchor's best use (one lookup given every path):", ""]
    out += [f"- {g['goal']}: {g['figure']} — {'met' if g['met'] else 'NOT met'}" for g in goal_list(r)]
    out += ["", "Goals (issue 8), on task time (ratio = anchor ÷ ours):", ""]
    out += [f"- {line}" for line in r["goals"]["lines"]]
    out += ["", r["note"], "",
            "On whole-playbook wall clock the differences between ours and the lookups shrink to tenths of a second: "
            "ansible-playbook's own start-up (the empty playbook) dominates and varies by more than the tasks do. "
            "The looped module starts a Python process per secret, which makes it the side most sensitive to other "
            "load on the machine (the figures above were taken while other work shared its 2 CPUs)."]
    return "\n".join(out)


def goal_list(r: dict) -> list[dict]:
    """Issue 17's Vault goals (for this section and RESULTS.md's summary): text, figure, met."""
    s = r["scenarios"].get("remote_tls")
    if not s:
        return []
    cmd = "scripts/in-venv python benchmarks/vault_fetch.py " + " ".join(FULL_ARGS)
    net = s["wall_minus_empty_s"]
    ratio = net["lookup_terms"]["median"] / net["ours"]["median"]
    ours_wall, anchor_wall = s["wall_s"]["ours"]["median"], s["wall_s"]["lookup_terms"]["median"]
    return [
        {"goal": f"Vault, {r['settings']['secrets']} secrets, 10 ms RTT + TLS: ≥2× faster than one `vault_kv2_get` "
                 "lookup with every path, net of the empty playbook's start-up",
         "figure": f"{ratio:.2f}× ({net['lookup_terms']['median']:.2f} s vs {net['ours']['median']:.2f} s)",
         "met": ratio >= 2, "command": cmd},
        {"goal": "Vault, same: faster whole process",
         "figure": f"{ours_wall:.2f} s vs {anchor_wall:.2f} s wall", "met": ours_wall < anchor_wall, "command": cmd},
    ]


def goals(scen: dict) -> dict:
    lines, met = [], {}

    def check(key: str, sc: str, side: str, goal: float, text: str) -> None:
        if sc not in scen:
            return
        t = scen[sc]["task_s"]
        if side not in t:
            return
        x = t[side]["median"] / t["ours"]["median"]
        met[key] = x >= goal
        lines.append(f"{text}: {x:.2f}× — {'met' if x >= goal else 'NOT met'}")

    check("10x_vs_looped_loopback", "loopback", "looped", 10, "≥10× faster than the looped module, loopback")
    check("10x_vs_looped_remote", "remote_tls", "looped", 10, "≥10× faster than the looped module, remote TLS")
    for side in ("lookups", "lookup_terms"):
        check(f"3x_vs_{side}_remote", "remote_tls", side, 3, f"≥3× faster than {LABELS[side]}, 10 ms RTT + TLS")
    for side in ("lookups", "lookup_terms"):
        check(f"not_slower_than_{side}_loopback", "loopback", side, 1, f"no slower than {LABELS[side]}, loopback")
    return {"met": met, "lines": lines}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--secrets", type=int, default=20)
    parser.add_argument("--no-warmup", dest="warmup", action="store_false", help="skip the unmeasured first run")
    parser.add_argument("--delay-ms", type=float, default=5.0, help="added each way on the remote path")
    parser.add_argument("--scenarios", nargs="+", default=["loopback", "remote_tls"],
                        choices=["loopback", "remote_tls"])
    parser.add_argument("--baseline", metavar="REV", help="also run `vault_secrets` as it was at this git revision")
    parser.add_argument("--sides", nargs="+", default=SIDES, choices=SIDES,
                        help="the sides to run (default: all; the looped module takes a module run per secret)")
    args = parser.parse_args()
    if not shutil.which("unshare") and "remote_tls" in args.scenarios:
        raise SystemExit("remote_tls needs unshare (util-linux)")

    workdir = Path(tempfile.mkdtemp(prefix="velocity-bench-vault-"))
    os.chmod(workdir, 0o700)
    args.baseline_dir = None
    if args.baseline:
        from k8s_apply import extract_collections

        args.baseline_dir = extract_collections(args.baseline, workdir / "baseline")
    scenarios = {}
    try:
        for name in args.scenarios:
            env = vault_env("dev" if name == "loopback" else "tls")
            scenarios[name] = run_scenario(name, env, args, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k != "baseline_dir"}
    result = {"benchmark": "vault_fetch", "machine": machine(), "settings": settings, "scenarios": scenarios}
    result["goals"] = goals(scenarios)
    result["note"] = note(scenarios)
    path = write_result("vault_fetch", result)
    print("\n".join(result["goals"]["lines"]) + f"\n-> {path}", file=sys.stderr)
    return 0


def note(scen: dict) -> str:
    """The honest sentences: where we lose, and why, from the figures."""
    parts = ["Ours logs in once and sends the KV reads back to back on the login's connection (HTTP/1.1 "
             "pipelining, the `pipelining` option, on by default): one TCP and one TLS handshake, one round trip for "
             "the login and one for all the reads, the fewest that one login and N reads can take. The anchor's "
             "single lookup also logs in once over one kept-alive connection, but waits for each read's answer "
             "before it sends the next: N round trips."]
    for name, s in scen.items():
        t = s["task_s"]
        losers = [LABELS[side] for side in ("lookups", "lookup_terms", "looped")
                  if side in t and t[side]["median"] < t["ours"]["median"]]
        if losers:
            parts.append(f"On {name} ours is slower than {', '.join(losers)}.")
    remote = scen.get("remote_tls")
    if remote and "lookup_terms" in remote["task_s"] and \
            remote["task_s"]["lookup_terms"]["median"] < 3 * remote["task_s"]["ours"]["median"]:
        parts.append(
            "The 3× goal holds against one lookup per secret (20 logins, 20 connections) but not against a single "
            "lookup given every path: that already logs in once and reads over one kept-alive connection, so its "
            "cost is one handshake plus N sequential round trips. Ours sends the fewest requests one login and N "
            "reads need (the KV mount is looked up only after a failure, to name its cause) and pipelines the "
            "reads; at 10 ms RTT and 20 secrets that gain falls short of 3×, and part of our task time is "
            "Ansible's fixed action cost.")
    loop = scen.get("loopback")
    if loop and "lookup_terms" in loop["task_s"] and \
            loop["task_s"]["lookup_terms"]["median"] < loop["task_s"]["ours"]["median"]:
        parts.append(
            "On loopback each round trip costs about a millisecond, so pipelined reads gain little and our extra "
            "work (argument-spec validation, writing the 0600 env file) "
            "is what remains.")
    if len(parts) == 1:
        parts.append("Ours was the fastest side in every scenario measured.")
    return " ".join(parts)


if __name__ == "__main__":
    sys.exit(main())
