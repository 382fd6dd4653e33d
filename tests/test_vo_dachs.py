"""vo-al's VO client against the project's real DaCHS server (tests/dachs_server.py).

SSAP and TAP through vo-al return the same rows as STILTS; async TAP deletes its job; MAXREC
overflow is reported; keyset paging returns every row once; a harvest survives the server being
killed half-way and, resumed after a restart, leaves each spectrum in the pool exactly once.
"""

from __future__ import annotations

import csv
import io
import re
import shutil
import subprocess

import numpy as np
import pytest
import requests

from vo_al.core.vo import query as vo_query
from vo_al.core.base.errors import VOQueryError
from vo_al.core.vo.harvest import CACHE_DIR, SpectrumCache, harvest_table, load_job
from vo_al.core.pool.store import PoolStore
from vo_al.core.spectra.preprocess import preprocess_spectra
from vo_al.core.base.progress import run_job
from vo_al.core.spectra.readers import read_spectrum
from vo_al.core.vo.services import SIZE_RADIUS, VOService

pytestmark = pytest.mark.timeout(600)

COLUMNS = "obsid, accref, filename, designation, ra, dec, class, subclass, z, snrr"


@pytest.fixture
def services(dachs):  # noqa: F811
    return (VOService("t-ssap", "ssap", dachs.ssap_url, ssa_size=SIZE_RADIUS),
            VOService("t-tap", "tap", dachs.tap_url))


@pytest.fixture
def session():
    s = vo_query.make_session(timeout=(3.0, 60.0))
    yield s
    s.close()


