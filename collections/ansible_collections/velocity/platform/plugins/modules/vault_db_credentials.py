#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Velocity platform team
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
---
module: vault_db_credentials
short_description: Issue, reuse, renew and revoke Vault dynamic database credentials
version_added: 0.1.0
description:
  - Manages the lease of dynamic database credentials from Vault's database secrets engine.
  - O(state=present) issues credentials for O(role), or B(reuses) the lease remembered in O(lease_state_file)
    while Vault still knows it with at least O(min_ttl) seconds left (a renewable lease that is too short
    is renewed first). A replaced lease is revoked. Reuse reports C(changed=false).
  - O(state=renewed) renews the lease (from O(lease_id), O(lease_state_file) or O(lease_state_kv)); with
    O(renew_below) only when it has fewer seconds left than that, so a scheduled run is idempotent.
  - O(state=absent) revokes the lease (from O(lease_id), O(lease_state_file) or O(lease_state_kv)) and removes
    the state file and the shared record;
    with O(revoke_prefix) it revokes every lease under that prefix (needs C(sudo) on
    C(sys/leases/revoke-prefix), an operator token, not the app's). Nothing to revoke reports C(changed=false).
  - The password is returned only with O(return_values=true); otherwise the result has the lease and the
    username. The state file is written atomically with mode 0600 and holds the credentials.
  - In check mode nothing is issued, renewed or revoked; C(changed) says what would happen.
  - O(lease_state_kv) keeps a B(shared) record of the lease in Vault KV version 2 (lease id, role, mount,
    username, expiry, the issuing token's accessor; never the password or a token), so that another job on
    another machine or execution environment can renew or revoke it. A lease id alone cannot read the
    credentials; renewing needs a token whose policy allows C(sys/leases/renew).
  - A dynamic lease is revoked when the token that read it ends. With O(issuer_token_role) the credentials are
    read with an orphan token created from that token role (C(auth/token/create/<role>)) and then dropped, so the
    lease outlives the task's login token and a scheduled renewal keeps it alive up to the database role's max
    TTL (or the token role's C(token_explicit_max_ttl), whichever is shorter).
  - Bad input (a wrong type, an empty or malformed O(role) or O(issuer_token_role), a negative TTL, a
    O(lease_state_file) inside a Git working tree, a O(lease_state_kv) without a path) fails the task, naming the
    option, before Vault is contacted.
author:
  - Velocity platform team (@velocity)
extends_documentation_fragment:
  - velocity.platform.vault
  - velocity.platform.vault.attributes
options:
  state:
    description: What to do with the lease.
    type: str
    choices: [present, renewed, absent]
    default: present
  mount:
    description: Mount of the database secrets engine.
    type: str
    default: database
  role:
    description:
      - Database role whose credentials are issued. Required with O(state=present).
      - The role name only (no C(/), no whitespace); the engine's mount goes in O(mount).
    type: str
  lease_state_file:
    description:
      - File (0600) remembering the current lease, for reuse, renewal and revocation.
      - It holds the password, so with O(state=present) or O(state=renewed) it must not be inside a Git working
        tree (a directory with C(.git) at or above it) unless C(git check-ignore) says the path is ignored;
        otherwise the task fails before contacting Vault. Without git on the host such a path is refused.
    type: path
  lease_state_kv:
    description:
      - Shared lease record in Vault KV version 2, read and written with the task's token (the bootstrap's
        C(velocity-app) policy allows C(secret/data/velocity/leases/*)).
      - O(state=present) writes the current lease there (only when it changed). Without a O(lease_state_file)
        holding its password, a recorded lease cannot be reused; a new one is issued and the recorded one is
        B(not) revoked (running pods may still use it); the scheduled renewal no longer renews it, so it ends at
        its TTL.
      - O(state=renewed) and O(state=absent) act on the recorded lease when O(lease_id) and O(lease_state_file)
        give none; O(state=absent) deletes the record.
    type: dict
    suboptions:
      mount:
        description: KV version 2 mount.
        type: str
        default: secret
      path:
        description: Path of the record under the mount, for example V(velocity/leases/app).
        type: str
        required: true
  issuer_token_role:
    description:
      - Token role (C(auth/token/roles/<name>), orphan) used to create the token that reads new credentials, so
        the lease does not die with the login token. Set up by C(scripts/vault-bootstrap.py) as
        V(velocity-db-lease). Without it the lease lives at most as long as the login token.
    type: str
  renew_below:
    description:
      - With O(state=renewed), renew only when the lease has fewer than this many seconds left; otherwise report
        C(changed=false) and RV(how=current). Without it every run renews.
    type: int
  lease_id:
    description: Lease to renew or revoke, instead of the one in O(lease_state_file) or O(lease_state_kv).
    type: str
  revoke_prefix:
    description: With O(state=absent), revoke every lease under this prefix, for example V(database/creds/velocity-app).
    type: str
  min_ttl:
    description: Seconds a remembered lease must still have to be reused.
    type: int
    default: 600
  reuse:
    description: Reuse a still-valid remembered lease with O(state=present).
    type: bool
    default: true
  increment:
    description: Requested TTL extension in seconds for O(state=renewed) (Vault caps it at the role's max TTL).
    type: int
  return_values:
    description: Return the password (and the username) in RV(credentials). Use with C(no_log) on the task.
    type: bool
    default: false
seealso:
  - module: velocity.platform.vault_secrets
"""

EXAMPLES = r"""
- name: Credentials for the migration job, reused while valid
  velocity.platform.vault_db_credentials:
    role: velocity-app
    lease_state_file: /var/lib/velocity/secrets/db-lease.json
    return_values: true
  no_log: true
  register: db

- name: Renew the current lease
  velocity.platform.vault_db_credentials:
    state: renewed
    lease_state_file: /var/lib/velocity/secrets/db-lease.json

- name: Revoke it (the database user is dropped)
  velocity.platform.vault_db_credentials:
    state: absent
    lease_state_file: /var/lib/velocity/secrets/db-lease.json

- name: Issue with an orphan issuer token and record the lease in Vault for other jobs
  velocity.platform.vault_db_credentials:
    role: velocity-app
    issuer_token_role: velocity-db-lease
    lease_state_kv: {path: velocity/leases/app}
    return_values: true
  no_log: true
  register: db

- name: Scheduled renewal from any job (playbooks/renew.yml)
  velocity.platform.vault_db_credentials:
    state: renewed
    lease_state_kv: {path: velocity/leases/app}
    renew_below: 1800

- name: Leaked credentials - revoke every lease of the role (operator token)
  velocity.platform.vault_db_credentials:
    state: absent
    revoke_prefix: database/creds/velocity-app
    token_file: ~/.vault-token
"""

RETURN = r"""
lease:
  description: The lease, without the password.
  returned: when a lease exists after the task
  type: dict
  sample: {"lease_id": "database/creds/velocity-app/AbC", "lease_duration": 3600, "renewable": true, "username": "v-token-velocity-x", "expires_at": 1767225600}
how:
  description: V(issued), V(reused), V(renewed), V(current) (renew_below not reached), V(revoked) or V(none).
  returned: always
  type: str
revoked:
  description: Number of leases revoked.
  returned: with state=absent
  type: int
credentials:
  description: C(username) and C(password). Only with O(return_values=true).
  returned: when return_values is true and a lease exists
  type: dict
record:
  description: Whether the shared lease record (O(lease_state_kv)) was V(written), V(deleted) or left V(unchanged).
  returned: when lease_state_kv is set
  type: str
"""

import time

from ansible.module_utils.basic import AnsibleModule, _load_params

from ansible_collections.velocity.platform.plugins.module_utils.common.paths import PathRefused, check_secret_file
from ansible_collections.velocity.platform.plugins.module_utils.vault import client as vault_client
from ansible_collections.velocity.platform.plugins.module_utils.vault import db as vault_db
from ansible_collections.velocity.platform.plugins.module_utils.vault.auth import connect
from ansible_collections.velocity.platform.plugins.module_utils.vault.module import (
    fail,
    raw_argument_spec,
    raw_type_problem,
    require_libraries,
    vault_argument_spec,
)


def validate(p):
    """Every check that needs no server: bad input fails here, before anything is issued or written."""
    if p["state"] == "present":
        vault_db.check_role("role", p["role"])
    if not isinstance(p["mount"], str) or not p["mount"].strip("/ "):
        raise vault_client.VaultConfigError("mount is empty: give the database secrets engine's mount, e.g. database")
    if p["state"] == "renewed" and not (p["lease_id"] or p["lease_state_file"] or p["lease_state_kv"]):
        raise vault_client.VaultConfigError("state=renewed needs lease_id, a lease_state_file or a lease_state_kv "
                                            "that holds a lease")
    if p["lease_state_kv"] is not None:
        vault_db.check_kv_record("lease_state_kv", p["lease_state_kv"])
    vault_db.check_token_role("issuer_token_role", p["issuer_token_role"])
    for field in ("min_ttl", "increment", "renew_below"):
        if p[field] is not None and p[field] < 0:
            raise vault_client.VaultConfigError(f"{field} must be 0 or more seconds, not {p[field]}")
    if p["lease_state_file"] and p["state"] != "absent":
        # The state file holds the password; state=absent only reads and removes it.
        try:
            check_secret_file("lease_state_file", p["lease_state_file"])
        except PathRefused as exc:
            raise vault_client.VaultConfigError(str(exc)) from None


def _where(p):
    return vault_db.check_kv_record("lease_state_kv", p["lease_state_kv"]) if p["lease_state_kv"] else None


def _record_note(where) -> str:
    if not where:
        return ""
    mount, path = where
    return f"{mount}/{path}"


def _present(module, client, p, result):
    where = _where(p)
    lease, changed, how = vault_db.ensure(client, p["mount"], p["role"], p["lease_state_file"], p["min_ttl"],
                                          p["reuse"], module.check_mode, p["issuer_token_role"])
    if where:
        if module.check_mode:
            recorded = vault_db.load_record(client, where)
            result["record"] = "written" if changed or recorded is None else "unchanged"
            changed = changed or recorded is None
        else:
            written = vault_db.save_record(client, where, lease)
            result["record"] = "written" if written else "unchanged"
            changed = changed or written
    result.update(changed=changed, how=how if lease else "would issue")
    return lease


def _find(client, p, where):
    """(lease, lease_id, recorded): the lease to act on, from lease_id, the state file, then the shared record."""
    lease = vault_db.load_state(p["lease_state_file"])
    recorded = vault_db.load_record(client, where)
    if lease is None and recorded is not None and (not p["lease_id"] or p["lease_id"] == recorded.lease_id):
        lease = recorded
    lease_id = p["lease_id"] or (lease.lease_id if lease else None)
    return lease, lease_id, recorded


def _renewed(module, client, p, result):
    where = _where(p)
    lease, lease_id, recorded = _find(client, p, where)
    if not lease_id:
        holders = " / ".join(x for x in (p["lease_state_file"], _record_note(where)) if x)
        module.fail_json(msg=f"no lease to renew: lease_id is not set and {holders} holds none; issue credentials with "
                             "state=present (the secrets stage) first", how="none")
    info = vault_db.lookup(client, lease_id)
    if info is None:
        module.fail_json(msg=f"lease {lease_id} is unknown to Vault (expired or revoked): issue new credentials with "
                             "state=present (re-run the secrets stage and deploy)", how="none")
    if lease is None or lease.lease_id != lease_id:
        lease = vault_db.Lease(lease_id=lease_id, lease_duration=0, renewable=True, issued_at=0)
    ttl = int(info.get("ttl") or 0)
    if p["renew_below"] is not None and ttl >= p["renew_below"]:
        lease.lease_duration, lease.issued_at = ttl, time.time()
        result.update(changed=False, how="current")
        return lease
    result.update(changed=True, how="renewed")
    if module.check_mode:
        return lease
    lease = vault_db.renew(client, lease, p["increment"])
    if p["lease_state_file"] and lease.username:
        vault_db.save_state(p["lease_state_file"], lease)
    if where and recorded is not None and recorded.lease_id == lease_id:
        result["record"] = "written" if vault_db.save_record(client, where, lease, slack=0) else "unchanged"
    return lease


def _absent(module, client, p, result):
    if p["revoke_prefix"]:
        count = vault_db.revoke_prefix(client, p["revoke_prefix"], module.check_mode)
        removed = False
        where = _where(p)
        if not module.check_mode:
            removed = vault_db.remove_state(p["lease_state_file"])
            if vault_db.remove_record(client, where):
                removed = True
                result["record"] = "deleted"
        result.update(changed=bool(count) or removed, revoked=count, how="revoked" if count else "none")
        return None
    where = _where(p)
    dummy, lease_id, recorded = _find(client, p, where)
    known = bool(lease_id) and vault_db.lookup(client, lease_id) is not None
    has_state = bool(p["lease_state_file"]) and vault_db.load_state(p["lease_state_file"]) is not None
    # The record goes with the lease it names (a lease_id given for another lease leaves it alone).
    has_record = recorded is not None and recorded.lease_id == lease_id
    if module.check_mode:
        result.update(changed=known or has_state or has_record, revoked=int(known),
                      how="revoked" if known else "none")
        return None
    revoked = vault_db.revoke(client, lease_id) if known else False
    removed = vault_db.remove_state(p["lease_state_file"]) if has_state else False
    if has_record and vault_db.remove_record(client, where):
        removed = True
        result["record"] = "deleted"
    result.update(changed=revoked or removed, revoked=int(revoked), how="revoked" if revoked else "none")
    return None


def main():
    spec = vault_argument_spec(
        state=dict(type="str", default="present", choices=["present", "renewed", "absent"]),
        mount=dict(type="str", default="database"),
        role=dict(type="str"),
        lease_state_file=dict(type="path"),
        lease_id=dict(type="str"),
        lease_state_kv=dict(type="dict", options=dict(mount=dict(type="str", default="secret"),
                                                      path=dict(type="str", required=True))),
        issuer_token_role=dict(type="str", no_log=False),
        renew_below=dict(type="int"),
        revoke_prefix=dict(type="str"),
        min_ttl=dict(type="int", default=600),
        reuse=dict(type="bool", default=True),
        increment=dict(type="int"),
        return_values=dict(type="bool", default=False),
    )
    # A list given for the token or the role would be turned into its text and sent to Vault: refuse it first.
    problem = raw_type_problem(spec, _load_params())
    if problem:
        module = AnsibleModule(argument_spec=raw_argument_spec(spec), supports_check_mode=True)
        module.fail_json(msg=problem, exception="")
    module = AnsibleModule(
        argument_spec=spec,
        required_if=[("state", "present", ["role"])],
        supports_check_mode=True,
    )
    require_libraries(module)
    p = module.params
    result = dict(changed=False, how="none")
    client = None
    try:
        validate(p)
        client = connect(p)
        handler = {"present": _present, "renewed": _renewed, "absent": _absent}[p["state"]]
        lease = handler(module, client, p, result)
        if lease is not None:
            if lease.password:
                if p["return_values"]:
                    result["credentials"] = {"username": lease.username, "password": lease.password}
                else:
                    module.no_log_values.add(lease.password)
            result["lease"] = lease.public()
    except vault_client.VaultError as exc:
        fail(module, exc, **result)
    except OSError as exc:
        module.fail_json(msg=f"cannot write lease_state_file {p['lease_state_file']}: {exc.strerror}", exception="",
                         **result)
    finally:
        if client is not None:
            client.close()
    module.exit_json(**result)


if __name__ == "__main__":
    main()
