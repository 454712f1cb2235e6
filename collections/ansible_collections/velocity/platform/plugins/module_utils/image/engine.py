# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Velocity platform team
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Docker Engine connection and image-reference checks shared by image_build, image_sbom and container_smoke_test."""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

try:
    import docker
    from docker.errors import DockerException

    HAS_DOCKER = True
    DOCKER_IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover - reported by the module
    docker = None
    DockerException = Exception
    HAS_DOCKER = False
    DOCKER_IMPORT_ERROR = exc

DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock"

# Options every Docker module accepts (documented in doc_fragments/docker.py). Names and aliases follow
# community.docker's modules. No defaults on the TLS options: None means "not given", so the environment
# or the Docker context decides (see resolve_engine).
DOCKER_COMMON_ARGS: dict[str, Any] = {
    "docker_host": {"type": "str", "aliases": ["docker_url"]},
    "docker_context": {"type": "str"},
    "tls": {"type": "bool"},
    "validate_certs": {"type": "bool", "aliases": ["tls_verify"]},
    "ca_path": {"type": "path", "aliases": ["ca_cert", "tls_ca_cert", "cacert_path"]},
    "client_cert": {"type": "path", "aliases": ["tls_client_cert", "cert_path"]},
    "client_key": {"type": "path", "aliases": ["tls_client_key", "key_path"]},
    "api_timeout": {"type": "int", "default": 300},
}
TLS_OPTIONS = ("tls", "validate_certs", "ca_path", "client_cert", "client_key")


# Docker's reference grammar (distribution/reference): lowercase path components, an optional registry
# host (with a '.' or a ':port', or localhost) in front, and a tag of at most 128 word characters, '.' and '-'.
_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
_DOMAIN = re.compile(r"^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::[0-9]+)?$")
TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")


def repository_problem(name: Any) -> str | None:
    """None for a valid repository name (without tag), else what is wrong with it."""
    if not isinstance(name, str) or not name:
        return "it is empty"
    parts = name.split("/")
    if len(parts) > 1 and ("." in parts[0] or ":" in parts[0] or parts[0] == "localhost"):
        if not _DOMAIN.match(parts[0]):
            return f"registry host '{parts[0]}' is not a host name with an optional :port"
        parts = parts[1:]
    for part in parts:
        if not _COMPONENT.match(part):
            return (f"component '{part}' must be lowercase letters and digits, separated by '.', '_', '__' or '-' "
                    "(e.g. velocity/app)")
    if len(name) > 255:
        return "it is longer than 255 characters"
    return None


def reference_problem(ref: Any) -> str | None:
    """None for an image reference a module can look up (name[:tag][@digest], or an image id), else what is wrong."""
    if not isinstance(ref, str) or not ref.strip():
        return "it is empty"
    if re.match(r"^(sha256:)?[0-9a-f]{12,64}$", ref):
        return None
    name, at, digest = ref.partition("@")
    if at and not re.match(r"^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[0-9a-fA-F]{32,}$", digest):
        return f"digest '{digest}' is not algorithm:hex"
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        name, dummy, tag = name.rpartition(":")
        if not TAG.match(tag):
            return f"tag '{tag}' must be at most 128 letters, digits, '_', '.' and '-', not starting with '.' or '-'"
    return repository_problem(name)


class DockerModuleError(RuntimeError):
    """An expected failure: the message names the object and what to do; no traceback."""

    def __init__(self, msg: str, **details: Any) -> None:
        super().__init__(msg)
        self.details = details


@dataclass(frozen=True)
class EngineSettings:
    """Where the Docker Engine is and how to talk to it, with where each came from (for messages).

    ``source`` names what decided the address: ``option docker_host``, ``DOCKER_HOST``,
    ``context NAME`` or ``default``; ``tls_source`` likewise for the TLS material.
    """

    docker_host: str
    api_timeout: int = 300
    tls: bool = False
    validate_certs: bool = False
    ca_path: str | None = None
    client_cert: str | None = None
    client_key: str | None = None
    source: str = "default"
    tls_source: str = ""

    @classmethod
    def from_params(cls, params: dict[str, Any], environ: Mapping[str, str] | None = None) -> "EngineSettings":
        return resolve_engine(params, os.environ if environ is None else environ)

    @property
    def use_tls(self) -> bool:
        return bool(self.tls or self.validate_certs)

    @property
    def probe_host(self) -> str:
        """The address the controller reaches a container's port at: the host of a tcp:// engine, else
        127.0.0.1 (a unix socket is local; an ssh:// engine keeps the earlier behaviour: its ports are taken to
        be forwarded to the controller's loopback)."""
        return probe_host(self.docker_host)

    def describe(self) -> str:
        return f"{self.docker_host} (from {self.source})"

    def tls_config(self):
        """docker.tls.TLSConfig for this engine, or False; a missing file fails naming the option."""
        if not self.use_tls:
            return False
        # Without verification the CA is not read (as with `docker --tls`), so only a CA that is used must exist.
        files = (("ca_path", self.ca_path if self.validate_certs else None), ("client_cert", self.client_cert),
                 ("client_key", self.client_key))
        for field, value in files:
            if value and not os.path.isfile(value):
                raise DockerModuleError(
                    f"{field} '{value}' (from {self.tls_source}) does not exist: give the {field.replace('_', ' ')} file of the "
                    f"Docker Engine at {self.docker_host}, or fix DOCKER_CERT_PATH / the context's TLS material")
        if bool(self.client_cert) != bool(self.client_key):
            missing = "client_key" if self.client_cert else "client_cert"
            raise DockerModuleError(f"{missing} is missing (from {self.tls_source}): a client certificate needs its key "
                                    f"and the key its certificate")
        from docker.tls import TLSConfig

        client = (self.client_cert, self.client_key) if self.client_cert else None
        return TLSConfig(client_cert=client, ca_cert=self.ca_path if self.validate_certs else None,
                         verify=bool(self.validate_certs))


def probe_host(docker_host: str) -> str:
    parts = urlsplit(docker_host)
    if parts.scheme in ("tcp", "http", "https") and parts.hostname:
        return parts.hostname
    return "127.0.0.1"


def env_tls(environ: Mapping[str, str]) -> dict[str, Any]:
    """TLS settings from DOCKER_TLS_VERIFY and DOCKER_CERT_PATH, read exactly as docker.utils.kwargs_from_env
    and the Docker CLI read them: DOCKER_TLS_VERIFY set to anything but '' verifies; DOCKER_CERT_PATH (default
    ~/.docker when only DOCKER_TLS_VERIFY is set) holds ca.pem, cert.pem and key.pem."""
    cert_path = environ.get("DOCKER_CERT_PATH") or None
    verify_raw = environ.get("DOCKER_TLS_VERIFY")
    verify = verify_raw is not None and verify_raw != ""
    if not (cert_path or verify):
        return {}
    cert_path = cert_path or os.path.join(os.path.expanduser("~"), ".docker")
    return {"tls": True, "validate_certs": verify, "ca_path": os.path.join(cert_path, "ca.pem"),
            "client_cert": os.path.join(cert_path, "cert.pem"), "client_key": os.path.join(cert_path, "key.pem")}


def docker_config_dir(environ: Mapping[str, str]) -> str:
    """DOCKER_CONFIG, else ~/.docker: where the CLI keeps config.json and contexts/."""
    return environ.get("DOCKER_CONFIG") or os.path.join(os.path.expanduser("~"), ".docker")


def current_context_name(environ: Mapping[str, str]) -> str:
    """DOCKER_CONTEXT, else currentContext of config.json in the Docker config dir, else 'default'."""
    name = environ.get("DOCKER_CONTEXT")
    if name:
        return name
    path = os.path.join(docker_config_dir(environ), "config.json")
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle).get("currentContext") or "default"
    except FileNotFoundError:
        return "default"
    except (OSError, ValueError, AttributeError) as exc:
        raise DockerModuleError(f"the Docker config file {path} cannot be read ({exc}): fix it, or set DOCKER_HOST "
                                "or docker_host") from None


