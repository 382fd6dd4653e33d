"""Harvest: download the spectra a VO query returned, check them, preprocess them into the pool.

A harvest works in a folder of its own::

    harvest.json       the job list: one item per spectrum (access URL, pool name, query-row
                       metadata), written once (atomically) and extended by later harvests
    failed.json        (url, reason) of the last run's failures, for people to read
    cache/ab/<sha>.fits  downloaded files, keyed by sha256 of the URL; written to a temporary
                       file in the same folder, checked, then renamed: a file in the cache is whole

`harvest(...)` is a job generator (see progress.py): it yields Progress('harvest', done, total),
checks its CancelToken between files and returns a HarvestReport. Downloads run concurrently in a
bounded thread pool (`workers` threads, at most 2*workers files in flight); rows are preprocessed
and committed to the pool in input order, `batch` spectra per `PoolStore.add_rows` transaction.

Resuming after a crash, a cancel or a server outage is running it again on the same folder:
names already in the pool are skipped before anything is downloaded, cached files are not
downloaded again, and add_rows skips a name it already holds, so each spectrum ends up in the
pool exactly once. Failures do not stop a harvest: they are listed in the report (and retried by
the next run); only when `max_consecutive_failures` retryable failures come in a row (the server
is down) does it stop asking, listing the rest as not attempted.

Retries: connection errors, timeouts, truncated bodies and HTTP 5xx/429 are retried `retries`
times with exponential backoff (`backoff`, 2*backoff, 4*backoff ... seconds); 404 and other 4xx,
and files that are not spectra, are not.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlparse

import numpy as np
import requests

from vo_al.core.base.atomic import atomic_write_text
from vo_al.core.base.errors import Cancelled, DownloadError, ParameterError, ProjectError, SpectrumReadError
from vo_al.core.base.jsonfile import read_json_document
from vo_al.core.base.progress import CancelToken, Job, Progress
from vo_al.core.pool.schema import RECORD_FIELDS, spectrum_record
from vo_al.core.spectra.readers import fits_bytes, read_spectrum, spectrum_name
from vo_al.core.spectra.settings import PreprocessSettings

HARVEST_JSON = "harvest.json"
FAILED_JSON = "failed.json"
CACHE_DIR = "cache"
PROJECT_HARVEST_DIR = "harvest"      # a project's default harvest folder (CLI, app, prefetcher)


def project_harvest_folder(project_folder) -> Path:
    return Path(project_folder) / PROJECT_HARVEST_DIR


def project_cache_folder(project_folder) -> Path:
    """Where a project's downloaded spectra are: the labelling view reads them from here too."""
    return project_harvest_folder(project_folder) / CACHE_DIR
_FORMAT = "vo-al harvest"
_CHUNK = 1 << 16
_SPECTRUM_SUFFIXES = (".fits", ".fit", ".fits.gz", ".fit.gz", ".fz")

# query-row column -> pool metadata key (first present wins; case-insensitive)
COLUMN_CANDIDATES: dict[str, tuple[str, ...]] = {
    "url": ("accref", "access_url", "acref", "access_reference", "datalink_url"),
    "name": ("filename", "file_name", "fname", "file", "spec_file"),
    "obsid": ("obsid", "obs_id"),
    "designation": ("designation", "desig", "ssa_targname", "target_name"),
    "ra": ("ra", "s_ra", "ra_obs"),
    "dec": ("dec", "s_dec", "dec_obs"),
    "cls": ("class", "cls", "obj_class", "ssa_targclass"),
    "subclass": ("subclass", "sub_class"),
    "z": ("z", "redshift", "ssa_redshift"),
    "snr": ("snr", "snrr", "snr_r", "sn_r", "ssa_snr"),
}
# the pool metadata a query row gives (url and name make the item itself), and which are numbers
_ROW_KEYS = tuple(k for k in COLUMN_CANDIDATES if k not in ("url", "name"))
_FLOAT_KEYS = frozenset(k for k in _ROW_KEYS if RECORD_FIELDS[k] == "f")


# ---------------------------------------------------------------- items (the job list)

@dataclass
class HarvestItem:
    """One spectrum to harvest: where it is, its pool name, what the query said about it."""

    url: str
    name: str
    meta: dict = field(default_factory=dict)     # subset of obsid designation ra dec cls ...


def _find_column(table, key: str, override: str | None = None) -> str | None:
    if override:
        if override not in table.colnames:
            raise ParameterError(f"{key}_column", override,
                                 f"a column of the table ({', '.join(table.colnames)})")
        return override
    lower = {c.lower(): c for c in table.colnames}
    for cand in COLUMN_CANDIDATES[key]:
        if cand in lower:
            return lower[cand]
    if key == "url":                         # the column pyvo's getdataurl() would use
        for c in table.colnames:
            meta = table[c].meta or {}
            utype = str(meta.get("utype", "")).lower()
            ucd = str(meta.get("ucd", "")).lower()
            if "access.reference" in utype or ("meta.ref.url" in ucd and "meta.dataset" in ucd):
                return c
    return None


