# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Velocity platform team
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations


class ModuleDocFragment:
    # Connection to the Docker Engine, shared by image_build, image_sbom and container_smoke_test.
    DOCUMENTATION = r"""
options:
  docker_host:
    description:
      - URL of the Docker Engine API, for example V(unix:///var/run/docker.sock) or V(tcp://builder:2376).
      - When unset, the E(DOCKER_HOST) environment variable of the controller, then V(unix:///var/run/docker.sock).
      - These modules talk to the engine from the controller (they run where Ansible runs).
    type: str
    aliases: [docker_url]
  api_timeout:
    description:
      - Seconds to wait for a single Docker Engine API call (a build step may take longer than a ping).
    type: int
    default: 300
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
