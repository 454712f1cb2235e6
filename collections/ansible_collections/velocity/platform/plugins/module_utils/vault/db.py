# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Velocity platform team
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Dynamic database credentials: issue, reuse, renew, revoke.

A lease state file (0600, written atomically) remembers the last lease so
that a second run of the same play reuses it while it is still valid for at
least ``min_ttl`` seconds, instead of creating a new database user each time.
The file holds the username and password (it is as sensitive as the env file
built from it) and lives next to it in a 0700 directory.
"""
from __future__ import annotations

import calendar
import json
import os
import re
import time
from dataclasses import asdict, dataclass, field
from typing import Optional
from urllib.parse import quote

from ansible_collections.velocity.platform.plugins.module_utils.common.files import atomic_write
from ansible_collections.velocity.platform.plugins.module_utils.vault.client import (
    VaultClient,
    VaultConfigError,
    VaultError,
    VaultRequestError,
)

# Vault's own pattern for role names (framework.GenericNameRegex).
ROLE_NAME = re.compile(r"^\w(?:[\w.-]*\w)?$")


@dataclass
class Lease:
    lease_id: str
    lease_duration: int
    renewable: bool
    issued_at: float
    username: str = ""
    password: str = field(default="", repr=False)
    role: str = ""
    mount: str = ""
    issuer_accessor: str = ""

    @property
    def expires_at(self) -> float:
        return self.issued_at + self.lease_duration

    def remaining(self, now: Optional[float] = None) -> int:
        return int(self.expires_at - (time.time() if now is None else now))

    def public(self) -> dict:
        """Everything but the password."""
        out = asdict(self)
        out.pop("password")
        out["expires_at"] = int(self.expires_at)
        return out


def load_state(path: Optional[str]) -> Optional[Lease]:
    if not path or not os.path.exists(path):
        return None
    try:
        with open(path) as handle:
            data = json.load(handle)
        return Lease(**data)
    except (OSError, ValueError, TypeError):
        return None  # unreadable state is treated as "no lease"; a new one replaces it


def save_state(path: Optional[str], lease: Lease) -> None:
    if path:
        atomic_write(path, json.dumps(asdict(lease), sort_keys=True).encode(), mode=0o600)


def remove_state(path: Optional[str]) -> bool:
    if path and os.path.exists(path):
        os.unlink(path)
        return True
    return False


# -- shared lease record (Vault KV v2): what another job needs to renew or revoke, never a secret ----------
RECORD_FIELDS = ("lease_id", "role", "mount", "lease_duration", "renewable", "issued_at", "username",
                 "issuer_accessor")


def check_kv_record(field: str, spec) -> "tuple[str, str]":
    """``{mount, path}`` of the shared lease record, checked before any request; returns (mount, path)."""
    if not isinstance(spec, dict):
        raise VaultConfigError(f"{field} must be a mapping with path (and mount, default secret)")
    mount, path = spec.get("mount") or "secret", spec.get("path")
    if not isinstance(mount, str) or not mount.strip("/ "):
        raise VaultConfigError(f"{field}.mount is empty: give the KV version 2 mount, e.g. secret")
    parts = path.strip("/").split("/") if isinstance(path, str) else []
    if not path or not isinstance(path, str) or not path.strip("/ ") or any(
            part in ("", ".", "..") or part != part.strip() for part in parts):
        raise VaultConfigError(f"{field}.path {path!r} is not a KV path: give one like velocity/leases/app")
    return mount.strip("/"), path.strip("/")


def record_of(lease: Lease) -> dict:
    """The shared record: lease id, role, expiry, the issuing token's accessor. No password, no token."""
    out = {name: getattr(lease, name) for name in RECORD_FIELDS}
    out["expires_at"] = int(lease.expires_at)
    return out


def same_record(a: Lease, b: Lease, slack: int = 60) -> bool:
    """Same lease and an expiry within ``slack`` seconds: a reuse (which re-reads the TTL) is not a change."""
    keep = ("lease_id", "role", "mount", "username", "issuer_accessor", "renewable")
    return (all(getattr(a, k) == getattr(b, k) for k in keep)
            and abs(int(a.expires_at) - int(b.expires_at)) <= slack)


