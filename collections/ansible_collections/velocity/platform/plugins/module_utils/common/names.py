# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Velocity platform team
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Kubernetes names, checked before any API call: one validator for every module.

- An object name is a DNS-1123 subdomain: at most 253 characters, lowercase letters,
  digits, '-' and '.', each dot-separated part starting and ending with a letter or digit.
- A namespace (and the name of a Namespace object) is a DNS-1123 label: at most 63
  characters, lowercase letters, digits and '-', starting and ending with a letter or digit.
- RBAC objects (Role, ClusterRole and their bindings) are the exception the API server
  makes: any name that is a valid path segment (no '/', no '%', not '.' or '..'),
  for example C(system:aggregate-to-view).

Each function returns None for a valid name, or a message that names the field, says
what is wrong and suggests a valid spelling. Callers raise their own error type with it.
"""
from __future__ import annotations

import re
from typing import Optional

LABEL_MAX = 63
SUBDOMAIN_MAX = 253
_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
DNS1123_LABEL = re.compile(rf"^{_LABEL}$")
DNS1123_SUBDOMAIN = re.compile(rf"^{_LABEL}(\.{_LABEL})*$")
# Kinds whose names the API server validates as path segments only.
PATH_SEGMENT_KINDS = ("Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding")


# An environment variable name, as every env file, Secret key and container env of ours takes it.
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# A name that says its value is a secret (SECRET_KEY, DB_PASSWORD, API_TOKEN, DATABASE_URL...).
SECRET_NAME = re.compile(r"SECRET|PASSWORD|PASSWD|TOKEN|PRIVATE|CREDENTIAL|API_?KEY|(KEY|DATABASE_URL|DSN)$",
                         re.IGNORECASE)


def type_name(value) -> str:
    """'a number', 'a list'...: what the operator wrote, not Python's (or Ansible's tagged) class name."""
    if value is None:
        return "null"
    for kind, name in ((bool, "a boolean"), ((int, float), "a number"), (str, "a string"), (dict, "a mapping"),
                       ((list, tuple, set), "a list")):
        if isinstance(value, kind):
            return name
    return f"a {type(value).__name__}"


def env_name_problem(value, field: str) -> Optional[str]:
    """None when ``value`` is a valid environment variable name, else why not (naming ``field``)."""
    if isinstance(value, str) and ENV_NAME.match(value):
        return None
    return (f"{field}: {value!r} is not a valid environment variable name (letters, digits and '_', not starting "
            "with a digit)")


def looks_secret(name: str) -> bool:
    """Whether a variable or argument name says its value is a secret."""
    return bool(SECRET_NAME.search(name))


def _shown(value) -> str:
    text = repr(value)
    return text if len(text) <= 70 else text[:60] + f"...' ({len(value)} characters)"


def suggest(value: str, label: bool = False) -> str:
    """A valid spelling close to ``value`` (lowercase, '_' and spaces as '-')."""
    limit = LABEL_MAX if label else SUBDOMAIN_MAX
    text = re.sub(r"[_\s]+", "-", value.lower())
    text = re.sub(r"[^-a-z0-9]" if label else r"[^-a-z0-9.]", "", text)
    if not label:
        text = re.sub(r"\.{2,}", ".", text)
        text = ".".join(part.strip("-") for part in text.split(".") if part.strip("-"))
    text = text[:limit].strip("-.")
    return text or "my-app"


def name_problem(value, field: str, label: bool = False) -> Optional[str]:
    """None when ``value`` is a valid object name (``label=False``) or namespace (``label=True``)."""
    what = "namespace (DNS-1123 label)" if label else "object name (DNS-1123 subdomain)"
    if not isinstance(value, str):
        return f"{field} must be a string, a Kubernetes {what}, not {type_name(value)} {_shown(value)}"
    if not value:
        return f"{field} is empty: give a Kubernetes {what}, for example 'my-app'"
    limit = LABEL_MAX if label else SUBDOMAIN_MAX
    pattern = DNS1123_LABEL if label else DNS1123_SUBDOMAIN
    if len(value) <= limit and pattern.match(value):
        return None
    dots = "" if label else ", and '.' between parts"
    rule = (f"at most {limit} characters: lowercase letters, digits and '-'{dots}, starting and ending with a letter "
            "or digit")
    too_long = f" is {len(value)} characters long and" if len(value) > limit else ""
    example = suggest(value, label)
    return f"{field} {_shown(value)}{too_long} is not a valid Kubernetes {what}: use {rule} (e.g. '{example}')"


def object_name_problem(kind, value, field: str) -> Optional[str]:
    """The rule the API server applies to ``metadata.name`` of a ``kind``."""
    if kind == "Namespace":
        return name_problem(value, field, label=True)
    if kind in PATH_SEGMENT_KINDS:
        if not isinstance(value, str) or not value:
            return f"{field} must be a non-empty string, not {_shown(value)}"
        if value in (".", "..") or "/" in value or "%" in value:
            return (f"{field} {_shown(value)} is not a valid {kind} name: it must not be '.' or '..' nor contain '/' "
                    "or '%'")
        return None
    return name_problem(value, field)
