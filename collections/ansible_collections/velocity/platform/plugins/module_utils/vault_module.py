# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Velocity platform team
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Ansible side shared by the vault_* modules: argument spec and error handling."""
from __future__ import annotations

from ansible_collections.velocity.platform.plugins.module_utils.vault_client import VaultError

# Keys of the connection/auth options; the module argument specs start from this.
VAULT_ARGUMENT_SPEC = dict(
    url=dict(type="str", aliases=["vault_addr"]),
    namespace=dict(type="str"),
    auth_method=dict(type="str", default="token", choices=["token", "approle", "jwt", "kubernetes"]),
    mount_point=dict(type="str"),
    token=dict(type="str", no_log=True),
    token_file=dict(type="path"),
    role_id=dict(type="str"),
    secret_id=dict(type="str", no_log=True),
    jwt=dict(type="str", no_log=True),
    jwt_file=dict(type="path"),
    kubernetes_token_path=dict(type="path", default="/var/run/secrets/kubernetes.io/serviceaccount/token"),
    ca_cert=dict(type="path", aliases=["cacert"]),
    validate_certs=dict(type="bool"),
    client_cert=dict(type="path"),
    client_key=dict(type="path", no_log=False),
    timeout=dict(type="int", default=30),
    retries=dict(type="int", default=3),
    retry_backoff=dict(type="float", default=0.5),
)


def vault_argument_spec(**extra) -> dict:
    spec = {k: dict(v) for k, v in VAULT_ARGUMENT_SPEC.items()}
    spec.update(extra)
    return spec


def fail(module, exc: Exception, **result) -> None:
    """Fail with the error's message and kind; never a traceback for an expected failure."""
    if isinstance(exc, VaultError):
        # exception="": an expected failure carries its explanation in msg, not a traceback (even at -vvv).
        module.fail_json(msg=str(exc), error=type(exc).__name__, exception="", **result)
    raise exc
