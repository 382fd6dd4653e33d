"""Ingest: spectrum files read, preprocessed and added to a pool, resumably, by worker processes.

`ingest_files` and `ingest_folder` are job generators (see base/progress.py). Chunks of files are
read and preprocessed in worker processes ('forkserver' where available, else 'spawn'); the parent
only appends each returned block of rows through the pool's `PoolWriter`, one transaction per
chunk in input order, so the pool does not depend on the number of workers. A chunk's transaction
also records its rejected files and the chunk itself as finished: running an ingest again after a
crash, a kill -9 or a cancel skips what was committed and adds each file exactly once. A worker
that dies (segfault, OOM kill) costs a retry, and the file that kills a worker is rejected.

Only a rejection that the file itself causes, reproducibly, is remembered (and so skipped by the
next ingest): the reader's verdict on its content, or preprocessing's verdict on the spectrum
alone (each rejection in a batch is checked on the spectrum by itself, so that no neighbour can
cause one). A file whose rejection may come from something else (an I/O error, a worker crash,
running out of memory, an unexpected error) is reported but not remembered, and its chunk not
marked finished: the next ingest tries it again.
"""

from __future__ import annotations

import fnmatch
import hashlib
import math
import os
import time
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

from vo_al.core.base.errors import Cancelled, PoolError, SpectrumReadError, UnusableSpectrumError
from vo_al.core.base.limits import DEFAULT_LIMITS, LimitSettings
from vo_al.core.base.progress import CancelToken, Job, Progress
from vo_al.core.pool.schema import RECORD_FIELDS, spectrum_record
from vo_al.core.pool.store import FinishedChunk, PoolStore
from vo_al.core.spectra.settings import PreprocessSettings

# FITS (native layouts, SDM tables, what specutils reads) and VOTable (SDM) spectra
DEFAULT_PATTERNS = ("*.fits", "*.fits.gz", "*.fit", "*.fit.gz", "*.vot", "*.vot.gz", "*.votable",
                    "*.xml")
_PREP_BATCH = 256          # spectra per preprocess_spectra call in a worker (fastest measured)


@dataclass
class IngestReport:
    """What one ingest run did."""

    added: int = 0
    rejected: list = field(default_factory=list)     # (file, reason) of files rejected this run
    skipped: int = 0                                  # already in the pool (or already rejected)
    seconds: float = 0.0
    files: int = 0                                    # distinct input files
    # files of `rejected` that the pool does not remember (the cause may not be the file's own:
    # an I/O error, a worker crash, an unexpected error): the next ingest tries them again
    retry: list = field(default_factory=list)

    def summary(self) -> str:
        rate = self.files / self.seconds if self.seconds > 0 else float("nan")
        retry = f" ({len(self.retry)} to retry)" if self.retry else ""
        return (f"{self.added} added, {len(self.rejected)} rejected{retry}, {self.skipped} "
                f"skipped of {self.files} files in {self.seconds:.1f} s ({rate:.0f} files/s)")


# ---------------------------------------------------------------- the worker side

def _default_reader():
    # imported here: astropy is for the workers and the run, not for importing the pool package
    from vo_al.core.spectra.readers import read_spectra
    return read_spectra


def _reader_rejection(path: str, exc: BaseException) -> tuple[str, str, bool]:
    """(path, reason, remember) for an exception of the reader: remembered only when it is the
    reader's verdict on the file's content, not an I/O error or anything unexpected."""
    if isinstance(exc, (SpectrumReadError, UnusableSpectrumError)):
        return path, exc.reason, not getattr(exc, "retryable", False)
    return path, f"{type(exc).__name__}: {exc}", False


def _process_chunk(paths: list[str], settings: PreprocessSettings, reader) -> tuple:
    """Worker: read and preprocess a chunk of files, `_PREP_BATCH` spectra at a time (the
    vectorised preprocessing is fastest there, and few spectra are held in memory at once).
    A reader gives a file's Spectrum, or the list of them (read_spectra: a file of several, a
    DESI coadd, gives each; their source is FILE[k], see readers.source_part).

    Returns (rows float32 (k, n), meta columns {field: list of k},
    rejected [(path, reason, remember)]).
    """
    if reader is None:
        reader = _default_reader()
    rejected: list = []
    metas: dict[str, list] = {key: [] for key in RECORD_FIELDS}
    blocks = []
    spectra: list = []

    def preprocess_read() -> None:
        rows, batch_metas, batch_rejected = pool_rows(spectra, settings)
        for key, values in batch_metas.items():
            metas[key] += values
        rejected.extend(batch_rejected)
        blocks.append(rows)
        spectra.clear()

    for path in paths:
        try:
            read = reader(path)
        except Exception as exc:                           # noqa: BLE001 - anything from a file
            rejected.append(_reader_rejection(path, exc))
            continue
        several = isinstance(read, list) and len(read) > 1
        for k, sp in enumerate(read if isinstance(read, list) else [read]):
            if not sp.meta.name:
                sp.meta.name = os.path.basename(path)
            sp.meta.source = f"{path}[{k}]" if several else path
            spectra.append(sp)
            if len(spectra) >= _PREP_BATCH:
                preprocess_read()
    if spectra:
        preprocess_read()
    out = (np.concatenate(blocks) if blocks else np.empty((0, settings.n_points))).astype(
        np.float32, copy=False)
    return np.ascontiguousarray(out), metas, rejected


