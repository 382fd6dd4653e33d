"""Queries to VO services (SSAP and TAP) through pyvo, returning astropy Tables.

Every function takes an injectable `requests.Session` (`session=`); the default is
`make_session()` (network.py), whose every request has a finite (connect, read) timeout. Each
query, an async TAP job with its polling included, has a wall-clock deadline too:
`limits.query_deadline_s` (LimitSettings; the project's settings, default DEFAULT_LIMITS),
enforced across reads by the session (see network.py). pyvo's exceptions are turned into
vo-al's typed errors naming the service and the query:

* `VOServiceError`: the server is unreachable, timed out, answered with an HTTP error, or did
  not answer within the query deadline;
* `VOQueryError`: the service ran the query and reported an error (an error VOTable with
  QUERY_STATUS=ERROR, or an async job that ended in phase ERROR/ABORTED);
* `VOFormatError`: the answer is not a usable VOTable.

Result tables carry in `table.meta`: ``service`` (URL), ``query`` (ADQL or SSA parameters),
``query_status`` (OK, OVERFLOW), ``overflow`` (True when the server truncated the result at MAXREC
or its own limit) and, for async TAP, ``job_url`` (deleted by the time the table is returned).

SSA SIZE, radius or diameter
----------------------------
SSA 1.1 defines SIZE as the *diameter* of the search cone, and pyvo's `diameter=` sends it as
such. DaCHS 2.7 (and every service run with DaCHS, e.g. GAVO's) reads SIZE as a *radius*: a
query with pyvo's `diameter=2r` then covers radius 2r, four times the area. `ssap_search` takes
a `radius` and sends what the server needs for that radius: SIZE=radius to a service configured
`ssa_size='radius'` (the local DaCHS), SIZE=2*radius to a standard one.

Paging TAP results
------------------
`tap_query_paged` uses keyset pagination: ``SELECT TOP n ... WHERE key > last ORDER BY key`` on a
unique column. Unlike OFFSET (ADQL 2.1, which DaCHS supports), each page costs one index range
scan instead of re-reading every skipped row, no row is lost or repeated when rows are added
between pages, and it also works when the server truncates a page at its own hard limit (the next
page simply starts after the last key received).
"""

from __future__ import annotations

import math
import re
import time
import warnings
from dataclasses import dataclass

import requests
from astropy.table import Table, vstack

from vo_al.core.base.errors import (Cancelled, ParameterError, VOError, VOFormatError, VOQueryError,
                     VOServiceError, reason_text)
from vo_al.core.base.limits import DEFAULT_LIMITS, LimitSettings
from vo_al.core.base.progress import CancelToken
from vo_al.core.vo.network import (DEFAULT_TIMEOUT, Deadline, TimeoutSession,  # noqa: F401
                                   make_session)
from vo_al.core.vo.services import SIZE_RADIUS, SSAP, TAP, VOService

SYNC_MAX_ROWS = 10_000                # 'auto' mode: larger or unbounded results go async
_POLL_FIRST, _POLL_MAX = 0.05, 2.0    # async job polling interval, growing x1.5
CLEANUP_DEADLINE_S = 30.0             # aborting and deleting an async job, after its end


class VOWarning(UserWarning):
    """Something went wrong that does not invalidate the result (e.g. a job not deleted)."""


# ---------------------------------------------------------------- errors

def _service_url(service) -> str:
    return service.url if isinstance(service, VOService) else str(service)


def as_service(service, kind: str) -> VOService:
    """A VOService of `kind` from a VOService, a saved service name or a URL; typed errors."""
    if isinstance(service, VOService):
        if service.kind != kind:
            raise ParameterError("service", service.name, f"a {kind} service (is {service.kind})")
        return service
    if isinstance(service, str):
        from vo_al.core.vo.services import resolve_service

        return resolve_service(service, kind, services={}) if service.startswith(
            ("http://", "https://")) else resolve_service(service, kind)
    raise ParameterError("service", service, "a VOService or a URL")


