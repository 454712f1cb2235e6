# -*- coding: utf-8 -*-
# Copyright: Velocity platform team
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # Connection to the Kubernetes API, shared by manifest_apply and rollout_undo.
    DOCUMENTATION = r"""
options:
  kubeconfig:
    description:
      - Path to a kubeconfig file. When unset, E(K8S_AUTH_KUBECONFIG), then E(KUBECONFIG) or C(~/.kube/config),
        then the in-cluster service account (when the task runs in a pod, for example under AWX).
      - For the local control plane, the path that C(hack/k8s/cluster.sh start) prints.
    type: path
  context:
    description:
      - Kubeconfig context to use instead of the current one.
      - When unset, E(K8S_AUTH_CONTEXT).
    type: str
  host:
    description:
      - API server URL, instead of a kubeconfig (with O(api_key)).
      - When unset, E(K8S_AUTH_HOST), which an AWX "Kubernetes Bearer Token" credential injects
        (C(awx/credential_types/velocity_kubernetes_bearer_token.yml)).
    type: str
  api_key:
    description:
      - Bearer token for O(host) (or to override the kubeconfig user's credentials).
      - When unset, E(K8S_AUTH_API_KEY). Never logged.
    type: str
  validate_certs:
    description:
      - Verify the API server's TLS certificate.
      - When unset, E(K8S_AUTH_VERIFY_SSL) (true or false), else what the kubeconfig says (true with O(host)).
    type: bool
    aliases: [verify_ssl]
  ca_cert:
    description:
      - CA bundle to verify the API server with.
      - When unset, E(K8S_AUTH_SSL_CA_CERT).
    type: path
    aliases: [ssl_ca_cert]
  field_manager:
    description:
      - Field manager name for server-side apply. Keep one name per owner of the objects; the rollback
        applies under the same name so the next deploy meets no conflict.
    type: str
    default: velocity
requirements:
  - urllib3 (installed with requests or with the kubernetes client) where the module runs
  - kubernetes (the official Kubernetes Python client), only for a kubeconfig whose user authenticates with an
    C(exec) or C(auth-provider) plugin, or a E(KUBECONFIG) that names several files
  - A Kubernetes API server with server-side apply (1.22 or later)
notes:
  - The module reads the kubeconfig itself (server, CA, client certificate, token, token file or basic auth,
    C(tls-server-name), C(proxy-url), C(insecure-skip-tls-verify); file paths relative to the kubeconfig's folder)
    and sends its requests over one urllib3 pool per task, so it does not load the kubernetes client library
    (some 0.15-0.4 s per task). A user with an C(exec) or C(auth-provider) plugin is loaded through that
    library's own loader, which runs the plugin; the requests still go out the same way.
  - When the API server answers 401 to a token that can change while the task runs (it expired during a long
    wait), the module fetches it again once and repeats the request - it reads the kubeconfig's C(tokenFile) or
    the pod's service account token file again, or runs the C(exec)/C(auth-provider) plugin again. A token
    given as O(api_key) or inline in the kubeconfig is not replaced; a second 401 fails the task. Client
    certificates are not reloaded.
  - Discovery is looked up once per group-version and task, and cached for the task.
  - The module talks to the API from where it runs (the controller for C(localhost)).
  - Every connection option falls back to the environment variable that M(kubernetes.core.k8s) reads
    (E(K8S_AUTH_KUBECONFIG), E(K8S_AUTH_CONTEXT), E(K8S_AUTH_HOST), E(K8S_AUTH_API_KEY),
    E(K8S_AUTH_VERIFY_SSL), E(K8S_AUTH_SSL_CA_CERT)); an option set on the task wins over its variable.
"""

    ATTRIBUTES = r"""
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: full
  platform:
    description: Target OS/families that can be operated against.
    support: full
    platforms: posix
"""
