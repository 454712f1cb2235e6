# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Velocity platform team
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A small Vault/OpenBao HTTP client: one session, retries, clear errors.

One :class:`VaultClient` is built per task. It keeps a single
``requests.Session`` (one connection pool, reused by every read and by the
worker threads that read in parallel) and the token obtained by one login.

Errors are :class:`VaultError` subclasses whose messages name the address,
the path and what to do. They never contain a token or a secret value: the
body of a Vault error response is reduced to its ``errors`` strings, which
Vault writes for humans and which do not echo request data.
"""
from __future__ import annotations

import os
import random
import time
from dataclasses import dataclass, field
from typing import Optional

try:
    import requests
    from requests.adapters import HTTPAdapter

    HAS_REQUESTS = True
    REQUESTS_IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover - exercised only without requests
    HAS_REQUESTS = False
    REQUESTS_IMPORT_ERROR = exc


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
# (performance standby not caught up yet). 503 is examined first (sealed).
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
            raise VaultConfigError("ca_cert (or VAULT_CACERT) points at %s, which is not a file" % ca_cert)
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


def _error_strings(response) -> str:
    try:
        errors = response.json().get("errors") or []
    except ValueError:
        errors = []
    return "; ".join(str(e) for e in errors if e)[:500]


class VaultClient:
    """HTTP calls to ``/v1/...`` with one session, one token, retries and error mapping."""

    def __init__(self, connection: VaultConnection, token: Optional[str] = None, sleep=time.sleep):
        if not HAS_REQUESTS:
            raise VaultConfigError("the Python library 'requests' is required on the host that runs this module")
        self.connection = connection
        self.token = token
        self.request_count = 0
        self.login_count = 0
        self._sleep = sleep
        self.session = requests.Session()
        # One pool sized for the parallel readers, so threads share connections
        # instead of opening and dropping extra ones.
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=max(connection.max_workers, 1))
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)
        # verify goes with every request: a Session-level value loses against
        # REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE from the environment (requests#3829).
        self._verify = connection.ca_cert or connection.validate_certs
        if connection.client_cert:
            self.session.cert = (connection.client_cert, connection.client_key) if connection.client_key else connection.client_cert
        if connection.namespace:
            self.session.headers["X-Vault-Namespace"] = connection.namespace
        self.session.headers["X-Vault-Request"] = "true"

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> "VaultClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- low level -------------------------------------------------------
    def _send(self, method: str, path: str, body: Optional[dict], authenticated: bool):
        url = "%s/v1/%s" % (self.connection.url, path.lstrip("/"))
        headers = {}
        if authenticated:
            if not self.token:
                raise VaultConfigError("no Vault token: log in first (auth_method) or set token / VAULT_TOKEN")
            headers["X-Vault-Token"] = self.token
        attempt = 0
        while True:
            attempt += 1
            self.request_count += 1
            try:
                response = self.session.request(
                    method, url, json=body, headers=headers, timeout=self.connection.timeout, verify=self._verify
                )
            except requests.exceptions.SSLError as exc:
                raise VaultUnreachable(
                    "TLS error talking to Vault at %s: %s. Set ca_cert (or VAULT_CACERT) to the CA that signed the "
                    "server certificate, or validate_certs=false for a throwaway dev server" % (self.connection.url, _short(exc))
                ) from None
            except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
                if attempt <= self.connection.retries:
                    self._backoff(attempt)
                    continue
                raise VaultUnreachable(
                    "Vault at %s is unreachable after %d attempt(s) (%s). Check url/VAULT_ADDR and that the server runs "
                    "(locally: scripts/services/vault.sh start)" % (self.connection.url, attempt, _short(exc))
                ) from None
            if response.status_code in RETRY_STATUSES and attempt <= self.connection.retries:
                self._backoff(attempt)
                continue
            return response

    def _backoff(self, attempt: int) -> None:
        delay = self.connection.retry_backoff * (2 ** (attempt - 1))
        self._sleep(delay + random.uniform(0, delay / 4))  # noqa: S311 - jitter, not cryptography

    def request(self, method: str, path: str, body: Optional[dict] = None, authenticated: bool = True,
                allow_404: bool = False) -> Optional[dict]:
        response = self._send(method, path, body, authenticated)
        status = response.status_code
        if status in (200, 201):
            return response.json() if response.content else {}
        if status == 204:
            return {}
        if status == 404 and allow_404:
            return None
        self._raise_for(status, path, response, authenticated)
        return None  # pragma: no cover

    def _raise_for(self, status: int, path: str, response, authenticated: bool) -> None:
        detail = _error_strings(response)
        if status == 503:
            state = self.seal_state()
            if state in ("sealed", "uninitialized"):
                raise VaultSealed(
                    "Vault at %s is %s: unseal it (vault operator unseal; locally: scripts/services/vault.sh unseal file) "
                    "and retry" % (self.connection.url, state)
                )
        if status == 403 and authenticated:
            if self._token_is_invalid():
                raise VaultTokenInvalid(
                    "the Vault token was refused at %s (on '%s'): it is unknown, expired or revoked. Log in again "
                    "(auth_method) or provide a fresh token" % (self.connection.url, path)
                )
            raise VaultPermissionDenied(
                "permission denied on '%s' at %s: the token's policies do not allow this path. Grant it in the "
                "policy (see artifacts/security/secrets-management-plan.md) or use a role that has it" % (path, self.connection.url)
            )
        if status == 404:
            raise VaultNotFound("nothing at '%s' in Vault %s (404)%s" % (path, self.connection.url, ": " + detail if detail else ""))
        raise VaultRequestError(
            "Vault answered HTTP %d for '%s'%s" % (status, path, ": " + detail if detail else ""), status=status
        )

    def _token_is_invalid(self) -> bool:
        response = self._send("GET", "auth/token/lookup-self", None, True)
        return response.status_code == 403

    # -- helpers -----------------------------------------------------------
    def seal_state(self) -> str:
        try:
            response = self._send("GET", "sys/seal-status", None, False)
            data = response.json()
        except (VaultError, ValueError):
            return "unknown"
        if not data.get("initialized", True):
            return "uninitialized"
        return "sealed" if data.get("sealed") else "unsealed"

    def read(self, path: str, allow_404: bool = False) -> Optional[dict]:
        return self.request("GET", path, allow_404=allow_404)

    def write(self, path: str, data: Optional[dict] = None) -> Optional[dict]:
        return self.request("POST", path, data or {})

    def put(self, path: str, data: Optional[dict] = None) -> Optional[dict]:
        return self.request("PUT", path, data or {})

    def delete(self, path: str) -> Optional[dict]:
        return self.request("DELETE", path)

    def list(self, path: str) -> list:
        result = self.request("LIST", path, allow_404=True)
        return ((result or {}).get("data") or {}).get("keys") or []

    def login(self, path: str, body: dict, method_name: str) -> dict:
        """POST to an auth login path; keep the client token; return the ``auth`` block (without the token)."""
        response = self._send("POST", path, body, False)
        self.login_count += 1
        if response.status_code == 503:
            self._raise_for(503, path, response, False)
        if response.status_code in (400, 401, 403, 404, 500):
            detail = _error_strings(response)
            raise VaultAuthError(
                "%s login at %s/v1/%s failed (HTTP %d%s). Check the role name, the credentials and that the auth "
                "method is enabled at that mount"
                % (method_name, self.connection.url, path, response.status_code, ": " + detail if detail else "")
            )
        if response.status_code != 200:
            self._raise_for(response.status_code, path, response, False)
        auth = (response.json() or {}).get("auth") or {}
        if not auth.get("client_token"):
            raise VaultAuthError("%s login at %s returned no token" % (method_name, path))
        self.token = auth["client_token"]
        return {k: v for k, v in auth.items() if k not in ("client_token", "accessor")}

    def lookup_self(self) -> dict:
        return (self.read("auth/token/lookup-self") or {}).get("data") or {}


def _short(exc: Exception) -> str:
    text = str(exc)
    return text if len(text) < 200 else text[:200] + "..."
