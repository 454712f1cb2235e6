"""Offline stand-in for pip's get-pip.py, used by ansible-test to bootstrap its venvs.

ansible-test downloads get-pip.py from the internet and strips PIP_* variables
before running it. Here the interpreter's own bundled pip (ensurepip) is
installed first, with no network, and then asked to install what ansible-test
requested (e.g. ``pip==24.2``) from the package index pip is configured for
(/etc/pip.conf or ~/.config/pip/pip.conf).
"""

import subprocess
import sys

GET_PIP_ONLY_OPTIONS = {"--no-setuptools", "--no-wheel"}


def main() -> int:
    args = [a for a in sys.argv[1:] if a not in GET_PIP_ONLY_OPTIONS]
    # In a child process: ensurepip empties PIP_* and points PIP_CONFIG_FILE at
    # /dev/null in its own environment, which would hide pip.conf from the next step.
    subprocess.check_call([sys.executable, "-m", "ensurepip", "--upgrade", "--default-pip"])
    if not args:
        return 0
    return subprocess.call([sys.executable, "-m", "pip", "install", "--upgrade", *args])  # noqa: S603


if __name__ == "__main__":
    sys.exit(main())