def wrap_error(exc: BaseException, service: str, query: str) -> VOError:
    """pyvo / requests / parsing exception -> the matching typed VOError (not raised here)."""
    from pyvo.dal.exceptions import DALFormatError, DALQueryError, DALServiceError

    if isinstance(exc, VOError):
        return exc
    if isinstance(exc, DALQueryError):
        return VOQueryError(service, query, f"the service reported an error: {exc.reason}", exc)
    # pyvo reports a failed connection during execute_votable as a DALFormatError whose cause is
    # the requests exception: that is the network's fault, not the answer's
    if isinstance(exc, DALFormatError) and not isinstance(exc.cause, requests.RequestException):
        return VOFormatError(service, query, f"answer is not a usable VOTable: {exc.reason}", exc)
    cause, code = exc, None
    if isinstance(exc, (DALServiceError, DALFormatError)):
        cause = exc.cause if exc.cause is not None else exc
        code = getattr(exc, "code", None) or None
    if isinstance(cause, requests.Timeout):
        return VOServiceError(service, query, f"timed out ({_short(cause)})", exc, code)
    if isinstance(cause, requests.ConnectionError):
        return VOServiceError(service, query, f"unreachable ({_short(cause)})", exc, code)
    if code:
        return VOServiceError(service, query, f"HTTP error {code}: {_short(exc)}", exc, code)
    if isinstance(exc, (DALServiceError, DALFormatError, requests.RequestException)):
        return VOServiceError(service, query, _short(exc), exc, code)
    return VOFormatError(service, query, f"cannot read the answer: {type(exc).__name__}: "
                                         f"{_short(exc)}", exc)


def _run(service: str, query: str, deadline: Deadline, func):
    """func() inside `deadline`, its failures as typed errors: the deadline's when it passed
    (whatever broke after the watchdog shut the connection is its doing), else wrap_error's."""
    try:
        with deadline:
            return func()
    except (VOError, Cancelled):
        raise
    except Exception as exc:                       # noqa: BLE001 - wrapped into a typed error
        if deadline.passed:
            raise VOServiceError(service, query, f"no answer within the query deadline of "
                                 f"{deadline.seconds:g} s (query_deadline_s)", exc) from exc
        raise wrap_error(exc, service, query) from exc


def _query_deadline(limits: LimitSettings | None) -> Deadline:
    return Deadline((limits or DEFAULT_LIMITS).query_deadline_s)


def _short(exc: BaseException) -> str:
    """The cause's whole text on one line (base.errors.reason_text; never cut)."""
    return reason_text(exc)


def _status_of(results) -> str:
    status = getattr(results, "query_status", None)
    if not status:
        status = (getattr(results, "status", None) or ("OK",))[0]
    return str(status or "OK").upper()


def results_table(results, service: str, query: str, **meta) -> Table:
    """pyvo results as an astropy Table carrying the service, query and `meta` in its meta."""
    try:
        table = results.to_table()
    except Exception as exc:                       # noqa: BLE001 - astropy conversion of odd data
        raise VOFormatError(service, query, f"result cannot be converted to a table: "
                                            f"{_short(exc)}", exc) from exc
    status = _status_of(results)
    table.meta.update(service=service, query=query, query_status=status,
                      overflow=(status == "OVERFLOW"), **meta)
    # the result's DataLink descriptor, for the spectra in another form (vo.datalink)
    from vo_al.core.vo.datalink import datalink_service_of

    votable = getattr(results, "votable", None)
    links = datalink_service_of(votable) if votable is not None else None
    if links is not None:
        table.meta.update(datalink=links.url, datalink_id=links.id_column)
    return table


# ---------------------------------------------------------------- SSAP

def ssa_size_for(radius_deg: float, service: VOService) -> float:
    """The SIZE value that makes `service` search a cone of radius `radius_deg` (see top)."""
    return radius_deg if service.ssa_size == SIZE_RADIUS else 2.0 * radius_deg


def ssap_search(service, pos=None, radius: float | None = None, *, band=None, time_range=None,
                maxrec: int | None = None, session: requests.Session | None = None,
                params: dict | None = None, limits: LimitSettings | None = None) -> Table:
    """SSA query: spectra within `radius` degrees of `pos` (ra, dec in deg ICRS, or SkyCoord).

    band: (min, max) wavelength, astropy Quantities or floats in metres (SSA's unit);
    time_range: (start, end) MJD; maxrec: the most rows wanted (MAXREC; OVERFLOW is reported in
    ``table.meta['overflow']``); params: further SSA parameters sent as they are; limits: its
    query_deadline_s bounds the query (default DEFAULT_LIMITS).
    Returns the result as an astropy Table.
    """
    import pyvo
    from astropy import units as u
    from astropy.coordinates import SkyCoord
    from astropy.time import Time

    service = as_service(service, SSAP)
    session = session if session is not None else make_session()
    svc = pyvo.dal.SSAService(service.url, session=session)
    query = svc.create_query()
    if pos is not None:
        if not isinstance(pos, SkyCoord):
            ra, dec = pos
            pos = SkyCoord(ra=float(ra), dec=float(dec), unit="deg", frame="icrs")
        query.pos = pos
    if radius is not None:
        if pos is None:
            raise ParameterError("radius", radius, "needs a position")
        if not (radius > 0 and math.isfinite(radius)):
            raise ParameterError("radius", radius, "a positive number of degrees")
        query["SIZE"] = ssa_size_for(float(radius), service)
    if band is not None:
        lo, hi = band
        lo = lo if isinstance(lo, u.Quantity) else float(lo) * u.m
        hi = hi if isinstance(hi, u.Quantity) else float(hi) * u.m
        query.band = (lo, hi)
    if time_range is not None:
        t0, t1 = time_range
        query.time = Time([float(t0), float(t1)], format="mjd")
    if maxrec is not None:
        if maxrec < 0:
            raise ParameterError("maxrec", maxrec, "a number >= 0")
        query["MAXREC"] = int(maxrec)
    for key, value in (params or {}).items():
        query[key.upper()] = value
    text = "&".join(f"{k}={v}" for k, v in query.items())
    from pyvo.dal.exceptions import DALOverflowWarning

    def execute():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DALOverflowWarning)     # reported in meta instead
            return query.execute()

    results = _run(service.url, text, _query_deadline(limits), execute)
    return results_table(results, service.url, text, maxrec=maxrec)


