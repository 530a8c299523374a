"""Defaults for every setting, registered with dask.config under ``audiobook``."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import dask.config
import yaml

logger = logging.getLogger(__name__)

DEFAULTS_FILE = Path(__file__).with_name("audiobook.yaml")
"""The commented YAML of defaults shipped with the package."""


def _register_defaults() -> None:
    with DEFAULTS_FILE.open(encoding="utf-8") as defaults:
        dask.config.update_defaults(yaml.safe_load(defaults))


def setting(key: str, override: Any = None) -> Any:
    """Return ``override`` unless it is None, else ``audiobook.<key>`` from dask.config."""
    if override is not None:
        return override
    return dask.config.get(f"audiobook.{key}")


_register_defaults()
