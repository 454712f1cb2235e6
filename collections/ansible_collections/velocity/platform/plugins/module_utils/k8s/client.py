# -*- coding: utf-8 -*-
# Copyright: Velocity platform team
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Kubernetes API as the deploy modules use it: get, list, server-side apply (optionally
dry-run), create, delete and JSON patch, objects in and out as plain dicts, over one urllib3
pool per task (kept-alive connections, PARALLEL_REQUESTS of them at once), with discovery
looked up lazily per group-version and cached for the task. API errors become K8sApiError
with a readable message; field-manager conflicts are parsed into (field, manager) pairs.

The connection comes from the task's options, a kubeconfig (read here: server, CA, client
certificate, token or basic auth, tls-server-name, proxy-url, insecure-skip-tls-verify), or
the in-cluster service account. Only a kubeconfig whose user runs an ``exec`` or
``auth-provider`` plugin, or a KUBECONFIG that names several files, is loaded through the
official kubernetes client's loader (which runs those plugins); the requests still go out
here. So a task does not import the kubernetes client library (some 0.3-0.5 s) unless it
needs it.

A bearer token that can change while a task runs is fetched again when the API server
answers 401 (the token expired during a long wait): a kubeconfig's ``tokenFile`` and the
service account's token file are read again (the kubelet rotates the latter), an ``exec`` or
``auth-provider`` user is loaded again (its plugin runs again), and the refused request is
sent once more with the new token. A token given as ``api_key`` or inline in the kubeconfig
is what it is: a 401 then fails the task."""

from __future__ import annotations

import base64
import functools
import json
import os
import re
import shutil
import ssl
import tempfile
import threading
from urllib.parse import quote, urlencode, urlsplit

try:
    import urllib3

    HAS_URLLIB3 = True
    URLLIB3_IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover - reported by the module
    HAS_URLLIB3 = False
    URLLIB3_IMPORT_ERROR = exc

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
    clear failure when urllib3 is missing. Every Kubernetes module starts here."""
    from ansible.module_utils.basic import AnsibleModule, missing_required_lib

    module = AnsibleModule(argument_spec=dict(argument_spec, **CONNECTION_OPTIONS), **kwargs)
    if not HAS_URLLIB3:
        module.fail_json(msg=missing_required_lib("urllib3"), exception=str(URLLIB3_IMPORT_ERROR))
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


def api_error(exc, action, obj_ref, note=""):
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
        text = (f"{obj_ref}: {action} refused (HTTP {status}): {message}.{note} Check the credentials and RBAC of "
                "the kubeconfig user.")
    else:
        text = f"{obj_ref}: {action} failed (HTTP {status} {reason or ''}): {message}"
    return K8sApiError(text, status=status, reason=reason, conflicts=conflicts, causes=causes)


class ApiStatusError(Exception):
    """The API server answered with an error status; parse_status and api_error read it."""

    def __init__(self, status, reason, body):
        super().__init__(f"HTTP {status} {reason}")
        self.status = status
        self.reason = reason
        self.body = body


REQUEST_TIMEOUT = 60
IN_CLUSTER_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"


class Endpoint:
    """Where the API server is and how to authenticate to it: what a request needs, nothing more."""

    def __init__(self, host, verify=True, ca_file=None, ca_data=None, cert_file=None, key_file=None, cert_data=None,
                 key_data=None, token=None, basic=None, server_name=None, proxy=None, refresh=None):
        self.host = host.rstrip("/")
        self.verify = verify
        self.ca_file, self.ca_data = ca_file, ca_data
        self.cert_file, self.key_file, self.cert_data, self.key_data = cert_file, key_file, cert_data, key_data
        self.token = token
        self.basic = basic
        self.server_name = server_name
        self.proxy = proxy
        # Where a fresh token comes from once this one is refused (None: nowhere). Called with no argument, it
        # returns the token as its source holds it now, which may be the same one.
        self.refresh = refresh


def _token_from_file(path):
    with open(path, encoding="utf-8") as handle:
        return handle.read().strip()


def _decode(value, what):
    try:
        return base64.b64decode(value, validate=False).decode("ascii")
    except (ValueError, UnicodeDecodeError, TypeError):
        raise ConnectionError_(f"{what} is not base64-encoded PEM") from None


def _section(config, kind, name, path):
    """The named entry of a kubeconfig list (clusters, users, contexts)."""
    for entry in config.get(kind + "s") or []:
        if isinstance(entry, dict) and entry.get("name") == name:
            return entry.get(kind) or {}
    raise ConnectionError_(f"{kind} {name!r} is not among the {kind}s in {path}")