def _cell(value):
    """A table cell as a plain Python value (None for masked / empty)."""
    if np.ma.is_masked(value):
        return None
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if hasattr(value, "item") and getattr(value, "ndim", 0) == 0:
        value = value.item()
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return value


def name_for(url: str, row_name: str | None = None, obsid: str | None = None) -> str:
    """The pool name of a harvested spectrum: the query's file name column when there is one,
    else the file name in the URL when it looks like a spectrum file, else obsid-N, else a hash.
    The same spectrum ingested from a folder gets the same name (spectrum_name of the file)."""
    if row_name:
        return spectrum_name(str(row_name).strip())
    path = unquote(urlparse(url).path)
    base = path.rsplit("/", 1)[-1]
    if base.lower().endswith(_SPECTRUM_SUFFIXES):
        return spectrum_name(base)
    if obsid not in (None, ""):
        return f"obsid-{obsid}"
    return "url-" + hashlib.sha256(url.encode()).hexdigest()[:20]


def items_from_table(table, *, url_column: str | None = None,
                     name_column: str | None = None) -> list[HarvestItem]:
    """Harvest items from a query result (SSAP or TAP): access URL, name and row metadata.

    Column names are recognised case-insensitively from COLUMN_CANDIDATES (accref, obsid,
    designation, ra, dec, class, subclass, z, snr, ...); rows without an access URL are an error.
    """
    ucol = _find_column(table, "url", url_column)
    if ucol is None:
        raise ParameterError("url_column", None, "an access URL column (accref, access_url, "
                             f"...); the table has {', '.join(table.colnames)}")
    ncol = _find_column(table, "name", name_column)
    cols = {k: _find_column(table, k) for k in _ROW_KEYS}
    items, seen = [], set()
    for i, row in enumerate(table):
        url = _cell(row[ucol])
        if not url:
            raise ParameterError(f"row {i} {ucol}", url, "an access URL")
        url = str(url).strip()
        if url in seen:
            continue
        seen.add(url)
        meta = {}
        for key, col in cols.items():
            if col is None:
                continue
            v = _cell(row[col])
            if v is None or (isinstance(v, float) and math.isnan(v)):
                continue
            if key in _FLOAT_KEYS:
                try:
                    v = float(v)
                except (TypeError, ValueError):
                    continue
            else:
                v = str(v).strip()
            meta[key] = v
        name = name_for(url, _cell(row[ncol]) if ncol else None, meta.get("obsid"))
        items.append(HarvestItem(url, name, meta))
    return items


# ---------------------------------------------------------------- the cache and downloads

class SpectrumCache:
    """Downloaded files keyed by sha256(URL), in two-level folders; only whole files inside."""

    def __init__(self, folder) -> None:
        self.folder = Path(folder)

    def path_for(self, url: str) -> Path:
        h = hashlib.sha256(url.encode("utf-8")).hexdigest()
        return self.folder / h[:2] / f"{h}.fits"

    def has(self, url: str) -> bool:
        p = self.path_for(url)
        return p.is_file() and p.stat().st_size > 0


