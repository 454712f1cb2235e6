# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Velocity platform team
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations


class ModuleDocFragment:
    # Connection to the Docker Engine, shared by image_build, image_sbom, image_push and container_smoke_test.
    DOCUMENTATION = r"""
options:
  docker_host:
    description:
      - URL of the Docker Engine API, for example V(unix:///var/run/docker.sock), V(tcp://builder.example.com:2376)
        or V(ssh://user@builder).
      - 'Which engine is used, first match wins, as the Docker CLI and the Docker SDK decide it:
        1. the module options O(docker_host) or O(docker_context) (not both);
        2. the environment of the controller: E(DOCKER_HOST);
        3. the Docker context: E(DOCKER_CONTEXT), else C(currentContext) of the Docker config file
        (C($DOCKER_CONFIG/config.json), else C(~/.docker/config.json)), with the TLS material stored in that context;
        4. V(unix:///var/run/docker.sock).'
      - 'TLS follows the same sources: with O(docker_host) or E(DOCKER_HOST) (or the default socket),
        E(DOCKER_TLS_VERIFY) (any value but empty verifies) and E(DOCKER_CERT_PATH) (its C(ca.pem), C(cert.pem)
        and C(key.pem); C(~/.docker) when only E(DOCKER_TLS_VERIFY) is set) are read as C(docker --tlsverify) reads
        them; with a context, its own TLS material. The TLS options of the module (O(tls), O(validate_certs),
        O(ca_path), O(client_cert), O(client_key)) override each value they set.'
      - These modules talk to the engine from the controller (they run where Ansible runs).
    type: str
    aliases: [docker_url]
  docker_context:
    description:
      - Name of a Docker CLI context (C(docker context ls)) whose endpoint and TLS material to use, instead of
        E(DOCKER_HOST) and the current context. Mutually exclusive with O(docker_host).
      - Contexts are read from the C(contexts) directory beside the Docker config file.
    type: str
  tls:
    description:
      - Talk to the engine over TLS without verifying its certificate (encryption only). Prefer O(validate_certs).
      - When unset, E(DOCKER_CERT_PATH) or E(DOCKER_TLS_VERIFY), or the Docker context, decide.
    type: bool
  validate_certs:
    description:
      - Talk to the engine over TLS and verify its certificate against O(ca_path) (or the system CAs), as
        C(docker --tlsverify) does. Implies O(tls).
      - When unset, E(DOCKER_TLS_VERIFY), or the Docker context, decides.
    type: bool
    aliases: [tls_verify]
  ca_path:
    description:
      - CA certificate that signed the engine's certificate (C(dockerd --tlscert)).
      - When unset, C(ca.pem) of E(DOCKER_CERT_PATH), or the context's CA.
    type: path
    aliases: [ca_cert, tls_ca_cert, cacert_path]
  client_cert:
    description:
      - Client certificate presented to an engine that requires one (C(dockerd --tlsverify --tlscacert)).
      - When unset, C(cert.pem) of E(DOCKER_CERT_PATH), or the context's certificate.
    type: path
    aliases: [tls_client_cert, cert_path]
  client_key:
    description:
      - Private key of O(client_cert). When unset, C(key.pem) of E(DOCKER_CERT_PATH), or the context's key.
    type: path
    aliases: [tls_client_key, key_path]
  api_timeout:
    description:
      - Seconds to wait for a single Docker Engine API call (a build step may take longer than a ping).
    type: int
    default: 300
notes:
  - Connection failures name the engine address and where it came from (option, E(DOCKER_HOST), a context or the
    default socket); a TLS failure says whether the engine's certificate was not accepted (check O(ca_path)) or the
    engine refused the client certificate (check O(client_cert) and O(client_key)), or that the engine speaks TLS
    while TLS is off.
  - The engine's CA is used even when E(REQUESTS_CA_BUNDLE) or E(CURL_CA_BUNDLE) is set on the controller.
requirements:
  - docker (the Docker SDK for Python) on the controller
  - A reachable Docker Engine (API 1.41 / Docker 20.10 or later)
"""

    ATTRIBUTES = r"""
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
  platform:
    description: Target OS/families that can be operated against.
    support: full
    platforms: posix
"""
