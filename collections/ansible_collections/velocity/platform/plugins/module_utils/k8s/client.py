# -*- coding: utf-8 -*-
# Copyright: Velocity platform team
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One ApiClient and one DynamicClient (lazy, cached discovery) per task, and the few
calls the deploy modules make: get, server-side apply (optionally dry-run), create,
delete, list. API errors become K8sApiError with a readable message; field-manager
conflicts are parsed into (field, manager) pairs."""

from __future__ import annotations

import json
import os
import re
import sys

# kubernetes.dynamic imports kubernetes_validate when it is installed, for DynamicClient.validate() only,
# which this collection never calls; its jsonschema format checkers cost about a second per task to import.
# Hide it while kubernetes loads (the library falls back as if it were absent), then unhide it.
_HIDE_VALIDATE = "kubernetes_validate" not in sys.modules
if _HIDE_VALIDATE:
    sys.modules["kubernetes_validate"] = None
try:
    from kubernetes import client as k8s_client_lib
    from kubernetes import config as k8s_config
    from kubernetes.client.rest import ApiException
    from kubernetes.dynamic import DynamicClient
    from kubernetes.dynamic.discovery import LazyDiscoverer
    from kubernetes.dynamic.exceptions import DynamicApiError, ResourceNotFoundError

    HAS_K8S = True
    K8S_IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover - reported by the module
    HAS_K8S = False
    K8S_IMPORT_ERROR = exc

    # Stand-ins so the except clauses below stay distinct; the module fails before any call without the library.
    class ApiException(Exception):  # pylint: disable=function-redefined
        pass

    class DynamicApiError(Exception):  # pylint: disable=function-redefined
        pass

    class ResourceNotFoundError(Exception):  # pylint: disable=function-redefined
        pass
finally:
    if _HIDE_VALIDATE and sys.modules.get("kubernetes_validate", True) is None:
        del sys.modules["kubernetes_validate"]

from ansible_collections.velocity.platform.plugins.module_utils.k8s.objects import ref

FIELD_MANAGER = "velocity"
# Requests one task sends at once (reads, dry runs and the applies of one sync wave; see k8s/apply.py).
PARALLEL_REQUESTS = 8
CONNECTION_OPTIONS = dict(
    kubeconfig=dict(type="path"),
    context=dict(type="str"),
    host=dict(type="str"),
    api_key=dict(type="str", no_log=True),
    validate_certs=dict(type="bool", aliases=["verify_ssl"]),
    ca_cert=dict(type="path", aliases=["ssl_ca_cert"]),
)
# The environment variables kubernetes.core reads, per connection option (an AWX "Kubernetes bearer token"
# credential injects K8S_AUTH_HOST, K8S_AUTH_API_KEY, K8S_AUTH_SSL_CA_CERT, K8S_AUTH_VERIFY_SSL).
# A module option that is set wins over its variable.
CONNECTION_ENV = dict(
    kubeconfig="K8S_AUTH_KUBECONFIG",
    context="K8S_AUTH_CONTEXT",
    host="K8S_AUTH_HOST",
    api_key="K8S_AUTH_API_KEY",
    validate_certs="K8S_AUTH_VERIFY_SSL",
    ca_cert="K8S_AUTH_SSL_CA_CERT",
)


def connection_options(params, environ=None):
    """The connection options of a task: each option as the task set it, else its K8S_AUTH_* variable."""
    from ansible.module_utils.parsing.convert_bool import boolean

    environ = os.environ if environ is None else environ
    options = {}
    for option, variable in CONNECTION_ENV.items():
        value = params.get(option)
        if value is None and environ.get(variable, "") != "":
            value = environ[variable]
            if option == "validate_certs":
                try:
                    value = boolean(value, strict=True)
                except TypeError:
                    raise ConnectionError_(f"{variable}={value!r} is not a boolean: set it to true or false") from None
            elif option in ("kubeconfig", "ca_cert"):
                value = os.path.expanduser(value)
        options[option] = value
    return options


def k8s_module(argument_spec, **kwargs):
    """The AnsibleModule of a Kubernetes module: its own options plus CONNECTION_OPTIONS, and a
    clear failure when the kubernetes client is missing. Every Kubernetes module starts here."""
    from ansible.module_utils.basic import AnsibleModule, missing_required_lib

    module = AnsibleModule(argument_spec=dict(argument_spec, **CONNECTION_OPTIONS), **kwargs)
    if not HAS_K8S:
        module.fail_json(msg=missing_required_lib("kubernetes"), exception=str(K8S_IMPORT_ERROR))
    return module


# Cause messages: 'conflict with "kubectl-edit"' (field in cause.field) or 'conflict with "m" using apps/v1: .spec.x'.
_CONFLICT_RE = re.compile(r'conflict with "(?P<manager>[^"]+)"(?: using (?P<api>[^:]+))?(?: with subresource "[^"]*")?(?:: (?P<field>.+))?')


class K8sApiError(Exception):
    """An API call failed; `message` is ready for the operator."""

    def __init__(self, message, status=None, reason=None, conflicts=None, causes=None, unreachable=False):
        super().__init__(message)
        self.message = message
        self.status = status
        self.reason = reason
        self.conflicts = conflicts or []
        self.causes = causes or []
        # No HTTP answer at all (refused, reset, TLS, timeout): the API server is down or cut off.
        self.unreachable = unreachable


class ConnectionError_(Exception):
    pass


def parse_status(exc):
    """(message, reason, causes) from an ApiException's Status body."""
    body = getattr(exc, "body", None)
    try:
        status = json.loads(body) if body else {}
    except (TypeError, ValueError):
        status = {}
    if not isinstance(status, dict):
        status = {}
    causes = (status.get("details") or {}).get("causes") or []
    return status.get("message") or getattr(exc, "reason", None) or str(exc), status.get("reason"), causes