def download(url: str, dest: Path, *, session: requests.Session, retries: int = 3,
             backoff: float = 0.25, timeout=None, check: bool = True):
    """Download `url` to `dest` (atomically: temp file in dest's folder, then rename).

    Checks: HTTP 200, body as long as Content-Length says, non-empty, FITS magic (plain or
    gzipped) and, when `check`, readable by read_spectrum. Returns the Spectrum read (or None
    when not checked). Raises DownloadError (retryable or not) after the retries are spent.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    attempt = 0
    while True:
        try:
            return _download_once(url, dest, session, timeout, check)
        except DownloadError as exc:
            if not exc.retryable or attempt >= retries:
                if attempt:
                    exc.reason += f" (after {attempt + 1} attempts)"
                    exc.args = (f"{exc.url}: {exc.reason}",)
                raise
        time.sleep(backoff * (2 ** attempt))
        attempt += 1


def _download_once(url: str, dest: Path, session, timeout, check: bool):
    fd, tmp = tempfile.mkstemp(prefix=".part-", suffix=".fits", dir=dest.parent)
    try:
        try:
            with os.fdopen(fd, "wb") as out:
                kwargs = {"stream": True}
                if timeout is not None:
                    kwargs["timeout"] = timeout
                with session.get(url, **kwargs) as resp:
                    code = resp.status_code
                    if code != 200:
                        retry = code >= 500 or code in (408, 429)
                        raise DownloadError(url, f"HTTP {code} {resp.reason or ''}".strip(),
                                            status=code, retryable=retry)
                    expected = resp.headers.get("Content-Length")
                    size = 0
                    for chunk in resp.iter_content(_CHUNK):
                        out.write(chunk)
                        size += len(chunk)
                    # a gzip Content-Encoding makes Content-Length the compressed size
                    if (expected and expected.isdigit() and not resp.headers.get(
                            "Content-Encoding") and size != int(expected)):
                        raise DownloadError(url, f"truncated: {size} of {expected} bytes",
                                            retryable=True)
                out.flush()
                os.fsync(out.fileno())
        except (requests.ConnectionError, requests.Timeout,
                requests.exceptions.ChunkedEncodingError) as exc:
            raise DownloadError(url, f"connection failed: {type(exc).__name__}: {exc}",
                                retryable=True) from exc
        except requests.RequestException as exc:
            raise DownloadError(url, f"request failed: {type(exc).__name__}: {exc}") from exc
        with open(tmp, "rb") as fh:
            head = fh.read(2880)
        try:
            fits_bytes(head, url, head_only=True)     # cheap: before the reader parses it all
        except SpectrumReadError as exc:
            raise DownloadError(url, exc.reason) from None
        spectrum = None
        if check:
            try:
                spectrum = read_spectrum(tmp)
            except SpectrumReadError as exc:
                raise DownloadError(url, f"not a usable spectrum: {exc.reason}") from exc
        os.replace(tmp, dest)
        tmp = None
        return spectrum
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass


# ---------------------------------------------------------------- the harvest folder

def _load_items(folder: Path) -> list[HarvestItem]:
    raw = read_json_document(folder / HARVEST_JSON, _FORMAT, ProjectError,
                             "vo-al harvest job list")
    return [HarvestItem(**it) for it in raw.get("items", [])]


def save_job(folder, items: list[HarvestItem], info: dict | None = None) -> list[HarvestItem]:
    """Create or extend the harvest folder's job list (union by URL, existing items first)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / HARVEST_JSON
    existing = _load_items(folder) if path.exists() else []
    by_url = {it.url: it for it in existing}
    names = {it.name: it.url for it in existing}
    merged = list(existing)
    for it in items:
        if it.url in by_url:
            continue
        if it.name in names:
            raise ParameterError("name", it.name, f"unique per spectrum: {it.url} and "
                                 f"{names[it.name]} would get the same pool name")
        by_url[it.url] = it
        names[it.name] = it.url
        merged.append(it)
    if len(merged) != len(existing) or not path.exists():
        doc = {"format": _FORMAT, "version": 1, "info": info or {},
               "items": [asdict(it) for it in merged]}
        atomic_write_text(path, json.dumps(doc) + "\n")
    return merged


def load_job(folder) -> list[HarvestItem]:
    folder = Path(folder)
    if not (folder / HARVEST_JSON).is_file():
        raise ProjectError(f"{folder}: no harvest here (no {HARVEST_JSON})")
    return _load_items(folder)


# ---------------------------------------------------------------- the job

@dataclass
class HarvestReport:
    added: int = 0
    skipped: int = 0                               # already in the pool before this run
    failed: list = field(default_factory=list)     # (url, reason)
    seconds: float = 0.0
    downloaded: int = 0
    from_cache: int = 0
    stopped_early: bool = False                    # server down: the rest was not attempted

    def summary(self) -> str:
        text = (f"added {self.added}, skipped {self.skipped} already in the pool, failed "
                f"{len(self.failed)} ({self.downloaded} downloaded, {self.from_cache} from "
                f"cache) in {self.seconds:.1f} s")
        if self.stopped_early:
            text += "; stopped early (server unreachable): run again to resume"
        return text


def _fetch(item: HarvestItem, cache: SpectrumCache, session, retries, backoff, stop: threading.Event):
    """Worker: (item, spectrum, from_cache) or (item, DownloadError, False)."""
    if stop.is_set():
        return item, DownloadError(item.url, "not attempted: harvest stopped", retryable=True), False
    path = cache.path_for(item.url)
    if path.is_file():
        try:
            return item, read_spectrum(path), True
        except SpectrumReadError:
            path.unlink(missing_ok=True)           # a bad cached file: download it again
    try:
        sp = download(item.url, path, session=session, retries=retries, backoff=backoff)
        return item, sp, False
    except DownloadError as exc:
        return item, exc, False


