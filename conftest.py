"""Root test configuration.

Every module in tests/fixtures/ is a pytest plugin with the session fixtures
for one real service (PostgreSQL, Docker, Vault, Kubernetes); adding a file
there is enough to make its fixtures available everywhere.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

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
