"""image_build against the real engine: content idempotence on a tiny FROM-scratch context."""

from __future__ import annotations

import uuid

import pytest

from ansible_collections.velocity.platform.plugins.module_utils.image.build import DIGEST_LABEL, BuildRequest, build

pytestmark = [pytest.mark.docker]


@pytest.fixture
def context(tmp_path, docker_engine):
    (tmp_path / "Dockerfile").write_text(
        "ARG BASE_IMAGE=scratch\nFROM ${BASE_IMAGE}\nARG CREATED=unset\n"
        'LABEL org.opencontainers.image.created="${CREATED}"\nCOPY payload.txt /payload.txt\n'
    )
    (tmp_path / "payload.txt").write_text("one\n")
    (tmp_path / "README.md").write_text("not in the image\n")
    (tmp_path / ".dockerignore").write_text("*.md\n")
    name = f"velocity/itest-{uuid.uuid4().hex[:8]}"
    yield tmp_path, name
    for image in docker_engine.images.list(name=name):
        docker_engine.images.remove(image.id, force=True)


def request(ctx, name, **kw):
    return BuildRequest(context=str(ctx), name=name, tag="t", **kw)


def test_same_content_is_not_rebuilt_and_a_change_is(docker_engine, context):
    ctx, name = context
    first = build(docker_engine, request(ctx, name, build_args={"CREATED": "2026-01-01T00:00:00Z"}))
    assert first.changed and first.built
    assert first.image["labels"][DIGEST_LABEL] == first.context_digest
    assert first.image["labels"]["org.opencontainers.image.created"] == "2026-01-01T00:00:00Z"

    # A new CREATED alone, or an ignored file, does not rebuild; the image keeps its created label.
    (ctx / "README.md").write_text("edited\n")
    second = build(docker_engine, request(ctx, name, build_args={"CREATED": "2026-05-05T00:00:00Z"}))
    assert not second.changed and not second.built
    assert second.image["id"] == first.image["id"]
    assert second.image["labels"]["org.opencontainers.image.created"] == "2026-01-01T00:00:00Z"

    # Check mode sees a content change without building.
    (ctx / "payload.txt").write_text("two\n")
    planned = build(docker_engine, request(ctx, name), check_mode=True)
    assert planned.changed and not planned.built and "content changed" in planned.reason
    assert docker_engine.api.inspect_image(f"{name}:t")["Id"] == first.image["id"]

    third = build(docker_engine, request(ctx, name))
    assert third.changed and third.built and third.image["id"] != first.image["id"]


def test_additional_tags_are_added_once(docker_engine, context):
    ctx, name = context
    build(docker_engine, request(ctx, name))
    tagged = build(docker_engine, request(ctx, name, additional_tags=["extra"]))
    assert tagged.changed and not tagged.built and tagged.tagged == [f"{name}:extra"]
    again = build(docker_engine, request(ctx, name, additional_tags=["extra"]))
    assert not again.changed


def test_a_failing_build_reports_the_error_and_log_tail(docker_engine, context):
    ctx, name = context
    (ctx / "Dockerfile").write_text("FROM scratch\nCOPY missing.txt /\n")
    from ansible_collections.velocity.platform.plugins.module_utils.image.engine import DockerModuleError

    with pytest.raises(DockerModuleError) as exc:
        build(docker_engine, request(ctx, name))
    assert "missing.txt" in str(exc.value)
    assert exc.value.details["log_tail"]