def harvest(pool, folder, items: list[HarvestItem] | None = None, *,
            settings: PreprocessSettings | None = None, session: requests.Session | None = None,
            workers: int = 8, batch: int = 256, retries: int = 3, backoff: float = 0.25,
            max_consecutive_failures: int = 32, cancel: CancelToken | None = None,
            info: dict | None = None) -> Job["HarvestReport"]:
    """Job: download, check, preprocess and add to `pool` the spectra of `items` (or resume the
    harvest saved in `folder` when `items` is None; new items are added to its job list).

    Pool metadata: name = item.name, source = the access URL, obsid/designation/ra/dec/cls/
    subclass/z/snr from the query row, else from the FITS header; instrument from the reader.
    """
    from vo_al.core.spectra.preprocess import preprocess_spectra
    from vo_al.core.vo.query import make_session

    if workers < 1 or batch < 1:
        raise ParameterError("workers/batch", (workers, batch), "numbers >= 1")
    t0 = time.monotonic()
    folder = Path(folder)
    all_items = save_job(folder, items, info) if items is not None else load_job(folder)
    settings = settings or pool.settings or PreprocessSettings()
    session = session if session is not None else make_session(pool_size=workers)
    cache = SpectrumCache(folder / CACHE_DIR)
    report = HarvestReport()

    in_pool = set(pool.metadata(columns=["name"])["name"].tolist()) if len(pool) else set()
    todo = [it for it in all_items if it.name not in in_pool]
    report.skipped = len(all_items) - len(todo)
    total = len(all_items)
    done = report.skipped
    yield Progress("harvest", done, total, "checking the pool")

    stop = threading.Event()
    pending_rows: list = []                        # (item, spectrum) waiting for a commit
    consecutive = 0

    def commit():
        nonlocal pending_rows
        if not pending_rows:
            return
        spectra = [sp for _, sp in pending_rows]
        res = preprocess_spectra(spectra, settings)
        keep, metas = [], []
        for i, ((item, sp), reason) in enumerate(zip(pending_rows, res.reasons)):
            if reason is not None:
                report.failed.append((item.url, f"not usable: {reason}"))
                continue
            keep.append(i)
            metas.append(_meta_for(item, sp))
        if keep:
            pool.add_rows(res.rows[keep], metas, settings=settings, skip_existing=True)
            report.added += len(keep)
        pending_rows = []

    executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="vo-al-harvest")
    window: deque = deque()
    queue = iter(todo)
    try:
        def fill():
            while len(window) < 2 * workers and not stop.is_set():
                it = next(queue, None)
                if it is None:
                    return
                window.append(executor.submit(_fetch, it, cache, session, retries, backoff,
                                              stop))

        fill()
        while window:
            item, got, cached = window.popleft().result()
            if isinstance(got, DownloadError):
                report.failed.append((item.url, got.reason))
                consecutive = consecutive + 1 if got.retryable else 0
                if consecutive >= max_consecutive_failures and not stop.is_set():
                    stop.set()
                    report.stopped_early = True
            else:
                consecutive = 0
                if cached:
                    report.from_cache += 1
                else:
                    report.downloaded += 1
                pending_rows.append((item, got))
                if len(pending_rows) >= batch:
                    commit()
            done += 1
            if cancel is not None and cancel.cancelled:
                stop.set()
                commit()
                raise Cancelled(f"harvest into {pool.folder} cancelled after {done} of "
                                f"{total} spectra")
            fill()
            yield Progress("harvest", done, total, f"{len(report.failed)} failed")
        commit()
        if stop.is_set():
            reason = (f"not attempted: {max_consecutive_failures} downloads in a row failed "
                      f"(server unreachable?)")
            for it in queue:
                report.failed.append((it.url, reason))
                done += 1
            yield Progress("harvest", done, total, f"{len(report.failed)} failed")
    finally:
        stop.set()
        executor.shutdown(wait=True, cancel_futures=True)
        try:
            pool.seal()
        finally:
            report.seconds = time.monotonic() - t0
            atomic_write_text(folder / FAILED_JSON,
                              json.dumps([list(f) for f in report.failed], indent=1) + "\n")
    return report


def _meta_for(item: HarvestItem, sp) -> dict:
    meta = spectrum_record(sp)
    meta.update(name=item.name, source=item.url)
    meta.update(item.meta)                         # the query row wins over the header
    return meta


def harvest_table(pool, folder, table, **kwargs) -> Job["HarvestReport"]:
    """harvest() of the rows of a query result table (see items_from_table for the columns)."""
    url_column = kwargs.pop("url_column", None)
    name_column = kwargs.pop("name_column", None)
    items = items_from_table(table, url_column=url_column, name_column=name_column)
    info = kwargs.pop("info", None) or {k: str(v) for k, v in table.meta.items()
                                        if k in ("service", "query")}
    return (yield from harvest(pool, folder, items, info=info, **kwargs))
