"""Content digest of image_build: what changes it, what does not."""

from __future__ import annotations

import os

import pytest

from ansible_collections.velocity.platform.plugins.module_utils.image.build import (
    BuildRequest,
    base_images,
    context_digest,
    context_files,
)
from ansible_collections.velocity.platform.plugins.module_utils.image.engine import DockerModuleError, image_summary


@pytest.fixture
def context(tmp_path):
    (tmp_path / "Dockerfile").write_text("ARG BASE_IMAGE=scratch\nFROM ${BASE_IMAGE}\nCOPY app.txt /\n")
    (tmp_path / "app.txt").write_text("v1\n")
    (tmp_path / "notes.md").write_text("ignored\n")
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "junk.bin").write_bytes(b"\0" * 10)
    (tmp_path / ".dockerignore").write_text("# comment\n*.md\ncache\n")
    return tmp_path


def req(ctx, **kw) -> BuildRequest:
    return BuildRequest(context=str(ctx), name="velocity/test", **kw)


def test_context_files_honour_dockerignore(context):
    files = context_files(str(context), "Dockerfile")
    assert "app.txt" in files and "Dockerfile" in files
    assert "notes.md" not in files
    assert not any(f.startswith("cache") for f in files)


def test_digest_is_stable_for_the_same_content(context):
    assert context_digest(req(context)) == context_digest(req(context))


def test_digest_changes_when_a_context_file_changes(context):
    before = context_digest(req(context))
    (context / "app.txt").write_text("v2\n")
    assert context_digest(req(context)) != before


def test_digest_ignores_files_excluded_by_dockerignore(context):
    before = context_digest(req(context))
    (context / "notes.md").write_text("changed\n")
    (context / "cache" / "junk.bin").write_bytes(b"\1" * 10)
    assert context_digest(req(context)) == before


def test_digest_sees_the_executable_bit(context):
    before = context_digest(req(context))
    os.chmod(context / "app.txt", 0o755)
    assert context_digest(req(context)) != before


def test_created_build_arg_does_not_change_the_digest(context):
    a = context_digest(req(context, build_args={"CREATED": "2026-01-01T00:00:00Z", "VERSION": "1"}))
    b = context_digest(req(context, build_args={"CREATED": "2026-02-02T00:00:00Z", "VERSION": "1"}))
    assert a == b


def test_other_build_args_target_and_labels_change_the_digest(context):
    base = context_digest(req(context, build_args={"VERSION": "1"}))
    assert context_digest(req(context, build_args={"VERSION": "2"})) != base
    assert context_digest(req(context, build_args={"VERSION": "1"}, target="runtime")) != base
    assert context_digest(req(context, build_args={"VERSION": "1"}, labels={"a": "b"})) != base


def test_a_changed_base_image_id_changes_the_digest(context):
    a = context_digest(req(context), {"velocity/base:x": "sha256:aaa"})
    b = context_digest(req(context), {"velocity/base:x": "sha256:bbb"})
    assert a != b


def test_base_images_resolves_args_and_skips_stage_names():
    text = "ARG BASE_IMAGE=python:3.11-slim\nFROM ${BASE_IMAGE} AS build\nRUN x\nFROM $BASE_IMAGE AS runtime\nFROM build\nFROM scratch\n"
    assert base_images(text, {}) == ["python:3.11-slim"]
    assert base_images(text, {"BASE_IMAGE": "velocity/base:bookworm-1"}) == ["velocity/base:bookworm-1"]


@pytest.mark.parametrize("name", ["DB_PASSWORD", "SECRET_KEY", "GITHUB_TOKEN", "api_key"])
def test_secret_looking_build_args_are_refused(context, name):
    with pytest.raises(DockerModuleError, match=name):
        req(context, build_args={name: "x"}).validate()


def test_missing_dockerfile_names_the_option(tmp_path):
    with pytest.raises(DockerModuleError, match="dockerfile"):
        req(tmp_path).validate()


def test_name_with_a_tag_is_refused(context):
    with pytest.raises(DockerModuleError, match="tag option"):
        BuildRequest(context=str(context), name="velocity/test:1").validate()


def test_image_summary_prefers_the_registry_digest():
    attrs = {"Id": "sha256:abc", "RepoDigests": ["reg/x@sha256:def"], "Config": {"Labels": {"a": "b"}, "User": "10001"}}
    assert image_summary(attrs)["digest"] == "sha256:def"
    attrs["RepoDigests"] = []
    assert image_summary(attrs)["digest"] == "sha256:abc"
