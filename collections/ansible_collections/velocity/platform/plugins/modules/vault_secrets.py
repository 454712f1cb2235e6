#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Velocity platform team
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
---
module: vault_secrets
short_description: Read Vault KV secrets (and dynamic database credentials) into an env file and a Kubernetes Secret
version_added: 0.1.0
description:
  - >-
    Reads many KV secrets in one task and turns them into environment variables, given a mapping
    C({ENV_NAME: 'path#key'}) or C({ENV_NAME: 'path#key@version'}) (path relative to O(kv_mount)).
  - Logs in B(once) per task, keeps B(one) HTTP session and reads each distinct path once. The reads are sent
    back to back on the login's connection (HTTP/1.1 pipelining, O(pipelining)), so N reads cost one round trip;
    with pipelining off they run in parallel (O(max_workers)). Transient failures are retried with backoff.
  - Optionally issues (or reuses, while still valid) dynamic database credentials and assembles them into
    one variable, for example C(DATABASE_URL), see O(database).
  - B(Values stay out of Ansible's output.) The module writes them itself to O(env_file) (mode 0600,
    atomically, through a temp file, fsync and rename) and to O(k8s_secret_file) (a Kubernetes Secret manifest,
    mode 0600), and returns only the variable names, the paths and a checksum. Every value read is also
    registered as a no_log value, so it is masked if it ever appears in a message.
  - >-
    Set O(return_values=true) to get the values back (RV(env) and RV(k8s_secret) in the result), for
    example to hand them to the next role as facts. Put C(no_log: true) on such a task.
  - Reports C(changed) only when a file's content or mode changes, or when new database credentials were issued.
author:
  - Velocity platform team (@velocity)
extends_documentation_fragment:
  - velocity.platform.vault
  - velocity.platform.vault.attributes