def read_kubeconfig(path, context=None):
    """An Endpoint from a kubeconfig file, or None when its user needs the kubernetes client's
    loader (an exec or auth-provider plugin). Relative file paths are taken from the file's folder."""
    import yaml

    with open(path, "rb") as handle:
        try:
            config = yaml.safe_load(handle)
        except yaml.YAMLError as exc:
            # Position and problem only: PyYAML's own message quotes the offending line, which may hold a token.
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
            raise ConnectionError_(f"it is not valid YAML{where}: {getattr(exc, 'problem', None) or 'parse error'}") \
                from None
    if not isinstance(config, dict):
        raise ConnectionError_("it is not a kubeconfig (no mapping at the top)")
    name = context or config.get("current-context")
    if not name:
        raise ConnectionError_("it has no current-context: set context")
    ctx = _section(config, "context", name, path)
    cluster = _section(config, "cluster", ctx.get("cluster"), path)
    user = _section(config, "user", ctx.get("user"), path) if ctx.get("user") else {}
    if user.get("exec") or user.get("auth-provider"):
        return None
    if not cluster.get("server"):
        raise ConnectionError_(f"cluster {ctx.get('cluster')!r} has no server")
    base = os.path.dirname(os.path.abspath(path))

    def file_of(entry, field):
        value = entry.get(field)
        return os.path.join(base, os.path.expanduser(value)) if value else None

    token, refresh = user.get("token"), None
    if not token and user.get("tokenFile"):
        refresh = functools.partial(_token_from_file, file_of(user, "tokenFile"))
        token = refresh()
    basic = f"{user['username']}:{user.get('password', '')}" if user.get("username") and not token else None
    return Endpoint(
        cluster["server"],
        verify=not cluster.get("insecure-skip-tls-verify", False),
        ca_file=file_of(cluster, "certificate-authority"),
        ca_data=_decode(cluster["certificate-authority-data"], "certificate-authority-data")
        if cluster.get("certificate-authority-data") else None,
        cert_file=file_of(user, "client-certificate"),
        key_file=file_of(user, "client-key"),
        cert_data=_decode(user["client-certificate-data"], "client-certificate-data")
        if user.get("client-certificate-data") else None,
        key_data=_decode(user["client-key-data"], "client-key-data") if user.get("client-key-data") else None,
        token=token, basic=basic, server_name=cluster.get("tls-server-name"), proxy=cluster.get("proxy-url"),
        refresh=refresh)


def in_cluster_endpoint():
    """The pod's service account, as every in-cluster client finds it."""
    host, port = os.environ.get("KUBERNETES_SERVICE_HOST"), os.environ.get("KUBERNETES_SERVICE_PORT")
    token_file = os.path.join(IN_CLUSTER_DIR, "token")
    if not host or not port or not os.path.isfile(token_file):
        raise ConnectionError_("not running in a cluster")
    token = _token_from_file(token_file)
    host = f"[{host}]" if ":" in host else host
    return Endpoint(f"https://{host}:{port}", ca_file=os.path.join(IN_CLUSTER_DIR, "ca.crt"), token=token,
                    refresh=functools.partial(_token_from_file, token_file))  # the kubelet rotates the file


def library_endpoint(kubeconfig, context):
    """The kubernetes client's own loader, for what read_kubeconfig leaves to it (exec and auth-provider
    plugins, several files in KUBECONFIG): it runs the plugin; the Endpoint takes the result."""
    import sys

    # kubernetes imports kubernetes_validate when it is installed, for DynamicClient.validate() only, which
    # this collection never calls; its jsonschema format checkers cost about a second. Hide it meanwhile.
    hide = "kubernetes_validate" not in sys.modules
    if hide:
        sys.modules["kubernetes_validate"] = None
    try:
        from kubernetes import client as k8s_client_lib
        from kubernetes import config as k8s_config
    except ImportError:
        raise ConnectionError_("this kubeconfig's user authenticates with an exec or auth-provider plugin, which "
                               "needs the kubernetes Python client to run: install it (pip install kubernetes), or "
                               "use a kubeconfig with a token or client certificate") from None
    finally:
        if hide and sys.modules.get("kubernetes_validate", True) is None:
            del sys.modules["kubernetes_validate"]
    configuration = k8s_client_lib.Configuration()
    k8s_config.load_kube_config(config_file=kubeconfig, context=context, client_configuration=configuration)
    # The loader puts "Bearer <token>" under api_key "BearerToken" (kubernetes 36 and later), "authorization" before.
    keys = configuration.api_key or {}
    token = keys.get("BearerToken") or keys.get("authorization") or ""
    token = token[len("Bearer "):] if token.startswith("Bearer ") else None
    return Endpoint(configuration.host, verify=configuration.verify_ssl, ca_file=configuration.ssl_ca_cert,
                    cert_file=configuration.cert_file, key_file=configuration.key_file, token=token,
                    server_name=getattr(configuration, "tls_server_name", None), proxy=configuration.proxy,
                    # loaded again, the plugin runs again and gives the token it would give now
                    refresh=(lambda: library_endpoint(kubeconfig, context).token) if token else None)


