# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Velocity platform team
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations


class ModuleDocFragment:
    # Connection and authentication, shared by vault_secrets and vault_db_credentials.
    DOCUMENTATION = r"""
options:
  url:
    description:
      - Address of the Vault (or OpenBao) server, for example V(https://vault.example.com:8200).
      - When unset, the E(VAULT_ADDR) environment variable (then E(BAO_ADDR)).
      - Locally, C(scripts/services/vault.sh env) prints it.
    type: str
    aliases: [vault_addr]
  namespace:
    description:
      - Vault Enterprise / OpenBao namespace, sent as C(X-Vault-Namespace). Falls back to E(VAULT_NAMESPACE).
    type: str
  auth_method:
    description:
      - How the task logs in. It logs in B(once) and every read of the task reuses that token.
      - V(token) uses O(token), then E(VAULT_TOKEN), then O(token_file).
      - V(approle) uses O(role_id) and O(secret_id).
      - V(jwt) uses O(role_id) (the JWT auth role) and O(jwt) or O(jwt_file).
      - V(kubernetes) uses O(role_id) (the Kubernetes auth role) and the service-account token at O(kubernetes_token_path) (or O(jwt)).
    type: str
    choices: [token, approle, jwt, kubernetes]
    default: token
  mount_point:
    description:
      - Mount path of the auth method, when not the default (V(approle), V(jwt), V(kubernetes)).
    type: str
  token:
    description:
      - Vault token for O(auth_method=token). Falls back to E(VAULT_TOKEN).
    type: str
  token_file:
    description:
      - File holding a token, for O(auth_method=token) when neither O(token) nor E(VAULT_TOKEN) is set
        (for example the local dev server's root-token file).
    type: path
  role_id:
    description:
      - AppRole role ID (O(auth_method=approle)), or the role name for O(auth_method=jwt) and O(auth_method=kubernetes).
    type: str
  secret_id:
    description:
      - AppRole secret ID.
    type: str
  jwt:
    description:
      - Signed JWT for O(auth_method=jwt), or a service-account token for O(auth_method=kubernetes).
    type: str
  jwt_file:
    description:
      - File holding the JWT for O(auth_method=jwt).
    type: path
  kubernetes_token_path:
    description:
      - Service-account token file for O(auth_method=kubernetes).
    type: path
    default: /var/run/secrets/kubernetes.io/serviceaccount/token
  ca_cert:
    description:
      - CA bundle (PEM) that signed the server certificate. Falls back to E(VAULT_CACERT).
    type: path
    aliases: [cacert]
  validate_certs:
    description:
      - Verify the server certificate. When unset, V(true) unless E(VAULT_SKIP_VERIFY) is set.
    type: bool
  client_cert:
    description:
      - Client certificate (PEM) for mutual TLS.
    type: path
  client_key:
    description:
      - Key of O(client_cert).
    type: path
  timeout:
    description:
      - Seconds to wait for one HTTP request.
    type: int
    default: 30
  retries:
    description:
      - How many times a request is retried after a connection error or HTTP 412/429/500/502/504,
        with exponential backoff starting at O(retry_backoff) seconds (C(urllib3.Retry) on the task's one HTTP session).
        A sealed server (503) and a refused TLS certificate are not retried.
    type: int
    default: 3
  retry_backoff:
    description:
      - First retry delay in seconds; doubled at each retry, with jitter.
    type: float
    default: 0.5
requirements:
  - hvac 2.x (Python library, with requests) on the host that runs the module; every Vault call goes through it
notes:
  - Only the options above and the environment variables they name are used; in particular an AppRole, JWT or
    Kubernetes login never falls back to E(VAULT_TOKEN) or C(~/.vault-token) (as a bare hvac client would).
  - Failures are reported with the address, the path and what to do, for an unreachable server,
    a sealed server, a refused (unknown, expired or revoked) token, a permission denied by policy,
    a missing path or key and a KV version mismatch. Messages never contain a token or a secret value.
"""

    ATTRIBUTES = r"""
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
  diff_mode:
    description: Shows which variable names would be added or changed, never their values.
    support: full
  platform:
    description: Target OS/families that can be operated against.
    support: full
    platforms: posix
"""
