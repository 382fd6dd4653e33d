"""Shared fixtures. Tests never touch the internet; real sample files are optional."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dachs_server import dachs  # noqa: F401  (session fixture: the real DaCHS server on loopback)

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

REPO = Path(__file__).resolve().parents[1]


def real_data_dir() -> Path | None:
    """The shared folder of real LAMOST/Ondřejov files, or None when absent (a user's clone)."""
    env = os.environ.get("VO_AL_REAL_DATA")
    candidates = [Path(env)] if env else []
    candidates.append(REPO.parent / "shared" / "data" / "real")
    for c in candidates:
        if c.is_dir():
            return c
    return None


@pytest.fixture
def real_data() -> Path:
    folder = real_data_dir()
    if folder is None:
        pytest.skip("real spectra folder ../shared/data/real (or $VO_AL_REAL_DATA) not present")
    return folder


@pytest.fixture(autouse=True)
def private_user_config(tmp_path_factory, monkeypatch):
    """Every test gets its own empty per-user config folder: never the tester's ~/.config/vo-al
    (preferences, recent projects, saved VO services)."""
    monkeypatch.setenv("VO_AL_CONFIG_DIR", str(tmp_path_factory.mktemp("user-config")))
