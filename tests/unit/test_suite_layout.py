"""The suite itself: pytest imports a test file outside a package by its basename (rootdir-relative
"rootdir" import mode), so two such files with the same name stop the whole run at collection
("import file mismatch"), as three test_schema_window.py once did."""

from __future__ import annotations

import configparser
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_test_modules_outside_packages_have_unique_basenames():
    ini = configparser.ConfigParser()
    ini.read(ROOT / "pytest.ini")
    testpaths = ini["pytest"]["testpaths"].split()
    assert testpaths, "pytest.ini names no testpaths"
    by_name: dict[str, list[str]] = defaultdict(list)
    for base in testpaths:
        for path in (ROOT / base).rglob("test_*.py"):
            if not (path.parent / "__init__.py").exists():
                by_name[path.name].append(path.relative_to(ROOT).as_posix())
    clashes = {name: paths for name, paths in by_name.items() if len(paths) > 1}
    assert not clashes, f"rename one of each (pytest cannot collect both): {clashes}"


def test_parallel_placement_names_existing_test_files_once():
    from tests.parallel import BESIDE, GROUPS, SERIAL

    named = [*SERIAL, *BESIDE, *(path for files in GROUPS.values() for path in files)]
    assert len(named) == len(set(named)), "a file is in two places in tests/parallel.py"
    missing = [path for path in named if not (ROOT / path).is_file() or not Path(path).name.startswith("test_")]
    assert not missing, f"tests/parallel.py names test files that do not exist: {missing}"
    from tests.parallel import SECONDS

    missing = [path for path in SECONDS if not (ROOT / path).is_file() or not Path(path).name.startswith("test_")]
    assert not missing, f"tests/parallel.py SECONDS names test files that do not exist: {missing}"


def test_parallel_units_are_handed_out_longest_first():
    from tests.parallel import longest_first

    units = {
        "tests/a/test_many_quick.py": [f"tests/a/test_many_quick.py::test_{i}" for i in range(50)],  # 50 x 0.2 s
        "group pipeline": ["tests/integration/test_pipeline.py::test_x", "tests/integration/test_check_mode.py::test_y"],
        "tests/integration/vault/test_scheduled_renewal.py": ["tests/integration/vault/test_scheduled_renewal.py::t"],
        "tests/b/test_two.py": ["tests/b/test_two.py::test_1", "tests/b/test_two.py::test_2"],
    }
    # The group sums its files' seconds (55 + 190); unnamed files count 0.2 s per test.
    assert longest_first(units) == ["group pipeline", "tests/integration/vault/test_scheduled_renewal.py",
                                    "tests/a/test_many_quick.py", "tests/b/test_two.py"]
