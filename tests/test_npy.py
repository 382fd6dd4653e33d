"""Opening .npy files from several threads at once (the window and its workers do)."""

from __future__ import annotations

import sys
import threading
import time

import numpy as np

from vo_al.core.base.npy import open_npy


class _Finalised:
    """Garbage whose finaliser runs Python code: a collection inside another thread's header
    parse then hands the GIL over mid-parse, which is what trips CPython's AST state."""

    def __del__(self):
        for _ in range(20):
            pass


# each reader parses for this long, and at least once: how many parses fit depends on the
# machine and on every other thread alive in the process (the switch interval below rotates
# the GIL through all of them), so no count is required
READ_SECONDS = 6.0


def test_headers_parsed_from_many_threads_under_garbage_collection(tmp_path):
    path = tmp_path / "segment.npy"
    np.save(path, np.arange(1024 * 140, dtype=np.float32).reshape(1024, 140))
    errors, opened = [], []
    readers_done = threading.Event()
    stop = time.monotonic() + READ_SECONDS
    old_interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)          # switch threads as often as the interpreter can

    def reader():
        n = 0
        while n == 0 or time.monotonic() < stop:
            try:
                a = open_npy(path)
                assert a.shape == (1024, 140) and a[3, 7] == 3 * 140 + 7
            except Exception as exc:        # noqa: BLE001 - every failure is the finding
                errors.append(exc)
            n += 1
        opened.append(n)

    def litter():
        # only until the readers' deadline: a reader collecting the garbage runs every
        # finaliser inside its parse, and a littering that outlived the deadline, while the
        # readers each waited for their first parse, grew the suite's process to 22 GB
        while not readers_done.is_set() and time.monotonic() < stop:
            junk = [_Finalised() for _ in range(100)]
            junk.append(junk)               # a cycle: only the collector frees it
            del junk

    readers = [threading.Thread(target=reader) for _ in range(4)]
    littering = threading.Thread(target=litter)
    try:
        littering.start()
        for t in readers:
            t.start()
        for t in readers:
            t.join()
    finally:
        readers_done.set()
        littering.join()
        sys.setswitchinterval(old_interval)
    assert not errors, f"{len(errors)} failures, first: {errors[0]!r}"
    assert len(opened) == 4 and min(opened) >= 1, opened
    a = open_npy(path)
    assert isinstance(a, np.memmap) and not a.flags.writeable
