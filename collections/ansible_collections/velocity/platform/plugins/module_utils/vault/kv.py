# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Velocity platform team
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""KV reads for environment variables: ``{ENV_NAME: 'path#key@version'}``.

Each distinct (path, version) is read once, whatever the number of keys taken
from it. The reads are sent back to back on one connection, usually the login's
(HTTP/1.1 pipelining, ``VaultClient.get_pipelined``): one round trip for all of
them. With ``pipelining`` off, or behind a proxy, they run in parallel instead
(hvac calls on the client's one session, whose pool is sized to ``max_workers``;
the connections they use are opened while the login is in flight, see
``connect``). A task that succeeds sends one login and one request per path: the
mount's KV version is looked up only when something failed, to say why (a
KV version 2 answer has a shape that a version 1 mount never gives).
"""
from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Dict, Optional, Tuple
from urllib.parse import quote

from ansible_collections.velocity.platform.plugins.module_utils.common.names import ENV_NAME, type_name
from ansible_collections.velocity.platform.plugins.module_utils.vault.client import (
    UNANSWERED,
    VaultClient,
    VaultConfigError,
    VaultKeyMissing,
    VaultKVVersionMismatch,
    VaultNotFound,
    VaultPermissionDenied,
)

# path#key or path#key@version: no whitespace, '#' or '@' inside the path or the key.
REF = re.compile(r"^(?P<path>[^#@\s]+)#(?P<key>[^#@\s]+)(?:@(?P<version>[0-9]+))?$")
REF_FORM = "'path#key' or 'path#key@version' (path relative to the KV mount, e.g. velocity/app#secret_key)"


@dataclass(frozen=True)
class SecretRef:
    env: str
    path: str
    key: str
    version: Optional[int] = None

    @classmethod
    def parse(cls, env: str, ref: str) -> "SecretRef":
        if not isinstance(env, str) or not ENV_NAME.match(env):
            raise VaultConfigError(
                f"secrets: {env!r} is not a valid environment variable name (letters, digits, underscore; no leading "
                "digit)"
            )
        if not isinstance(ref, str):
            raise VaultConfigError(f"secrets.{env}: reference {ref!r} is not of the form {REF_FORM}: it is "
                                   f"{type_name(ref)}, not a string")
        match = REF.match(ref.strip())
        if not match:
            if not ref.strip():
                why = "is empty"
            elif any(c.isspace() for c in ref.strip()):
                why = "contains whitespace"
            elif ref.count("#") != 1:
                why = "needs exactly one '#' between the path and the key"
            elif ref.strip().startswith("#"):
                why = "has an empty path before '#'"
            elif ref.strip().endswith("#") or ref.strip().partition("#")[2].startswith("@"):
                why = "has an empty key after '#'"
            elif "@" in ref.partition("#")[0]:
                why = "has '@' in the path"
            else:
                why = "has a version that is not a number after '@'"
            raise VaultConfigError(f"secrets.{env}: reference {ref!r} is not of the form {REF_FORM}: it {why}")
        path = match.group("path").strip("/")
        segments = path.split("/")
        if not path or "" in segments or "." in segments or ".." in segments:
            raise VaultConfigError(
                f"secrets.{env}: reference {ref!r} is not of the form {REF_FORM}: it has an empty path or an empty, "
                "'.' or '..' path segment")
        version = match.group("version")
        return cls(env=env, path=path, key=match.group("key"), version=int(version) if version else None)

    def __str__(self) -> str:
        pin = f"@{self.version}" if self.version else ""
        return f"{self.path}#{self.key}{pin}"


def parse_refs(mapping: dict) -> list:
    if not mapping:
        raise VaultConfigError("secrets: give at least one ENV_NAME: 'path#key' entry")
    return [SecretRef.parse(env, ref) for env, ref in sorted(mapping.items())]


def mount_kv_version(client: VaultClient, mount: str) -> Optional[int]:
    """KV version of ``mount`` (1 or 2), None when it is not a KV mount; raises VaultNotFound when absent.

    ``sys/internal/ui/mounts/<mount>`` answers for any token that has some
    capability under the mount, so the least-privilege app policy is enough
    (hvac has no method for it: a generic read).
    """
    result = client.read(f"sys/internal/ui/mounts/{mount}", allow_404=True)
    if result is None:
        raise VaultNotFound(f"no secrets engine mounted at '{mount}/' (or the token has no access under it)")
    data = result.get("data") or {}
    if data.get("type") not in ("kv", "generic"):
        return None
    version = str((data.get("options") or {}).get("version") or "1")
    return int(version)


def check_kv_version(client: VaultClient, mount: str, expected: int) -> None:
    try:
        actual = mount_kv_version(client, mount)
    except VaultPermissionDenied:
        return  # cannot tell; the read itself will report what is wrong
    if actual is None:
        raise VaultKVVersionMismatch(f"mount '{mount}/' is not a KV secrets engine; set kv_mount to your KV mount")
    if actual != expected:
        raise VaultKVVersionMismatch(
            f"mount '{mount}/' is KV version {actual} but kv_version={expected} was asked; set kv_version: {actual} "
            f"(or migrate the mount with 'vault kv enable-versioning {mount}/')"
        )


@dataclass
class KVSecret:
    path: str
    data: dict
    version: Optional[int]
    created_time: Optional[str] = None


def kv_api_path(mount: str, path: str, version: Optional[int], kv_version: int) -> str:
    """The request path of one read, quoted as hvac quotes it (``/v1/<mount>/data/<path>?version=N`` for KV v2)."""
    if kv_version == 1:
        return f"/v1/{quote(mount)}/{quote(path)}"
    return f"/v1/{quote(mount)}/data/{quote(path)}" + (f"?version={version}" if version else "")


def kv_secret(mount: str, path: str, version: Optional[int], kv_version: int, result: Optional[dict]) -> KVSecret:
    """The secret of one read's answer (``None``: a 404), or the error that answer means."""
    if kv_version == 1:
        if result is None:
            raise VaultNotFound(f"no secret at '{mount}/{path}' (KV v1). Create it or fix the path")
        return KVSecret(path=path, data=result.get("data") or {}, version=None)
    if result is None:
        pinned = f" version {version}" if version else ""
        where = f"{mount}/{path}{pinned}"
        raise VaultNotFound(
            f"no secret at '{where}' (KV v2: missing, deleted or destroyed). Create it with "
            f"'vault kv put {mount}/{path} key=...' or fix the path/version"
        )
    body = result.get("data") or {}
    metadata = body.get("metadata") or {}
    data = body.get("data")
    if not isinstance(metadata, dict) or "version" not in metadata:
        # Only a KV version 2 engine answers with data.metadata.version: this mount is something else.
        raise VaultKVVersionMismatch(f"'{mount}/data/{path}' did not answer as KV version 2 does; check kv_mount and "
                                     "kv_version")
    if data is None:
        raise VaultNotFound(f"secret '{mount}/{path}' version {metadata.get('version')} is deleted or destroyed")
    return KVSecret(path=path, data=data, version=metadata.get("version"), created_time=metadata.get("created_time"))


