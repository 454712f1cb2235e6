#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Velocity platform team
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
---
module: container_smoke_test
short_description: Boot the app image in a locked-down container and check health, readiness and privileges
version_added: 0.1.0
description:
  - Runs the image with the environment from O(env_file) (the 0600 env file the secrets stage writes)
    and O(env), then checks, in this order
  - 1. with O(migrate=true), C(velocity-app migrate) in a one-off container exits 0;
  - 2. the service container becomes C(healthy) by the image's own C(HEALTHCHECK) (the interval is shortened
    to O(health_interval) seconds; the command is kept);
  - 3. C(/healthz) answers 200 and C(/readyz) answers 200 (the database answers and the schema is at head),
    polled for up to O(ready_timeout) seconds; with O(expect_ready=false) only the status is recorded;
  - 4. PID 1 runs with a non-zero uid and no effective capability, the root filesystem refuses writes,
    and C(/tmp) (tmpfs) is writable;
  - 5. the service logged no C(error)/C(critical) JSON line (unless O(allow_error_logs=true)).
  - Containers run with C(read_only) root filesystem, a tmpfs on C(/tmp), C(cap_drop=ALL), no added
    capability and C(no-new-privileges). They are B(always removed), whether the test passes or fails.
  - On failure the module fails with the reason, the checks done so far and the tail of the container log.
  - The environment is never printed. Values of secret-looking variables and every value of six
    characters or more are masked (C(********)) in messages and log lines, and are registered as no_log values.
  - The module changes nothing that outlives it, so it always reports C(changed=false). In check mode it
    does not run containers.
author:
  - Velocity platform team (@velocity)