# ---------------------------------------------------------------- TAP

_TOP = re.compile(r"^\s*select\s+(?:all\s+|distinct\s+)?top\s+(\d+)", re.I)


def _choose_mode(adql: str, maxrec: int | None, mode: str) -> str:
    if mode in ("sync", "async"):
        return mode
    if mode != "auto":
        raise ParameterError("mode", mode, "sync, async or auto")
    top = _TOP.match(adql)
    bound = min(x for x in (maxrec, int(top.group(1)) if top else None) if x is not None) \
        if (maxrec is not None or top) else None
    return "sync" if bound is not None and bound <= SYNC_MAX_ROWS else "async"


def tap_query(service, adql: str, *, maxrec: int | None = None, mode: str = "auto",
              session: requests.Session | None = None, cancel: CancelToken | None = None,
              limits: LimitSettings | None = None) -> Table:
    """Run ADQL on a TAP service; returns an astropy Table.

    mode 'sync' (one request; for small results), 'async' (a UWS job: submitted, polled until
    it ends, its result fetched, the job deleted afterwards even on error or timeout) or 'auto'
    (sync when MAXREC or a TOP clause bound the result to <= SYNC_MAX_ROWS rows, else async).
    Truncation at MAXREC or the server's limit is reported in ``table.meta['overflow']``.
    The whole query, an async job's submission, polling and result included, has
    `limits.query_deadline_s` (default DEFAULT_LIMITS); an async job still running then is
    aborted.
    """
    service = as_service(service, TAP)
    session = session if session is not None else make_session()
    if maxrec is not None and maxrec < 0:
        raise ParameterError("maxrec", maxrec, "a number >= 0")
    deadline = _query_deadline(limits)
    if _choose_mode(adql, maxrec, mode) == "sync":
        return _tap_sync(service, adql, maxrec, session, deadline)
    return _tap_async(service, adql, maxrec, session, deadline, cancel)


def _tap_sync(service: VOService, adql: str, maxrec, session, deadline: Deadline) -> Table:
    import pyvo
    from pyvo.dal.exceptions import DALOverflowWarning

    def run():
        tap = pyvo.dal.TAPService(service.url, session=session)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DALOverflowWarning)     # reported in meta instead
            return tap.run_sync(adql, maxrec=maxrec)

    results = _run(service.url, adql, deadline, run)
    return results_table(results, service.url, adql, mode="sync", maxrec=maxrec)


def _tap_async(service: VOService, adql: str, maxrec, session, deadline: Deadline,
               cancel: CancelToken | None) -> Table:
    import pyvo
    from pyvo.dal.exceptions import DALOverflowWarning

    tap = pyvo.dal.TAPService(service.url, session=session)
    job = _run(service.url, adql, deadline, lambda: tap.submit_job(adql, maxrec=maxrec))
    job_url = job.url
    ended = False                                  # the job ended: nothing to abort
    table = None

    def past_deadline(phase: str) -> VOServiceError:
        return VOServiceError(service.url, adql, f"async job {job_url} still {phase} at the "
                              f"query deadline of {deadline.seconds:g} s (query_deadline_s): "
                              f"aborted")

    def run_to_end():
        nonlocal ended
        job.run()
        interval, phase = _POLL_FIRST, None
        while True:
            try:
                phase = job.phase
            except Exception:                      # noqa: BLE001 - typed by _run
                if phase is not None and deadline.passed:
                    raise past_deadline(phase) from None      # cut off while asking again
                raise
            if phase == "COMPLETED":
                break
            if phase in ("ERROR", "ABORTED"):
                ended = True
                job.raise_if_error()               # DALQueryError with the server's message
                raise VOQueryError(service.url, adql, f"async job {job_url} ended in {phase}")
            if cancel is not None and cancel.cancelled:
                raise Cancelled(f"async TAP job {job_url} cancelled")
            left = deadline.remaining()
            time.sleep(min(interval, left))
            if interval >= left:
                raise past_deadline(phase)
            interval = min(_POLL_MAX, interval * 1.5)
        ended = True
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DALOverflowWarning)
            return job.fetch_result()

    try:
        results = _run(service.url, adql, deadline, run_to_end)
        table = results_table(results, service.url, adql, mode="async", maxrec=maxrec,
                              job_url=job_url)
    finally:
        _end_job(job, service.url, job_url, abort=not ended, warn=table is not None)
    return table