def context_settings(name: str, how: str, environ: Mapping[str, str]) -> tuple[str, dict[str, Any]]:
    """(host, TLS settings) of a Docker CLI context.

    The layout is the CLI's (and docker-py's docker.context): contexts/meta/<sha256(name)>/meta.json holds the
    docker endpoint's Host and SkipTLSVerify, contexts/tls/<sha256(name)>/docker/ holds ca.pem, cert.pem and
    key.pem. It is read here rather than with docker.context.ContextAPI because ContextAPI looks for contexts/
    beside an existing config.json only, and in the current directory when there is none (a fresh DOCKER_CONFIG
    after `docker context create`), and it cannot be given the environment.
    """
    contexts = os.path.join(docker_config_dir(environ), "contexts")
    digest = hashlib.sha256(name.encode("utf-8")).hexdigest()
    meta_file = os.path.join(contexts, "meta", digest, "meta.json")
    try:
        with open(meta_file, encoding="utf-8") as handle:
            meta = json.load(handle)
        endpoint = meta["Endpoints"]["docker"]
        host = endpoint.get("Host") or DEFAULT_DOCKER_HOST
    except FileNotFoundError:
        raise DockerModuleError(
            f"Docker context '{name}' ({how}) does not exist in {contexts}: create it with `docker context create "
            f"{name} --docker host=...`, or pick another with docker_context / DOCKER_CONTEXT") from None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise DockerModuleError(f"Docker context '{name}' ({how}) cannot be read from {meta_file}: {exc!r}") from None
    tls_dir = os.path.join(contexts, "tls", digest, "docker")
    files = {stem: os.path.join(tls_dir, f"{stem}.pem") for stem in ("ca", "cert", "key")}
    if not any(os.path.isfile(path) for path in files.values()):
        return host, {}
    return host, {"tls": True, "validate_certs": not endpoint.get("SkipTLSVerify", False),
                  "ca_path": files["ca"] if os.path.isfile(files["ca"]) else None,
                  "client_cert": files["cert"] if os.path.isfile(files["cert"]) else None,
                  "client_key": files["key"] if os.path.isfile(files["key"]) else None}


def resolve_engine(params: Mapping[str, Any], environ: Mapping[str, str]) -> EngineSettings:
    """The engine to use, the way the Docker CLI and docker-py choose it.

    1. module options: docker_host or docker_context (not both); TLS options override whatever else gives TLS;
    2. the environment: DOCKER_HOST, with DOCKER_TLS_VERIFY/DOCKER_CERT_PATH (also for option docker_host);
    3. the Docker context: DOCKER_CONTEXT, else currentContext of the Docker config file, with its TLS material;
    4. the default socket.
    """
    timeout = int(params.get("api_timeout") or 300)
    if params.get("docker_host") and params.get("docker_context"):
        raise DockerModuleError("docker_host and docker_context are mutually exclusive: give the engine's address "
                                "or the name of a Docker context, not both")
    tls: dict[str, Any] = {}
    tls_source = ""
    if params.get("docker_host"):
        host, source = params["docker_host"], "option docker_host"
        tls = env_tls(environ)
    elif params.get("docker_context"):
        name = params["docker_context"]
        source = tls_source = f"context '{name}'"
        host, tls = context_settings(name, "option docker_context", environ)
    elif environ.get("DOCKER_HOST"):
        host, source = environ["DOCKER_HOST"], "DOCKER_HOST"
        tls = env_tls(environ)
    else:
        name = current_context_name(environ)
        if name != "default":
            how = "DOCKER_CONTEXT" if environ.get("DOCKER_CONTEXT") else "currentContext of the Docker config"
            source = tls_source = f"context '{name}' ({how})"
            host, tls = context_settings(name, how, environ)
        else:
            # The CLI's default context: the socket, and DOCKER_TLS_VERIFY/DOCKER_CERT_PATH still count.
            host, source = DEFAULT_DOCKER_HOST, "default"
            tls = env_tls(environ)
    if tls and not tls_source:
        tls_source = "DOCKER_CERT_PATH/DOCKER_TLS_VERIFY"
    given = {key: params[key] for key in TLS_OPTIONS if params.get(key) is not None}
    if given:
        tls = dict(tls, **given)
        tls_source = "module options" + (f" over {tls_source}" if tls_source and len(given) < len(TLS_OPTIONS) else "")
    if given.get("validate_certs") and "tls" not in given:
        tls["tls"] = True
    return EngineSettings(docker_host=host, api_timeout=timeout, source=source, tls_source=tls_source,
                          tls=bool(tls.get("tls")), validate_certs=bool(tls.get("validate_certs")),
                          ca_path=tls.get("ca_path"), client_cert=tls.get("client_cert"), client_key=tls.get("client_key"))


def docker_module(argument_spec: dict[str, Any], **kwargs: Any):
    """The AnsibleModule of a Docker module: its own options plus DOCKER_COMMON_ARGS, and a
    clear failure when the Docker SDK is missing. Every Docker module starts here."""
    from ansible.module_utils.basic import AnsibleModule, missing_required_lib

    module = AnsibleModule(argument_spec=dict(argument_spec, **DOCKER_COMMON_ARGS), **kwargs)
    if not HAS_DOCKER:
        module.fail_json(msg=missing_required_lib("docker"), exception=str(DOCKER_IMPORT_ERROR))
    return module


def _chain(exc: BaseException) -> list[str]:
    """The texts of an exception and its causes, outermost first (requests wraps the ssl error deep down)."""
    seen, parts = set(), []
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        parts.append(f"{type(exc).__name__}: {exc}")
        exc = exc.__cause__ or exc.__context__ or (exc.args[0] if exc.args and isinstance(exc.args[0], BaseException) else None)
    return parts


