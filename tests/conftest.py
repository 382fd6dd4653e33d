"""Shared fixtures. Tests never touch the internet; real sample files are optional."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dachs_server import ccd700, dachs  # noqa: F401  (session fixtures: the real DaCHS on loopback)

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


# A leaked non-daemon thread keeps the interpreter alive after the summary (seen once, a thread
# spinning at 100 % CPU after "50 passed"; cause not found), and CI would then hang until its
# time limit. Name every thread still alive, with its stack, and end the process with pytest's
# own exit status instead, so the leak is reported and the result stands.
_EXIT_GRACE_S = 120.0
_exit_status = {"code": 0}


def pytest_sessionfinish(session, exitstatus):
    _exit_status["code"] = int(exitstatus)


def pytest_unconfigure(config):
    import faulthandler
    import sys
    import threading

    def end_a_hung_exit():
        alive = [t for t in threading.enumerate()
                 if t is not threading.current_thread() and not t.daemon and t.is_alive()
                 and t is not threading.main_thread()]
        print(f"\nconftest: the test process did not exit {_EXIT_GRACE_S:.0f} s after the "
              f"summary; non-daemon threads still alive: {[t.name for t in alive]}; their "
              f"stacks follow, then exit status {_exit_status['code']}", file=sys.stderr)
        faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
        sys.stderr.flush()
        os._exit(_exit_status["code"])

    timer = threading.Timer(_EXIT_GRACE_S, end_a_hung_exit)
    timer.daemon = True
    timer.start()