def parse_conflicts(causes):
    """[{'field': '.spec.replicas', 'manager': 'kubectl-edit', 'api_version': 'apps/v1'}] from Status causes."""
    out = []
    for cause in causes:
        if cause.get("reason") != "FieldManagerConflict":
            continue
        match = _CONFLICT_RE.search(cause.get("message", ""))
        out.append({
            "field": cause.get("field") or (match.group("field") if match else ""),
            "manager": match.group("manager") if match else "",
            "api_version": (match.group("api") if match else "") or "",
        })
    return out


def _delete_hint(obj_ref):
    """'Job velocity/migrate' -> 'kubectl -n velocity delete job/migrate'."""
    kind, dummy, name = obj_ref.partition(" ")
    namespace, slash, short = name.rpartition("/")
    flag = f"-n {namespace} " if slash else ""
    return f"kubectl {flag}delete {kind.lower()}/{short}"


def api_error(exc, action, obj_ref):
    message, reason, causes = parse_status(exc)
    status = getattr(exc, "status", None)
    conflicts = parse_conflicts(causes) if status == 409 else []
    if conflicts:
        fields = "; ".join(f"{c['field']} is managed by {c['manager']!r}" for c in conflicts)
        text = (f"{obj_ref}: server-side apply conflict, {fields}. Another field manager owns these fields: remove "
                "them from the manifest, let that manager stop setting them, or apply with force=true to take them "
                "over.")
    elif status == 422 or reason == "Invalid":
        details = "; ".join(f"{c.get('field', '?')}: {c.get('message', '')}" for c in causes) or message
        text = f"{obj_ref} is invalid ({action} rejected it): {details}"
        if "immutable" in details:
            text += ". These fields cannot change on a live object: keep their old values, give the object a new " \
                    f"name, or delete it first ({_delete_hint(obj_ref)}) and deploy again."
    elif status in (401, 403):
        text = (f"{obj_ref}: {action} refused (HTTP {status}): {message}. Check the credentials and RBAC of the "
                "kubeconfig user.")
    else:
        text = f"{obj_ref}: {action} failed (HTTP {status} {reason or ''}): {message}"
    return K8sApiError(text, status=status, reason=reason, conflicts=conflicts, causes=causes)