options:
  secrets:
    description:
      - Mapping of environment variable name to a KV reference C(path#key), optionally C(@version) to pin a KV v2 version.
      - A missing path or key fails the task, naming the variable, the path and the keys that exist (names only).
      - The path and the key hold no whitespace, C(#) or C(@), and no empty, C(.) or C(..) path segment. A malformed
        reference, an invalid variable name, or an empty mapping without O(database), fails the task before Vault
        is contacted.
    type: dict
    default: {}
  kv_mount:
    description: Mount path of the KV secrets engine.
    type: str
    default: secret
  kv_version:
    description:
      - KV engine version the mount is expected to be. A mismatch fails with a message saying which version the mount is.
    type: int
    choices: [1, 2]
    default: 2
  max_workers:
    description:
      - Distinct paths read in parallel, over the same session and token, when the reads are not pipelined
        (O(pipelining=false), or a proxy between this host and Vault).
      - The connections these reads need (up to this many, the login's included) are opened while the login is in
        flight, so the reads start on open connections; set 1 for one connection and sequential reads.
    type: int
    default: 8
  pipelining:
    description:
      - Send the KV reads back to back on one connection, usually the login's, without waiting for each answer
        (HTTP/1.1 pipelining); Vault answers them in order. All reads then cost one round trip and no TLS
        handshake beyond the login's.
      - A read answered with anything but 200 or 404, or left unanswered because the connection closed, is sent
        again the ordinary way (with retries, and an error that names the path), so a server or load balancer that
        closes a pipelined connection costs one extra round trip, not a failure.
      - Set V(false) when something between this host and Vault holds pipelined requests without answering (the
        task would then wait for O(timeout) before it reads again); the reads then run in parallel
        (O(max_workers)). Not used through an HTTP proxy.
    type: bool
    default: true
  database:
    description:
      - Dynamic database credentials to add as one variable.
    type: dict
    suboptions:
      role:
        description: Database secrets engine role, for example V(velocity-app).
        type: str
        required: true
      mount:
        description: Mount of the database secrets engine.
        type: str
        default: database
      env:
        description: Variable that receives the rendered O(database.url_template).
        type: str
        default: DATABASE_URL
      url_template:
        description:
          - Template with C({username}) and C({password}) (URL-encoded when filled), for example
            V(postgresql://{username}:{password}@db.example.com:5432/velocity).
        type: str
        required: true
      lease_state_file:
        description:
          - File (0600) that remembers the lease so that a later run reuses it. Without it, every run issues new credentials.
          - It holds the password; the same rule as for O(env_file) applies (not inside a Git working tree unless ignored).
        type: path
      min_ttl:
        description:
          - Reuse the remembered lease only if it has at least this many seconds left (a renewable lease is
            renewed first); otherwise issue a new one and revoke the old one.
        type: int
        default: 600
      reuse:
        description: Reuse a still-valid remembered lease.
        type: bool
        default: true
      lease_state_kv:
        description:
          - Shared record of the lease in Vault KV version 2 (lease id, role, expiry, the issuing token's accessor;
            never the password or a token), written when it changes, so that a job elsewhere (C(playbooks/renew.yml)
            on a schedule, an AWX job) renews or revokes it with M(velocity.platform.vault_db_credentials).
        type: dict
        suboptions:
          mount:
            description: KV version 2 mount.
            type: str
            default: secret
          path:
            description: Path of the record, for example V(velocity/leases/app).
            type: str
            required: true
      issuer_token_role:
        description:
          - Token role whose orphan token reads new credentials, so the lease outlives the login token (see
            M(velocity.platform.vault_db_credentials) O(velocity.platform.vault_db_credentials#module:issuer_token_role)).
        type: str
  env_file:
    description:
      - File to write the variables to (mode 0600, atomic). Nothing is written when unset.
      - Must not be inside a Git working tree (a directory with C(.git) at or above it), where a secret can be
        committed, unless C(git check-ignore) says the path is ignored. Otherwise the task fails before contacting
        Vault and writes nothing; without git on the host such a path is refused. Write it outside the tree, for
        example under C(/run/velocity/), or add it to the tree's C(.gitignore).
    type: path
  env_file_format:
    description:
      - V(docker) writes C(NAME=value) lines; the value is everything after the first C(=), quotes included, as
        C(docker run --env-file), Compose and the smoke test read it. A value with a line break is refused.
      - V(shell) quotes values for C(set -a; . file) (any value).
      - The file's first line names the format, so that C(velocity.platform.container_smoke_test) reads it the same way.
    type: str
    choices: [docker, shell]
    default: docker
  k8s_secret_name:
    description:
      - Name of the Kubernetes Secret; with O(k8s_secret_file) the manifest is written there.
      - A DNS-1123 subdomain (at most 253 lowercase letters, digits, C(-) and C(.)), checked before Vault is contacted.
    type: str
  k8s_namespace:
    description:
      - Namespace of the Kubernetes Secret.
      - A DNS-1123 label (at most 63 lowercase letters, digits and C(-)), checked before Vault is contacted.
    type: str
  k8s_labels:
    description: Extra labels of the Kubernetes Secret. Values are strings (numbers and booleans are turned into strings).
    type: dict
    default: {}
  k8s_annotations:
    description:
      - Extra annotations of the Kubernetes Secret, for example C(argocd.argoproj.io/sync-wave) so that
        the Secret is applied before the workloads that read it. Never put a secret value here.
      - Values are strings (numbers and booleans are turned into strings; a list or a mapping is refused).
    type: dict
    default: {}
  k8s_secret_file:
    description:
      - File (mode 0600, atomic) that receives the Secret manifest (JSON, which is also YAML).
      - The same rule as for O(env_file) applies (not inside a Git working tree unless ignored).
    type: path
  return_values:
    description:
      - Return the values (RV(env)) and the Secret manifest (RV(k8s_secret)) in the result. Use with C(no_log) on the task.
    type: bool
    default: false
seealso:
  - module: velocity.platform.vault_db_credentials
  - name: Secrets management plan
    description: Vault paths, policies, auth roles and the renewal/rotation runbook.
    link: https://example.invalid/velocity/platform/blob/main/artifacts/security/secrets-management-plan.md
"""

EXAMPLES = r"""
- name: Write the app's env file and Secret manifest from Vault (AppRole)
  velocity.platform.vault_secrets:
    url: https://vault.example.com:8200
    auth_method: approle
    role_id: "{{ vault_role_id }}"
    secret_id: "{{ vault_secret_id }}"
    secrets:
      SECRET_KEY: velocity/app#secret_key
      SENTRY_DSN: velocity/app#sentry_dsn@3
    database:
      role: velocity-app
      url_template: postgresql://{username}:{password}@db.example.com:5432/velocity
      lease_state_file: /var/lib/velocity/secrets/db-lease.json
    env_file: /var/lib/velocity/secrets/app.env
    k8s_secret_name: velocity-app-env
    k8s_namespace: velocity
    k8s_secret_file: /var/lib/velocity/secrets/app-secret.json
  register: app_secrets

- name: Values for the next role (hidden)
  velocity.platform.vault_secrets:
    secrets:
      SECRET_KEY: velocity/app#secret_key
    return_values: true
  no_log: true
  register: app_env
"""

RETURN = r"""
env_names:
  description: Variable names delivered, sorted.
  returned: always
  type: list
  elements: str
  sample: [DATABASE_URL, SECRET_KEY]
checksum:
  description: sha256 over all names and values; changes exactly when a value changes (for a pod annotation).
  returned: always
  type: str
  sample: sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
env_file:
  description: Path of the env file, when O(env_file) is set.
  returned: when env_file is set
  type: str
k8s_secret_file:
  description: Path of the Secret manifest, when O(k8s_secret_file) is set.
  returned: when k8s_secret_file is set
  type: str
versions:
  description: KV v2 version read for each path (C(path) or C(path@version)).
  returned: always
  type: dict
  sample: {"velocity/app": {"version": 2}}
database:
  description: The database lease without the password (lease_id, lease_duration, renewable, username, expires_at), and how it was obtained.
  returned: when database is set
  type: dict
  sample: {"how": "reused", "lease_id": "database/creds/velocity-app/AbC", "lease_duration": 3300, "username": "v-approle-velocity-x"}
stats:
  description: Logins and HTTP requests made by the task, and its duration.
  returned: always
  type: dict
  sample: {"logins": 1, "requests": 4, "elapsed_ms": 38}
env:
  description: The values. Only with O(return_values=true).
  returned: when return_values is true
  type: dict
k8s_secret:
  description: The Secret manifest (base64 data). Only with O(return_values=true) and O(k8s_secret_name).
  returned: when return_values is true and k8s_secret_name is set
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule, _load_params

from ansible_collections.velocity.platform.plugins.module_utils.vault.module import (
    raw_argument_spec,
    raw_type_problem,
    require_libraries,
)
from ansible_collections.velocity.platform.plugins.module_utils.vault.tasks import (
    SECRETS_ARGUMENT_SPEC,
    SECRETS_REQUIRED_BY,
    run_secrets,
)


def main():
    # Arguments ansible-core would mangle (or read while leaving the token unmasked) are refused first.
    problem = raw_type_problem(SECRETS_ARGUMENT_SPEC, _load_params())
    if problem:
        module = AnsibleModule(argument_spec=raw_argument_spec(SECRETS_ARGUMENT_SPEC), supports_check_mode=True)
        module.fail_json(msg=problem, exception="")
    module = AnsibleModule(argument_spec=SECRETS_ARGUMENT_SPEC, required_by=SECRETS_REQUIRED_BY,
                           supports_check_mode=True)
    require_libraries(module)
    result, hidden = run_secrets(module.params, module.check_mode, module._diff)
    module.no_log_values.update(hidden)
    if result.get("failed"):
        # exception="": an expected failure explains itself in msg; no traceback even at -vvv.
        module.fail_json(exception="", **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