def resolve_endpoint(kubeconfig=None, context=None, host=None, api_key=None, validate_certs=None, ca_cert=None,
                     environ=None):
    """The Endpoint of a task: explicit host and token, a kubeconfig, or the in-cluster service account."""
    environ = os.environ if environ is None else environ
    if host:
        endpoint = Endpoint(host)
    else:
        path = kubeconfig or environ.get("KUBECONFIG") or os.path.expanduser("~/.kube/config")
        try:
            if os.pathsep in path:  # several files merged: the library's loader knows how
                endpoint = library_endpoint(path, context)
            else:
                endpoint = read_kubeconfig(path, context) or library_endpoint(path, context)
        except Exception as exc:  # unreadable, not YAML, missing context, the library's ConfigException
            if kubeconfig or context:
                where = " context " + context if context else ""
                raise ConnectionError_(f"cannot load kubeconfig {kubeconfig or path}{where}: {exc}") from None
            try:
                endpoint = in_cluster_endpoint()
            except (ConnectionError_, OSError):
                raise ConnectionError_(f"no kubeconfig found ({exc}) and not running in a cluster: set kubeconfig "
                                       "or the KUBECONFIG environment variable") from None
    if api_key:
        endpoint.token, endpoint.basic, endpoint.refresh = api_key, None, None
    if validate_certs is not None:
        endpoint.verify = validate_certs
    if ca_cert:
        endpoint.ca_file, endpoint.ca_data = ca_cert, None
    return endpoint