def pool_rows(spectra: list, settings: PreprocessSettings) -> tuple:
    """What ingest makes of spectra it has read: (rows float32 (k, n) of the good ones, their
    meta columns {field: list of k}, rejected [(file, reason, remember)]); a rejected spectrum's
    file is its meta.source, or its name where it has none (rows made without a file)."""
    # the one preprocessing of a pool's rows: the synthetic rows written without files
    # (vo_al.core.demo.rows) come through here too
    rows, reasons, remember = _preprocess_isolated(spectra, settings)
    metas: dict[str, list] = {key: [] for key in RECORD_FIELDS}
    rejected, good = [], []
    for i, (sp, r) in enumerate(zip(spectra, reasons)):
        if r is not None:
            rejected.append((sp.meta.source or sp.meta.name, r, remember[i]))
            continue
        good.append(i)
        for key, value in spectrum_record(sp).items():
            metas[key].append(value)
    return rows[good], metas, rejected


def _preprocess_isolated(spectra: list, settings: PreprocessSettings
                         ) -> tuple[np.ndarray, list, list]:
    """preprocess_spectra, with every rejection checked on the spectrum alone: (rows, reasons,
    remember). A spectrum rejected in the batch but not alone gets its own row (whatever went
    wrong in the batch, it was not the spectrum); one rejected alone too is its own, reproducible
    rejection (remember True); one whose preprocessing raises is not remembered (a bug in vo-al
    is no verdict on the file). If the batch raises, every spectrum is done alone."""
    from vo_al.core.spectra.preprocess import preprocess_spectra

    try:
        batch = preprocess_spectra(spectra, settings)
        rows, reasons = batch.rows, list(batch.reasons)
    except Exception:                                      # noqa: BLE001 - isolate the culprit
        rows = np.full((len(spectra), settings.n_points), np.nan, np.float32)
        reasons = [""] * len(spectra)
    remember = [True] * len(spectra)
    for i, sp in enumerate(spectra):
        if reasons[i] is None:
            continue
        try:
            one = preprocess_spectra([sp], settings)
            rows[i], reasons[i] = one.rows[0], one.reasons[0]
        except Exception as exc:                           # noqa: BLE001
            reasons[i] = f"preprocessing failed: {type(exc).__name__}: {exc}"
            remember[i] = False
    return rows, reasons, remember


# ---------------------------------------------------------------- the parent side

@dataclass
class _Work:
    key: str | None                  # ingest_progress key (None for pieces of a split chunk)
    paths: list[str]
    suspect: bool = False            # was in flight when a worker died: run alone


def _chunk_key(paths: list[str]) -> str:
    return hashlib.sha1("\0".join(paths).encode("utf-8", "surrogateescape")).hexdigest()


# why workers that die before doing anything usually die: said instead of rejecting every file
# as "the reader crashed its worker process"
WORKERS_DID_NOT_START = (
    "the ingest's worker processes could not start (each died before reading a file). If "
    "vo-al is called from a script, protect the script's entry point with "
    "`if __name__ == \"__main__\":` — Python starts worker processes by importing the main "
    "module again (multiprocessing's spawn/forkserver start methods), so a script without that "
    "guard runs again inside each worker; or ingest with workers=0 (in this process)")


def _worker_ready() -> bool:
    return True


def _started_executor(workers: int) -> ProcessPoolExecutor:
    """A process pool whose workers have started: one trivial task is run first, so a pool
    whose workers cannot start (a script without a __main__ guard) is a PoolError saying so,
    before any file is read."""
    executor = ProcessPoolExecutor(max_workers=workers, mp_context=_mp_context())
    try:
        executor.submit(_worker_ready).result()
    except BrokenProcessPool as exc:
        executor.shutdown(wait=False, cancel_futures=True)
        raise PoolError(WORKERS_DID_NOT_START) from exc
    return executor


