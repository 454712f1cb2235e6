"""Run new-style Ansible modules as ``python -m <module>`` does, without paying Python's start-up and the
modules' imports for every run: this process imports the modules once, then forks one child per run.

test_bad_input.py runs about 180 bad-input cases, each a module process whose own work is a few milliseconds
of argument checking after about 0.3 s of imports (``kubernetes``, ``docker``, ``hvac``, Ansible's
``basic``). A child here is a fresh process as far as the module can tell: its own environment, working
directory, stdin holding ``{"ANSIBLE_MODULE_ARGS": ...}``, stdout and stderr, ``sys.argv`` of one element,
and the module's code run as ``__main__`` (``runpy``, the module dropped from ``sys.modules`` first, as a
fresh ``python -m`` would find it). Only the import of its dependencies is shared, and nothing runs in this
process between the imports and the fork, so no run sees another's state. The module files' own process
path is still shown by test_bad_input.py's controls, which run ``python -m`` for real.

Protocol, one JSON object per line: the client writes
``{"module": name, "args": {...}, "env": {...}, "cwd": dir, "out": path, "err": path, "timeout": s}``;
this process answers ``{"rc": exit code}`` (a negative code: killed by that signal, -9 after the timeout).
``python module_forkserver.py PACKAGE MODULE...`` imports PACKAGE.MODULE for each MODULE, then answers
``{"ready": true}``.
"""

from __future__ import annotations

import importlib
import json
import os
import runpy
import signal
import sys
import tempfile
import time
import traceback


def child(package: str, request: dict) -> None:
    """In the forked child: become the module's process, run it, exit with its code. Never returns."""
    code = 1
    try:
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        with tempfile.TemporaryFile() as stdin:
            stdin.write(json.dumps({"ANSIBLE_MODULE_ARGS": request["args"]}).encode())
            stdin.seek(0)
            os.dup2(stdin.fileno(), 0)
        for fd, path in ((1, request["out"]), (2, request["err"])):
            target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.dup2(target, fd)
            os.close(target)
        sys.stdin = open(0, encoding="utf-8", closefd=False)
        sys.stdout = open(1, "w", encoding="utf-8", closefd=False)
        sys.stderr = open(2, "w", encoding="utf-8", closefd=False)
        name = f"{package}.{request['module']}"
        sys.argv = [sys.modules[name].__file__]
        del sys.modules[name]
        try:
            runpy.run_module(name, run_name="__main__", alter_sys=True)
            code = 0
        except SystemExit as exc:  # sys.exit(n), sys.exit(None) and sys.exit("message"), as the interpreter
            if exc.code is None or isinstance(exc.code, int):
                code = exc.code or 0
            else:
                print(exc.code, file=sys.stderr)
                code = 1
        except BaseException:  # as the interpreter does for an uncaught exception: traceback, exit 1
            traceback.print_exc()
            code = 1
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:  # exiting anyway: the exit code tells
                pass
        os._exit(code)


def serve(package: str, modules: list[str]) -> None:
    for module in modules:
        importlib.import_module(f"{package}.{module}")
    reply = sys.stdout
    reply.write(json.dumps({"ready": True}) + "\n")
    reply.flush()
    for line in sys.stdin:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            child(package, request)
        deadline = time.monotonic() + float(request.get("timeout", 120))
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                done, status = os.waitpid(pid, 0)
                break
            time.sleep(0.002)
        reply.write(json.dumps({"rc": os.waitstatus_to_exitcode(status)}) + "\n")
        reply.flush()


if __name__ == "__main__":
    serve(sys.argv[1], sys.argv[2:])