def tls_context(endpoint):
    """An SSLContext with exactly the endpoint's trust and client certificate (system CAs only when
    the endpoint names no CA). Certificate data is written to a private folder just long enough to load."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if not endpoint.verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif endpoint.ca_file or endpoint.ca_data:
        context.load_verify_locations(cafile=endpoint.ca_file, cadata=endpoint.ca_data)
    else:
        context.load_default_certs()
    if endpoint.cert_data or endpoint.key_data:
        folder = tempfile.mkdtemp(prefix="velocity-k8s-")
        try:
            cert_file = endpoint.cert_file
            key_file = endpoint.key_file
            if endpoint.cert_data:
                cert_file = os.path.join(folder, "client.crt")
                _write_private(cert_file, endpoint.cert_data)
            if endpoint.key_data:
                key_file = os.path.join(folder, "client.key")
                _write_private(key_file, endpoint.key_data)
            context.load_cert_chain(cert_file, key_file)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    elif endpoint.cert_file:
        context.load_cert_chain(endpoint.cert_file, endpoint.key_file)
    return context


def _write_private(path, text):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(text)


def group_version_path(api_version):
    """'v1' -> '/api/v1' (the core group), 'apps/v1' -> '/apis/apps/v1'."""
    return ("/api/" if "/" not in api_version else "/apis/") + api_version


class Resource:
    """One kind as discovery lists it."""

    def __init__(self, api_version, entry):
        self.api_version = api_version
        self.kind = entry["kind"]
        self.name = entry["name"]
        self.namespaced = bool(entry.get("namespaced"))
        self.base = group_version_path(api_version)

    def path(self, namespace=None, name=None):
        parts = [self.base]
        if self.namespaced and namespace:
            parts.append("namespaces/" + quote(namespace, safe=""))
        parts.append(self.name)
        if name:
            parts.append(quote(name, safe=""))
        return "/".join(parts)


class K8sClient:
    """The calls the deploy modules make, objects in and out as plain dicts."""

    def __init__(self, endpoint, field_manager=FIELD_MANAGER, request_timeout=REQUEST_TIMEOUT):
        if not HAS_URLLIB3:
            raise K8sApiError(f"the Python library urllib3 is needed to reach the Kubernetes API: {URLLIB3_IMPORT_ERROR}")
        self.endpoint = endpoint
        self.host = endpoint.host
        self.field_manager = field_manager
        # Every call has a deadline: an API server that stops answering fails the task instead of hanging it.
        self.timeout = urllib3.Timeout(total=request_timeout)
        scheme = urlsplit(endpoint.host).scheme
        if scheme not in ("http", "https"):
            raise K8sApiError(f"the API server address {endpoint.host!r} is not an http(s) URL: set host or the "
                              "kubeconfig's cluster server to https://<address>:<port>")
        headers = {"Accept": "application/json", "User-Agent": "velocity.platform"}
        if endpoint.token:
            headers["Authorization"] = "Bearer " + endpoint.token
        elif endpoint.basic:
            headers.update(urllib3.make_headers(basic_auth=endpoint.basic))
        self.headers = headers
        # Room for the concurrent requests of manifest_apply (k8s/apply.py), each on its own kept-alive connection.
        pool = dict(num_pools=4, maxsize=PARALLEL_REQUESTS)
        if scheme == "https":
            try:
                pool["ssl_context"] = tls_context(endpoint)
            except (OSError, ssl.SSLError, ValueError) as exc:
                raise K8sApiError(f"cannot set up TLS for the Kubernetes API at {endpoint.host}: {exc}") from None
            pool["cert_reqs"] = "CERT_REQUIRED" if endpoint.verify else "CERT_NONE"
            if endpoint.server_name:
                pool["server_hostname"] = endpoint.server_name
            if not endpoint.verify:
                pool["assert_hostname"] = False
                # Verification is off because the task said so: no warning per request (set once, for the process;
                # warnings.catch_warnings around each request would not be safe with the concurrent requests).
                import warnings

                warnings.filterwarnings("ignore", category=urllib3.exceptions.InsecureRequestWarning)
        self.http = urllib3.ProxyManager(endpoint.proxy, **pool) if endpoint.proxy else urllib3.PoolManager(**pool)
        self._discovery = {}
        self._resources = {}
        self._lock = threading.Lock()
        self._refresh_lock = threading.Lock()
        self.token_refreshes = 0
        self.refresh_failure = None

    @classmethod
    def from_params(cls, params, field_manager=FIELD_MANAGER):
        try:
            return cls(resolve_endpoint(**connection_options(params)), field_manager=field_manager)
        except ConnectionError_ as exc:
            raise K8sApiError(str(exc)) from None

    def close(self):
        try:
            self.http.clear()
        except Exception:  # noqa: S110 - closing is best effort, the task result is already decided
            pass

    # -- transport -------------------------------------------------------------------------------------

    def request(self, method, path, query=None, body=None, content_type="application/json"):
        """(status, reason, raw body) of one request; raises urllib3's errors when no answer comes.

        A 401 with a token that can be fetched again (see the module docstring) fetches it and sends the request
        once more: the API server refuses a request with a bad token before acting on it, so it is safe to repeat.
        """
        url = self.host + path + ("?" + urlencode(query) if query else "")
        data = json.dumps(body).encode("utf-8") if body is not None else None

        def send():
            headers = sent_with if body is None else dict(sent_with, **{"Content-Type": content_type})
            return self.http.request(method, url, body=data, headers=headers, timeout=self.timeout)

        sent_with = self.headers
        response = send()
        if response.status == 401 and self._fresh_token(sent_with):
            sent_with = self.headers
            response = send()
        return response.status, response.reason, response.data

    def _token_note(self):
        """What a 401's message adds about the token: whether a fresh one was tried."""
        if self.endpoint.refresh is None:
            return ""
        if self.refresh_failure:
            return f" The token was refused and {self.refresh_failure}."
        return " The token was refused, and so was the one its source gives now (tokenFile, exec plugin or " \
               "service account token)."

    def _fresh_token(self, sent_with):
        """After a 401: put a fresh token in the headers; whether it differs from the one ``sent_with`` had.

        One refresh for the concurrent requests refused together: a request whose token was already replaced
        retries with the replacement."""
        refresh = self.endpoint.refresh
        if refresh is None:
            return False
        with self._refresh_lock:
            if self.headers is not sent_with:
                return True
            try:
                token = refresh()
            except Exception as exc:  # a token file gone, an exec plugin that fails: the 401 is reported
                # Its type only: a plugin's message may quote what it was given or printed.
                self.refresh_failure = f"fetching a fresh token failed ({type(exc).__name__})"
                return False
            if not token or self.headers.get("Authorization") == "Bearer " + token:
                return False
            self.headers = dict(self.headers, Authorization="Bearer " + token)
            self.token_refreshes += 1
            self.refresh_failure = None
            return True

    def call(self, action, obj_ref, method, path, query=None, body=None, content_type="application/json",
             missing_ok=False):
        """The decoded answer of one request; 404 gives None when missing_ok; other errors raise K8sApiError."""
        try:
            status, reason, data = self.request(method, path, query, body, content_type)
        except Exception as exc:  # refused, reset, TLS, timeouts: urllib3's errors
            raise self.unreachable(f"{action} of {obj_ref}", exc) from None
        if status == 404 and missing_ok:
            return None
        if status >= 400:
            raise api_error(ApiStatusError(status, reason, data.decode("utf-8", "replace")), action, obj_ref,
                            self._token_note() if status == 401 else "")
        try:
            return json.loads(data) if data else {}
        except ValueError:
            raise K8sApiError(f"{obj_ref}: {action} got an answer that is not JSON (HTTP {status}) from "
                              f"{self.host}: is this the Kubernetes API?") from None

    def unreachable(self, what, exc):
        reason = getattr(exc, "reason", None) or exc  # MaxRetryError carries the real cause
        return K8sApiError(f"{what} failed: cannot reach the Kubernetes API at {self.host}: {reason}",
                           unreachable=True)

    # -- discovery -------------------------------------------------------------------------------------

    def resource(self, api_version, kind):
        cache_key = (api_version, kind)
        with self._lock:
            if cache_key in self._resources:
                return self._resources[cache_key]
            if api_version not in self._discovery:
                doc = self.call("discovery", f"{api_version} {kind}", "GET", group_version_path(api_version),
                                missing_ok=True)
                self._discovery[api_version] = doc
            doc = self._discovery[api_version]
            for entry in (doc or {}).get("resources") or []:
                if entry.get("kind") == kind and "/" not in entry.get("name", "/"):
                    self._resources[cache_key] = Resource(api_version, entry)
                    return self._resources[cache_key]
        raise K8sApiError(f"the API server does not serve kind {kind} in {api_version} (is the CRD "
                          "installed, is the apiVersion right?)")

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
        with self._lock:
            self._discovery = {}
            self._resources = {}

    def namespaced(self, obj):
        return self.resource(obj["apiVersion"], obj["kind"]).namespaced

    # -- calls -----------------------------------------------------------------------------------------

    def get(self, api_version, kind, name, namespace=None):
        res = self.resource(api_version, kind)
        return self.call("get", f"{kind} {namespace or ''}/{name}", "GET", res.path(namespace, name), missing_ok=True)

    def get_obj(self, obj):
        meta = obj["metadata"]
        return self.get(obj["apiVersion"], obj["kind"], meta["name"], meta.get("namespace"))

    def list(self, api_version, kind, namespace=None, label_selector=None, field_selector=None):
        res = self.resource(api_version, kind)
        query = {}
        if label_selector:
            query["labelSelector"] = label_selector
        if field_selector:
            query["fieldSelector"] = field_selector
        result = self.call("list", f"{kind} in {namespace or 'cluster'}", "GET", res.path(namespace), query)
        return result.get("items") or []

    def apply(self, obj, dry_run=False, force=False):
        res = self.resource(obj["apiVersion"], obj["kind"])
        meta = obj["metadata"]
        query = {"fieldManager": self.field_manager, "force": "true" if force else "false"}
        if dry_run:
            query["dryRun"] = "All"
        return self.call("server-side dry run" if dry_run else "server-side apply", ref(obj), "PATCH",
                         res.path(meta.get("namespace"), meta["name"]), query, obj,
                         content_type="application/apply-patch+yaml")

    def create(self, obj, dry_run=False):
        res = self.resource(obj["apiVersion"], obj["kind"])
        query = {"fieldManager": self.field_manager}
        if dry_run:
            query["dryRun"] = "All"
        return self.call("dry-run create" if dry_run else "create", ref(obj), "POST",
                         res.path(obj["metadata"].get("namespace")), query, obj)

    def delete(self, obj, propagation="Background"):
        res = self.resource(obj["apiVersion"], obj["kind"])
        meta = obj["metadata"]
        result = self.call("delete", ref(obj), "DELETE", res.path(meta.get("namespace"), meta["name"]),
                           {"propagationPolicy": propagation}, missing_ok=True)
        return result is not None

    def json_patch(self, obj, patch):
        res = self.resource(obj["apiVersion"], obj["kind"])
        meta = obj["metadata"]
        return self.call("patch", ref(obj), "PATCH", res.path(meta.get("namespace"), meta["name"]),
                         {"fieldManager": self.field_manager}, patch, content_type="application/json-patch+json")