def read_kv(client: VaultClient, mount: str, path: str, version: Optional[int], kv_version: int) -> KVSecret:
    if kv_version == 1:
        if version:
            raise VaultConfigError(f"'{path}@{version}': version pinning needs a KV version 2 mount")
        result = client.call(f"{mount}/{path}", client.hvac.secrets.kv.v1.read_secret, path=path,
                             mount_point=mount, allow_404=True)
    else:
        # A deleted or destroyed version is a 404 like a missing path (raise_on_deleted_version).
        result = client.call(f"{mount}/data/{path}", client.hvac.secrets.kv.v2.read_secret_version, path=path,
                             version=version or None, mount_point=mount, raise_on_deleted_version=True,
                             allow_404=True)
    return kv_secret(mount, path, version, kv_version, result)


def read_secrets(client: VaultClient, refs: list, mount: str = "secret", kv_version: int = 2,
                 max_workers: int = 8, pipelining: bool = True) -> Tuple[Dict[str, str], Dict[str, dict]]:
    """Return ``({ENV: value}, {ref-path: {"version": n}})``; raise on any missing path or key.

    On a failure, the mount is looked up (one request) and a missing mount or a KV
    version other than ``kv_version`` is reported instead, as the more useful cause.
    """
    mount = mount.strip("/")
    try:
        return _read_secrets(client, refs, mount, kv_version, max_workers, pipelining)
    except (VaultNotFound, VaultKeyMissing, VaultKVVersionMismatch, VaultConfigError, VaultPermissionDenied):
        check_kv_version(client, mount, kv_version)
        raise


