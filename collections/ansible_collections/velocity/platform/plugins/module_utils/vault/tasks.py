# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Velocity platform team
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What one vault_secrets task does, independent of where it runs.

The module (on any host) and the action plugin (in-process on the controller,
for local connections) both call :func:`run_secrets` with validated
parameters. It returns ``(result, hidden)``: the task result, which carries
no value unless ``return_values`` is set, and the set of values the caller
must register as no_log values.
"""
from __future__ import annotations

import time

from ansible_collections.velocity.platform.plugins.module_utils.common.files import atomic_write, needs_write
from ansible_collections.velocity.platform.plugins.module_utils.common.paths import PathRefused, check_secret_file
from ansible_collections.velocity.platform.plugins.module_utils.vault import client as vault_client
from ansible_collections.velocity.platform.plugins.module_utils.vault import db as vault_db
from ansible_collections.velocity.platform.plugins.module_utils.vault import kv as vault_kv
from ansible_collections.velocity.platform.plugins.module_utils.vault import output as vault_output
from ansible_collections.velocity.platform.plugins.module_utils.vault.auth import connect
from ansible_collections.velocity.platform.plugins.module_utils.vault.module import vault_argument_spec

SECRETS_ARGUMENT_SPEC = vault_argument_spec(
    # References (path#key), not values: nothing to hide.
    secrets=dict(type="dict", default={}, no_log=False),
    kv_mount=dict(type="str", default="secret"),
    kv_version=dict(type="int", default=2, choices=[1, 2]),
    max_workers=dict(type="int", default=8),
    pipelining=dict(type="bool", default=True),
    database=dict(type="dict", options=dict(
        role=dict(type="str", required=True),
        mount=dict(type="str", default="database"),
        env=dict(type="str", default="DATABASE_URL"),
        url_template=dict(type="str", required=True),
        lease_state_file=dict(type="path"),
        min_ttl=dict(type="int", default=600),
        reuse=dict(type="bool", default=True),
        lease_state_kv=dict(type="dict", options=dict(mount=dict(type="str", default="secret"),
                                                      path=dict(type="str", required=True))),
        issuer_token_role=dict(type="str", no_log=False),
    )),
    env_file=dict(type="path"),
    env_file_format=dict(type="str", default="docker", choices=["docker", "shell"]),
    k8s_secret_name=dict(type="str"),
    k8s_namespace=dict(type="str"),
    k8s_labels=dict(type="dict", default={}),
    k8s_annotations=dict(type="dict", default={}),
    k8s_secret_file=dict(type="path"),
    return_values=dict(type="bool", default=False),
)
SECRETS_REQUIRED_BY = {"k8s_secret_file": "k8s_secret_name"}


def validate(params: dict) -> list:
    """Every check that needs no server, before any connection: returns the parsed references.

    Bad input fails here, naming the option, so that nothing is read, issued or written.
    """
    if not params["secrets"] and not params["database"]:
        raise vault_client.VaultConfigError(
            "secrets is empty and database is not set: give secrets (ENV_NAME: 'path#key') and/or database")
    refs = vault_kv.parse_refs(params["secrets"]) if params["secrets"] else []
    db = params["database"]
    if db:
        vault_db.check_role("database.role", db["role"])
        vault_db.check_url_template("database.url_template", db["url_template"])
        if not isinstance(db["env"], str) or not vault_kv.ENV_NAME.match(db["env"]):
            raise vault_client.VaultConfigError(
                f"database.env {db['env']!r} is not a valid environment variable name (letters, digits, underscore; "
                "no leading digit), e.g. DATABASE_URL")
        if db["env"] in (params["secrets"] or {}):
            raise vault_client.VaultConfigError(
                f"database.env {db['env']} is also a key of secrets; use one or the other")
        if db.get("lease_state_kv") is not None:
            vault_db.check_kv_record("database.lease_state_kv", db["lease_state_kv"])
        vault_db.check_token_role("database.issuer_token_role", db.get("issuer_token_role"))
        if db["min_ttl"] < 0:
            raise vault_client.VaultConfigError(f"database.min_ttl must be 0 or more seconds, not {db['min_ttl']}")
    if params["max_workers"] < 1:
        raise vault_client.VaultConfigError(f"max_workers must be 1 or more, not {params['max_workers']}")
    if params["k8s_secret_file"] and not params["k8s_secret_name"]:
        raise vault_client.VaultConfigError(
            "k8s_secret_name is empty but k8s_secret_file is set: name the Secret (e.g. velocity-app-env) or drop "
            "k8s_secret_file")
    if params["k8s_secret_name"]:
        vault_output.check_secret_meta(params["k8s_secret_name"], params["k8s_namespace"], params["k8s_labels"],
                                       params.get("k8s_annotations"))
    try:
        for field, path in (("env_file", params["env_file"]), ("k8s_secret_file", params["k8s_secret_file"]),
                            ("database.lease_state_file", (db or {}).get("lease_state_file"))):
            if path:
                check_secret_file(field, path)
    except PathRefused as exc:
        raise vault_client.VaultConfigError(str(exc)) from None
    return refs


def run_secrets(params: dict, check_mode: bool = False, diff: bool = False) -> "tuple[dict, set]":
    hidden: set = set()
    started = time.monotonic()
    result: dict = dict(changed=False)
    client = None
    try:
        refs = validate(params)
        # The KV reads go back to back on the login's connection (pipelining) or run in parallel, one per
        # distinct path, on connections opened during the login.
        client = connect(params, connections=vault_kv.parallel_reads(refs, params["max_workers"],
                                                                     params["pipelining"]))
        values, versions = {}, {}
        if refs:
            values, versions = vault_kv.read_secrets(client, refs, params["kv_mount"], params["kv_version"],
                                                     params["max_workers"], params["pipelining"])
        result["versions"] = versions
        pending_db = False
        if params["database"]:
            db = params["database"]
            lease, issued, how = vault_db.ensure(client, db["mount"], db["role"], db["lease_state_file"],
                                                 db["min_ttl"], db["reuse"], check_mode,
                                                 db.get("issuer_token_role"))
            result["changed"] = issued
            if db.get("lease_state_kv") and lease is not None and not check_mode:
                # The shared record (no password) lets a job elsewhere renew or revoke this lease.
                where = vault_db.check_kv_record("database.lease_state_kv", db["lease_state_kv"])
                if vault_db.save_record(client, where, lease):
                    result["changed"] = True
            if lease is None:
                pending_db = True
                result["database"] = {"how": "would issue"}
            else:
                hidden.add(lease.password)
                values[db["env"]] = vault_db.render_url(db["url_template"], lease)
                result["database"] = dict(lease.public(), how=how)
        if not params["return_values"]:
            hidden.update(v for v in values.values() if v)
        result["env_names"] = sorted(values)
        result["checksum"] = vault_output.checksum(values)
        diffs = []
        if params["env_file"]:
            result["env_file"] = params["env_file"]
            if pending_db:
                result["changed"] = True
            else:
                content = vault_output.render_env(values, params["env_file_format"])
                if needs_write(params["env_file"], content):
                    diffs.append(vault_output.names_diff(params["env_file"], values))
                    result["changed"] = True
                    if not check_mode:
                        atomic_write(params["env_file"], content, 0o600)
        manifest = None
        if params["k8s_secret_name"]:
            manifest = vault_output.secret_manifest(values, params["k8s_secret_name"], params["k8s_namespace"],
                                                    params["k8s_labels"], params.get("k8s_annotations"))
            if params["k8s_secret_file"]:
                result["k8s_secret_file"] = params["k8s_secret_file"]
                content = vault_output.render_manifest(manifest)
                if pending_db or needs_write(params["k8s_secret_file"], content):
                    result["changed"] = True
                    if not check_mode and not pending_db:
                        atomic_write(params["k8s_secret_file"], content, 0o600)
        if params["return_values"]:
            result["env"] = values
            if manifest is not None:
                result["k8s_secret"] = manifest
        if diff and diffs:
            result["diff"] = diffs[0]
        result["stats"] = dict(logins=client.login_count, requests=client.request_count,
                               elapsed_ms=int((time.monotonic() - started) * 1000))
    except vault_client.VaultError as exc:
        # Every read happens before the first write, so a Vault error leaves the outputs as they were.
        untouched = [params[name] for name in ("env_file", "k8s_secret_file") if params.get(name)]
        left_as = "they were" if len(untouched) > 1 else "it was"
        note = f" Not written: {' and '.join(untouched)} left as {left_as}." if untouched else ""
        result.update(failed=True, msg=str(exc) + note, error=type(exc).__name__)
    except OSError as exc:
        what = exc.filename or "the output file"
        result.update(failed=True, error="OSError",
                      msg=f"cannot write {what}: {exc.strerror} (check the directory exists and is writable)")
    finally:
        if client is not None:
            client.close()
    return result, hidden
