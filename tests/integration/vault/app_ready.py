"""Start the real app with an env file and report whether /readyz answers 200.

    python app_ready.py ENV_FILE

Reads the env file literally (NAME=value, the docker format the role writes),
runs `velocity-app migrate`, starts Gunicorn on a free 127.0.0.1 port, polls
/readyz, stops Gunicorn, and prints one JSON line: migrate exit code, readyz
status and body. The values go to the child processes through their
environment only, never on a command line or in the output.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request


def load_env(path: str) -> dict:
    env = {}
    with open(path) as handle:
        for line in handle:
            line = line.rstrip("\n")
            if not line or line.startswith("#") or "=" not in line:
                continue
            name, _, value = line.partition("=")
            env[name] = value
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=3) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError:
        return 0, ""


def main(env_file: str, timeout: float = 30.0) -> dict:
    env = {**os.environ, **load_env(env_file)}
    bindir = os.path.dirname(sys.executable)
    cli = os.path.join(bindir, "velocity-app")
    migrate = subprocess.run([cli, "migrate"], env=env, capture_output=True, text=True, timeout=120)
    port = free_port()
    env.update(GUNICORN_BIND="127.0.0.1:%d" % port, GUNICORN_WORKERS="1")
    server = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", "python:velocity_app.gunicorn_conf",
                               "velocity_app.wsgi:app"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    status, body = 0, ""
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status, body = get("http://127.0.0.1:%d/readyz" % port)
            if status == 200:
                break
            time.sleep(0.3)
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
    result = {"migrate_rc": migrate.returncode, "readyz_status": status, "readyz": body.strip()}
    if migrate.returncode:
        tail = (migrate.stderr or migrate.stdout).strip().splitlines()[-1:] or [""]
        result["migrate_error"] = redact(tail[0], load_env(env_file))
    return result


def redact(text: str, env: dict) -> str:
    for value in env.values():
        if len(value) >= 6:
            text = text.replace(value, "<redacted>")
    return text


if __name__ == "__main__":
    result = main(sys.argv[1])
    print(json.dumps(result))
    sys.exit(0 if result["readyz_status"] == 200 else 1)
