"""Configure a Vault/OpenBao server like a real Velocity environment (idempotent).

Run through scripts/vault-bootstrap.sh, which starts the local services and
passes VAULT_ADDR, the token file and the PostgreSQL settings. Everything here
can be re-run: each step compares with what is there and writes only what
differs. Prints one JSON object on stdout: what changed, and the paths of the
local credentials it created (all 0600 in the state dir). Never prints a
secret.

What it sets up (documented in artifacts/security/secrets-management-plan.md):
  KV v2 at secret/, app secrets at secret/velocity/app (secret_key generated once)
  PostgreSQL: NOLOGIN role velocity_owner owning the app schema
  database/ engine: connection velocity-postgres, role velocity-app (dynamic users)
  policy velocity-app (least privilege), policy velocity-operator (lease admin)
  auth approle/ role velocity-app, auth jwt/ role velocity-app (local signing key),
  auth kubernetes/ role velocity-app when --kubeconfig is given
  registry credentials at secret/velocity/registry when --registry-password-file is given
"""
from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "collections"))

from ansible_collections.velocity.platform.plugins.module_utils.common.files import atomic_write  # noqa: E402
from ansible_collections.velocity.platform.plugins.module_utils.vault import kv as vault_kv  # noqa: E402
from ansible_collections.velocity.platform.plugins.module_utils.vault.client import (  # noqa: E402
    VaultClient,
    VaultConnection,
)

APP_PATH = "velocity/app"
ROLE = "velocity-app"
OWNER = "velocity_owner"
JWT_ISSUER = "https://velocity.local/ci"
SECRET_ID_TTL = 30 * 24 * 3600
# A dynamic database lease is revoked when the token that read it expires, whatever the lease's own
# TTL: a login token must live as long as the database role's default TTL (1 h), or the app's
# credentials die with the deploy job's token (they did after 20 minutes).
TOKEN_TTL = 3600
JWT_AUDIENCE = "velocity"

APP_POLICY = """\
# velocity-app: what the deploy of the app needs, nothing more.
# Static app secrets (KV v2): read only, only under velocity/.
path "secret/data/velocity/*" {
  capabilities = ["read"]
}
# Dynamic PostgreSQL credentials for the app's own role.
path "database/creds/velocity-app" {
  capabilities = ["read"]
}
# Look up, renew and give back its own leases (lease ids are unguessable).
path "sys/leases/lookup" {
  capabilities = ["update"]
}
path "sys/leases/renew" {
  capabilities = ["update"]
}
path "sys/leases/revoke" {
  capabilities = ["update"]
}
# Issue the database credentials with an orphan token of the velocity-db-lease token role, so the lease
# does not die with this (1 h) login token; a scheduled renewal then keeps it up to the role's max TTL.
path "auth/token/create/velocity-db-lease" {
  capabilities = ["update"]
}
# The shared lease record (lease id, role, expiry, issuer accessor; no password): any job can renew/revoke.
path "secret/data/velocity/leases/*" {
  capabilities = ["create", "read", "update", "delete"]
}
"""

# velocity-db-issuer: the only policy of the orphan token that reads new database credentials.
ISSUER_POLICY = """\
path "database/creds/velocity-app" {
  capabilities = ["read"]
}
"""
ISSUER_TOKEN_ROLE = "velocity-db-lease"  # noqa: S105 (a token role's name, not a secret)

OPERATOR_POLICY = """\
# velocity-operator: incident response on the app's database leases (revoke all).
path "sys/leases/lookup/database/creds/velocity-app/*" {
  capabilities = ["list", "sudo"]
}
path "sys/leases/lookup/database/creds/velocity-app" {
  capabilities = ["list", "sudo"]
}
path "sys/leases/revoke-prefix/database/creds/velocity-app" {
  capabilities = ["update", "sudo"]
}
path "secret/data/velocity/*" {
  capabilities = ["create", "read", "update", "patch"]
}
path "secret/metadata/velocity/*" {
  capabilities = ["read", "list"]
}
# Rotating the app's AppRole secret_id (scripts/rotate-approle-secret-id): issue a new one,
# look up and destroy the old one by its accessor. Never the role itself or its role_id.
path "auth/approle/role/velocity-app/secret-id" {
  capabilities = ["update"]
}
path "auth/approle/role/velocity-app/secret-id/lookup" {
  capabilities = ["update"]
}
path "auth/approle/role/velocity-app/secret-id-accessor/destroy" {
  capabilities = ["update"]
}
"""