options:
  image:
    description: Image reference or id to test.
    type: str
    required: true
  env_file:
    description:
      - An env file, read as Docker reads C(--env-file) - C(KEY=VALUE) lines, the value literal (quotes are part of it),
        comments and blank lines skipped - unless its first line says it is in the shell format that
        C(velocity.platform.vault_secrets) writes with C(env_file_format=shell) (quoted values, C(export) allowed).
        Its values are never logged.
      - Must provide the app's required C(SECRET_KEY) and C(DATABASE_URL) unless O(env) does.
    type: path
  env:
    description:
      - More environment variables; override O(env_file). Treated as secret like the file.
      - Values are strings or numbers; a list or a mapping fails the task, naming the variable (never its value).
      - With neither O(env_file) nor O(env) giving a variable the task fails before the engine is contacted,
        since the app cannot start without its configuration.
    type: dict
    default: {}
  network_mode:
    description:
      - The container runs on the Docker Engine's host, and the module probes it there from the controller, at the host
        of a C(tcp://) engine address (O(docker_host), E(DOCKER_HOST) or the Docker context), or at C(127.0.0.1) for a
        local unix socket or an C(ssh://) engine (for a remote C(ssh://) engine, forward the port to the controller or
        use its C(tcp://) address).
      - V(host) (default) lets the container reach services on the engine host's 127.0.0.1, such as the
        local PostgreSQL; Gunicorn is then bound to C(<engine host address>:<port>) only (C(127.0.0.1) for a
        local engine) and the health check follows it. On a remote engine the port is chosen free on the controller,
        so prefer V(bridge) there.
      - V(bridge) publishes the port on the engine host's address only (Docker picks a free port there); the
        database must be reachable from the bridge network.
    type: str
    choices: [host, bridge]
    default: host
  port:
    description: Port for Gunicorn with O(network_mode=host); V(0) picks a free one.
    type: int
    default: 0
  migrate:
    description: Run C(velocity-app migrate) first (the readiness probe needs the schema at head).
    type: bool
    default: false
  expect_ready:
    description: Require C(/readyz) to answer 200.
    type: bool
    default: true
  timeout:
    description: Seconds for the container to become healthy (and for the migration).
    type: int
    default: 120
  ready_timeout:
    description: Seconds to keep polling C(/readyz) until it answers 200.
    type: int
    default: 30
  health_interval:
    description: Interval, in seconds, of the Docker health check during the test.
    type: int
    default: 1
  read_only:
    description: Run with a read-only root filesystem and check that it is.
    type: bool
    default: true
  tmpfs_size:
    description: Size of the tmpfs mounted on C(/tmp).
    type: str
    default: 64m
  log_lines:
    description: How many lines of the container log to return.
    type: int
    default: 40
  allow_error_logs:
    description: Do not fail when the service logs error-level lines.
    type: bool
    default: false
extends_documentation_fragment:
  - velocity.platform.docker
  - velocity.platform.docker.attributes
attributes:
  diff_mode:
    description: Nothing to diff; the test leaves no state behind.
    support: none
seealso:
  - module: velocity.platform.image_build
"""

EXAMPLES = r"""
- name: Smoke-test the app image against the real database
  velocity.platform.container_smoke_test:
    image: velocity/app:0.1.0
    env_file: "{{ velocity_state_dir }}/secrets/app.env"
    migrate: true
  register: smoke

- name: Show what was checked (never the environment)
  ansible.builtin.debug:
    var: smoke.checks
"""

RETURN = r"""
checks:
  description: What was checked and the observed values.
  returned: success, and on failure (as far as the test got)
  type: dict
  sample:
    image_user: "10001:10001"
    migrate: ok
    docker_health: healthy
    healthz: 200
    readyz: 200
    uid: 10001
    capabilities: none
    read_only_rootfs: true
    tmp_writable: true
    error_log_lines: 0
logs_tail:
  description: Last O(log_lines) lines of the container log, secret values masked.
  returned: success, and on failure
  type: list
  elements: str
container_name:
  description: Name of the (removed) container.
  returned: success, and on failure
  type: str
duration_s:
  description: Seconds the test took.
  returned: success
  type: float
"""


from ansible_collections.velocity.platform.plugins.module_utils.common.names import env_name_problem
from ansible_collections.velocity.platform.plugins.module_utils.image.engine import (
    DockerModuleError,
    EngineSettings,
    connect,
    docker_module,
    reference_problem,
)
from ansible_collections.velocity.platform.plugins.module_utils.image.smoke import (
    SmokeRequest,
    parse_env_file,
    run_smoke_test,
    sensitive_values,
)


def main() -> None:
    module = docker_module(
        dict(
            image=dict(type="str", required=True),
            env_file=dict(type="path"),
            env=dict(type="dict", default={}, no_log=True),
            network_mode=dict(type="str", choices=["host", "bridge"], default="host"),
            port=dict(type="int", default=0),
            migrate=dict(type="bool", default=False),
            expect_ready=dict(type="bool", default=True),
            timeout=dict(type="int", default=120),
            ready_timeout=dict(type="int", default=30),
            health_interval=dict(type="int", default=1),
            read_only=dict(type="bool", default=True),
            tmpfs_size=dict(type="str", default="64m"),
            log_lines=dict(type="int", default=40),
            allow_error_logs=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    p = module.params
    # Bad input fails here, before the engine is contacted. Messages name keys and lines, never values.
    problem = reference_problem(p["image"])
    if problem:
        module.fail_json(msg=f"image {p['image']!r} is not a valid image reference ({problem}): give name:tag (e.g. "
                             "velocity/app:0.1.0) or an image id to test")
    for field in ("timeout", "ready_timeout", "health_interval"):
        if p[field] <= 0:
            module.fail_json(msg=f"{field} must be a positive number of seconds, not {p[field]}")
    if not 0 <= p["port"] <= 65535:
        module.fail_json(msg=f"port must be between 0 (pick a free one) and 65535, not {p['port']}")
    try:
        env = parse_env_file(p["env_file"]) if p["env_file"] else {}
    except DockerModuleError as exc:
        module.fail_json(msg=str(exc))
    for key, value in p["env"].items():
        problem = env_name_problem(key, "env")
        if problem:
            module.fail_json(msg=problem)
        if value is not None and not isinstance(value, (str, int, float, bool)):
            module.fail_json(msg=f"env.{key} must be a string or a number, not {type(value).__name__}")
        env[key] = "" if value is None else str(value)
    if not env:
        env_file = "empty" if p["env_file"] else "not set"
        module.fail_json(msg=f"no environment for the app: env_file is {env_file} and env is empty; give env_file (the "
                             "secrets stage's env file) or env with at least SECRET_KEY and DATABASE_URL")
    # Ansible masks these wherever they would appear in the result.
    module.no_log_values.update(sensitive_values(env))
    if module.check_mode:
        module.exit_json(changed=False, checks={}, logs_tail=[], container_name="",
                         msg="check mode: no container started")
    try:
        settings = EngineSettings.from_params(p)
    except DockerModuleError as exc:
        module.fail_json(msg=str(exc))
    request = SmokeRequest(
        engine_host=settings.probe_host, image=p["image"], env=env, network_mode=p["network_mode"], port=p["port"], migrate=p["migrate"],
        expect_ready=p["expect_ready"], timeout=p["timeout"], ready_timeout=p["ready_timeout"],
        health_interval=p["health_interval"], read_only=p["read_only"], tmpfs_size=p["tmpfs_size"],
        log_lines=p["log_lines"], allow_error_logs=p["allow_error_logs"],
    )
    try:
        client = connect(settings)
        result = run_smoke_test(client, request)
    except DockerModuleError as exc:
        module.fail_json(msg=str(exc), **exc.details)
    module.exit_json(changed=False, checks=result.checks, logs_tail=result.logs_tail,
                     container_name=result.container_name, duration_s=result.duration_s)


if __name__ == "__main__":
    main()