def _stilts(*args: str) -> list[dict]:
    if shutil.which("stilts") is None:
        pytest.skip("stilts is not installed (scripts/dachs.sh install installs it)")
    proc = subprocess.run(["stilts", *args, "ofmt=csv"], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    return list(csv.DictReader(io.StringIO(proc.stdout)))


def _obsids(column) -> set[str]:
    return {str(v) for v in column}


def test_tap_sync_and_async_match_stilts(dachs, services, session):  # noqa: F811
    _, tap = services
    adql = "SELECT obsid, snrr FROM lamost.data WHERE snrr > 30"
    ours = vo_query.tap_query(tap, adql, mode="sync", maxrec=100_000, session=session)
    theirs = _stilts("tapquery", f"tapurl={dachs.tap_url}", f"adql={adql}", "sync=true",
                     "maxrec=100000")
    assert len(ours) == len(theirs) > 0
    assert _obsids(ours["obsid"]) == {r["obsid"] for r in theirs}
    assert ours.meta["overflow"] is False
    asynced = vo_query.tap_query(tap, adql, mode="async", maxrec=10 ** 6, session=session)
    assert _obsids(asynced["obsid"]) == _obsids(ours["obsid"])


def test_ssap_matches_stilts_and_means_radius(dachs, services, session):  # noqa: F811
    ssap, tap = services
    first = vo_query.tap_query(tap, "SELECT TOP 1 ra, dec FROM lamost.data ORDER BY obsid",
                               session=session)
    ra, dec, r = float(first["ra"][0]), float(first["dec"][0]), 2.0
    ours = vo_query.ssap_search(ssap, (ra, dec), r, maxrec=100_000, session=session)
    assert "SIZE=2.0" in ours.meta["query"]            # DaCHS reads SIZE as a radius
    # STILTS sends SIZE = 2 * radius (the SSA standard's diameter): radius r/2 asks for SIZE=r
    theirs = _stilts("cone", "servicetype=ssa", f"serviceurl={dachs.ssap_url}", f"lon={ra}",
                     f"lat={dec}", f"radius={r / 2}")
    assert len(ours) == len(theirs) > 0
    assert set(ours["accref"]) == {row["accref"] for row in theirs}
    if "obsid" in ours.colnames and theirs and "obsid" in theirs[0]:
        assert _obsids(ours["obsid"]) == {row["obsid"] for row in theirs}
    # radius semantics: the same rows as an ADQL distance <= r on the server's positions
    cone = vo_query.tap_query(
        tap, f"SELECT obsid FROM lamost.data WHERE DISTANCE(ssa_location, "
             f"POINT('ICRS', {ra}, {dec})) <= {r}", mode="sync", maxrec=100_000,
        session=session)
    assert _obsids(ours["obsid"]) == _obsids(cone["obsid"])


def _jobs(dachs, session) -> list[str]:  # noqa: F811
    text = session.get(f"{dachs.tap_url}/async").text
    return re.findall(r"<uws:jobref[^>]*id=\"([^\"]+)\"", text)


def test_async_tap_deletes_its_job_also_on_error(dachs, services, session):  # noqa: F811
    _, tap = services
    before = _jobs(dachs, session)
    table = vo_query.tap_query(tap, "SELECT obsid FROM lamost.data", mode="async",
                               maxrec=10 ** 6, session=session)
    assert len(table) == dachs.n_spectra and table.meta["mode"] == "async"
    assert table.meta["overflow"] is False
    assert session.get(table.meta["job_url"]).status_code == 404
    with pytest.raises(VOQueryError) as info:
        vo_query.tap_query(tap, "SELECT nothing FROM lamost.nowhere", mode="async",
                           session=session)
    assert "lamost.nowhere" in str(info.value) and info.value.service == dachs.tap_url
    assert _jobs(dachs, session) == before


def test_maxrec_overflow_is_reported(dachs, services, session):  # noqa: F811
    ssap, tap = services
    for mode in ("sync", "async"):
        t = vo_query.tap_query(tap, "SELECT obsid FROM lamost.data", maxrec=10, mode=mode,
                               session=session)
        assert len(t) == 10 and t.meta["overflow"] is True and t.meta["query_status"] == \
            "OVERFLOW"
    whole = vo_query.tap_query(tap, "SELECT obsid FROM lamost.data", maxrec=10 ** 6,
                               session=session)
    assert whole.meta["overflow"] is False and len(whole) == dachs.n_spectra
    first = vo_query.tap_query(tap, "SELECT TOP 1 ra, dec FROM lamost.data ORDER BY obsid",
                               session=session)
    s = vo_query.ssap_search(ssap, (float(first["ra"][0]), float(first["dec"][0])), 5.0,
                             maxrec=5, session=session)
    assert len(s) == 5 and s.meta["overflow"] is True


def test_paging_returns_every_row_once(dachs, services, session):  # noqa: F811
    _, tap = services
    n = min(1000, dachs.n_spectra)
    first = vo_query.tap_query(tap, f"SELECT TOP {n} obsid FROM lamost.data ORDER BY obsid",
                               session=session)
    last = int(first["obsid"][-1])
    paged = vo_query.PagedQuery("lamost.data", "obsid", "obsid, accref", f"obsid <= {last}")
    table = vo_query.tap_query_paged(tap, paged, page_size=97, session=session)
    assert len(table) == n and len(set(table["obsid"])) == n
    assert table.meta["pages"] in (-(-n // 97), -(-n // 97) + 1)
    assert list(table["obsid"]) == sorted(table["obsid"])
    assert set(table["obsid"]) == set(first["obsid"])
    # a filter and a page larger than the result
    paged = vo_query.PagedQuery("lamost.data", "obsid", "obsid",
                                f"snrr > 30 AND obsid <= {last}")
    some = vo_query.tap_query_paged(tap, paged, page_size=10_000, session=session)
    direct = vo_query.tap_query(
        tap, f"SELECT obsid FROM lamost.data WHERE snrr > 30 AND obsid <= {last}",
        mode="sync", maxrec=10 ** 6, session=session)
    assert sorted(some["obsid"]) == sorted(direct["obsid"]) and some.meta["pages"] == 1


def test_harvest_survives_a_killed_server_and_resumes(dachs, services, session,  # noqa: F811
                                                      tmp_path):
    _, tap = services
    n = min(1000, dachs.n_spectra)
    table = vo_query.tap_query(tap, f"SELECT TOP {n} {COLUMNS} FROM lamost.data ORDER BY obsid",
                               session=session)
    assert len(table) == n
    unusable = dachs.unusable(table["accref"])
    assert len(unusable) < n // 10
    pool = PoolStore.create(tmp_path / "pool")
    folder = tmp_path / "harvest"
    job = harvest_table(pool, folder, table, session=session, workers=4, batch=64,
                        retries=1, backoff=0.05, max_consecutive_failures=16)
    killed = False
    try:
        while True:
            p = next(job)
            if not killed and p.done >= n // 2:
                dachs.kill()
                killed = True
    except StopIteration as stop:
        first = stop.value
    assert killed
    assert first.added + len(first.failed) == n and first.added < n
    assert first.failed and first.stopped_early
    assert len(pool) == first.added
    dachs.restart()
    second = run_job(harvest_table(pool, folder, table, session=session, workers=4))
    # only the spectra preprocessing rejects on their own fail, with the reason why
    assert {url for url, _ in second.failed} == unusable
    assert all(why.startswith("not usable: ") for _, why in second.failed)
    assert second.skipped == first.added and second.added == n - first.added - len(unusable)
    assert second.downloaded + second.from_cache == n - first.added
    # exactly the usable spectra, once each, with the query's metadata and source = access URL
    usable = n - len(unusable)
    assert len(pool) == usable
    meta = pool.metadata()
    assert len(set(meta["name"])) == usable
    assert set(meta["source"]) == set(map(str, table["accref"])) - unusable
    row_of = {str(f): i for i, f in enumerate(table["filename"])}
    for k in range(usable):
        i = row_of[meta["name"][k]]
        assert meta["source"][k] == table["accref"][i]
        assert meta["obsid"][k] == str(table["obsid"][i])
        assert meta["designation"][k] == table["designation"][i]
        assert meta["cls"][k] == table["class"][i]
        assert meta["ra"][k] == pytest.approx(float(table["ra"][i]))
    # rows equal direct preprocessing of the downloaded files (and of the server's originals)
    cache = SpectrumCache(folder / CACHE_DIR)
    spectra = [read_spectrum(cache.path_for(u)) for u in meta["source"]]
    np.testing.assert_array_equal(pool.rows(np.arange(usable)),
                                  preprocess_spectra(spectra).rows)
    for k in range(0, usable, 97):
        original = dachs.local_file(meta["source"][k]).read_bytes()
        assert cache.path_for(meta["source"][k]).read_bytes() == original
    assert len(load_job(folder)) == n
    assert not list(folder.rglob(".part-*"))
    # a third run finds nothing to do and downloads nothing
    third = run_job(harvest_table(pool, folder, table, session=session))
    assert third.added == 0 and third.skipped == usable and third.downloaded == 0


def test_harvest_from_ssap_result(dachs, services, session, tmp_path):  # noqa: F811
    ssap, tap = services
    first = vo_query.tap_query(tap, "SELECT TOP 1 ra, dec FROM lamost.data ORDER BY obsid",
                               session=session)
    found = vo_query.ssap_search(ssap, (float(first["ra"][0]), float(first["dec"][0])), 1.0,
                                 session=session)
    pool = PoolStore.create(tmp_path / "pool")
    report = run_job(harvest_table(pool, tmp_path / "h", found, session=session))
    unusable = dachs.unusable(found["accref"])
    assert report.added == len(found) - len(unusable) > 0
    assert {url for url, _ in report.failed} == unusable
    assert set(pool.metadata(columns=["source"])["source"]) == set(found["accref"]) - unusable


def test_typed_error_when_server_is_gone(dachs, services, session):  # noqa: F811
    """Just the error types against the real host, without killing it: a wrong path is a
    VOServiceError with HTTP 404, bad ADQL a VOQueryError."""
    from vo_al.core.base.errors import VOServiceError

    with pytest.raises(VOServiceError) as info:
        vo_query.tap_query(f"{dachs.base_url}/no/such/tap", "SELECT 1", mode="sync",
                           session=session)
    assert info.value.status == 404
    with pytest.raises(VOQueryError):
        vo_query.tap_query(services[1], "SELECT FROM WHERE", mode="sync", session=session)
    assert requests.get(f"{dachs.tap_url}/capabilities", timeout=10).ok
