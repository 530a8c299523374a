"""Give every test its own sentence cache and work folder, so no test reuses another's audio."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point ``DASK_AUDIOBOOK__CACHE`` and ``__WORK_DIR`` at a fresh folder for this test."""
    folder = tmp_path_factory.mktemp("audiobook-cache")
    monkeypatch.setenv("DASK_AUDIOBOOK__CACHE", str(folder / "sentences"))
    monkeypatch.setenv("DASK_AUDIOBOOK__WORK_DIR", str(folder / "work"))
    return folder
