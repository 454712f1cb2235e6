# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Velocity platform team
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Content-idempotent image builds.

The build is skipped when an image with the requested tag already carries the
digest of everything that decides its content: the files of the build context
that .dockerignore lets through (path, executable bit, bytes), the Dockerfile,
the build arguments, the target stage, the extra labels, and the id of every
local base image the Dockerfile starts FROM. Build arguments listed in
``volatile_build_args`` (by default ``CREATED``, the OCI created time) are left
out of the digest, so a new timestamp alone never forces a rebuild: the image
keeps the value of the build that made it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import time
from dataclasses import dataclass, field
from typing import Any

from ansible_collections.velocity.platform.plugins.module_utils.common.names import looks_secret
from ansible_collections.velocity.platform.plugins.module_utils.common.paths import (
    PathRefused,
    check_directory,
    check_inside,
)
from ansible_collections.velocity.platform.plugins.module_utils.image.engine import (
    TAG,
    DockerException,
    DockerModuleError,
    image_summary,
    repository_problem,
)

DIGEST_LABEL = "velocity.dev/context-digest"
DIGEST_SCHEME = "v1"
# Build-argument names that look like secrets: their values would stay in the
# image history (`docker history`) forever, so the module refuses them.


def scalar_map(field: str, mapping: dict[str, Any]) -> dict[str, str]:
    """Build arguments or labels as the engine wants them: strings. A list or a mapping is a mistake, not a value."""
    out = {}
    for key, value in (mapping or {}).items():
        if not isinstance(key, str) or not key.strip():
            raise DockerModuleError(f"{field}: key {key!r} must be a non-empty string")
        if value is not None and not isinstance(value, (str, int, float, bool)):
            raise DockerModuleError(
                f"{field}.{key} must be a string or a number, not {type(value).__name__}: give the value as one string")
        out[key] = "" if value is None else str(value)
    return out


@dataclass
class BuildRequest:
    context: str
    name: str
    tag: str = "latest"
    dockerfile: str = "Dockerfile"
    build_args: dict[str, str] = field(default_factory=dict)
    volatile_build_args: list[str] = field(default_factory=lambda: ["CREATED"])
    target: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    additional_tags: list[str] = field(default_factory=list)
    pull: bool = False
    nocache: bool = False
    force: bool = False

    @property
    def ref(self) -> str:
        return f"{self.name}:{self.tag}"

    def validate(self) -> None:
        """Everything that needs no engine; called before connecting, so bad input fails first."""
        try:
            check_directory("path (the build context)", self.context)
            # Docker reads the Dockerfile from the context it was sent, so it must be inside it.
            dockerfile = check_inside("dockerfile", self.dockerfile, self.context, "the build context path")
        except PathRefused as exc:
            raise DockerModuleError(str(exc)) from None
        if not os.path.isfile(dockerfile):
            raise DockerModuleError(
                f"dockerfile '{self.dockerfile}' not found in build context '{self.context}': give its path "
                "relative to the option path (default Dockerfile)"
            )
        if isinstance(self.name, str) and (":" in self.name.rsplit("/", 1)[-1] or "@" in self.name):
            raise DockerModuleError(f"name '{self.name}' must not carry a tag or digest: use the tag option")
        problem = repository_problem(self.name)
        if problem:
            raise DockerModuleError(f"name {self.name!r} is not a valid image repository name: {problem}")
        for option, tag in [("tag", self.tag)] + [("additional_tags", t) for t in self.additional_tags]:
            repo, bare = _split_tag(tag, self.name) if option == "additional_tags" and isinstance(tag, str) else (self.name, tag)
            if not isinstance(bare, str) or not TAG.match(bare):
                raise DockerModuleError(
                    f"{option} {tag!r} is not a valid tag: at most 128 letters, digits, '_', '.' and '-', not starting "
                    "with '.' or '-' (e.g. 0.1.0)")
            problem = repository_problem(repo)
            if problem:
                raise DockerModuleError(f"{option} {tag!r}: repository {repo!r} is not valid: {problem}")
        suspicious = sorted(k for k in self.build_args if looks_secret(k))
        if suspicious:
            raise DockerModuleError(
                f"build_args {', '.join(suspicious)} look like secrets; build arguments are recorded in the "
                "image history. Pass secrets at run time (environment), never at build time."
            )


