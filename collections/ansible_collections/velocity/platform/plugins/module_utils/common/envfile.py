# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Velocity platform team
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Env files, written and read in one place, so that what a reader gets is what Docker gets.

Two formats:

- ``docker``: ``NAME=value``, literal. The value is everything after the first ``=``, quotes
  and backslashes included, as ``docker run --env-file`` and Compose's ``env_file`` read it.
  A value cannot hold a line break.
- ``shell``: ``NAME='value'``, quoted for POSIX sh (``set -a; . file; set +a``); any value.

The writer's first line names the format, and the reader follows it; a file without that
line is read as ``docker``, the way Docker reads it. Errors name the line number, never its
content (it may be a secret).
"""
from __future__ import annotations

import re
import shlex
from typing import Dict

from ansible_collections.velocity.platform.plugins.module_utils.common.names import ENV_NAME

FORMATS = ("docker", "shell")
_FORMAT_LINE = re.compile(r"^#.*\((docker|shell) format\)")


class EnvFileError(ValueError):
    """An env file that cannot be written or read; the message never holds a value."""


def header(fmt: str) -> str:
    """The first line of what render() writes: it names the format, which parse() follows."""
    return f"# Written by velocity.platform.vault_secrets ({fmt} format). Do not edit: values come from Vault."


def render(values: Dict[str, str], fmt: str = "docker") -> bytes:
    if fmt not in FORMATS:
        raise EnvFileError(f"env_file_format must be docker or shell, not {fmt}")
    lines = [header(fmt)]
    for name in sorted(values):
        value = values[name]
        if fmt == "docker":
            if "\n" in value or "\r" in value:
                raise EnvFileError(f"{name}: the value has a line break, which the docker env-file format cannot "
                                   "carry; use env_file_format: shell")
            lines.append(f"{name}={value}")
        else:
            lines.append(f"{name}={shlex.quote(value)}")
    return ("\n".join(lines) + "\n").encode()


def parse(text: str, source: str = "env file") -> Dict[str, str]:
    """The variables of an env file's text (docker unless its first line says shell)."""
    first = text.split("\n", 1)[0]
    match = _FORMAT_LINE.match(first)
    if match and match.group(1) == "shell":
        return _parse_shell(text, source)
    env: Dict[str, str] = {}
    for number, line in enumerate(text.split("\n"), 1):
        line = line[:-1] if line.endswith("\r") else line
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        name, sep, value = line.lstrip().partition("=")
        if not sep or not ENV_NAME.match(name):
            raise EnvFileError(f"{source} line {number} is not NAME=value")
        env[name] = value
    return env


def _parse_shell(text: str, source: str) -> Dict[str, str]:
    """Shell words, as ``set -a; . file`` reads what render() writes (a quoted value may span lines)."""
    lexer = shlex.shlex(text, posix=True)
    lexer.whitespace_split = True
    lexer.commenters = "#"
    env: Dict[str, str] = {}
    try:
        for word in lexer:
            if word == "export":
                continue
            name, sep, value = word.partition("=")
            if not sep or not ENV_NAME.match(name):
                raise EnvFileError(f"{source} line {lexer.lineno} is not NAME=value")
            env[name] = value
    except ValueError as exc:
        if isinstance(exc, EnvFileError):
            raise
        raise EnvFileError(f"{source} line {lexer.lineno}: {exc} (quote the value)") from None
    return env