# The dynamic user joins velocity_owner and acts as it (SET role), so every
# table the migrations create belongs to velocity_owner, not to the short-lived
# user: revoking the user then drops only the login, never the schema.
CREATION = [
    "CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}' IN ROLE %s" % OWNER,
    "ALTER ROLE \"{{name}}\" SET role TO %s" % OWNER,
]
# Revocation: cut its sessions, hand anything it still owns to the owner role,
# then drop the login.
REVOCATION = [
    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{{name}}'",
    "REASSIGN OWNED BY \"{{name}}\" TO %s" % OWNER,
    "DROP OWNED BY \"{{name}}\"",
    "DROP ROLE IF EXISTS \"{{name}}\"",
]


def secret_id_current(lookup_data: dict, margin_s: int = 86400) -> bool:
    """A stored secret_id is kept while it is bounded and has more than a day left (else re-issued)."""
    if not lookup_data.get("secret_id_ttl"):
        return False  # issued before secret_id_ttl was bounded: never expires, replace it
    expires = lookup_data.get("expiration_time") or ""
    try:
        left = datetime.fromisoformat(expires.replace("Z", "+00:00")) - datetime.now(UTC)
    except ValueError:
        return False
    return left.total_seconds() > margin_s


class Bootstrap:
    """Each step through hvac (``self.hvac``), each call wrapped by ``client.call`` for clear errors."""

    def __init__(self, client: VaultClient, state_dir: Path, args):
        self.client = client
        self.hvac = client.hvac
        self.state_dir = state_dir
        self.args = args
        self.changed: list[str] = []

    def note(self, what: str) -> None:
        self.changed.append(what)

    # -- mounts --------------------------------------------------------------
    def mounts(self) -> dict:
        return (self.client.call("sys/mounts", self.hvac.sys.list_mounted_secrets_engines) or {}).get("data") or {}

    def auths(self) -> dict:
        return (self.client.call("sys/auth", self.hvac.sys.list_auth_methods) or {}).get("data") or {}

    def ensure_kv(self) -> None:
        current = self.mounts().get("secret/")
        if current is None:
            self.client.call("sys/mounts/secret", self.hvac.sys.enable_secrets_engine, "kv", path="secret",
                             options={"version": "2"})
            self.note("mounted KV v2 at secret/")
        elif current.get("type") == "kv" and str((current.get("options") or {}).get("version")) != "2":
            raise SystemExit("secret/ is a KV v1 mount; upgrade it with 'bao kv enable-versioning secret/'")

    def ensure_mount(self, path: str, kind: str) -> None:
        if path + "/" not in self.mounts():
            self.client.call("sys/mounts/%s" % path, self.hvac.sys.enable_secrets_engine, kind, path=path)
            self.note("mounted %s at %s/" % (kind, path))

    def ensure_auth(self, path: str, kind: str) -> None:
        if path + "/" not in self.auths():
            self.client.call("sys/auth/%s" % path, self.hvac.sys.enable_auth_method, kind, path=path)
            self.note("enabled auth %s at %s/" % (kind, path))

    # -- app secrets -----------------------------------------------------------
    def ensure_app_secrets(self) -> None:
        current = self.client.call("secret/data/%s" % APP_PATH, self.hvac.secrets.kv.v2.read_secret_version,
                                   APP_PATH, mount_point="secret", raise_on_deleted_version=True, allow_404=True)
        data = ((current or {}).get("data") or {}).get("data") or {}
        version = (((current or {}).get("data") or {}).get("metadata") or {}).get("version") or 0
        if data.get("secret_key"):
            return
        data = dict(data, secret_key=secrets.token_urlsafe(48))
        vault_kv.write_kv(self.client, "secret", APP_PATH, data, cas=version)
        self.note("generated secret/%s#secret_key" % APP_PATH)

    # -- policies ----------------------------------------------------------------
    def ensure_policy(self, name: str, text: str) -> None:
        current = self.client.call("sys/policies/acl/%s" % name, self.hvac.sys.read_acl_policy, name, allow_404=True)
        if ((current or {}).get("data") or {}).get("policy") != text:
            self.client.call("sys/policies/acl/%s" % name, self.hvac.sys.create_or_update_acl_policy, name, text)
            self.note("policy %s" % name)

    def ensure_config(self, path: str, desired: dict, compare: dict | None = None, what: str = "") -> None:
        """Write ``desired`` at ``path`` unless what is read back already matches ``compare`` (default: desired)."""
        current = ((self.client.read(path, allow_404=True) or {}).get("data")) or {}
        want = compare if compare is not None else desired
        if any(_norm(current.get(k)) != _norm(v) for k, v in want.items()):
            self.client.write(path, desired)
            self.note(what or path)

    # -- PostgreSQL --------------------------------------------------------------
    def ensure_postgres_owner(self) -> None:
        import psycopg

        a = self.args
        dsn = dict(host=a.pg_host, port=a.pg_port, user=a.pg_admin, password=_read(a.pg_password_file),
                   dbname=a.pg_database)
        with psycopg.connect(**dsn, autocommit=True) as conn:
            cur = conn.cursor()
            cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (OWNER,))
            if not cur.fetchone():
                cur.execute("CREATE ROLE %s NOLOGIN" % OWNER)
                self.note("postgres role %s" % OWNER)
            cur.execute("GRANT CONNECT, CREATE, TEMPORARY ON DATABASE %s TO %s" % (a.pg_database, OWNER))
            cur.execute("GRANT USAGE, CREATE ON SCHEMA public TO %s" % OWNER)
            # Tables created before this bootstrap (e.g. an admin ran the migrations) move to the owner role,
            # so that later migrations run by a dynamic user can alter them.
            cur.execute(
                "SELECT format('ALTER TABLE %%I.%%I OWNER TO ' || %s, schemaname, tablename) FROM pg_tables "
                "WHERE schemaname = 'public' AND tableowner <> %s", (OWNER, OWNER))
            for (stmt,) in cur.fetchall():
                cur.execute(stmt)
                self.note("postgres: " + stmt)

    def ensure_database_engine(self) -> None:
        a = self.args
        self.ensure_mount("database", "database")
        url = "postgresql://{{username}}:{{password}}@%s:%s/%s?sslmode=disable" % (a.pg_host, a.pg_port, a.pg_database)
        desired = {
            "plugin_name": "postgresql-database-plugin",
            "connection_url": url,
            "username": a.pg_admin,
            "password": _read(a.pg_password_file),
            "allowed_roles": [ROLE],
            "verify_connection": True,
        }
        database = self.hvac.secrets.database
        current = ((self.client.call("database/config/velocity-postgres", database.read_connection,
                                     "velocity-postgres", allow_404=True) or {}).get("data")) or {}
        conn = current.get("connection_details") or {}
        # The password is never read back; a marker file remembers which admin password was configured.
        marker = self.state_dir / "db-config.sha256"
        import hashlib
        digest = hashlib.sha256((url + a.pg_admin + desired["password"]).encode()).hexdigest()
        if (conn.get("connection_url") != url or conn.get("username") != a.pg_admin
                or current.get("allowed_roles") != [ROLE]
                or not marker.exists() or marker.read_text() != digest):
            self.client.call("database/config/velocity-postgres", database.configure, name="velocity-postgres",
                             **desired)
            atomic_write(str(marker), digest.encode(), 0o600)
            self.note("database connection velocity-postgres")
        role = {
            "db_name": "velocity-postgres",
            "creation_statements": CREATION,
            "revocation_statements": REVOCATION,
            "default_ttl": a.db_ttl,
            "max_ttl": a.db_max_ttl,
        }
        self.ensure_config("database/roles/%s" % ROLE, role, what="database role %s" % ROLE)

    def ensure_issuer_token_role(self) -> None:
        """Token role velocity-db-lease: orphan, not renewable, lives as long as the database role's max TTL.

        A lease is revoked with the token that read it; a token of this role outlives the login token, so
        a lease it read can be renewed by any job (sys/leases/renew) until the database role's max TTL.
        """
        self.ensure_policy("velocity-db-issuer", ISSUER_POLICY)
        self.ensure_config("auth/token/roles/%s" % ISSUER_TOKEN_ROLE, {
            "allowed_policies": ["velocity-db-issuer"],
            "orphan": True,
            "renewable": False,
            "token_explicit_max_ttl": self.args.db_max_ttl,
            "token_type": "service",
        }, what="token role %s" % ISSUER_TOKEN_ROLE)

    # -- auth methods ------------------------------------------------------------
    def ensure_approle(self) -> dict:
        self.ensure_auth("approle", "approle")
        self.ensure_config("auth/approle/role/%s" % ROLE, {
            "token_policies": [ROLE],
            "token_ttl": TOKEN_TTL,
            "token_max_ttl": 3600,
            # A secret_id lives 30 days at most: rotate it (scripts/rotate-approle-secret-id) before then.
            "secret_id_ttl": SECRET_ID_TTL,
            "token_type": "service",
        }, what="approle role %s" % ROLE)
        approle = self.hvac.auth.approle
        role_id = self.client.call("auth/approle/role/%s/role-id" % ROLE, approle.read_role_id, ROLE)["data"]["role_id"]
        role_id_file = self.state_dir / "approle-role-id"
        secret_id_file = self.state_dir / "approle-secret-id"
        if not role_id_file.exists() or role_id_file.read_text().strip() != role_id:
            atomic_write(str(role_id_file), role_id.encode(), 0o600)
        valid = False
        if secret_id_file.exists():
            lookup = self.client.call("auth/approle/role/%s/secret-id/lookup" % ROLE, approle.read_secret_id, ROLE,
                                      secret_id_file.read_text().strip(), allow_404=True)
            data = (lookup or {}).get("data") if isinstance(lookup, dict) else None  # unknown secret id: 204 or 404
            valid = bool(data) and secret_id_current(data)
        if not valid:
            secret_id = self.client.call("auth/approle/role/%s/secret-id" % ROLE, approle.generate_secret_id,
                                         ROLE)["data"]["secret_id"]
            atomic_write(str(secret_id_file), secret_id.encode(), 0o600)
            self.note("approle secret-id (local file)")
        return {"role_id_file": str(role_id_file), "secret_id_file": str(secret_id_file)}

    def ensure_jwt(self) -> dict:
        key_file = self.state_dir / "jwt-signing-key.pem"
        pub_file = self.state_dir / "jwt-signing-pub.pem"
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ec

        if not key_file.exists():
            key = ec.generate_private_key(ec.SECP256R1())
            pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
            atomic_write(str(key_file), pem, 0o600)
            self.note("jwt signing key (local file)")
        key = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
        pub = key.public_key().public_bytes(serialization.Encoding.PEM,
                                            serialization.PublicFormat.SubjectPublicKeyInfo).decode()
        atomic_write(str(pub_file), pub.encode(), 0o644)
        self.ensure_auth("jwt", "jwt")
        self.ensure_config("auth/jwt/config", {"jwt_validation_pubkeys": [pub], "bound_issuer": JWT_ISSUER},
                           compare={"jwt_validation_pubkeys": [pub.strip()], "bound_issuer": JWT_ISSUER},
                           what="jwt auth config")
        self.ensure_config("auth/jwt/role/%s" % ROLE, {
            "role_type": "jwt",
            "user_claim": "sub",
            "bound_audiences": [JWT_AUDIENCE],
            "bound_claims": {"project": "velocity"},
            "token_policies": [ROLE],
            "token_ttl": TOKEN_TTL,
        }, what="jwt role %s" % ROLE)
        return {"signing_key_file": str(key_file), "issuer": JWT_ISSUER, "audience": JWT_AUDIENCE,
                "required_claims": {"project": "velocity"}}

    def kubernetes_login_works(self, kubeconfig: str) -> bool:
        import hvac
        from vault_k8s import service_account_token  # scripts/, beside this file

        jwt = service_account_token(kubeconfig, self.args.k8s_namespace, self.args.k8s_service_account, 600)
        probe = hvac.Client(url=self.client.hvac.url, token="", verify=self.client.hvac.session.verify)
        try:
            probe.auth.kubernetes.login(ROLE, jwt)
        except hvac.exceptions.VaultError:
            return False
        probe.auth.token.revoke_self()
        return True

    def ensure_kubernetes(self, kubeconfig: str) -> dict:
        from vault_k8s import reviewer_setup  # scripts/, beside this file

        setup = reviewer_setup(kubeconfig, namespace=self.args.k8s_namespace,
                               service_account=self.args.k8s_service_account)
        self.ensure_auth("kubernetes", "kubernetes")
        config = {
            "kubernetes_host": setup["host"],
            "kubernetes_ca_cert": setup["ca_pem"],
            "token_reviewer_jwt": setup["reviewer_jwt"],
            "disable_local_ca_jwt": True,
        }
        self.ensure_config("auth/kubernetes/config", config,
                           compare={"kubernetes_host": setup["host"], "kubernetes_ca_cert": setup["ca_pem"]},
                           what="kubernetes auth config")
        self.ensure_config("auth/kubernetes/role/%s" % ROLE, {
            "bound_service_account_names": [self.args.k8s_service_account],
            "bound_service_account_namespaces": [self.args.k8s_namespace],
            "token_policies": [ROLE],
            "token_ttl": TOKEN_TTL,
        }, compare={"bound_service_account_names": [self.args.k8s_service_account],
                    "bound_service_account_namespaces": [self.args.k8s_namespace],
                    "token_policies": [ROLE]}, what="kubernetes role %s" % ROLE)
        # The reviewer token is write-only in Vault, so the comparison above cannot see that it died
        # (its service account deleted with its namespace, or a cluster restarted with new keys):
        # try a login as the app's service account, and give Vault the fresh reviewer token if it fails.
        if not self.kubernetes_login_works(kubeconfig):
            self.client.write("auth/kubernetes/config", config)
            self.note("kubernetes auth config (reviewer token renewed)")
        return {"host": setup["host"], "namespace": self.args.k8s_namespace,
                "service_account": self.args.k8s_service_account}


# -- registry credentials (scripts/services/registry.sh) ------------------------------------------
REGISTRY_PATH = "velocity/registry"


def ensure_registry_credentials(boot: Bootstrap, server: str, username: str, password_file: str) -> dict:
    """KV secret/velocity/registry = {server, username, password} of the local registry, written when it differs.

    The secrets stage reads it (the velocity-app policy covers secret/data/velocity/*): the image stage
    pushes with it and the deploy's pull Secret is made of it. Only the KV helpers are used, so this
    follows whatever transport the client has.
    """
    want = {"server": server, "username": username, "password": _read(password_file)}
    try:
        current = vault_kv.read_kv(boot.client, "secret", REGISTRY_PATH, None, 2)
        data, version = current.data, current.version
    except vault_kv.VaultNotFound:
        data, version = {}, None
    if any(data.get(key) != value for key, value in want.items()):
        vault_kv.write_kv(boot.client, "secret", REGISTRY_PATH, dict(data, **want), cas=version)
        boot.note("registry credentials at secret/%s" % REGISTRY_PATH)
    return {"path": "secret/%s" % REGISTRY_PATH, "server": server, "username": username}


def _norm(value):
    if isinstance(value, list):
        return sorted(_norm(v) for v in value)
    if isinstance(value, str):
        return value.strip()
    return value