def load_record(client: VaultClient, where: "Optional[tuple[str, str]]") -> Optional[Lease]:
    """The lease recorded at ``where`` (mount, path), or None when there is none (never written or deleted)."""
    if not where:
        return None
    mount, path = where
    result = client.call(f"{mount}/data/{path}", client.hvac.secrets.kv.v2.read_secret_version, path=path,
                         mount_point=mount, raise_on_deleted_version=True, allow_404=True)
    data = ((result or {}).get("data") or {}).get("data")
    if not isinstance(data, dict) or not data.get("lease_id"):
        return None
    try:
        return Lease(**{name: data[name] for name in RECORD_FIELDS if name in data})
    except TypeError:
        return None


def save_record(client: VaultClient, where: "Optional[tuple[str, str]]", lease: Lease, slack: int = 60) -> bool:
    """Write the record when it differs from what is there (a reused lease whose expiry moved by less than
    ``slack`` seconds is not rewritten; a renewal passes 0)."""
    if not where:
        return False
    current = load_record(client, where)
    if current is not None and same_record(current, lease, slack):
        return False
    mount, path = where
    client.call(f"{mount}/data/{path}", client.hvac.secrets.kv.v2.create_or_update_secret, path=path,
                secret=record_of(lease), mount_point=mount)
    return True


def remove_record(client: VaultClient, where: "Optional[tuple[str, str]]") -> bool:
    """Delete the record's latest version (KV v2 soft delete); False when there was none."""
    if not where or load_record(client, where) is None:
        return False
    mount, path = where
    client.call(f"{mount}/data/{path}", client.hvac.secrets.kv.v2.delete_latest_version_of_secret,
                path=path, mount_point=mount)
    return True


def issue(client: VaultClient, mount: str, role: str, issuer_token_role: Optional[str] = None) -> Lease:
    """A new lease. With ``issuer_token_role`` the credentials are read with an orphan token created from that
    token role, so the lease no longer dies with the task's login token (it lives until the orphan token's
    explicit max TTL); the orphan token is used for this one read and never stored, only its accessor is kept."""
    mount = mount.strip("/")
    accessor = ""
    login_token = client.token
    if issuer_token_role:
        auth = (client.call(f"auth/token/create/{issuer_token_role}", client.hvac.auth.token.create,
                            role_name=issuer_token_role) or {}).get("auth") or {}
        if not auth.get("client_token"):
            raise VaultConfigError(f"auth/token/create/{issuer_token_role} returned no token; is it a token role?")
        accessor = auth.get("accessor") or ""
        client.token = auth["client_token"]
    try:
        result = client.call(f"{mount}/creds/{role}", client.hvac.secrets.database.generate_credentials,
                             name=role, mount_point=mount) or {}
    finally:
        client.token = login_token
    data = result.get("data") or {}
    if not data.get("username") or not data.get("password"):
        raise VaultConfigError(f"'{mount}/creds/{role}' returned no username/password; is it a database role?")
    return Lease(
        lease_id=result.get("lease_id", ""),
        lease_duration=int(result.get("lease_duration") or 0),
        renewable=bool(result.get("renewable")),
        issued_at=time.time(),
        username=data["username"],
        password=data["password"],
        role=role,
        mount=mount,
        issuer_accessor=accessor,
    )


_EXPIRE_TIME = re.compile(r"^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.\d+)?(Z|[+-]\d\d:\d\d)$")


def expire_epoch(value) -> Optional[int]:
    """Whole seconds since the epoch of a lease lookup's ``expire_time`` (RFC 3339, any fraction), or None."""
    match = _EXPIRE_TIME.match(value) if isinstance(value, str) else None
    if not match:
        return None
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    offset = match.group(7)
    shift = 0 if offset == "Z" else (1 if offset[0] == "+" else -1) * (int(offset[1:3]) * 3600 + int(offset[4:6]) * 60)
    return calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0)) - shift


def lookup(client: VaultClient, lease_id: str) -> Optional[dict]:
    """Lease metadata (ttl, expire_time...) or None when Vault no longer knows it (expired/revoked)."""
    try:
        result = client.call("sys/leases/lookup", client.hvac.sys.read_lease, lease_id=lease_id)
    except VaultRequestError as exc:
        if exc.status == 400:
            return None
        raise
    return (result or {}).get("data")


