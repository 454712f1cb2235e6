# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Velocity platform team
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Files written all-or-nothing: the one atomic writer of the collection.

Every file a module writes (env files, Secret manifests, lease state, SBOMs,
reports) goes through :func:`atomic_write`: a temporary file in the same
directory, written, fsync'ed, given its final mode before it has content
anyone else could read, then renamed over the target. A reader sees the old
file or the new one, never a part; a failure leaves the old file as it was.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from typing import Optional


def file_state(path: str) -> "tuple[Optional[str], Optional[int]]":
    """(sha256 of content, mode) of an existing file, or (None, None)."""
    try:
        with open(path, "rb") as handle:
            digest = hashlib.sha256(handle.read()).hexdigest()
        return digest, os.stat(path).st_mode & 0o7777
    except FileNotFoundError:
        return None, None


def needs_write(path: str, content: bytes, mode: int = 0o600) -> bool:
    digest, current_mode = file_state(path)
    return digest != hashlib.sha256(content).hexdigest() or current_mode != mode


def atomic_write(path: str, content: bytes, mode: int = 0o600) -> None:
    """Write ``content`` to ``path`` all-or-nothing: readers see the old file or the new one, never a part."""
    directory = os.path.dirname(os.path.abspath(path)) or "."
    if not os.path.isdir(directory):
        os.makedirs(directory, mode=0o700)
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", dir=directory)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    try:
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass
