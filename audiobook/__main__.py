"""Allow ``python -m audiobook``."""

from __future__ import annotations

from audiobook.cli import main

main(prog_name="audiobook")