def _end_job(job, service_url: str, job_url: str, abort: bool, warn: bool) -> None:
    """Abort a job still running (cancelled, past its deadline, a connection lost) and delete
    it, whatever happened, under a deadline of its own (the query's may be over). A failed
    deletion warns after a success only: it must not hide the real error."""
    with Deadline(CLEANUP_DEADLINE_S):
        if abort:
            _try(job.abort)
        try:
            job.delete()
        except Exception as exc:                   # noqa: BLE001
            if warn:
                warnings.warn(f"{service_url}: async job {job_url} could not be deleted: "
                              f"{_short(exc)}", VOWarning, stacklevel=4)


def _try(func) -> None:
    try:
        func()
    except Exception:                              # noqa: BLE001 - best effort before delete
        pass


def adql_literal(value) -> str:
    """A Python value as an ADQL literal (numbers as they are, strings quoted)."""
    if isinstance(value, bytes):
        value = value.decode()
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ParameterError("key value", value, "a number or a string")
    if isinstance(value, float) and not math.isfinite(value):
        raise ParameterError("key value", value, "a finite number")
    return repr(value)


@dataclass
class PagedQuery:
    """What `iter_tap_pages` pages through: SELECT columns FROM table WHERE where, by key."""

    table: str
    key: str
    columns: str = "*"
    where: str = ""

    def adql(self, page_size: int, after=None) -> str:
        conds = [f"({self.where})"] if self.where.strip() else []
        if after is not None:
            conds.append(f"{self.key} > {adql_literal(after)}")
        where = (" WHERE " + " AND ".join(conds)) if conds else ""
        return (f"SELECT TOP {int(page_size)} {self.columns} FROM {self.table}{where} "
                f"ORDER BY {self.key} ASC")


def iter_tap_pages(service, paged: PagedQuery, page_size: int = 10_000, *,
                   session: requests.Session | None = None, max_pages: int | None = None,
                   cancel: CancelToken | None = None, limits: LimitSettings | None = None):
    """Yield the result of `paged` as Tables of at most `page_size` rows (keyset pagination).

    `paged.key` must be a unique, non-null column and be among `paged.columns`. Each page is a
    sync query (MAXREC = page_size), with a query deadline of its own (`limits`); a page the
    server truncated at a lower limit is fine.
    """
    if page_size < 1:
        raise ParameterError("page_size", page_size, "a number >= 1")
    session = session if session is not None else make_session()
    after, pages = None, 0
    while max_pages is None or pages < max_pages:
        if cancel is not None:
            cancel.raise_if_cancelled("TAP paging")
        adql = paged.adql(page_size, after)
        page = tap_query(service, adql, maxrec=page_size, mode="sync", session=session,
                         limits=limits)
        pages += 1
        if len(page) == 0:
            return
        if paged.key not in page.colnames:
            raise VOFormatError(_service_url(service), adql,
                                f"key column {paged.key!r} missing from the page")
        yield page
        last = page[paged.key][-1]
        if after is not None and not _greater(last, after):
            raise VOQueryError(_service_url(service), adql,
                               f"page keys do not increase ({last!r} after {after!r}): "
                               f"{paged.key} is not a usable unique ordering key")
        after = last
        if len(page) < page_size and not page.meta.get("overflow"):
            return


def _greater(a, b) -> bool:
    try:
        return bool(a > b)
    except TypeError:
        return str(a) > str(b)


def tap_query_paged(service, paged: PagedQuery, page_size: int = 10_000, *,
                    session: requests.Session | None = None,
                    cancel: CancelToken | None = None,
                    limits: LimitSettings | None = None) -> Table:
    """All rows of `paged`, fetched `page_size` at a time, as one Table (meta: pages)."""
    pages = list(iter_tap_pages(service, paged, page_size, session=session, cancel=cancel,
                                limits=limits))
    if not pages:
        table = tap_query(service, paged.adql(1) .replace("TOP 1", "TOP 0"), maxrec=0,
                          mode="sync", session=session, limits=limits)
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")       # metadata merge conflicts (query text)
            table = vstack(pages, metadata_conflicts="silent")
    table.meta.update(service=_service_url(service), query=paged.adql(page_size),
                      pages=len(pages), overflow=False, query_status="OK")
    return table
