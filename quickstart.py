#!/usr/bin/env python3
"""Set up a project virtual environment, then build the sample audiobook or run the tests.

Usage: ``python3 quickstart.py sample`` or ``python3 quickstart.py test [PYTEST ARGS]``.
Needs only Python 3.11+: everything else, ffmpeg and the voices included, comes from PyPI
into ``.venv`` beside this file. The install is redone only when ``setup.cfg`` changes.
"""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import sys
import venv
from pathlib import Path

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
SAMPLE_BOOK = ROOT / "samples" / "the-lamplighters-apprentice.md"
SAMPLE_OUTPUT = ROOT / "the-lamplighters-apprentice.m4b"


def venv_python() -> Path:
    """Path of the project environment's interpreter."""
    scripts = "Scripts" if os.name == "nt" else "bin"
    return VENV / scripts / ("python.exe" if os.name == "nt" else "python")


def ensure_environment() -> None:
    """Create ``.venv`` and install the project with its test extra, unless already current."""
    if sys.version_info < (3, 11):
        sys.exit(f"dask-audiobook needs Python 3.11 or newer; this is {sys.version.split()[0]}")

    stamp = VENV / ".installed-setup-cfg"
    expected_hash = hashlib.sha256((ROOT / "setup.cfg").read_bytes()).hexdigest()
    if stamp.exists() and stamp.read_text() == expected_hash and venv_python().exists():
        return

    if not venv_python().exists():
        logger.info("creating %s", VENV)
        venv.EnvBuilder(with_pip=True).create(VENV)
    logger.info("installing dask-audiobook and its test tools into %s", VENV)
    pip = [str(venv_python()), "-m", "pip", "--disable-pip-version-check"]
    subprocess.run([*pip, "install", "--quiet", "--upgrade", "pip"], check=True)
    subprocess.run([*pip, "install", "--quiet", "-e", f"{ROOT}[test]"], check=True)
    stamp.write_text(expected_hash)


def main(arguments: list[str]) -> int:
    """Run ``sample`` or ``test`` and return the exit code."""
    logging.basicConfig(level=logging.INFO, format="quickstart: %(message)s")
    if not arguments or arguments[0] not in ("sample", "test"):
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2

    ensure_environment()
    python = str(venv_python())
    if arguments[0] == "sample":
        command = [
            python, "-m", "audiobook", "build", str(SAMPLE_BOOK),
            "-o", str(SAMPLE_OUTPUT), "--overwrite", "--report", str(SAMPLE_OUTPUT.with_suffix(".json")),
            *arguments[1:],
        ]
    else:
        command = [python, "-m", "pytest", *arguments[1:]]
    return subprocess.run(command, cwd=ROOT, check=False).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