def build_api_client(kubeconfig=None, context=None, host=None, api_key=None, validate_certs=None, ca_cert=None):
    """ApiClient from explicit host/token, a kubeconfig, or the in-cluster service account."""
    if host:
        configuration = k8s_client_lib.Configuration()
        configuration.host = host
        if api_key:
            configuration.api_key = {"authorization": "Bearer " + api_key}
    else:
        configuration = k8s_client_lib.Configuration()
        try:
            k8s_config.load_kube_config(config_file=kubeconfig, context=context, client_configuration=configuration)
        except Exception as exc:  # the loader raises ConfigException, TypeError or OSError on bad files
            if kubeconfig or context:
                where = " context " + context if context else ""
                raise ConnectionError_(f"cannot load kubeconfig {kubeconfig or '(default)'}{where}: {exc}") from None
            try:
                k8s_config.load_incluster_config(client_configuration=configuration)
            except Exception:
                raise ConnectionError_(f"no kubeconfig found ({exc}) and not running in a cluster: set kubeconfig "
                                       "or the KUBECONFIG environment variable") from None
        if api_key:
            configuration.api_key = {"authorization": "Bearer " + api_key}
    # Room for the concurrent requests of manifest_apply (k8s/apply.py), each on its own kept-alive connection.
    configuration.connection_pool_maxsize = max(configuration.connection_pool_maxsize or 0, PARALLEL_REQUESTS)
    if validate_certs is not None:
        configuration.verify_ssl = validate_certs
    if ca_cert:
        configuration.ssl_ca_cert = ca_cert
    return k8s_client_lib.ApiClient(configuration)


REQUEST_TIMEOUT = 60


