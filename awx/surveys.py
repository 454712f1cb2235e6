#!/usr/bin/env python3
"""Derive AWX survey specs from the roles' meta/argument_specs.yml.

    awx/surveys.py            write awx/surveys/<template>.json for every job template
    awx/surveys.py --check    exit 1 when a committed survey differs from what the specs give

One source of truth: a role's option type, choices and description become the
question's type, choices and description. The role's default is named in the
description but is NOT the question's default: AWX passes survey answers as extra
vars, the highest precedence there is, so a pre-filled default would silently
override what the inventory sets for that environment. An unanswered optional
question passes nothing, and the inventory (or the role default) stands.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
ROLES = ROOT / "collections" / "ansible_collections" / "velocity" / "platform" / "roles"
OUT = ROOT / "awx" / "surveys"


class SurveyError(ValueError):
    pass


def role_options(role: str) -> dict[str, dict[str, Any]]:
    path = ROLES / role / "meta" / "argument_specs.yml"
    if not path.exists():
        raise SurveyError(f"role {role!r}: no {path.relative_to(ROOT)}")
    return yaml.safe_load(path.read_text())["argument_specs"]["main"]["options"]


def question(variable: str, spec: dict[str, Any]) -> dict[str, Any]:
    kind = spec.get("type", "str")
    description = spec.get("description", "")
    if isinstance(description, list):
        description = " ".join(description)
    q: dict[str, Any] = {
        "variable": variable,
        "question_name": variable.replace("_", " ").capitalize(),
        "question_description": description,
        "required": bool(spec.get("required", False)),
    }
    default = spec.get("default")
    if spec.get("choices"):
        q["type"] = "multiplechoice"
        q["choices"] = [str(c) for c in spec["choices"]]
    elif kind == "bool":
        q["type"] = "multiplechoice"
        q["choices"] = ["true", "false"]
        default = None if default is None else str(bool(default)).lower()
    elif kind == "int":
        q["type"] = "integer"
    elif kind == "float":
        q["type"] = "float"
    elif kind in ("list", "dict"):
        raise SurveyError(f"{variable}: {kind} options cannot be survey questions; set them in the inventory")
    else:
        q["type"] = "text"
    if default is not None:
        q["question_description"] = f"{description} (if blank: the inventory's value, else {default})".strip()
    if spec.get("no_log"):
        q["type"] = "password"
    return q


def survey(template: dict[str, Any]) -> dict[str, Any]:
    spec = []
    for role, variables in template["survey"].items():
        options = role_options(role)
        for variable in variables:
            if variable not in options:
                raise SurveyError(f"{template['name']}: {variable!r} is not an option of role {role!r}")
            spec.append(question(variable, options[variable]))
    return {"name": template["name"], "description": template.get("description", ""), "spec": spec}


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    templates = yaml.safe_load((ROOT / "awx" / "templates.yml").read_text())["job_templates"]
    stale = []
    OUT.mkdir(exist_ok=True)
    for template in templates:
        if "survey" not in template:  # a template without questions (verify, renew) has no survey file
            continue
        path = OUT / f"{slug(template['name'])}.json"
        text = json.dumps(survey(template), indent=2, sort_keys=True) + "\n"
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(str(path.relative_to(ROOT)))
        else:
            tmp = path.with_suffix(".tmp")
            tmp.write_text(text)
            tmp.replace(path)
    if stale:
        print("surveys out of date with the argument specs (run awx/surveys.py): " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
