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
  - O(state=renewed) renews the lease (from O(lease_id) or O(lease_state_file)).
  - O(state=absent) revokes the lease (from O(lease_id) or O(lease_state_file)) and removes the state file;
    with O(revoke_prefix) it revokes every lease under that prefix (needs C(sudo) on
    C(sys/leases/revoke-prefix), an operator token, not the app's). Nothing to revoke reports C(changed=false).
  - The password is returned only with O(return_values=true); otherwise the result has the lease and the
    username. The state file is written atomically with mode 0600 and holds the credentials.
  - In check mode nothing is issued, renewed or revoked; C(changed) says what would happen.
  - Bad input (a wrong type, an empty or malformed O(role), a negative TTL, a O(lease_state_file) inside a Git
    working tree) fails the task, naming the option, before Vault is contacted.
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
  lease_id:
    description: Lease to renew or revoke, instead of the one in O(lease_state_file).
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
  description: V(issued), V(reused), V(renewed), V(revoked) or V(none).
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
"""

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
    if p["state"] == "renewed" and not (p["lease_id"] or p["lease_state_file"]):
        raise vault_client.VaultConfigError("state=renewed needs lease_id or a lease_state_file that holds a lease")
    for field in ("min_ttl", "increment"):
        if p[field] is not None and p[field] < 0:
            raise vault_client.VaultConfigError("%s must be 0 or more seconds, not %d" % (field, p[field]))
    if p["lease_state_file"] and p["state"] != "absent":
        # The state file holds the password; state=absent only reads and removes it.
        try:
            check_secret_file("lease_state_file", p["lease_state_file"])
        except PathRefused as exc:
            raise vault_client.VaultConfigError(str(exc)) from None


def _present(module, client, p, result):
    lease, changed, how = vault_db.ensure(client, p["mount"], p["role"], p["lease_state_file"], p["min_ttl"],
                                          p["reuse"], module.check_mode)
    result.update(changed=changed, how=how if lease else "would issue")
    return lease


def _renewed(module, client, p, result):
    lease = vault_db.load_state(p["lease_state_file"])
    lease_id = p["lease_id"] or (lease.lease_id if lease else None)
    if not lease_id:
        module.fail_json(msg="state=renewed needs lease_id or a lease_state_file that holds a lease")
    if vault_db.lookup(client, lease_id) is None:
        module.fail_json(msg="lease %s is unknown to Vault (expired or revoked): issue new credentials with "
                             "state=present" % lease_id, how="none")
    result.update(changed=True, how="renewed")
    if module.check_mode:
        return lease
    if lease is None or lease.lease_id != lease_id:
        lease = vault_db.Lease(lease_id=lease_id, lease_duration=0, renewable=True, issued_at=0)
    lease = vault_db.renew(client, lease, p["increment"])
    if p["lease_state_file"] and lease.username:
        vault_db.save_state(p["lease_state_file"], lease)
    return lease


def _absent(module, client, p, result):
    if p["revoke_prefix"]:
        count = vault_db.revoke_prefix(client, p["revoke_prefix"], module.check_mode)
        removed = False
        if not module.check_mode:
            removed = vault_db.remove_state(p["lease_state_file"])
        result.update(changed=bool(count) or removed, revoked=count, how="revoked" if count else "none")
        return None
    lease = vault_db.load_state(p["lease_state_file"])
    lease_id = p["lease_id"] or (lease.lease_id if lease else None)
    known = bool(lease_id) and vault_db.lookup(client, lease_id) is not None
    has_state = bool(p["lease_state_file"]) and lease is not None
    if module.check_mode:
        result.update(changed=known or has_state, revoked=int(known), how="revoked" if known else "none")
        return None
    revoked = vault_db.revoke(client, lease_id) if known else False
    removed = vault_db.remove_state(p["lease_state_file"]) if has_state else False
    result.update(changed=revoked or removed, revoked=int(revoked), how="revoked" if revoked else "none")
    return None


def main():
    spec = vault_argument_spec(
        state=dict(type="str", default="present", choices=["present", "renewed", "absent"]),
        mount=dict(type="str", default="database"),
        role=dict(type="str"),
        lease_state_file=dict(type="path"),
        lease_id=dict(type="str"),
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
        module.fail_json(msg="cannot write lease_state_file %s: %s" % (p["lease_state_file"], exc.strerror), exception="", **result)
    finally:
        if client is not None:
            client.close()
    module.exit_json(**result)


if __name__ == "__main__":
    main()