def read_dockerignore(context: str) -> list[str]:
    """The patterns of <context>/.dockerignore, parsed as the Docker SDK parses them."""
    path = os.path.join(context, ".dockerignore")
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as handle:
        return [line.strip() for line in handle.read().splitlines() if line.strip() and not line.strip().startswith("#")]


def context_files(context: str, dockerfile: str) -> list[str]:
    """Relative paths (POSIX) the Docker SDK will send as the build context, sorted."""
    from docker.utils.build import exclude_paths

    paths = exclude_paths(context, read_dockerignore(context), dockerfile=dockerfile)
    return sorted(p.replace(os.sep, "/") for p in paths)


def _file_entry(context: str, rel: str) -> list[str] | None:
    full = os.path.join(context, rel)
    st = os.lstat(full)
    if stat.S_ISLNK(st.st_mode):
        return [rel, "l", os.readlink(full)]
    if stat.S_ISDIR(st.st_mode):
        return [rel, "d", ""]
    if not stat.S_ISREG(st.st_mode):
        return None
    sha = hashlib.sha256()
    with open(full, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            sha.update(chunk)
    # Only the executable bit: the rest of the mode depends on the checkout's umask.
    kind = "x" if st.st_mode & stat.S_IXUSR else "f"
    return [rel, kind, sha.hexdigest()]


_ARG_RE = re.compile(r"^\s*ARG\s+([A-Za-z_][A-Za-z0-9_]*)(?:=(\S*))?", re.IGNORECASE)
_FROM_RE = re.compile(r"^\s*FROM\s+(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?", re.IGNORECASE)
_VAR_RE = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?")


def base_images(dockerfile_text: str, build_args: dict[str, str]) -> list[str]:
    """Images the Dockerfile starts FROM (stage names and `scratch` excluded), ARGs resolved."""
    args: dict[str, str] = {}
    stages: set[str] = set()
    images: list[str] = []
    seen_from = False
    for line in dockerfile_text.splitlines():
        m = _ARG_RE.match(line)
        if m and not seen_from:
            args[m.group(1)] = build_args.get(m.group(1), (m.group(2) or "").strip("\"'"))
            continue
        m = _FROM_RE.match(line)
        if m:
            seen_from = True
            image = _VAR_RE.sub(lambda v: args.get(v.group(1), build_args.get(v.group(1), "")), m.group(1))
            if image.lower() != "scratch" and image not in stages and image not in images:
                images.append(image)
            if m.group(2):
                stages.add(m.group(2))
    return images


def context_digest(request: BuildRequest, base_ids: dict[str, str] | None = None) -> str:
    """sha256 over everything that decides the image's content (see the module docstring)."""
    entries = [e for e in (_file_entry(request.context, rel) for rel in context_files(request.context, request.dockerfile)) if e]
    volatile = set(request.volatile_build_args)
    spec = {
        "scheme": DIGEST_SCHEME,
        "dockerfile": request.dockerfile,
        "files": entries,
        "build_args": {k: str(v) for k, v in sorted(request.build_args.items()) if k not in volatile},
        "target": request.target or "",
        "labels": {k: str(v) for k, v in sorted(request.labels.items())},
        "base_images": dict(sorted((base_ids or {}).items())),
    }
    blob = json.dumps(spec, sort_keys=True, separators=(",", ":")).encode()
    return "sha256:" + hashlib.sha256(blob).hexdigest()


def _inspect(client, ref: str) -> dict[str, Any] | None:
    from docker.errors import ImageNotFound

    try:
        return client.api.inspect_image(ref)
    except ImageNotFound:
        return None


def current_digest(client, ref: str) -> str | None:
    """The content digest label of the image tagged ref, if any."""
    attrs = _inspect(client, ref) or {}
    return ((attrs.get("Config") or {}).get("Labels") or {}).get(DIGEST_LABEL)


def resolve_base_ids(client, request: BuildRequest) -> dict[str, str]:
    """Base image -> local image id (or 'remote' when it would be pulled)."""
    with open(os.path.join(request.context, request.dockerfile), encoding="utf-8") as handle:
        text = handle.read()
    ids = {}
    for image in base_images(text, request.build_args):
        attrs = _inspect(client, image)
        ids[image] = attrs["Id"] if attrs else "remote"
    return ids


def _split_tag(ref: str, default_repo: str) -> tuple[str, str]:
    if ":" in ref.rsplit("/", 1)[-1]:
        repo, dummy, tag = ref.rpartition(":")
        return repo, tag
    return default_repo, ref


@dataclass
class BuildResult:
    changed: bool
    built: bool
    context_digest: str
    image: dict[str, Any] | None
    tagged: list[str]
    reason: str
    log_tail: list[str]
    duration_s: float


def _run_build(client, request: BuildRequest, digest: str) -> tuple[str, list[str]]:
    """Stream a build; return (image id, log lines) or raise with the tail of the log."""
    log: list[str] = []
    image_id = None
    stream = client.api.build(
        path=request.context,
        dockerfile=request.dockerfile,
        tag=request.ref,
        buildargs={k: str(v) for k, v in request.build_args.items()},
        target=request.target,
        labels={**{k: str(v) for k, v in request.labels.items()}, DIGEST_LABEL: digest},
        pull=request.pull,
        nocache=request.nocache,
        rm=True,
        forcerm=True,
        decode=True,
    )
    for chunk in stream:
        if "stream" in chunk:
            log.extend(line for line in chunk["stream"].splitlines() if line.strip())
            m = re.search(r"Successfully built ([0-9a-f]+)", chunk["stream"])
            if m:
                image_id = m.group(1)
        if "aux" in chunk and isinstance(chunk["aux"], dict) and chunk["aux"].get("ID"):
            image_id = chunk["aux"]["ID"]
        if "error" in chunk or "errorDetail" in chunk:
            message = chunk.get("error") or chunk["errorDetail"].get("message", "unknown error")
            raise DockerModuleError(
                f"docker build of {request.ref} from {request.context} failed: {message.strip()}",
                log_tail=log[-40:],
            )
    if not image_id:
        raise DockerModuleError(f"docker build of {request.ref} ended without an image id", log_tail=log[-40:])
    return image_id, log


def build(client, request: BuildRequest, check_mode: bool = False) -> BuildResult:
    """Build when the content changed (or force); tag; never rebuild identical content."""
    started = time.monotonic()
    request.validate()
    try:
        digest = context_digest(request, resolve_base_ids(client, request))
        current = _inspect(client, request.ref)
        current_digest = ((current or {}).get("Config") or {}).get("Labels", {}) or {}
        current_digest = current_digest.get(DIGEST_LABEL)
        if request.force:
            reason = "force=true"
        elif current is None:
            reason = f"no image tagged {request.ref}"
        elif current_digest != digest:
            reason = f"content changed ({DIGEST_LABEL} {current_digest or 'absent'} -> {digest})"
        else:
            reason = ""
        need_build = bool(reason)
        wanted = [_split_tag(t, request.name) for t in request.additional_tags]

        if check_mode:
            missing = [] if need_build or current is None else [f"{r}:{t}" for r, t in wanted if f"{r}:{t}" not in (current.get("RepoTags") or [])]
            return BuildResult(
                changed=need_build or bool(missing), built=False, context_digest=digest,
                image=image_summary(current) if current and not need_build else None,
                tagged=missing, reason=reason or ("would tag " + ", ".join(missing) if missing else "up to date"),
                log_tail=[], duration_s=round(time.monotonic() - started, 3),
            )

        log: list[str] = []
        if need_build:
            image_id, log = _run_build(client, request, digest)
        else:
            image_id = current["Id"]
        attrs = client.api.inspect_image(image_id)
        tagged = []
        for repo, tag in wanted:
            if f"{repo}:{tag}" not in (attrs.get("RepoTags") or []):
                client.api.tag(image_id, repo, tag)
                tagged.append(f"{repo}:{tag}")
        if tagged:
            attrs = client.api.inspect_image(image_id)
        return BuildResult(
            changed=need_build or bool(tagged), built=need_build, context_digest=digest,
            image=image_summary(attrs), tagged=tagged, reason=reason or "up to date",
            log_tail=log[-20:], duration_s=round(time.monotonic() - started, 3),
        )
    except DockerException as exc:
        raise DockerModuleError(f"Docker Engine error while building {request.ref}: {exc}") from None
