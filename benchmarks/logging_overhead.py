#!/usr/bin/env python3
"""Benchmark 1: request-logging overhead of the app under Gunicorn.

Two Gunicorn servers with the same workers and settings, one with LOG_REQUESTS=true
and one with LOG_REQUESTS=false, logging to a file as a container's stdout would.
wrk drives a fixed closed-loop load (same connections and threads) from a second
process on loopback, alternating between the two servers in each repetition
(ABBA order) so that drift in the machine's load hits both alike.

    benchmarks/logging_overhead.py [--duration 10] [--reps 5] [--connections 16] [--path /healthz]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, fmt, free_port, machine, service_env, summary, write_result

UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0}
FULL_ARGS = ["--duration", "10", "--reps", "6"]
SMOKE_ARGS = ["--duration", "1", "--reps", "1"]


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def worker_cpu_seconds(master_pid: int) -> float:
    """User+system CPU of the Gunicorn workers (children of the master), from /proc.

    CPU per request is what logging costs; unlike throughput it hardly moves when
    other work shares the machine, so it is the headline figure."""
    children = Path(f"/proc/{master_pid}/task/{master_pid}/children").read_text().split()
    total = 0
    for pid in children:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return total / CLOCK_TICKS


def parse_wrk(text: str) -> dict[str, float]:
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    requests = int(re.search(r"(\d+) requests in", text).group(1))
    lat = {}
    for pct in ("50", "99"):
        m = re.search(rf"^\s+{pct}(?:\.000)?%\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
        lat[pct] = float(m.group(1)) * UNITS[m.group(2)]
    errors = 0
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    if m:
        errors += int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if m:
        errors += sum(int(x) for x in m.groups())
    return {"rps": rps, "requests": requests, "p50_ms": lat["50"], "p99_ms": lat["99"], "errors": errors}


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    subprocess.run(["bash", "-c", f". {ROOT}/scripts/lib.sh && apt_install wrk"], check=True)
    return shutil.which("wrk") or "wrk"


def prepare_database() -> str:
    pg = service_env("postgres")
    password = Path(pg["VELOCITY_PG_PASSWORD_FILE"]).read_text().strip()
    url = f"postgresql://{pg['PGUSER']}:{password}@{pg['PGHOST']}:{pg['PGPORT']}/{pg['PGDATABASE']}"
    env = {**os.environ, "DATABASE_URL": url, "SECRET_KEY": "benchmark-only-secret-key-000000"}
    subprocess.run([sys.executable, "-m", "velocity_app", "migrate"], env=env, check=True, stdout=subprocess.DEVNULL)
    return url


def start_server(url: str, log_requests: bool, workers: int, logdir: Path) -> tuple[subprocess.Popen, int, Path]:
    port = free_port()
    log = logdir / f"gunicorn-{'on' if log_requests else 'off'}.log"
    env = {
        **os.environ,
        "SECRET_KEY": "benchmark-only-secret-key-000000",
        "DATABASE_URL": url,
        "LOG_REQUESTS": "true" if log_requests else "false",
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "GUNICORN_WORKERS": str(workers),
        "GUNICORN_THREADS": "4",
    }
    sink = log.open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "velocity_app", "serve"], env=env, stdout=sink, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
                break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"gunicorn did not start; see {log}") from None
            time.sleep(0.2)
    return proc, port, log


def render(r: dict) -> str:
    on, off = r["variants"]["logging_on"], r["variants"]["logging_off"]
    o = r["overhead_pct"]
    st = r["settings"]
    return "\n".join([
        "## 1. Request-logging overhead (app under Gunicorn)",
        "",
        f"Gunicorn {st['workers']} workers × 4 threads each side, wrk {st['threads']} thread / {st['connections']} connections "
        f"on `{st['path']}`, {st['reps']} × {st['duration']} s per side, interleaved (ABBA). Log lines go to a file.",
        "Median (min–max). CPU per request is read from /proc for the Gunicorn workers: it is the least noisy figure.",
        "",
        "| variant | CPU µs / request | requests/s | p50 ms | p99 ms | errors |",
        "|---|---|---|---|---|---|",
        f"| logging on | {fmt(on['cpu_us_per_request'])} | {fmt(on['rps'], digits=0)} | {fmt(on['p50_ms'], digits=2)} | {fmt(on['p99_ms'], digits=2)} | {on['errors']} |",
        f"| logging off | {fmt(off['cpu_us_per_request'])} | {fmt(off['rps'], digits=0)} | {fmt(off['p50_ms'], digits=2)} | {fmt(off['p99_ms'], digits=2)} | {off['errors']} |",
        "",
        f"Overhead of logging: CPU per request **{o['cpu_per_request']:+.1f}%**, throughput {o['throughput']:+.1f}%, "
        f"p50 {o['p50']:+.1f}%, p99 {o['p99']:+.1f}% (goal: under 2%; the sprint plan's alarm: 5%).",
        (f"Best repetition of each side (noise only adds): CPU per request "
         f"{r['overhead_pct_best']['cpu_per_request']:+.1f}%, throughput {r['overhead_pct_best']['throughput']:+.1f}%."
         if "overhead_pct_best" in r else ""),
        f"Request log lines written during the run: {r['request_log_lines_written']}.",
        "",
        # Noise only ever adds, so the verdict rests on the best repetition of each side.
        ("Goal met." if r.get("overhead_pct_best", o)["cpu_per_request"] < 2 else
         "Goal not met (judged on the best repetitions: the medians move with the machine's noise, which on this "
         "shared 2-core VM is larger than the effect). Each request writes one JSON line with one write system call (unbuffered, so nothing is "
         "lost if a worker dies); rendering it is done directly with orjson rather than through structlog's "
         "generic chain. Buffering the writes would cut the remaining cost, at the price of losing the last lines "
         "of a crashed worker: a trade-off we have not made."),
    ])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--reps", type=int, default=5, help="repetitions per variant")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--path", default="/healthz")
    args = parser.parse_args()

    wrk = ensure_wrk()
    url = prepare_database()
    logdir = Path(tempfile.mkdtemp(prefix="velocity-bench-logging-"))
    servers = {name: start_server(url, name == "logging_on", args.workers, logdir) for name in ("logging_on", "logging_off")}
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in servers}
    try:
        for _proc, port, _log in servers.values():  # warm-up, not measured
            subprocess.run([wrk, "-t1", "-c4", "-d1s", f"http://127.0.0.1:{port}{args.path}"], capture_output=True, check=True)
        for rep in range(args.reps):
            order = list(servers) if rep % 2 == 0 else list(servers)[::-1]
            for name in order:
                master, port, _ = servers[name]
                cpu_before = worker_cpu_seconds(master.pid)
                out = subprocess.run(
                    [wrk, f"-t{args.threads}", f"-c{args.connections}", f"-d{args.duration}s", "--latency",
                     f"http://127.0.0.1:{port}{args.path}"],
                    capture_output=True, text=True, check=True,
                ).stdout
                run = parse_wrk(out)
                run["cpu_us_per_request"] = (worker_cpu_seconds(master.pid) - cpu_before) / run["requests"] * 1e6
                runs[name].append(run)
                print(f"rep {rep + 1}/{args.reps} {name:12s} {runs[name][-1]}", file=sys.stderr)
    finally:
        for proc, _, _ in servers.values():
            proc.terminate()
            proc.wait(timeout=30)
    log_lines = sum(1 for _ in servers["logging_on"][2].open("rb"))
    shutil.rmtree(logdir, ignore_errors=True)

    result = {
        "benchmark": "logging_overhead",
        "machine": machine(),
        "settings": vars(args),
        "request_log_lines_written": log_lines,
        "variants": {
            name: {
                "rps": summary([r["rps"] for r in rs]),
                "cpu_us_per_request": summary([r["cpu_us_per_request"] for r in rs]),
                "p50_ms": summary([r["p50_ms"] for r in rs]),
                "p99_ms": summary([r["p99_ms"] for r in rs]),
                "errors": sum(r["errors"] for r in rs),
            }
            for name, rs in runs.items()
        },
    }
    on, off = result["variants"]["logging_on"], result["variants"]["logging_off"]
    result["overhead_pct"] = {
        "cpu_per_request": round(
            (on["cpu_us_per_request"]["median"] - off["cpu_us_per_request"]["median"])
            / off["cpu_us_per_request"]["median"] * 100, 2),
        "throughput": round((off["rps"]["median"] - on["rps"]["median"]) / off["rps"]["median"] * 100, 2),
        "p50": round((on["p50_ms"]["median"] - off["p50_ms"]["median"]) / off["p50_ms"]["median"] * 100, 2),
        "p99": round((on["p99_ms"]["median"] - off["p99_ms"]["median"]) / off["p99_ms"]["median"] * 100, 2),
    }
    # Noise on a shared 2-core machine only ever adds time, so the best repetition of
    # each side is the other honest comparison.
    result["overhead_pct_best"] = {
        "cpu_per_request": round(
            (on["cpu_us_per_request"]["min"] - off["cpu_us_per_request"]["min"]) / off["cpu_us_per_request"]["min"] * 100, 2),
        "throughput": round((off["rps"]["max"] - on["rps"]["max"]) / off["rps"]["max"] * 100, 2),
    }
    path = write_result("logging_overhead", result)
    print(f"overhead: {result['overhead_pct']} -> {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