class K8sClient:
    """Thin wrapper over DynamicClient: objects in and out as plain dicts."""

    def __init__(self, api_client, field_manager=FIELD_MANAGER, request_timeout=REQUEST_TIMEOUT):
        self.api_client = api_client
        self.field_manager = field_manager
        # Every call has a deadline: an API server that stops answering fails the task instead of hanging it.
        self.request_timeout = request_timeout
        try:
            self.dynamic = DynamicClient(api_client, discoverer=LazyDiscoverer)
        except (ApiException, DynamicApiError) as exc:
            raise K8sApiError(f"cannot reach the Kubernetes API at {api_client.configuration.host}: "
                              f"{parse_status(exc)[0]}", status=getattr(exc, "status", None)) from None
        except Exception as exc:  # urllib3 connection errors, TLS errors
            raise K8sApiError(f"cannot reach the Kubernetes API at {api_client.configuration.host}: {exc}",
                              unreachable=True) from None
        self._resources = {}

    @classmethod
    def from_params(cls, params, field_manager=FIELD_MANAGER):
        try:
            return cls(build_api_client(**connection_options(params)), field_manager=field_manager)
        except ConnectionError_ as exc:
            raise K8sApiError(str(exc)) from None

    def close(self):
        try:
            self.api_client.close()
        except Exception:  # noqa: S110 - closing is best effort, the task result is already decided
            pass

    def resource(self, api_version, kind):
        cache_key = (api_version, kind)
        if cache_key not in self._resources:
            try:
                self._resources[cache_key] = self.dynamic.resources.get(api_version=api_version, kind=kind)
            except ResourceNotFoundError:
                raise K8sApiError(f"the API server does not serve kind {kind} in {api_version} (is the CRD "
                                  "installed, is the apiVersion right?)") from None
            except (ApiException, DynamicApiError) as exc:
                raise api_error(exc, "discovery", f"{api_version} {kind}") from None
            except Exception as exc:  # connection refused, TLS, timeouts
                raise self.unreachable(f"discovery of {api_version} {kind}", exc) from None
        return self._resources[cache_key]

    def serves(self, api_version, kind):
        """Whether discovery lists the kind now (False for a CRD's kind before it is established)."""
        try:
            self.resource(api_version, kind)
        except K8sApiError as exc:
            if exc.unreachable:
                raise
            return False
        return True

    def forget_discovery(self):
        """Drop cached discovery so kinds that a CRD just added are found."""
        self.dynamic.resources.invalidate_cache()
        self._resources = {}

    def unreachable(self, what, exc):
        return K8sApiError(f"{what} failed: cannot reach the Kubernetes API at "
                           f"{self.api_client.configuration.host}: {exc}", unreachable=True)

    def namespaced(self, obj):
        return self.resource(obj["apiVersion"], obj["kind"]).namespaced

    def _call(self, action, obj_ref, func, *args, **kwargs):
        kwargs.setdefault("_request_timeout", self.request_timeout)
        try:
            result = func(*args, **kwargs)
        except (ApiException, DynamicApiError) as exc:
            raise api_error(exc, action, obj_ref) from None
        except Exception as exc:  # connection refused, TLS, timeouts
            raise self.unreachable(f"{action} of {obj_ref}", exc) from None
        return result.to_dict() if hasattr(result, "to_dict") else result

    def get(self, api_version, kind, name, namespace=None):
        res = self.resource(api_version, kind)
        try:
            return self.dynamic.get(res, name=name, namespace=namespace,
                                    _request_timeout=self.request_timeout).to_dict()
        except (ApiException, DynamicApiError) as exc:
            if getattr(exc, "status", None) == 404:
                return None
            raise api_error(exc, "get", f"{kind} {namespace or ''}/{name}") from None
        except Exception as exc:  # connection refused, TLS, timeouts
            raise self.unreachable(f"get of {kind} {namespace or ''}/{name}", exc) from None

    def get_obj(self, obj):
        meta = obj["metadata"]
        return self.get(obj["apiVersion"], obj["kind"], meta["name"], meta.get("namespace"))

    def list(self, api_version, kind, namespace=None, label_selector=None, field_selector=None):
        res = self.resource(api_version, kind)
        result = self._call("list", f"{kind} in {namespace or 'cluster'}", self.dynamic.get, res,
                            namespace=namespace, label_selector=label_selector, field_selector=field_selector)
        return result.get("items") or []

    def apply(self, obj, dry_run=False, force=False):
        res = self.resource(obj["apiVersion"], obj["kind"])
        kwargs = dict(field_manager=self.field_manager, force_conflicts=bool(force))
        if dry_run:
            kwargs["dry_run"] = "All"
        return self._call("server-side dry run" if dry_run else "server-side apply", ref(obj),
                          self.dynamic.server_side_apply, res, body=obj,
                          namespace=obj["metadata"].get("namespace"), **kwargs)

    def create(self, obj, dry_run=False):
        res = self.resource(obj["apiVersion"], obj["kind"])
        kwargs = dict(field_manager=self.field_manager)
        if dry_run:
            kwargs["dry_run"] = "All"
        return self._call("dry-run create" if dry_run else "create", ref(obj), self.dynamic.create, res, body=obj,
                          namespace=obj["metadata"].get("namespace"), **kwargs)

    def delete(self, obj, propagation="Background"):
        res = self.resource(obj["apiVersion"], obj["kind"])
        meta = obj["metadata"]
        try:
            self.dynamic.delete(res, name=meta["name"], namespace=meta.get("namespace"), propagation_policy=propagation,
                                _request_timeout=self.request_timeout)
        except (ApiException, DynamicApiError) as exc:
            if getattr(exc, "status", None) == 404:
                return False
            raise api_error(exc, "delete", ref(obj)) from None
        except Exception as exc:  # connection refused, TLS, timeouts
            raise self.unreachable(f"delete of {ref(obj)}", exc) from None
        return True

    def json_patch(self, obj, patch):
        res = self.resource(obj["apiVersion"], obj["kind"])
        meta = obj["metadata"]
        return self._call("patch", ref(obj), self.dynamic.patch, res, body=patch, name=meta["name"],
                          namespace=meta.get("namespace"), content_type="application/json-patch+json",
                          field_manager=self.field_manager)
