"""Harvest: download the spectra a VO query returned, check them, preprocess them into the pool.

A harvest works in a folder of its own::

    harvest.json       the job list: one item per spectrum (access URL, pool name, query-row
                       metadata), written once (atomically) and extended by later harvests
    failed.json        (url, reason) of the last run's failures, for people to read
    cache/ab/<sha>.fits  downloaded files, keyed by sha256 of the URL; written to a temporary
                       file in the same folder, checked, then renamed: a file in the cache is whole
                       (the temporary file of a download killed with its process is removed by
                       the next harvest: `SpectrumCache.sweep`)

`harvest(...)` is a job generator (see progress.py): it yields Progress('harvest', done, total)
(at least twice a second, also while downloads are slow), checks its CancelToken as it goes (a
cancel aborts the downloads in flight) and returns a HarvestReport. Downloads run concurrently in
a bounded thread pool (`workers` threads, at most 2*workers files in flight); rows are
preprocessed and committed to the pool `batch` spectra per `PoolStore.add_rows` transaction.

Pool order: rows go in in input order, except that one file does not hold back the others: when
a file is still downloading `hold_s` seconds after a later one finished (a stalled server), or
while `batch` later ones wait, what has finished is committed and the late file follows when it
comes. So a harvest's rows are in input order whenever no download lags that far behind the
next ones (nothing in the method depends on it, but a rerun of the same harvest then gives the
same pool); a resumed harvest appends what the first run missed, as it always did.

Resuming after a crash, a cancel or a server outage is running it again on the same folder:
names already in the pool are skipped before anything is downloaded, cached files are not
downloaded again, and add_rows skips a name it already holds, so each spectrum ends up in the
pool exactly once. Failures do not stop a harvest: they are listed in the report (and retried by
the next run); only when `max_consecutive_failures` retryable failures come in a row (the server
is down) does it stop asking, listing the rest as not attempted.

Retries: connection errors, timeouts, truncated bodies and HTTP 5xx/429 are retried `retries`
times with exponential backoff (`backoff`, 2*backoff, 4*backoff ... seconds), or after the wait
a 429/503 answer's Retry-After asks for (seconds or an HTTP-date; at most `max_retry_wait`);
404 and other 4xx, and files that are not spectra, are not.

Bounds (LimitSettings `limits`, the project's settings; default DEFAULT_LIMITS): a download
reads at most `max_download_mb` (the bytes received and, for a gzip/deflate Content-Encoding,
the bytes they decode to: reading stops there, a decompression bomb included), and ends within
`download_deadline_s` of its first request, retries and waits included, whatever the server's
pace (network.Deadline: every read is bounded, and so is their sum). Either is a DownloadError
naming the URL and the bound, for that file alone: the harvest goes on.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
import threading
import time
import zlib
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlparse

import numpy as np
import requests
import urllib3

try:
    import fcntl
except ImportError:                  # Windows: partial files are swept by age (SpectrumCache)
    fcntl = None

from vo_al.core.base.atomic import atomic_write_text
from vo_al.core.base.errors import Cancelled, DownloadError, ParameterError, ProjectError, SpectrumReadError
from vo_al.core.base.jsonfile import read_json_document
from vo_al.core.base.limits import DEFAULT_LIMITS, LimitSettings
from vo_al.core.base.progress import CancelToken, Job, Progress
from vo_al.core.pool.schema import RECORD_FIELDS, spectrum_record
from vo_al.core.spectra.readers import check_spectrum_head, read_spectrum, spectrum_name
from vo_al.core.spectra.settings import PreprocessSettings
from vo_al.core.vo.network import Deadline, make_session, retry_after_seconds

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
ACCEPT_ENCODING = "gzip, deflate"    # the Content-Encodings a download decodes (bounded)
MAX_RETRY_WAIT_S = 60.0              # the longest a Retry-After makes a download wait
HOLD_S = 10.0                        # how long finished files wait for an earlier, slow one
_TICK_S = 0.5                        # the harvest looks at cancel and progress this often
_SPECTRUM_SUFFIXES = (".fits", ".fit", ".fits.gz", ".fit.gz", ".fz")

# query-row column -> pool metadata key (first present wins; case-insensitive)
COLUMN_CANDIDATES: dict[str, tuple[str, ...]] = {
    "url": ("accref", "access_url", "acref", "access_reference", "datalink_url"),
    # a publisher DID's last part (ivo://asu.cas.cz/stel/ccd700/uc050029 -> uc050029) where a
    # service names no file: how the labels of a training set name the spectra
    "name": ("filename", "file_name", "fname", "file", "spec_file", "ssa_pubdid",
             "obs_publisher_did", "publisher_did"),
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
                     name_column: str | None = None,
                     urls: list | None = None) -> list[HarvestItem]:
    """Harvest items from a query result (SSAP or TAP): access URL, name and row metadata.

    Column names are recognised case-insensitively from COLUMN_CANDIDATES (accref, obsid,
    designation, ra, dec, class, subclass, z, snr, ...); rows without an access URL are an error.
    `urls` (one per row, None to leave a row out) replaces the access URL column: the spectra
    in another form (vo.datalink.product_urls).
    """
    ucol = None if urls is not None else _find_column(table, "url", url_column)
    if ucol is None and urls is None:
        raise ParameterError("url_column", None, "an access URL column (accref, access_url, "
                             f"...); the table has {', '.join(table.colnames)}")
    ncol = _find_column(table, "name", name_column)
    cols = {k: _find_column(table, k) for k in _ROW_KEYS}
    items, seen = [], set()
    for i, row in enumerate(table):
        if urls is not None:
            url = urls[i]
            if url is None:
                continue
        else:
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


def read_harvest_table(path):
    """A saved query result to harvest (`vo-al harvest --table FILE`): a VOTable, CSV, ECSV or
    FITS table with an access URL column. ParameterError naming the file otherwise: no such
    file, an unknown suffix, a truncated or unreadable table, XML entities (refused unparsed,
    `export.formats.read_table_file`), or no access URL column."""
    from vo_al.core.export.formats import read_table_file

    table = read_table_file(path, "harvest table")
    if _find_column(table, "url") is None:
        raise ParameterError("harvest table", str(path), "an access URL column (accref, "
                             f"access_url, ...); it has {', '.join(table.colnames) or 'none'}")
    return table


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

    def sweep(self, older_than_s: float = 86400.0) -> int:
        """Remove the partial files of downloads that died with their process (kill -9, a power
        cut); returns how many. A live download holds an flock on its partial file (POSIX);
        without flock (Windows) a partial file untouched for `older_than_s` is taken as dead."""
        removed = 0
        for part in self.folder.glob("*/.part-*"):
            if _abandoned(part, older_than_s):
                try:
                    part.unlink()
                    removed += 1
                except OSError:
                    pass                 # gone meanwhile, or open elsewhere (Windows)
        return removed


def _claim(fd: int) -> int | None:
    """Mark a partial file as a live download's (an flock on `fd`, which the caller then keeps
    open until the file is renamed or removed); None where there is no flock."""
    if fcntl is None:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:                      # a file system without flock: swept by age only
        return None
    return fd


def _abandoned(part: Path, older_than_s: float) -> bool:
    if fcntl is None:
        try:
            return time.time() - part.stat().st_mtime > older_than_s
        except OSError:
            return False
    try:
        fd = os.open(part, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True                      # nobody holds it: its download is dead
    except OSError:
        return False
    finally:
        os.close(fd)


def download(url: str, dest: Path, *, session: requests.Session, retries: int = 3,
             backoff: float = 0.25, timeout=None, check: bool = True,
             limits: LimitSettings | None = None, max_retry_wait: float = MAX_RETRY_WAIT_S,
             deadline: Deadline | None = None, medium: str | None = None):
    """Download `url` to `dest` (atomically: temp file in dest's folder, then rename).

    Checks: HTTP 200, body as long as Content-Length says, at most limits.max_download_mb
    received and decoded, non-empty, FITS magic (plain or gzipped) and, when `check`, readable
    by read_spectrum. All attempts and the waits between them end within
    limits.download_deadline_s (or `deadline`, the caller's, e.g. to abort it). `medium`: for
    a file that does not say whether it is in air or vacuum (see read_spectrum). Returns the
    Spectrum read (or None when not checked). Raises DownloadError (retryable or not) after the
    retries are spent; nothing is left at `dest` or beside it then.
    """
    limits = limits or DEFAULT_LIMITS
    deadline = deadline if deadline is not None else Deadline(limits.download_deadline_s)
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    attempt = 0
    while True:
        try:
            return _download_once(url, dest, session, timeout, check, limits, deadline, medium)
        except DownloadError as exc:
            wait_s = backoff * (2 ** attempt)
            asked = getattr(exc, "retry_after", None)
            if asked is not None:
                wait_s = min(asked, max_retry_wait)
            give_up = not exc.retryable or attempt >= retries or deadline.passed
            if not give_up and wait_s >= deadline.remaining():
                give_up = True
                if asked is not None:
                    exc.reason += (f"; it asks to retry in {asked:g} s (Retry-After): waiting "
                                   f"{wait_s:g} s would pass the download deadline of "
                                   f"{deadline.seconds:g} s (download_deadline_s)")
            if give_up:
                if attempt:
                    exc.reason += f" (after {attempt + 1} attempts)"
                exc.args = (f"{exc.url}: {exc.reason}",)
                raise
        time.sleep(wait_s)
        attempt += 1


class _Refused(DownloadError):
    """An HTTP status other than 200; `retry_after`: the seconds a 429/503 asked to wait."""

    def __init__(self, url: str, code: int, reason: str | None, retry_after: str | None):
        super().__init__(url, f"HTTP {code} {reason or ''}".strip(), status=code,
                         retryable=code >= 500 or code in (408, 429))
        self.retry_after = retry_after_seconds(retry_after) if code in (429, 503) else None


def _past_deadline(url: str, deadline: Deadline) -> DownloadError:
    if deadline.aborted:
        return DownloadError(url, "not finished: the harvest stopped", retryable=True)
    return DownloadError(url, f"not done within the download deadline of {deadline.seconds:g} s "
                              f"(download_deadline_s)", retryable=True)


def _download_once(url: str, dest: Path, session, timeout, check: bool, limits: LimitSettings,
                   deadline: Deadline, medium: str | None = None):
    fd, tmp = tempfile.mkstemp(prefix=".part-", suffix=".fits", dir=dest.parent)
    claim = _claim(fd)
    try:
        try:
            with os.fdopen(fd if claim is None else os.dup(fd), "wb") as out:
                # only what _Decoder bounds (requests would also offer br/zstd when installed)
                kwargs = {"stream": True, "headers": {"Accept-Encoding": ACCEPT_ENCODING}}
                if timeout is not None:
                    kwargs["timeout"] = timeout
                with deadline, session.get(url, **kwargs) as resp:
                    code = resp.status_code
                    if code != 200:
                        raise _Refused(url, code, resp.reason, resp.headers.get("Retry-After"))
                    _receive(resp, out, url, limits, deadline)
                out.flush()
                os.fsync(out.fileno())
        except (requests.RequestException, urllib3.exceptions.HTTPError) as exc:
            # the watchdog's shutdown at the deadline surfaces as a broken connection
            if deadline.passed:
                raise _past_deadline(url, deadline) from exc
            if isinstance(exc, (requests.ConnectionError, requests.Timeout,
                                requests.exceptions.ChunkedEncodingError,
                                urllib3.exceptions.ProtocolError,
                                urllib3.exceptions.TimeoutError)):
                raise DownloadError(url, f"connection failed: {type(exc).__name__}: {exc}",
                                    retryable=True) from exc
            raise DownloadError(url, f"request failed: {type(exc).__name__}: {exc}") from exc
        with open(tmp, "rb") as fh:
            head = fh.read(2880)
        try:
            check_spectrum_head(head, url)            # cheap: before the reader parses it all
        except SpectrumReadError as exc:
            raise DownloadError(url, exc.reason) from None
        spectrum = None
        if check:
            try:
                spectrum = read_spectrum(tmp, limits, medium)
            except SpectrumReadError as exc:
                raise DownloadError(url, f"not a usable spectrum: {exc.reason}") from exc
        try:
            os.replace(tmp, dest)
        except FileNotFoundError:        # swept in the instant before its claim
            raise DownloadError(url, "the partial file was removed meanwhile",
                                retryable=True) from None
        tmp = None
        return spectrum
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
        if claim is not None:
            os.close(claim)


def _receive(resp, out, url: str, limits: LimitSettings, deadline: Deadline) -> None:
    """Write the body of `resp` to `out`, decoded, stopping at the size bound or the deadline."""
    bound, mb = limits.max_download_bytes, f"{limits.max_download_mb:g} MB"
    expected = (resp.headers.get("Content-Length") or "").strip()
    expected = int(expected) if expected.isdigit() else None
    if expected is not None and expected > bound:
        raise DownloadError(url, f"announces {expected} bytes: more than {mb} "
                                 f"(max_download_mb)")
    encoding = (resp.headers.get("Content-Encoding") or "identity").strip().lower()
    decoder = None if encoding == "identity" else _Decoder(url, encoding)
    received = decoded = 0
    while True:
        # raw bytes, decoded here: urllib3's decoding is unbounded before urllib3 2.6
        chunk = resp.raw.read(_CHUNK, decode_content=False)
        if not chunk:
            break
        received += len(chunk)
        if received > bound:
            raise DownloadError(url, f"more than {mb} received (max_download_mb): stopped")
        for piece in (decoder.pieces(chunk) if decoder else (chunk,)):
            decoded += len(piece)
            if decoded > bound:
                raise DownloadError(url, f"more than {mb} decoded from {received} bytes of "
                                         f"Content-Encoding {encoding} (max_download_mb): "
                                         f"stopped")
            out.write(piece)
        if deadline.passed:
            raise _past_deadline(url, deadline)
    if deadline.fired:                   # a shutdown socket may look like a body's end
        raise _past_deadline(url, deadline)
    if expected is not None and received != expected:
        raise DownloadError(url, f"truncated: {received} of {expected} bytes", retryable=True)
    if decoder is not None:
        decoder.finish()


class _Decoder:
    """Content-Encoding gzip (several members too) or deflate (zlib-wrapped as RFC 9110 says, or
    raw, as some servers send it), decoded in pieces of at most _CHUNK bytes: memory and the
    caller's count stay bounded whatever the compression ratio."""

    def __init__(self, url: str, encoding: str) -> None:
        if encoding not in ("gzip", "x-gzip", "deflate"):
            raise DownloadError(url, f"Content-Encoding {encoding!r} is not supported (asked "
                                     f"for {ACCEPT_ENCODING})")
        self.url, self.encoding = url, encoding
        self._gzip = encoding != "deflate"
        self._z = zlib.decompressobj(16 + zlib.MAX_WBITS) if self._gzip else None
        self._head = b""                 # deflate: the first bytes, until the wrapper is known
        self._member = 0                 # gzip: the member being decoded, from 0
        self._trailing = False           # past the last member (or the deflate stream)

    def pieces(self, data: bytes):
        if self._trailing:
            return
        if self._z is None:              # deflate: a zlib header (RFC 1950) or raw
            self._head += data
            if len(self._head) < 2:
                return
            data, self._head = self._head, b""
            cmf, flg = data[0], data[1]
            wrapped = cmf & 0x0F == 8 and (cmf * 256 + flg) % 31 == 0
            self._z = zlib.decompressobj(zlib.MAX_WBITS if wrapped else -zlib.MAX_WBITS)
        while True:
            try:
                piece = self._z.decompress(data, _CHUNK)
            except zlib.error as exc:
                if self._member:         # not another member but padding: ignored, as by urllib3
                    self._trailing = True
                    return
                raise DownloadError(self.url, f"Content-Encoding {self.encoding}: corrupt "
                                              f"({exc})") from None
            if piece:
                yield piece
            if self._z.eof:
                rest = self._z.unused_data
                if not self._gzip:
                    self._trailing = True        # bytes after a deflate stream: ignored
                    return
                if not rest:
                    return
                self._z = zlib.decompressobj(16 + zlib.MAX_WBITS)      # the next member
                self._member += 1
                data = rest
                continue
            data = self._z.unconsumed_tail
            if not data and len(piece) < _CHUNK:
                return                   # all input used and no output held back

    def finish(self) -> None:
        if not self._trailing and (self._z is None or not self._z.eof):
            raise DownloadError(self.url, f"truncated: the Content-Encoding {self.encoding} "
                                          f"stream ends early", retryable=True)


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


class _InFlight:
    """The deadlines of a harvest's downloads in flight: a cancel aborts them all at once
    (a stalled download would otherwise hold the cancel until its deadline)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._live: set = set()
        self.aborted = False

    def start(self, seconds: float) -> Deadline | None:
        """The deadline of one more download, or None once the harvest stopped."""
        deadline = Deadline(seconds)
        with self._lock:
            if self.aborted:
                return None
            self._live.add(deadline)
        return deadline

    def end(self, deadline: Deadline) -> None:
        with self._lock:
            self._live.discard(deadline)

    def abort(self) -> None:
        with self._lock:
            self.aborted = True
            live = list(self._live)
        for deadline in live:
            deadline.abort()


def _fetch(item: HarvestItem, cache: SpectrumCache, session, retries, backoff,
           stop: threading.Event, limits: LimitSettings, in_flight: _InFlight,
           medium: str | None = None):
    """Worker: (item, spectrum, from_cache) or (item, DownloadError, False)."""
    not_attempted = DownloadError(item.url, "not attempted: harvest stopped", retryable=True)
    if stop.is_set():
        return item, not_attempted, False
    path = cache.path_for(item.url)
    if path.is_file():
        try:
            return item, read_spectrum(path, limits, medium), True
        except SpectrumReadError:
            path.unlink(missing_ok=True)           # a bad cached file: download it again
    deadline = in_flight.start(limits.download_deadline_s)
    if deadline is None:
        return item, not_attempted, False
    try:
        sp = download(item.url, path, session=session, retries=retries, backoff=backoff,
                      limits=limits, deadline=deadline, medium=medium)
        return item, sp, False
    except DownloadError as exc:
        return item, exc, False
    finally:
        in_flight.end(deadline)


def harvest(pool, folder, items: list[HarvestItem] | None = None, *,
            settings: PreprocessSettings | None = None, session: requests.Session | None = None,
            workers: int = 8, batch: int = 256, retries: int = 3, backoff: float = 0.25,
            max_consecutive_failures: int = 32, cancel: CancelToken | None = None,
            info: dict | None = None, limits: LimitSettings | None = None,
            hold_s: float = HOLD_S, medium: str | None = None) -> Job["HarvestReport"]:
    """Job: download, check, preprocess and add to `pool` the spectra of `items` (or resume the
    harvest saved in `folder` when `items` is None; new items are added to its job list).

    Pool metadata: name = item.name, source = the access URL, obsid/designation/ra/dec/cls/
    subclass/z/snr from the query row, else from the FITS header; instrument from the reader.
    `limits` bounds each download (size, deadline; default DEFAULT_LIMITS); `hold_s` is how
    long finished files wait for an earlier one still downloading (see the module's doc).
    `medium` ('air'/'vacuum'): the wavelengths of files that do not say (the service's or the
    import's setting; read_spectrum); None rejects such files with that reason.
    """
    from vo_al.core.spectra.preprocess import preprocess_spectra

    if workers < 1 or batch < 1:
        raise ParameterError("workers/batch", (workers, batch), "numbers >= 1")
    if not hold_s >= 0:
        raise ParameterError("hold_s", hold_s, "a number of seconds >= 0")
    limits = limits or DEFAULT_LIMITS
    t0 = time.monotonic()
    folder = Path(folder)
    all_items = save_job(folder, items, info) if items is not None else load_job(folder)
    settings = settings or pool.settings or PreprocessSettings()
    session = session if session is not None else make_session(pool_size=workers)
    cache = SpectrumCache(folder / CACHE_DIR)
    cache.sweep()                                  # what a killed run left half-written
    report = HarvestReport()

    in_pool = set(pool.metadata(columns=["name"])["name"].tolist()) if len(pool) else set()
    todo = [it for it in all_items if it.name not in in_pool]
    report.skipped = len(all_items) - len(todo)
    total = len(all_items)
    done = report.skipped
    yield Progress("harvest", done, total, "checking the pool")

    stop = threading.Event()
    in_flight = _InFlight()
    pending: list = []             # (input index, item, spectrum, when done) waiting for a commit
    consecutive = 0

    def commit(rows):
        """Preprocess `rows` and add them to the pool in input order, one transaction."""
        if not rows:
            return
        rows = sorted(rows, key=lambda row: row[0])
        res = preprocess_spectra([sp for _, _, sp, _ in rows], settings)
        keep, metas = [], []
        for i, ((_, item, sp, _), reason) in enumerate(zip(rows, res.reasons)):
            if reason is not None:
                report.failed.append((item.url, f"not usable: {reason}"))
                continue
            keep.append(i)
            metas.append(_meta_for(item, sp))
        if keep:
            pool.add_rows(res.rows[keep], metas, settings=settings, skip_existing=True,
                          medium=medium)
            report.added += len(keep)

    def commit_due(head, now: float) -> None:
        """Commit `batch` rows that come before `head` (the first file still downloading), or
        everything once the rows after it have waited hold_s or fill a batch (it is late)."""
        nonlocal pending
        before = [row for row in pending if row[0] < head]
        after = [row for row in pending if row[0] > head]
        if after and (len(after) >= batch or now - min(r[3] for r in after) >= hold_s):
            commit(pending)
            pending = []
        elif len(before) >= batch:
            commit(before)
            pending = after

    executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="vo-al-harvest")
    running: dict = {}                             # future -> input index, while downloading
    queue = iter(enumerate(todo))
    try:
        def fill():
            while len(running) < 2 * workers and not stop.is_set():
                nxt = next(queue, None)
                if nxt is None:
                    return
                running[executor.submit(_fetch, nxt[1], cache, session, retries, backoff,
                                        stop, limits, in_flight, medium)] = nxt[0]

        fill()
        while running:
            # wake up now and then even when nothing finishes: a cancel, a late file, progress
            finished, _ = wait(list(running), timeout=_TICK_S, return_when=FIRST_COMPLETED)
            now = time.monotonic()
            for future in sorted(finished, key=running.__getitem__):
                index = running.pop(future)
                item, got, cached = future.result()
                done += 1
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
                    pending.append((index, item, got, now))
            commit_due(min(running.values(), default=math.inf), now)
            if cancel is not None and cancel.cancelled:
                stop.set()
                in_flight.abort()
                commit(pending)
                pending = []
                raise Cancelled(f"harvest into {pool.folder} cancelled after {done} of "
                                f"{total} spectra")
            fill()
            yield Progress("harvest", done, total, f"{len(report.failed)} failed")
        commit(pending)
        pending = []
        if stop.is_set():
            reason = (f"not attempted: {max_consecutive_failures} downloads in a row failed "
                      f"(server unreachable?)")
            for _, it in queue:
                report.failed.append((it.url, reason))
                done += 1
            yield Progress("harvest", done, total, f"{len(report.failed)} failed")
    except GeneratorExit:                          # closed at a yield (the app's cancel)
        stop.set()
        in_flight.abort()
        commit(pending)                            # what finished is kept, as on a cancel
        raise
    finally:
        stop.set()
        in_flight.abort()                          # nothing waits for a stalled download
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
    """harvest() of the rows of a query result table (see items_from_table for the columns).

    `form` ('native', 'sdm-votable', 'sdm-fits'; None: the table's access URLs as they are)
    harvests the spectra in that form, through the result's DataLink service (vo.datalink);
    rows the service cannot give in that form are in the report's failures.
    """
    url_column = kwargs.pop("url_column", None)
    name_column = kwargs.pop("name_column", None)
    form = kwargs.pop("form", None)
    refused: list = []
    urls = None
    if form is not None:
        urls, refused = _urls_in_form(table, form, kwargs.get("session"))
    items = items_from_table(table, url_column=url_column, name_column=name_column, urls=urls)
    info = kwargs.pop("info", None) or {k: str(v) for k, v in table.meta.items()
                                        if k in ("service", "query")}
    if form is not None:
        info["form"] = form
    report = yield from harvest(pool, folder, items, info=info, **kwargs)
    report.failed.extend(refused)
    return report


def _urls_in_form(table, form: str, session) -> tuple[list, list]:
    """(one URL or None per row, [(DID, reason)]) of the spectra of `table` in `form`."""
    from vo_al.core.vo.datalink import DatalinkService, product_urls

    url, id_column = table.meta.get("datalink"), table.meta.get("datalink_id")
    if not url or id_column not in table.colnames:
        raise ParameterError("form", form, "a query result with a DataLink service (this "
                             "result has none: harvest its access URLs as they are)")
    dids = [str(_cell(v) or "") for v in table[id_column]]
    found = product_urls(DatalinkService(url, id_column), [d for d in dids if d], form,
                         session if session is not None else make_session())
    return [found.urls.get(d) for d in dids], found.failed