def renew(client: VaultClient, lease: Lease, increment: Optional[int] = None) -> Lease:
    result = client.call("sys/leases/renew", client.hvac.sys.renew_lease, lease_id=lease.lease_id,
                         increment=increment or None) or {}
    lease.lease_duration = int(result.get("lease_duration") or 0)
    lease.renewable = bool(result.get("renewable"))
    lease.issued_at = time.time()
    return lease


def revoke(client: VaultClient, lease_id: str) -> bool:
    """Revoke one lease; False when Vault did not know it (already gone)."""
    if lookup(client, lease_id) is None:
        return False
    client.call("sys/leases/revoke", client.hvac.sys.revoke_lease, lease_id=lease_id)
    return True


def revoke_prefix(client: VaultClient, prefix: str, check_mode: bool = False) -> int:
    """Revoke every lease under ``prefix`` (needs sudo on sys/leases/revoke-prefix). Returns how many there were."""
    prefix = prefix.strip("/")
    # Vault lists "<prefix>/" whether or not the request path ends with the slash (hvac strips it).
    listed = client.call(f"sys/leases/lookup/{prefix}/", client.hvac.sys.list_leases, prefix=prefix,
                         allow_404=True) or {}
    count = len((listed.get("data") or {}).get("keys") or [])
    if count and not check_mode:
        client.call(f"sys/leases/revoke-prefix/{prefix}", client.hvac.sys.revoke_prefix, prefix=prefix)
    return count


def ensure(client: VaultClient, mount: str, role: str, state_file: Optional[str], min_ttl: int = 300,
           reuse: bool = True, check_mode: bool = False, issuer_token_role: Optional[str] = None,
           ) -> "tuple[Lease | None, bool, str]":
    """Return (lease, changed, how) where how is 'reused', 'renewed' or 'issued'.

    Reuse requires the state file, the same mount/role, and a lease that Vault
    still knows with at least ``min_ttl`` seconds left; a renewable lease that
    is too short is renewed first. Otherwise a new lease is issued and the old
    one (if any) is revoked so it does not linger until its TTL.
    """
    previous = load_state(state_file)
    if previous and reuse and previous.mount == mount.strip("/") and previous.role == role:
        info = lookup(client, previous.lease_id)
        if info is not None:
            ttl = int(info.get("ttl") or 0)
            if ttl >= min_ttl:
                # Vault's absolute expire_time, not now + ttl: a reused lease reports the same expiry on every
                # run (the deploy records it on the Secret; a second's drift re-applied it each time).
                expires = expire_epoch(info.get("expire_time")) or int(time.time()) + ttl
                previous.lease_duration = ttl
                previous.issued_at = expires - ttl
                return previous, False, "reused"
            if previous.renewable and not check_mode:
                try:
                    renewed = renew(client, previous)
                    if renewed.lease_duration >= min_ttl:
                        save_state(state_file, renewed)
                        return renewed, True, "renewed"
                except VaultError:
                    pass
    if check_mode:
        return None, True, "issued"
    lease = issue(client, mount, role, issuer_token_role)
    save_state(state_file, lease)
    if previous and previous.lease_id != lease.lease_id:
        try:
            revoke(client, previous.lease_id)
        except VaultError:
            pass  # best effort: it expires at its TTL anyway
    return lease, True, "issued"


def check_token_role(field: str, role) -> None:
    if role is not None:
        check_role(field, role)


def check_role(field: str, role) -> None:
    """A database role name, checked before any request: non-empty, one path segment."""
    if not isinstance(role, str) or not role.strip():
        raise VaultConfigError(f"{field} is empty: give the database secrets engine role, e.g. velocity-app")
    if not ROLE_NAME.match(role):
        raise VaultConfigError(f"{field} {role!r} is not a role name (letters, digits, '_', '-' and '.'; no '/' or "
                               "whitespace): give the role only, e.g. velocity-app, and the engine's mount in mount")


def check_url_template(field: str, template) -> None:
    if not isinstance(template, str) or "{username}" not in template or "{password}" not in template:
        raise VaultConfigError(
            f"{field} must contain {{username}} and {{password}}, e.g. "
            "postgresql://{username}:{password}@db:5432/app")


def render_url(template: str, lease: Lease) -> str:
    """Fill ``{username}``/``{password}`` (URL-encoded) into a template such as a DATABASE_URL."""
    check_url_template("url_template", template)
    return template.replace("{username}", quote(lease.username, safe="")).replace(
        "{password}", quote(lease.password, safe=""))