def _mp_context():
    import multiprocessing

    method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
    ctx = multiprocessing.get_context(method)
    if method == "forkserver":
        # preload the worker code (numpy, scipy, astropy) once; never the caller's __main__,
        # which may import heavy things (tensorflow) the workers do not need
        ctx.set_forkserver_preload([__name__, "vo_al.core.spectra.readers"])   # this module
    return ctx


class _Done:
    """A finished 'future' for in-process work (workers=0)."""

    def __init__(self, fn, *args):
        self._result = fn(*args)

    def result(self):
        return self._result


# ---------------------------------------------------------------- the jobs

def ingest_files(pool: PoolStore, paths: Iterable, settings: PreprocessSettings | None = None,
                 workers: int = 2, chunk_files: int = 1024, cancel: CancelToken | None = None,
                 reader: Callable | None = None, limits: LimitSettings | None = None,
                 retry_rejected: bool = False, medium: str | None = None) -> Job[IngestReport]:
    """Job: read, preprocess and add spectrum files to `pool`; returns an IngestReport.

    Resumable: files already in the pool (same path or same name) or already rejected are
    skipped, so re-running after a crash or cancel adds each file exactly once; with
    `retry_rejected` the files the pool remembers as rejected are read again (after a fix of
    vo-al or of the files), those now good added and their rejection forgotten. `workers`
    processes read the files (0: in this process), at most `chunk_files` files per chunk (fewer
    for small runs, so that every worker gets several chunks). `reader` (a picklable,
    module-level function path -> Spectrum, or -> list of them) defaults to
    `vo_al.core.spectra.readers.read_spectra` (a file of several spectra, a DESI coadd, adds
    each: rows FILE[k], see readers.source_part) bounded by `limits` (the project's settings.limits; default DEFAULT_LIMITS: a file that
    decompresses past max_spectrum_mb is rejected). Cancelling is honoured between chunks and
    raises Cancelled with committed chunks kept. `medium` ('air'/'vacuum'): the wavelengths of
    files that do not say which (this import's setting); None rejects such files, saying so.
    """
    t0 = time.monotonic()
    if workers < 0 or chunk_files < 1:
        raise PoolError(f"{pool.folder}: workers must be >= 0 and chunk_files >= 1 "
                        f"(got {workers}, {chunk_files})")
    settings = pool.check_settings(settings)
    if reader is None:
        # fail here, not once per file, if it cannot import; a partial pickles to the workers
        reader = partial(_default_reader(), limits=limits or DEFAULT_LIMITS, medium=medium,
                         medium_origin="this import's medium setting")
    all_paths = list(dict.fromkeys(os.path.abspath(os.fspath(p)) for p in paths))
    total = len(all_paths)
    report = IngestReport(files=total)
    # small runs still give every worker several chunks
    size = max(1, min(chunk_files, math.ceil(total / max(1, 4 * workers)) if total else 1))
    chunks = [all_paths[i:i + size] for i in range(0, total, size)]
    keys = [_chunk_key(c) for c in chunks]

    executor = None
    with pool.writer("ingest", settings) as out:
        try:
            done_keys = set() if retry_rejected else out.chunks_done(keys)
            items: deque[_Work] = deque()
            done_files = 0
            for key, chunk in zip(keys, chunks):
                if key in done_keys:
                    done_files += len(chunk)
                    report.skipped += len(chunk)
                else:
                    items.append(_Work(key, chunk))
            out.reserve(sum(len(w.paths) for w in items))
            yield Progress("ingest", done_files, total, "starting",
                           {"added": 0, "rejected": 0, "skipped": report.skipped})

            def submit(work: _Work, todo: list[str]):
                if executor is None:
                    return _Done(_process_chunk, todo, settings, reader)
                return executor.submit(_process_chunk, todo, settings, reader)

            def make_executor():
                return _started_executor(workers)

            if workers > 0 and items:
                executor = make_executor()
            window = max(1, 2 * workers)
            inflight: deque = deque()          # (work, todo, n_skipped, future)
            while items or inflight:
                if cancel is not None and cancel.cancelled:
                    raise Cancelled(f"ingest into {pool.folder} cancelled after {done_files} of "
                                    f"{total} files ({report.added} added); run it again to "
                                    "resume")
                # fill the window (a suspect chunk runs alone)
                while (items and len(inflight) < window
                       and not (inflight and inflight[-1][0].suspect)):
                    work = items[0]
                    if work.suspect and inflight:
                        break
                    items.popleft()
                    seen = out.files_done(work.paths, rejected=not retry_rejected)
                    todo = [p for p in work.paths if p not in seen]
                    inflight.append((work, todo, len(work.paths) - len(todo),
                                     submit(work, todo) if todo else None))
                work, todo, n_seen, future = inflight.popleft()
                if future is None:
                    rows, metas, rejected = np.empty((0, pool.n_points), np.float32), None, []
                else:
                    try:
                        rows, metas, rejected = future.result()
                    except BrokenProcessPool:
                        # a worker died (segfault, OOM kill): committed chunks are safe. Run what
                        # was in flight again one chunk at a time; a chunk that kills a worker on
                        # its own is split until the file that does it is found and rejected.
                        executor.shutdown(wait=True, cancel_futures=True)
                        executor = make_executor()
                        if not work.suspect:
                            again = [work] + [w for w, _, _, _ in inflight]
                            inflight.clear()
                            items.extendleft(_Work(w.key, w.paths, True)
                                             for w in reversed(again))
                            continue
                        if len(work.paths) > 1:
                            half = len(work.paths) // 2
                            items.appendleft(_Work(None, work.paths[half:], True))
                            items.appendleft(_Work(None, work.paths[:half], True))
                            continue
                        rows, metas = np.empty((0, pool.n_points), np.float32), None
                        # not remembered: the next ingest tries it again (the crash may have
                        # been the machine's, an OOM kill of a busy system)
                        rejected = [(work.paths[0], "the reader crashed its worker process on "
                                                    "this file", False)]
                # drop names already in the pool or repeated inside the chunk
                keep = []
                if len(rows):
                    names = metas["name"]
                    existing = out.names_in_pool(names)
                    seen_names = set()
                    for i, name in enumerate(names):
                        if name not in existing and name not in seen_names:
                            keep.append(i)
                            seen_names.add(name)
                n_dup = len(rows) - len(keep)
                if n_dup:
                    rows = rows[keep]
                    metas = {k: [v[i] for i in keep] for k, v in metas.items()}
                # a chunk with a rejection not remembered is not finished: the next ingest
                # comes back to it (and skips its committed and remembered files)
                retry = [path for path, _, remember in rejected if not remember]
                finished = (None if work.key is None or retry
                            else FinishedChunk(work.key, len(work.paths), n_seen + n_dup))
                out.append(rows, metas if len(rows) else None, chunk=finished,
                           rejected=[(path, why) for path, why, remember in rejected if remember],
                           not_rejected=metas["source"] if retry_rejected and len(rows) else (),
                           medium=medium)
                report.added += len(rows)
                report.rejected.extend((path, why) for path, why, _ in rejected)
                report.retry.extend(retry)
                report.skipped += n_seen + n_dup
                done_files += len(work.paths)
                yield Progress("ingest", done_files, total, f"{report.added} added",
                               {"added": report.added, "rejected": len(report.rejected),
                                "skipped": report.skipped})
        finally:
            if executor is not None:
                executor.shutdown(wait=True, cancel_futures=True)
    report.seconds = time.monotonic() - t0
    return report


