"""``python -m velocity_app ...`` is ``velocity-app ...``."""

import sys

from velocity_app.cli import main

sys.exit(main())
