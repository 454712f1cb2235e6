"""Root test configuration.

Every module in tests/fixtures/ is a pytest plugin with the session fixtures
for one real service (PostgreSQL, Docker, Vault, Kubernetes); adding a file
there is enough to make its fixtures available everywhere.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent
# `ansible_collections.velocity.platform...` imports, as ansible-test sets them up.
if str(ROOT / "collections") not in sys.path:
    sys.path.insert(0, str(ROOT / "collections"))
# The service's package, from this checkout (also for subprocesses the tests start).
APP_SRC = str(ROOT / "app" / "src")
if APP_SRC not in sys.path:
    sys.path.insert(0, APP_SRC)
if APP_SRC not in os.environ.get("PYTHONPATH", "").split(os.pathsep):
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [APP_SRC, os.environ.get("PYTHONPATH")]))

pytest_plugins = sorted(
    f"tests.fixtures.{p.stem}" for p in (ROOT / "tests" / "fixtures").glob("*.py") if p.stem != "__init__"
)


def pytest_itemcollected(item: pytest.Item) -> None:
    """Mark the tests of `make pytest`'s serial pass and of its lane beside the parallel pass (tests/parallel.py
    says why), before -m deselects."""
    from tests.parallel import placement

    try:
        path = Path(str(item.path)).resolve().relative_to(ROOT).as_posix()
    except ValueError:
        return
    kind = placement(path)[0]
    if kind == "serial":
        item.add_marker(pytest.mark.serial)
    elif kind == "beside":
        item.add_marker(pytest.mark.beside)


@pytest.hookimpl(optionalhook=True)  # a pytest-xdist hook: only called when xdist runs the session
def pytest_xdist_make_scheduler(config: pytest.Config, log):
    """The parallel pass's scheduling: each test file is one unit of work (its module fixtures run once),
    and the files of one group of tests/parallel.py are one unit, run by one worker one after the other.
    The units are handed out longest first (tests/parallel.py SECONDS), so the pass does not end with one
    worker running a long file that started last.

    Not pytest-xdist's --dist loadgroup: it groups by rewriting item._nodeid, which pytest 9 no longer
    reads, so its groups were silently split across workers.
    """
    from xdist.scheduler import LoadScopeScheduling

    from tests.parallel import longest_first, placement

    class PlacementScheduling(LoadScopeScheduling):
        ordered = False

        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]
            kind, name = placement(path)
            return f"group {name}" if kind == "group" else path

        def _assign_work_unit(self, node) -> None:
            # The work queue is complete at the first assignment: put the longest units first, once.
            if not self.ordered:
                self.ordered = True
                for scope in longest_first({scope: list(unit) for scope, unit in self.workqueue.items()}):
                    self.workqueue.move_to_end(scope)
            super()._assign_work_unit(node)

    return PlacementScheduling(config, log)