def find_spectrum_files(folder, pattern: Sequence[str] | str = DEFAULT_PATTERNS) -> list[str]:
    """Files under `folder` (recursive) whose base name matches one of the patterns, sorted."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such folder to ingest")
    patterns = [pattern] if isinstance(pattern, str) else list(pattern)
    lowered = [p.lower() for p in patterns]
    found = []
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        for name in files:
            low = name.lower()
            if any(fnmatch.fnmatchcase(low, p) for p in lowered):
                found.append(os.path.join(root, name))
    return sorted(found)


def ingest_folder(pool: PoolStore, folder, pattern: Sequence[str] | str = DEFAULT_PATTERNS,
                  settings: PreprocessSettings | None = None, workers: int = 2,
                  chunk_files: int = 1024, cancel: CancelToken | None = None,
                  reader: Callable | None = None, limits: LimitSettings | None = None,
                  retry_rejected: bool = False, medium: str | None = None) -> Job[IngestReport]:
    """Job: ingest every matching file under `folder` (recursive, sorted, deterministic).

    PoolError naming the folder (and the patterns) when it does not exist or no file in it
    matches: an empty folder is a mistake to report, not a run that adds nothing.
    """
    patterns = [pattern] if isinstance(pattern, str) else list(pattern)
    if not Path(folder).is_dir():
        raise PoolError(f"{folder}: no such folder to ingest")
    paths = find_spectrum_files(folder, patterns)
    if not paths:
        raise PoolError(f"{folder}: no spectrum files to ingest (none matches "
                        f"{', '.join(patterns)}, in the folder or below it)")
    return (yield from ingest_files(pool, paths, settings=settings, workers=workers,
                                    chunk_files=chunk_files, cancel=cancel, reader=reader,
                                    limits=limits, retry_rejected=retry_rejected,
                                    medium=medium))
