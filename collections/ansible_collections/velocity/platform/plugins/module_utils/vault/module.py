# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Velocity platform team
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Ansible side shared by the vault_* modules: argument spec and error handling."""
from __future__ import annotations

from ansible.module_utils.basic import missing_required_lib
from ansible.module_utils.common.validation import check_type_dict

from ansible_collections.velocity.platform.plugins.module_utils.common.names import type_name
from ansible_collections.velocity.platform.plugins.module_utils.vault import client as vault_client
from ansible_collections.velocity.platform.plugins.module_utils.vault.client import VaultError

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


def raw_type_problem(spec: dict, raw: dict) -> "str | None":
    """What ansible-core would get wrong with these raw arguments, before it sees them.

    - A list or a mapping given to a string option (token, role_id, url...) is silently turned
      into its Python text and sent to Vault; refuse it instead, before any request.
    - A mapping option with suboptions (database) given something that is neither a mapping nor
      a JSON or key=value string makes ansible-core stop collecting the no_log values of *every*
      option, so the result would show the token unmasked in ``invocation``, under a message
      that does not name the option ("dictionary requested, could not parse JSON or key=value").
    """
    for name, option in spec.items():
        for key in [name, *list(option.get("aliases") or [])]:
            value = (raw or {}).get(key)
            if value is None:
                continue
            if option.get("type") == "str" and isinstance(value, (list, tuple, dict)):
                return f"{key} must be a string, not {type_name(value)}"
            if option.get("type") == "dict" and option.get("options") and not isinstance(value, dict):
                if isinstance(value, str):
                    try:
                        check_type_dict(value)
                        continue
                    except TypeError:
                        pass
                suboptions = ", ".join(sorted(option["options"]))
                given = "a string that is neither JSON nor key=value" if isinstance(value, str) else type_name(value)
                return f"{key} must be a mapping ({suboptions}), not {given}"
    return None


def raw_argument_spec(spec: dict) -> dict:
    """The spec with every option 'raw' (no conversion, no suboptions) but its no_log and aliases kept:
    enough for AnsibleModule to mask the secrets of arguments refused by raw_type_problem."""
    return dict((name, dict(type="raw", no_log=bool(option.get("no_log")), aliases=list(option.get("aliases") or [])))
                for name, option in spec.items())


def vault_argument_spec(**extra) -> dict:
    spec = {k: dict(v) for k, v in VAULT_ARGUMENT_SPEC.items()}
    spec.update(extra)
    return spec


def require_libraries(module) -> None:
    """Fail clearly when hvac (or requests, which it runs on) is missing on the host that runs the module."""
    if not vault_client.HAS_REQUESTS:
        module.fail_json(msg=missing_required_lib("requests"), exception=str(vault_client.REQUESTS_IMPORT_ERROR))
    if not vault_client.HAS_HVAC:
        module.fail_json(msg=missing_required_lib("hvac"), exception=str(vault_client.HVAC_IMPORT_ERROR))


def fail(module, exc: Exception, **result) -> None:
    """Fail with the error's message and kind; never a traceback for an expected failure."""
    if isinstance(exc, VaultError):
        # exception="": an expected failure carries its explanation in msg, not a traceback (even at -vvv).
        module.fail_json(msg=str(exc), error=type(exc).__name__, exception="", **result)
    raise exc
