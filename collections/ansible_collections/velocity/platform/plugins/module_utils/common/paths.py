# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Velocity platform team
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where the modules may read and write: the allowed roots, checked before any service is contacted.

1. Inside a root: a path given relative to a directory (the Dockerfile of a build
   context) must resolve, symlinks followed, inside that directory.
2. Files that receive secrets (env files, Secret manifests, lease state files) must not
   be inside a Git working tree, where ``git add -A`` commits them, unless Git itself
   says the path is ignored (``git check-ignore``). Without git to ask, they are refused.
3. Output files (SBOMs, reports): the parent directory must exist and the path must not
   be a directory.

Each check raises PathRefused with a message that names the option, the path and what
to do; the module turns it into its own failure. Nothing here writes anything.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from typing import Optional


class PathRefused(ValueError):
    """A path is outside what its option allows; the message names the option and what to do."""


def _real(path: str) -> str:
    """Absolute path with symlinks of its directory resolved; the last component is kept as given.

    An atomic write replaces a symlink at ``path`` itself, so the file lands where the
    directory really is, under the name given.
    """
    path = os.path.abspath(os.path.expanduser(path))
    return os.path.join(os.path.realpath(os.path.dirname(path)), os.path.basename(path))


def _is_within(path: str, root: str) -> bool:
    return path == root or os.path.commonpath([path, root]) == root


def check_directory(field: str, path: str) -> None:
    if not path or not os.path.isdir(path):
        what = "does not exist" if not path or not os.path.exists(path) else "is not a directory"
        raise PathRefused(f"{field} {path!r} {what}: give an existing directory")


def check_inside(field: str, path: str, root: str, root_field: str) -> str:
    """``path`` (relative to ``root``, or absolute) resolved, symlinks included, inside ``root``; returns it."""
    if not isinstance(path, str) or not path.strip():
        raise PathRefused(f"{field} is empty: give a file inside {root_field} {root}")
    real_root = os.path.realpath(root)
    resolved = os.path.realpath(os.path.join(real_root, path))
    if not _is_within(resolved, real_root):
        raise PathRefused(
            f"{field} {path!r} resolves to {resolved}, outside {root_field} {real_root}: it must be inside that "
            f"directory. Move the file into {real_root} and give {field} relative to it (or set {root_field} to a "
            "directory that contains the file)")
    return resolved


def git_worktree_of(directory: str) -> Optional[str]:
    """The closest directory at or above ``directory`` that holds a ``.git`` (a work tree), or None."""
    current = directory
    while True:
        if os.path.lexists(os.path.join(current, ".git")):
            return current
        parent = os.path.dirname(current)
        if parent == current:
            return None
        current = parent


def _git_env() -> dict:
    # A GIT_DIR or GIT_WORK_TREE inherited from a hook or a CI step would make git answer for another tree.
    return dict((k, v) for k, v in os.environ.items()
                if k not in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_CEILING_DIRECTORIES"))


def check_secret_file(field: str, path: str) -> None:
    """Refuse a secret-bearing file inside a Git working tree, unless Git ignores it."""
    if not isinstance(path, str) or not path.strip():
        raise PathRefused(f"{field} is empty: give the path of the file to write (e.g. /run/velocity/app.env)")
    if os.path.isdir(path):
        example = os.path.join(path, "app.env")
        raise PathRefused(f"{field} {path} is a directory: give the path of a file (e.g. {example})")
    real = _real(path)
    tree = git_worktree_of(os.path.dirname(real))
    if tree is None:
        return
    example = os.path.join("/run/velocity", os.path.basename(real))
    where = f"{field} {path} is inside the Git working tree {tree}, where a secret can be committed"
    advice = f"write it outside the tree (e.g. {example}) or add it to {os.path.join(tree, '.gitignore')}"
    git = shutil.which("git")
    if not git:
        raise PathRefused(f"{where}, and git is not installed to tell whether the path is ignored; {advice}")
    try:
        proc = subprocess.run(  # noqa: S603 - argv list, no shell
            [git, "-C", tree, "check-ignore", "-q", "--", os.path.relpath(real, tree)],
            capture_output=True, text=True, timeout=30, env=_git_env(), check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        raise PathRefused(f"{where}, and git could not tell whether the path is ignored ({exc}); {advice}") from None
    if proc.returncode == 0:
        return  # ignored by the tree's .gitignore (or info/exclude): it cannot be committed by accident
    if proc.returncode == 1:
        raise PathRefused(f"{where}; {advice}")
    detail = (proc.stderr or "").strip().splitlines()
    why = detail[0] if detail else f"exit code {proc.returncode}"
    raise PathRefused(f"{where}, and git could not tell whether the path is ignored ({why}); {advice}")


def check_output_file(field: str, path: str) -> None:
    """An output file: not a directory, in an existing, writable directory."""
    if not isinstance(path, str) or not path.strip():
        raise PathRefused(f"{field} is empty: give the path of the file to write")
    if os.path.isdir(path):
        example = os.path.join(path, "report.json")
        raise PathRefused(f"{field} {path} is a directory: give a file path inside it (e.g. {example})")
    parent = os.path.dirname(os.path.abspath(os.path.expanduser(path)))
    if not os.path.isdir(parent):
        raise PathRefused(f"{field} {path}: the directory {parent} does not exist; create it first (for example "
                          "with ansible.builtin.file state=directory) or choose an existing directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise PathRefused(f"{field} {path}: the directory {parent} is not writable by this user; choose another "
                          "directory or fix its permissions")