def parallel_reads(refs: list, max_workers: int, pipelining: bool = False) -> int:
    """How many connections :func:`read_secrets` uses at once for ``refs``: one per distinct (path, version)
    up to ``max_workers``, or one when the reads are pipelined."""
    if pipelining:
        return 1
    return max(1, min(max_workers, len({(ref.path, ref.version) for ref in refs})))


def _pipelined(client: VaultClient, mount: str, kv_version: int, wanted: list) -> Optional[list]:
    """Every read of ``wanted`` sent back to back on one connection; None when that cannot be done.

    A read the server did not answer with 200 or 404 (or left unanswered) is sent again the ordinary
    way, one after the other, which retries and names the error as for any read.
    """
    if kv_version == 1 and any(version for dummy, version in wanted):
        return None  # the ordinary read names the pinned version that KV v1 cannot give
    answers = client.get_pipelined([kv_api_path(mount, path, version, kv_version) for path, version in wanted])
    if answers is None:
        return None
    return [read_kv(client, mount, path, version, kv_version) if answer is UNANSWERED
            else kv_secret(mount, path, version, kv_version, answer)
            for (path, version), answer in zip(wanted, answers)]


def _read_secrets(client: VaultClient, refs: list, mount: str, kv_version: int,
                  max_workers: int, pipelining: bool = True) -> Tuple[Dict[str, str], Dict[str, dict]]:
    wanted = sorted({(ref.path, ref.version) for ref in refs}, key=lambda item: (item[0], item[1] or 0))
    secrets = _pipelined(client, mount, kv_version, wanted) if pipelining and len(wanted) > 1 else None
    if secrets is None:
        workers = parallel_reads(refs, max_workers)
        if workers == 1:
            secrets = [read_kv(client, mount, path, version, kv_version) for path, version in wanted]
        else:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                futures = [pool.submit(read_kv, client, mount, path, version, kv_version) for path, version in wanted]
                secrets = [future.result() for future in futures]
    by_key = dict(zip(wanted, secrets))
    values: Dict[str, str] = {}
    for ref in refs:
        secret = by_key[(ref.path, ref.version)]
        if ref.key not in secret.data:
            pinned = f" version {ref.version}" if ref.version else ""
            keys = ", ".join(sorted(secret.data)) or "(none)"
            raise VaultKeyMissing(
                f"secrets.{ref.env}: key '{ref.key}' not found in '{mount}/{ref.path}'{pinned}; keys there: {keys}"
            )
        value = secret.data[ref.key]
        if not isinstance(value, str):
            value = str(value) if isinstance(value, (int, float, bool)) else None
            if value is None:
                raise VaultConfigError(
                    f"secrets.{ref.env}: '{ref.path}#{ref.key}' is not a scalar and cannot be an environment variable"
                )
        values[ref.env] = value
    versions = {f"{path}@{version}" if version else path: {"version": secret.version}
                for (path, version), secret in by_key.items()}
    return values, versions


def write_kv(client: VaultClient, mount: str, path: str, data: dict, cas: Optional[int] = None) -> dict:
    mount, path = mount.strip("/"), path.strip("/")
    return client.call(f"{mount}/data/{path}", client.hvac.secrets.kv.v2.create_or_update_secret, path=path,
                       secret=data, cas=cas, mount_point=mount) or {}
