# -*- coding: utf-8 -*-
"""module_utils is grouped by area; nothing new lands flat at its top."""
from __future__ import annotations

from pathlib import Path

MODULE_UTILS = Path(__file__).resolve().parents[4] / "plugins" / "module_utils"
AREAS = {"common", "image", "k8s", "metrics", "vault"}


def test_module_utils_has_only_area_folders():
    top = sorted(p.name for p in MODULE_UTILS.iterdir() if p.name != "__pycache__")
    assert top == sorted(AREAS), "module_utils/ holds only the area folders %s, found %s" % (sorted(AREAS), top)


def test_each_area_holds_modules_and_no_package_marker():
    for area in AREAS:
        names = {p.name for p in (MODULE_UTILS / area).glob("*.py")}
        assert names, area
        assert "__init__.py" not in names, area
