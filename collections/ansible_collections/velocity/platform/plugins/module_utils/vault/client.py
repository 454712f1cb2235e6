# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Velocity platform team
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one place where the Vault connection is set up and hvac's errors become ours.

One :class:`VaultClient` is built per task. It wraps one ``hvac.Client`` over
one ``requests.Session`` whose adapter holds a connection pool sized to the
parallel readers and retries with backoff (``urllib3.Retry``, as
community.hashi_vault does). The task logs in once; every read reuses the token.

hvac does the HTTP; :meth:`VaultClient.call` runs each hvac call and turns
``hvac.exceptions`` and ``requests`` errors into :class:`VaultError`
subclasses whose messages name the address, the path and what to do. They
never contain a token or a secret value: a Vault error body is reduced to its
``errors`` strings, which Vault writes for humans and which do not echo
request data.

Two hvac defaults are overridden on purpose, because each silently changes
what the operator asked for:

- a session given to ``hvac.Client`` wins over its ``verify`` and ``cert``
  arguments, so the CA path (or ``validate_certs=false``) is set on the
  session itself, and passed again per request (a session-level value alone
  loses against ``REQUESTS_CA_BUNDLE``, requests#3829);
- ``hvac.Client(token=None)`` reads ``VAULT_TOKEN`` or ``~/.vault-token``, and
  ``cert=None`` reads ``VAULT_CLIENT_CERT``: the client is always given an
  explicit token (empty until a login) and an explicit certificate, so only
  the options resolved by :meth:`VaultConnection.from_options` are used.
"""
from __future__ import annotations

import http.client
import json
import os
import random
import ssl
import threading
from dataclasses import dataclass, field
from typing import Optional
from urllib.parse import urlsplit

try:
    import requests
    from requests.adapters import HTTPAdapter
    from urllib3.util.retry import Retry

    HAS_REQUESTS = True
    REQUESTS_IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover - exercised only without requests
    HTTPAdapter = Retry = object
    HAS_REQUESTS = False
    REQUESTS_IMPORT_ERROR = exc

try:
    import hvac
    from hvac import exceptions as hvac_exceptions

    HAS_HVAC = True
    HVAC_IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover - exercised only without hvac
    hvac = hvac_exceptions = None
    HAS_HVAC = False
    HVAC_IMPORT_ERROR = exc


class VaultError(Exception):
    """Base class: an expected failure, reported without a traceback."""


class VaultConfigError(VaultError):
    """Options are missing or inconsistent (checked before any request)."""


class VaultUnreachable(VaultError):
    """No HTTP answer: connection refused, DNS, TLS handshake, timeout."""


class VaultSealed(VaultError):
    """The server answers but is sealed (or not initialised)."""


class VaultPermissionDenied(VaultError):
    """HTTP 403 with a valid token: the policy does not allow the path."""


class VaultTokenInvalid(VaultError):
    """HTTP 403 and the token itself is unknown, expired or revoked."""


class VaultAuthError(VaultError):
    """A login failed (wrong role, secret id, JWT, service-account token)."""


class VaultNotFound(VaultError):
    """HTTP 404: the path does not exist (or the version was deleted)."""


class VaultKeyMissing(VaultError):
    """The secret exists but does not have the requested key."""


class VaultKVVersionMismatch(VaultError):
    """The mount is not the KV version the caller expects."""


class VaultRequestError(VaultError):
    """Any other HTTP error answer."""

    def __init__(self, message: str, status: int = 0):
        super().__init__(message)
        self.status = status


# Statuses worth retrying: rate limit, transient server errors, and 412
# (performance standby not caught up yet). 503 is not retried: it means sealed.
RETRY_STATUSES = frozenset({412, 429, 500, 502, 504})


@dataclass
class VaultConnection:
    """Where and how to talk to Vault. Environment fallbacks are applied by :meth:`from_options`."""

    url: str
    namespace: Optional[str] = None
    ca_cert: Optional[str] = None
    validate_certs: bool = True
    client_cert: Optional[str] = None
    client_key: Optional[str] = None
    timeout: float = 30.0
    retries: int = 3
    retry_backoff: float = 0.5
    max_workers: int = 8
    proxies: dict = field(default_factory=dict)

    @classmethod
    def from_options(cls, options: dict, environ: Optional[dict] = None) -> "VaultConnection":
        env = os.environ if environ is None else environ
        url = options.get("url") or env.get("VAULT_ADDR") or env.get("BAO_ADDR")
        if not url:
            raise VaultConfigError(
                "no Vault address: set the 'url' option (alias vault_addr) or the VAULT_ADDR environment variable"
            )
        ca_cert = options.get("ca_cert") or env.get("VAULT_CACERT") or env.get("BAO_CACERT")
        validate = options.get("validate_certs")
        if validate is None:
            skip = env.get("VAULT_SKIP_VERIFY", "").lower() in ("1", "true", "yes")
            validate = not skip
        if ca_cert and not os.path.isfile(ca_cert):
            raise VaultConfigError(f"ca_cert (or VAULT_CACERT) points at {ca_cert}, which is not a file")
        return cls(
            url=url.rstrip("/"),
            namespace=options.get("namespace") or env.get("VAULT_NAMESPACE") or env.get("BAO_NAMESPACE") or None,
            ca_cert=ca_cert,
            validate_certs=bool(validate),
            client_cert=options.get("client_cert"),
            client_key=options.get("client_key"),
            timeout=float(options.get("timeout") or 30),
            retries=int(options.get("retries") if options.get("retries") is not None else 3),
            retry_backoff=float(options.get("retry_backoff") if options.get("retry_backoff") is not None else 0.5),
            max_workers=int(options.get("max_workers") or 8),
        )

    @property
    def verify(self):
        """What requests' ``verify`` gets: the CA path, or whether to check the certificate at all."""
        if not self.validate_certs:
            return False
        return self.ca_cert or True

    @property
    def cert(self):
        """What requests' ``cert`` gets; ``()`` (not None) so that hvac does not read VAULT_CLIENT_CERT."""
        if not self.client_cert:
            return ()
        return (self.client_cert, self.client_key) if self.client_key else self.client_cert


class BackoffRetry(Retry):
    """urllib3's Retry with the backoff our options document: the first retry waits ``backoff_factor``
    seconds, each next one twice as long, plus up to a quarter of jitter (urllib3 does not wait
    before the first retry, and its jitter is absolute)."""

    def get_backoff_time(self) -> float:
        errors = 0
        for attempt in reversed(self.history):
            if attempt.redirect_location is not None:
                break
            errors += 1
        if errors == 0:
            return 0.0
        delay = self.backoff_factor * (2 ** (errors - 1))
        cap = getattr(self, "backoff_max", 120)  # an attribute since urllib3 2.0; 1.26 caps at 120 s
        return min(cap, delay + random.uniform(0, delay / 4))  # noqa: S311 - jitter, not cryptography


def retry_policy(retries: int, backoff: float) -> "BackoffRetry":
    common = dict(
        total=retries, connect=retries, read=retries, status=retries,
        backoff_factor=backoff,
        status_forcelist=sorted(RETRY_STATUSES),
        # The last answer goes back to hvac, which raises for its status; we map that.
        raise_on_status=False,
    )
    try:
        # Every verb, as community.hashi_vault does: Vault's writes here (logins, lease
        # lookups and renewals) are safe to repeat. A TLS failure (unknown CA, wrong
        # name) counts as "other": retrying cannot fix it.
        return BackoffRetry(allowed_methods=None, other=0, **common)
    except TypeError:  # urllib3 older than 1.26 on a managed node
        return BackoffRetry(method_whitelist=None, **common)


class CountingAdapter(HTTPAdapter):
    """An HTTPAdapter that counts the requests sent through it (for the task's ``stats``)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.count = 0
        self._lock = threading.Lock()

    def send(self, request, **kwargs):
        with self._lock:
            self.count += 1
        return super().send(request, **kwargs)


def build_session(connection: VaultConnection) -> "requests.Session":
    """One session for the task: a pool sized to the parallel readers, retries, TLS settings, namespace."""
    session = requests.Session()
    # One pool sized for the parallel readers, so threads share connections
    # instead of opening and dropping extra ones.
    adapter = CountingAdapter(pool_connections=1, pool_maxsize=max(connection.max_workers, 1),
                              max_retries=retry_policy(connection.retries, connection.retry_backoff))
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    # hvac takes verify and cert from a session it is given, not from its arguments.
    session.verify = connection.verify
    session.cert = connection.cert or None
    return session


_HTTP_STATUS = {}
if HAS_HVAC:
    _HTTP_STATUS = {
        hvac_exceptions.InvalidRequest: 400, hvac_exceptions.Unauthorized: 401, hvac_exceptions.Forbidden: 403,
        hvac_exceptions.InvalidPath: 404, hvac_exceptions.PreconditionFailed: 412,
        hvac_exceptions.RateLimitExceeded: 429, hvac_exceptions.InternalServerError: 500,
        hvac_exceptions.VaultNotInitialized: 501, hvac_exceptions.BadGateway: 502, hvac_exceptions.VaultDown: 503,
    }


def _status(exc) -> int:
    for kind, status in _HTTP_STATUS.items():
        if isinstance(exc, kind):
            return status
    return 0


def _error_strings(exc) -> str:
    return "; ".join(str(e) for e in (getattr(exc, "errors", None) or []) if e)[:500]


def _short(exc: Exception) -> str:
    text = str(exc)
    return text if len(text) < 200 else text[:200] + "..."


def _ready(conn) -> bool:
    """Whether an opened, unused connection can carry a request.

    A TLS 1.3 server sends session tickets after the handshake; nothing reads them on a connection that
    has sent no request, and urllib3 takes a socket with unread data for one the server closed (and
    opens another). They are read here, without blocking; a connection that the server closed, or that
    holds anything else, is not kept.
    """
    sock = conn.sock
    if sock is None:
        return False
    timeout = sock.gettimeout()
    sock.setblocking(False)
    try:
        sock.recv(1)  # returns only when the server closed the connection or sent unasked data
    except (ssl.SSLWantReadError, BlockingIOError):
        return True  # nothing (more) to read: the tickets, if any, are consumed
    except OSError:
        return False
    finally:
        sock.settimeout(timeout)
    return False


_TICKET_TOLERANT = {}  # urllib3 connection class -> its subclass that reads late TLS session tickets


def _tolerate_late_tickets(conn) -> None:
    """Make the pool's liveness check on ``conn`` read TLS records first, as :func:`_ready` does.

    The server's session tickets can arrive after :meth:`Opening.finish` judged the connection (a busy
    server sends them late); urllib3 would then take the readable socket for a closed one when the pool
    hands it out, and open another. Judged by :func:`_ready` instead, the tickets are read and the
    connection is used; one that the server closed, or that holds unasked data, still counts as dropped.
    """
    base = type(conn)
    if "is_connected" not in dir(base):  # an urllib3 without the property: leave its check alone
        return
    tolerant = _TICKET_TOLERANT.get(base)
    if tolerant is None:
        tolerant = type(base.__name__, (base,), {"is_connected": property(_ready)})
        _TICKET_TOLERANT[base] = tolerant
    conn.__class__ = tolerant


class Opening:
    """Connections being opened in the background for a pool (:meth:`VaultClient.open_connections`).

    Each is connected by its own thread and held until :meth:`finish`, then returned to the pool; held
    meanwhile, so that the login in flight gets a slot of its own instead of one of these.
    """

    def __init__(self, pool=None, conns: Optional[list] = None, timeout: float = 30.0):
        self.pool = pool
        self.timeout = timeout
        self._lock = threading.Lock()
        self._abandoned = False
        self._opened: list = []
        self._threads = [threading.Thread(target=self._open, args=(conn,), name="vault-connect", daemon=True)
                         for conn in conns or []]
        for thread in self._threads:
            thread.start()

    def _open(self, conn) -> None:
        try:
            conn.timeout = self.timeout
            conn.connect()
        except Exception:  # pylint: disable=broad-except  # best effort: the request that needs it reports
            conn.close()
            conn = None
        with self._lock:
            if self._abandoned and conn is not None:
                conn.close()
            else:
                self._opened.append(conn)

    def finish(self) -> None:
        """Wait for every connection (each attempt is bounded by the connect timeout) and put them in the pool.

        A connection that failed gives its slot back empty (urllib3's own way: ``_put_conn(None)``).
        """
        for thread in self._threads:
            thread.join(self.timeout)
        with self._lock:
            opened, self._opened = self._opened, []
            self._abandoned = True  # one still connecting after the wait is closed, not kept
        for conn in opened:
            if conn is not None and not _ready(conn):
                conn.close()
                conn = None
            if conn is not None:
                _tolerate_late_tickets(conn)
            self.pool._put_conn(conn)  # pylint: disable=protected-access

    def abandon(self) -> None:
        """The task failed: close what was opened, keep nothing."""
        with self._lock:
            self._abandoned = True
            opened, self._opened = self._opened, []
        for conn in opened:
            if conn is not None:
                conn.close()


# An answer :meth:`VaultClient.get_pipelined` leaves to the ordinary path (no answer, or not 200/404).
UNANSWERED = object()


class _SharedReader:
    """One buffered reader of a socket for every ``http.client.HTTPResponse`` read from it in turn.

    A response normally makes its own reader and closes it once read: with pipelined answers that
    would lose the next answers already buffered. Each response gets this object as its "socket";
    its reader outlives them all (``close`` is a no-op, :meth:`release` drops it).
    """

    def __init__(self, sock):
        self._reader = sock.makefile("rb")

    def makefile(self, *args, **kwargs):  # pylint: disable=unused-argument  # http.client's call
        return self

    def __getattr__(self, name):
        return getattr(self._reader, name)

    def close(self) -> None:
        """Left open for the next answer."""

    def release(self) -> None:
        self._reader.close()


class VaultClient:
    """One hvac client, one session, one token for the task; every hvac call goes through :meth:`call`."""

    def __init__(self, connection: VaultConnection, token: Optional[str] = None):
        if not HAS_REQUESTS:
            raise VaultConfigError("the Python library 'requests' is required on the host that runs this module")
        if not HAS_HVAC:
            raise VaultConfigError("the Python library 'hvac' is required on the host that runs this module "
                                   "(pip install hvac)")
        self.connection = connection
        self.login_count = 0
        self.session = build_session(connection)
        self._http_adapter = self.session.get_adapter(connection.url)
        self.hvac = hvac.Client(
            url=connection.url,
            token=token or "",  # never None: hvac would fall back to VAULT_TOKEN or ~/.vault-token
            verify=connection.verify,
            cert=connection.cert,
            timeout=connection.timeout,
            namespace=connection.namespace,
            session=self.session,
        )

    @property
    def token(self) -> str:
        return self.hvac.token or ""

    @token.setter
    def token(self, value: Optional[str]) -> None:
        self.hvac.token = value or ""

    @property
    def request_count(self) -> int:
        return getattr(self._http_adapter, "count", 0)

    def close(self) -> None:
        self.session.close()

    # -- connections opened ahead of the reads -------------------------------------
    def open_connections(self, count: int) -> Opening:
        """Start opening ``count`` connections to the server in the background, for the session's pool.

        The reads that follow a login run in parallel, and each new connection costs a TCP and, over
        https, a TLS handshake: two round trips that would otherwise start only once the login has
        answered. Opened while the login is in flight, they are ready when the reads start, so one login
        and N parallel reads take the login's three round trips plus one per wave of reads. Bounded by
        the pool (at most ``max_workers - 1`` besides the login's own connection) and best effort: one
        that cannot be opened is not kept, and the request that then needs it opens one and reports any
        error. Not done through a proxy, where the pool is the proxy's. Call :meth:`Opening.finish` once
        the login has answered (or :meth:`Opening.abandon` when it failed).
        """
        count = min(count, max(self.connection.max_workers, 1) - 1)
        pool = self._pool() if count > 0 else None
        if pool is None:
            return Opening()
        # The slots are taken here, before any thread runs, from urllib3's own checkout.
        conns = [pool._get_conn() for dummy in range(count)]  # pylint: disable=protected-access
        return Opening(pool, conns, self.connection.timeout)

    def _pool(self):
        """The urllib3 pool that hvac's requests to the server will use, or None (proxy, older requests)."""
        get_pool = getattr(self._http_adapter, "get_connection_with_tls_context", None)
        if get_pool is None:  # requests older than 2.32: no way to name the pool a request will get
            return None
        url = self.connection.url
        # The settings every hvac request gets: verify and cert as the client passes them, merged with
        # the environment (REQUESTS_CA_BUNDLE, proxies) exactly as Session.request merges them.
        settings = self.session.merge_environment_settings(url, {}, None, self.connection.verify,
                                                           self.connection.cert)
        if requests.utils.select_proxy(url, settings["proxies"]):
            return None
        try:
            return get_pool(requests.Request("GET", url).prepare(), settings["verify"], proxies=settings["proxies"],
                            cert=settings["cert"])
        except Exception:  # pylint: disable=broad-except  # an optimisation: the request reports the problem
            return None

    # -- reads sent back to back on one connection ---------------------------------
    def get_pipelined(self, api_paths: list) -> Optional[list]:
        """GET every ``api_paths`` entry (``/v1/...``, query included) on one connection, all sent at once.

        HTTP/1.1 pipelining: the requests leave back to back and the server answers them in order, so N
        reads cost one round trip and no more than the one TLS handshake of the connection (usually the
        login's, from the pool). Returns one entry per path, in order: the decoded JSON of a 200, None for
        a 404, or :data:`UNANSWERED` for any other answer and for every path after a connection problem
        (the caller sends those the ordinary way, with retries and error mapping, so a server or a proxy
        that closes the connection, or answers only the first, costs one fall-back and nothing else).
        Returns None, having sent nothing, when no direct connection can be had (behind a proxy), or when
        a header value has a line break or NUL (the ordinary path refuses it with its own error).
        """
        base = urlsplit(self.connection.url)
        if any(char in value for value in (self.token, self.connection.namespace or "", base.netloc)
               for char in "\r\n\0"):
            return None
        pool = self._pool()
        if pool is None or not api_paths:
            return None
        conn = pool._get_conn()  # pylint: disable=protected-access  # the slot goes back below, as urllib3 does
        reader = None
        answers: list = []
        reusable = False
        try:
            if conn.sock is None:
                conn.timeout = self.connection.timeout
                conn.connect()
            conn.sock.settimeout(self.connection.timeout)
            head = [f"Host: {base.netloc}", "Accept: application/json", "Accept-Encoding: identity",
                    "User-Agent: velocity.platform", "X-Vault-Request: true"]
            if self.token:
                head.append(f"X-Vault-Token: {self.token}")
            if self.connection.namespace:
                head.append(f"X-Vault-Namespace: {self.connection.namespace}")
            head_bytes = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1")
            prefix = base.path.rstrip("/")
            conn.sock.sendall(b"".join(f"GET {prefix}{path} HTTP/1.1\r\n".encode("latin-1") + head_bytes
                                       for path in api_paths))
            with self._http_adapter._lock:  # pylint: disable=protected-access  # the counter's own lock
                self._http_adapter.count += len(api_paths)
            reader = _SharedReader(conn.sock)
            for dummy in api_paths:
                response = http.client.HTTPResponse(reader, method="GET")
                response.begin()
                body = response.read()
                if response.status == 200:
                    answers.append(json.loads(body))
                elif response.status == 404:
                    answers.append(None)
                else:
                    answers.append(UNANSWERED)
                if response.will_close:
                    break
            else:
                reusable = True  # every answer read to its end: the connection is as after ordinary requests
        except (OSError, http.client.HTTPException, ValueError):
            reusable = False  # the answers so far stand; the rest go the ordinary way
        finally:
            if reader is not None:
                reader.release()
            if not reusable:
                conn.close()
            pool._put_conn(conn)  # pylint: disable=protected-access
        return answers + [UNANSWERED] * (len(api_paths) - len(answers))

    def __enter__(self) -> "VaultClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- the one place where hvac and requests errors become ours ---------------
    def call(self, vault_path: str, operation, *args, **kwargs):
        """Run one hvac call about ``vault_path`` (named in errors); return its result or raise a :class:`VaultError`.

        ``allow_404=True`` returns None for a missing path instead of raising.
        """
        path = vault_path
        allow_404 = kwargs.pop("allow_404", False)
        try:
            return operation(*args, **kwargs)
        except hvac_exceptions.InvalidPath as exc:
            if allow_404:
                return None
            error = self._translate(exc, path)
        except hvac_exceptions.VaultError as exc:
            error = self._translate(exc, path)
        except requests.exceptions.RequestException as exc:
            error = self._unreachable(exc)
        raise error

    def _unreachable(self, exc: Exception) -> VaultError:
        url = self.connection.url
        if isinstance(exc, requests.exceptions.SSLError):
            return VaultUnreachable(
                f"TLS error talking to Vault at {url}: {_short(exc)}. Set ca_cert (or VAULT_CACERT) to the CA that "
                "signed the server certificate, or validate_certs=false for a throwaway dev server")
        return VaultUnreachable(
            f"Vault at {url} is unreachable after {self.connection.retries + 1} attempt(s) ({_short(exc)}). Check "
            "url/VAULT_ADDR and that the server runs (locally: scripts/services/vault.sh start)")

    def _translate(self, exc, path: str, login: Optional[str] = None) -> VaultError:
        status = _status(exc)
        detail = _error_strings(exc)
        url = self.connection.url
        if status == 503:
            state = self.seal_state()
            if state in ("sealed", "uninitialized"):
                return VaultSealed(
                    f"Vault at {url} is {state}: unseal it (vault operator unseal; locally: scripts/services/vault.sh "
                    "unseal file) and retry")
        suffix = ": " + detail if detail else ""
        if login and status in (400, 401, 403, 404, 500):
            return VaultAuthError(
                f"{login} login at {url}/v1/{path} failed (HTTP {status}{suffix}). Check the role name, the "
                "credentials and that the auth method is enabled at that mount")
        if status == 403 and self.token:
            if self._token_is_invalid():
                return VaultTokenInvalid(
                    f"the Vault token was refused at {url} (on '{path}'): it is unknown, expired or revoked. Log in "
                    "again (auth_method) or provide a fresh token")
            return VaultPermissionDenied(
                f"permission denied on '{path}' at {url}: the token's policies do not allow this path. Grant it in "
                "the policy (see artifacts/security/secrets-management-plan.md) or use a role that has it")
        if status == 404:
            return VaultNotFound(f"nothing at '{path}' in Vault {url} (404){suffix}")
        answer = f"HTTP {status}" if status else "an unexpected HTTP status"
        return VaultRequestError(f"Vault answered {answer} for '{path}'{suffix}", status=status)

    def _token_is_invalid(self) -> bool:
        try:
            self.hvac.auth.token.lookup_self()
        except hvac_exceptions.Forbidden:
            return True
        except (hvac_exceptions.VaultError, requests.exceptions.RequestException):
            return False
        return False

    # -- helpers -----------------------------------------------------------------
    def seal_state(self) -> str:
        try:
            data = self.hvac.sys.read_seal_status()
        except (hvac_exceptions.VaultError, requests.exceptions.RequestException):
            return "unknown"
        if not isinstance(data, dict):
            return "unknown"
        if not data.get("initialized", True):
            return "uninitialized"
        return "sealed" if data.get("sealed") else "unsealed"

    def login(self, method_name: str, vault_path: str, operation, **kwargs) -> dict:
        """Run an hvac login call; keep the client token; return the ``auth`` block (without the token)."""
        path = vault_path
        self.login_count += 1
        try:
            response = operation(use_token=False, **kwargs)
        except hvac_exceptions.VaultError as exc:
            raise self._translate(exc, path, login=method_name) from None
        except requests.exceptions.RequestException as exc:
            raise self._unreachable(exc) from None
        auth = (response if isinstance(response, dict) else {}).get("auth") or {}
        if not auth.get("client_token"):
            raise VaultAuthError(f"{method_name} login at {path} returned no token")
        self.token = auth["client_token"]
        return {k: v for k, v in auth.items() if k not in ("client_token", "accessor")}

    def lookup_self(self) -> dict:
        return (self.call("auth/token/lookup-self", self.hvac.auth.token.lookup_self) or {}).get("data") or {}

    # Generic paths, for what hvac has no method for (sys/internal/ui/mounts) and for tools and tests.
    def read(self, path: str, allow_404: bool = False) -> Optional[dict]:
        result = self.call(path, self.hvac.read, path)
        if result is None and not allow_404:
            raise VaultNotFound(f"nothing at '{path}' in Vault {self.connection.url} (404)")
        return result

    def write(self, path: str, data: Optional[dict] = None) -> dict:
        result = self.call(path, self.hvac.write_data, path, data=data or {})
        return result if isinstance(result, dict) else {}

    def delete(self, path: str) -> None:
        self.call(path, self.hvac.delete, path)

    def list(self, path: str) -> list:
        result = self.call(path, self.hvac.list, path)
        return ((result or {}).get("data") or {}).get("keys") or []