def connection_error(settings: EngineSettings, exc: BaseException) -> DockerModuleError:
    """A message naming the address, where it came from and what to check."""
    chain = _chain(exc)
    lowered = " ".join(chain).lower()
    # The innermost cause says it best ("[SSL: CERTIFICATE_VERIFY_FAILED] ..."); the wrappers repeat it.
    text = chain[-1] if chain else str(exc)
    where = settings.describe()
    if not settings.use_tls and ("http request to an https server" in lowered or "400 client error" in lowered):
        return DockerModuleError(
            f"the Docker Engine at {where} speaks TLS but TLS is off: set tls/validate_certs with ca_path, client_cert "
            f"and client_key, or DOCKER_TLS_VERIFY=1 and DOCKER_CERT_PATH, or use a Docker context with its TLS material")
    if "certificate_verify_failed" in lowered or "certificate verify failed" in lowered:
        return DockerModuleError(
            f"TLS: the Docker Engine's certificate at {where} was not accepted ({text}). Check that ca_path "
            f"'{settings.ca_path or 'system CAs'}' (from {settings.tls_source}) is the CA that signed the engine's "
            f"certificate (dockerd --tlscert) and that the certificate names host '{settings.probe_host}'")
    if any(word in lowered for word in ("certificate_required", "certificate required", "bad certificate",
                                        "bad_certificate", "unknown ca", "unknown_ca", "alert")):
        return DockerModuleError(
            f"TLS: the Docker Engine at {where} refused the client certificate '{settings.client_cert or 'none'}' (from "
            f"{settings.tls_source or 'nowhere'}) ({text}). Give client_cert and client_key (or DOCKER_CERT_PATH with "
            f"cert.pem and key.pem) signed by the CA the engine trusts (dockerd --tlscacert)")
    if "ssl" in lowered:
        return DockerModuleError(
            f"TLS with the Docker Engine at {where} failed ({text}). Check ca_path '{settings.ca_path}', client_cert "
            f"'{settings.client_cert}' and client_key '{settings.client_key}' (from {settings.tls_source or 'nowhere'})")
    return DockerModuleError(
        f"cannot reach the Docker Engine at {where}: {exc}. Start it (scripts/services/docker.sh start for the local "
        "one), or point at another with docker_host / docker_context, DOCKER_HOST or DOCKER_CONTEXT.")


def _client_class():
    """DockerClient whose API session keeps the engine's TLS verification.

    requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE win over a session's ``verify`` (requests#3829), and
    docker-py sets the engine's CA (or verify=False) on the session only: on a machine with those variables
    set, as many CI and AWX images are, the engine's certificate would be checked against the system bundle
    and fail. Here the session's value is passed per request, where it wins; proxies from the environment stay.
    """

    class EngineAPIClient(docker.APIClient):
        def merge_environment_settings(self, url, proxies, stream, verify, cert):
            settings = super().merge_environment_settings(url, proxies, stream, verify, cert)
            # verify=True means "the system CAs": there the environment's bundle may stay.
            if verify is None and self.verify is not True:
                settings["verify"] = self.verify
            return settings

    class EngineClient(docker.DockerClient):
        def __init__(self, **kwargs: Any) -> None:  # DockerClient.__init__ only builds its APIClient
            self.api = EngineAPIClient(**kwargs)

    return EngineClient


def connect(settings: EngineSettings):
    """A DockerClient that answered a ping, or DockerModuleError naming the address and what to do."""
    if not HAS_DOCKER:
        raise DockerModuleError("the Python package 'docker' (Docker SDK) is required on the controller")
    try:
        tls = settings.tls_config()
        client = _client_class()(base_url=settings.docker_host, tls=tls, timeout=settings.api_timeout)
        client.ping()
    except DockerModuleError:
        raise
    except (DockerException, OSError) as exc:
        raise connection_error(settings, exc) from None
    return client


def image_summary(attrs: dict[str, Any]) -> dict[str, Any]:
    """The facts a caller needs about an image, from `docker image inspect` attributes."""
    config = attrs.get("Config") or {}
    repo_digests = attrs.get("RepoDigests") or []
    return {
        "id": attrs["Id"],
        # A pushed image is addressed by its registry digest; a local one by its config digest (the id).
        "digest": repo_digests[0].split("@", 1)[1] if repo_digests else attrs["Id"],
        "repo_digests": repo_digests,
        "tags": attrs.get("RepoTags") or [],
        "size": attrs.get("Size"),
        "created": attrs.get("Created"),
        "labels": config.get("Labels") or {},
        "user": config.get("User") or "",
        "architecture": attrs.get("Architecture"),
        "os": attrs.get("Os"),
    }
