"""Whole spectra read ahead of the labelling view, so a key press never waits for a file.

A pool row knows its source: a local FITS path, or the access URL it was harvested from. The
prefetcher resolves either to a `Spectrum` on background threads: a local file is read; a URL is
first looked up in the harvest cache (`harvest.SpectrumCache`, the same files `vo-al harvest`
downloaded) and otherwise downloaded into it (`harvest.download`: checked, atomic), so a spectrum
is fetched over the network at most once.

Results are futures; the caller asks for the spectrum on screen and the next few, and shows each
when its future is done. Errors (a missing file, a broken FITS, a server gone) are the future's
exception, a VoAlError naming the file or URL. Only the newest `keep` results are held.

A file that does not say whether its wavelengths are in air or vacuum was read at import with
the medium the import was given; the pool keeps it (`PoolStore.import_medium`), and the
prefetcher of a project reads such a file with it again.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Callable

from vo_al.core.base.errors import VoAlError
from vo_al.core.base.limits import DEFAULT_LIMITS, LimitSettings
from vo_al.core.spectra.readers import read_spectra, read_spectrum, source_part

REMOTE_SCHEMES = ("http://", "https://")


class SourceUnavailable(VoAlError):
    def __init__(self, source: str, reason: str):
        super().__init__(f"{source}: {reason}")
        self.source = source
        self.reason = reason


def is_remote(source: str) -> bool:
    return source.lower().startswith(REMOTE_SCHEMES)


class SpectrumPrefetcher:
    def __init__(self, cache_folder: Path | None, workers: int = 2, keep: int = 64,
                 timeout: float = 30.0, limits: LimitSettings | None = None,
                 import_medium: Callable[[str], str | None] | None = None):
        self.cache_folder = Path(cache_folder) if cache_folder is not None else None
        self.limits = limits or DEFAULT_LIMITS       # the project's: bounds each read/download
        # source -> the medium its import was given (None: none); PoolStore.import_medium
        self.import_medium = import_medium or (lambda source: None)
        self.keep = keep
        self.timeout = timeout
        self._executor = ThreadPoolExecutor(max_workers=workers,
                                            thread_name_prefix="vo-al-prefetch")
        self._futures: OrderedDict[str, Future] = OrderedDict()
        self._lock = threading.Lock()
        self._http = None

    def request(self, source: str) -> Future:
        """The future of `source`'s spectrum; started now unless already held."""
        source = str(source)
        with self._lock:
            future = self._futures.get(source)
            if future is not None:
                self._futures.move_to_end(source)
                return future
            future = self._executor.submit(self._load, source)
            self._futures[source] = future
            while len(self._futures) > self.keep:
                _, old = self._futures.popitem(last=False)
                old.cancel()            # not started yet: never read; running: result dropped
            return future

    @classmethod
    def for_project(cls, project=None) -> "SpectrumPrefetcher":
        """One that downloads into `project`'s harvest cache and reads within its limits (the
        limits of a file read); None: no cache, the default limits."""
        if project is None:
            return cls(None)
        from vo_al.core.vo.harvest import project_cache_folder

        return cls(project_cache_folder(project.folder), limits=project.settings.limits,
                   import_medium=lambda source: project.pool.import_medium(source))

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
        with self._lock:
            self._futures.clear()

    # -- on a worker thread -------------------------------------------------------------------
    def _load(self, source: str):
        if not source:
            raise SourceUnavailable("(no source)", "the pool row records no source file or URL")
        if is_remote(source):
            return self._load_remote(source)
        if "://" in source:
            raise SourceUnavailable(source, "only local paths and http(s) URLs can be read")
        file, part = source_part(source)         # FILE[k]: one spectrum of a file of several
        path = Path(file)
        if not path.is_file():
            raise SourceUnavailable(source, "file not found (moved or deleted since ingest?)")
        medium = self._medium(source)
        if part is None:
            return read_spectrum(path, self.limits, *medium)
        spectra = read_spectra(path, self.limits, *medium)
        if part >= len(spectra):
            raise SourceUnavailable(source, f"the file holds {len(spectra)} spectra now, not a "
                                            f"spectrum {part} (changed since ingest?)")
        return spectra[part]

    def _load_remote(self, url: str):
        from vo_al.core.vo.harvest import SpectrumCache, download
        from vo_al.core.vo.query import make_session

        if self.cache_folder is None:
            raise SourceUnavailable(url, "no cache folder to download into")
        cache = SpectrumCache(self.cache_folder)
        path = cache.path_for(url)
        medium = self._medium(url)
        if cache.has(url):
            return read_spectrum(path, self.limits, *medium)
        with self._lock:
            if self._http is None:
                self._http = make_session(timeout=self.timeout)
            http = self._http
        spectrum = download(url, path, session=http, retries=1, timeout=self.timeout,
                            limits=self.limits, medium=medium[0])
        return spectrum if spectrum is not None else read_spectrum(path, self.limits, *medium)

    def _medium(self, source: str) -> tuple[str | None, str]:
        """(medium, origin) for the reader: the medium `source`'s import was given."""
        try:
            medium = self.import_medium(source)
        except Exception:                                  # noqa: BLE001
            # the project's pool closed under a read of its last moment (another project was
            # opened): the result is dropped anyway; the file's own statement still holds
            medium = None
        return medium, "the medium its import was given"