def _read(path: str) -> str:
    return Path(path).read_text().strip()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--state-dir", required=True)
    parser.add_argument("--pg-host", default="127.0.0.1")
    parser.add_argument("--pg-port", default="55432")
    parser.add_argument("--pg-admin", default="velocity_admin")
    parser.add_argument("--pg-database", default="velocity")
    parser.add_argument("--pg-password-file", required=True)
    parser.add_argument("--db-ttl", type=int, default=3600)
    parser.add_argument("--db-max-ttl", type=int, default=86400)
    parser.add_argument("--kubeconfig")
    parser.add_argument("--k8s-namespace", default="velocity")
    parser.add_argument("--k8s-service-account", default="velocity-app")
    parser.add_argument("--registry-server", default="127.0.0.1:5000")
    parser.add_argument("--registry-username", default="velocity")
    parser.add_argument("--registry-password-file", help="the local registry's password file (registry.sh env)")
    args = parser.parse_args()

    state_dir = Path(args.state_dir)
    state_dir.mkdir(parents=True, exist_ok=True)
    token = os.environ.get("VAULT_TOKEN") or _read(os.environ["VELOCITY_VAULT_TOKEN_FILE"])
    client = VaultClient(VaultConnection.from_options({}), token=token)
    boot = Bootstrap(client, state_dir, args)
    boot.ensure_kv()
    boot.ensure_app_secrets()
    boot.ensure_policy(ROLE, APP_POLICY)
    boot.ensure_policy("velocity-operator", OPERATOR_POLICY)
    boot.ensure_postgres_owner()
    boot.ensure_database_engine()
    boot.ensure_issuer_token_role()
    summary = {
        "vault_addr": client.connection.url,
        "kv": {"mount": "secret", "app_path": APP_PATH},
        "database": {"mount": "database", "role": ROLE, "owner_role": OWNER, "ttl": args.db_ttl,
                     "max_ttl": args.db_max_ttl, "issuer_token_role": ISSUER_TOKEN_ROLE},
        "policy": ROLE,
        "approle": boot.ensure_approle(),
        "jwt": boot.ensure_jwt(),
    }
    if args.kubeconfig:
        summary["kubernetes"] = boot.ensure_kubernetes(args.kubeconfig)
    if args.registry_password_file:
        summary["registry"] = ensure_registry_credentials(boot, args.registry_server, args.registry_username,
                                                          args.registry_password_file)
    summary["changed"] = boot.changed
    atomic_write(str(state_dir / "bootstrap.json"), json.dumps(summary, indent=2).encode(), 0o600)
    print(json.dumps(summary))
    client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
