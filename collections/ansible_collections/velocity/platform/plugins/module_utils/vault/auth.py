# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Velocity platform team
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Vault auth methods: one small class each, and a selector.

Each class names the options it reads, checks them in ``validate()`` without
any network call, and logs in with ``authenticate(client)`` through hvac's
login call for that method, which leaves the token on the client. A module
builds one client, authenticates once, and every read of the task reuses that
token (community.hashi_vault logs in per lookup; we do not).

Adding a method: a class here and one entry in ``AUTH_METHODS``.
"""
from __future__ import annotations

import os
from typing import Optional

from ansible_collections.velocity.platform.plugins.module_utils.vault.client import (
    VaultClient,
    VaultConfigError,
    VaultConnection,
)

DEFAULT_K8S_TOKEN_PATH = "/var/run/secrets/kubernetes.io/serviceaccount/token"  # noqa: S105 - a path, not a token


def _read_file(path: str, what: str) -> str:
    try:
        with open(os.path.expanduser(path)) as handle:
            value = handle.read().strip()
    except OSError as exc:
        raise VaultConfigError(f"cannot read {what} from {path}: {exc.strerror or exc}") from None
    if not value:
        raise VaultConfigError(f"{what} file {path} is empty")
    return value


class AuthMethod:
    NAME = ""
    OPTIONS: tuple = ()

    def __init__(self, options: dict, environ: Optional[dict] = None):
        self.options = options
        self.environ = os.environ if environ is None else environ

    def _mount(self, default: str) -> str:
        return (self.options.get("mount_point") or default).strip("/")

    def validate(self) -> None:
        raise NotImplementedError

    def authenticate(self, client: VaultClient) -> dict:
        raise NotImplementedError


class TokenAuth(AuthMethod):
    """A token given directly, from VAULT_TOKEN, or from a token file (e.g. the dev root-token file)."""

    NAME = "token"
    OPTIONS = ("token", "token_file")

    def validate(self) -> None:
        token = self.options.get("token") or self.environ.get("VAULT_TOKEN") or self.environ.get("BAO_TOKEN")
        if not token:
            path = self.options.get("token_file") or self.environ.get("VAULT_TOKEN_FILE")
            if path:
                token = _read_file(path, "token_file")
        if not token:
            raise VaultConfigError(
                "auth_method=token needs a token: set 'token', 'token_file' or the VAULT_TOKEN environment variable"
            )
        self._token = token

    def authenticate(self, client: VaultClient) -> dict:
        client.token = self._token
        # No login round trip: the first real request tells whether the token is good,
        # and a refused token is reported as expired/revoked by the client.
        return {}


class AppRoleAuth(AuthMethod):
    NAME = "approle"
    OPTIONS = ("role_id", "secret_id", "mount_point")

    def validate(self) -> None:
        if not self.options.get("role_id"):
            raise VaultConfigError("auth_method=approle needs role_id (and secret_id unless the role binds none)")

    def authenticate(self, client: VaultClient) -> dict:
        mount = self._mount("approle")
        return client.login("AppRole", f"auth/{mount}/login", client.hvac.auth.approle.login,
                            role_id=self.options["role_id"], secret_id=self.options.get("secret_id") or None,
                            mount_point=mount)


class JwtAuth(AuthMethod):
    """JWT/OIDC auth with a signed JWT (CI job token, workload identity...)."""

    NAME = "jwt"
    OPTIONS = ("role_id", "jwt", "jwt_file", "mount_point")

    def validate(self) -> None:
        if not self.options.get("role_id"):
            raise VaultConfigError("auth_method=jwt needs role_id (the name of the JWT auth role)")
        jwt = self.options.get("jwt")
        if not jwt and self.options.get("jwt_file"):
            jwt = _read_file(self.options["jwt_file"], "jwt_file")
        if not jwt:
            raise VaultConfigError("auth_method=jwt needs 'jwt' or 'jwt_file'")
        self._jwt = jwt

    def authenticate(self, client: VaultClient) -> dict:
        mount = self._mount("jwt")
        return client.login("JWT", f"auth/{mount}/login", client.hvac.auth.jwt.jwt_login,
                            role=self.options["role_id"], jwt=self._jwt, path=mount)


class KubernetesAuth(AuthMethod):
    """Kubernetes auth with a service-account token; Vault checks it with the TokenReview API."""

    NAME = "kubernetes"
    OPTIONS = ("role_id", "jwt", "kubernetes_token_path", "mount_point")

    def validate(self) -> None:
        if not self.options.get("role_id"):
            raise VaultConfigError("auth_method=kubernetes needs role_id (the name of the Kubernetes auth role)")
        jwt = self.options.get("jwt")
        if not jwt:
            jwt = _read_file(self.options.get("kubernetes_token_path") or DEFAULT_K8S_TOKEN_PATH,
                             "kubernetes_token_path (service-account token)")
        self._jwt = jwt

    def authenticate(self, client: VaultClient) -> dict:
        mount = self._mount("kubernetes")
        return client.login("Kubernetes", f"auth/{mount}/login", client.hvac.auth.kubernetes.login,
                            role=self.options["role_id"], jwt=self._jwt, mount_point=mount)


AUTH_METHODS = {cls.NAME: cls for cls in (TokenAuth, AppRoleAuth, JwtAuth, KubernetesAuth)}


def select_auth_method(options: dict, environ: Optional[dict] = None) -> AuthMethod:
    name = options.get("auth_method") or "token"
    try:
        cls = AUTH_METHODS[name]
    except KeyError:
        raise VaultConfigError(
            f"auth_method '{name}' is not supported; use one of {', '.join(sorted(AUTH_METHODS))}"
        ) from None
    method = cls(options, environ)
    method.validate()
    return method


def connect(options: dict, environ: Optional[dict] = None, connections: int = 1) -> VaultClient:
    """Validate the options, build the one client of the task and log in once.

    ``connections``: how many requests the caller will then send at once; the connections beyond the
    login's own are opened while the login is in flight (:meth:`VaultClient.open_connections`).
    """
    method = select_auth_method(options, environ)
    client = VaultClient(VaultConnection.from_options(options, environ))
    opening = None
    try:
        opening = client.open_connections(connections - 1)
        method.authenticate(client)
    except Exception:
        if opening is not None:
            opening.abandon()
        client.close()
        raise
    opening.finish()
    return client
