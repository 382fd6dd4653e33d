"""The project's DaCHS server (resources/dachs/q.rd, scripts/dachs.sh) serves what we promise.

Checked only with independent clients: STILTS (tapquery, cone servicetype=ssa), pyvo, and plain
HTTP (urllib), never with vo-al's own VO code. The `dachs` fixture is in tests/dachs_server.py.
"""

from __future__ import annotations

import csv
import io
import math
import urllib.parse
import urllib.request
from collections import Counter

import pytest

from dachs_server import stilts

pyvo = pytest.importorskip("pyvo")

SPECTRA_COLUMNS = {
    # name: (unit, ucd) promised for lamost.data
    "obsid": ("", "meta.id;meta.main"),
    "designation": ("", "meta.id"),
    "filename": ("", "meta.id;meta.file"),
    "ra": ("deg", "pos.eq.ra;meta.main"),
    "dec": ("deg", "pos.eq.dec;meta.main"),
    "class": ("", "src.class"),
    "subclass": ("", "src.spType"),
    "z": ("", "src.redshift"),
    "snrr": ("", "stat.snr;em.opt.R"),
    "access_url": ("", "meta.ref.url"),
    "accref": ("", "meta.ref.url;meta.dataset"),
    "ssa_location": ("deg", "pos.eq"),
    "ssa_snr": ("", "stat.snr"),
    "ssa_targname": ("", "meta.id;src"),
}


# ---------------------------------------------------------------- independent clients



def stilts_tap(dachs, adql: str) -> list[dict]:
    out = stilts("tapquery", f"tapurl={dachs.tap_url}", f"adql={adql}", "sync=true",
                 "ofmt=csv", "out=-")
    return list(csv.DictReader(io.StringIO(out)))


def http_get(url: str, timeout: float = 30) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        assert response.status == 200, url
        return response.read()


def separation_deg(ra1, dec1, ra2, dec2) -> float:
    r1, d1, r2, d2 = map(math.radians, (ra1, dec1, ra2, dec2))
    h = math.sin((d2 - d1) / 2) ** 2 + math.cos(d1) * math.cos(d2) * math.sin((r2 - r1) / 2) ** 2
    return math.degrees(2 * math.asin(min(1.0, math.sqrt(h))))


@pytest.fixture(scope="module")
def positions(dachs) -> list[dict]:
    """obsid, ra, dec, planid of every spectrum (pyvo TAP; up to 100 000 rows)."""
    service = pyvo.dal.TAPService(dachs.tap_url)
    table = service.run_sync("SELECT obsid, ra, dec, planid FROM lamost.data",
                             maxrec=max(dachs.n_spectra, 1) + 10).to_table()
    return [{"obsid": int(r["obsid"]), "ra": float(r["ra"]), "dec": float(r["dec"]),
             "planid": str(r["planid"])} for r in table]


@pytest.fixture(scope="module")
def field_centre(positions) -> tuple[float, float]:
    """A spectrum's position near the middle of the most populated plate (dense field)."""
    plan, _ = Counter(p["planid"] for p in positions).most_common(1)[0]
    members = [p for p in positions if p["planid"] == plan]
    ra0 = sorted(p["ra"] for p in members)[len(members) // 2]
    dec0 = sorted(p["dec"] for p in members)[len(members) // 2]
    best = min(members, key=lambda p: separation_deg(p["ra"], p["dec"], ra0, dec0))
    return best["ra"], best["dec"]


# ---------------------------------------------------------------- TAP

def test_tap_count_equals_imported(dachs):
    rows = stilts_tap(dachs, "SELECT COUNT(*) AS n FROM lamost.data")
    assert int(rows[0]["n"]) == dachs.n_spectra
    with open(dachs.truth, newline="") as fh:
        assert sum(1 for _ in csv.DictReader(fh)) == dachs.n_spectra
    assert len(list(dachs.data_dir.glob("*.fits"))) == dachs.n_spectra


def test_tap_schema_declares_columns_units_ucds(dachs):
    service = pyvo.dal.TAPService(dachs.tap_url)
    names = {t.name.lower() for t in service.tables}
    assert {"lamost.data", "lamost.simbad_like", "ivoa.obscore"} <= names
    rows = service.run_sync("SELECT column_name, unit, ucd FROM TAP_SCHEMA.columns "
                            "WHERE table_name = 'lamost.data'").to_table()
    declared = {str(r["column_name"]).lower(): (str(r["unit"] or ""), str(r["ucd"] or ""))
                for r in rows}
    for name, (unit, ucd) in SPECTRA_COLUMNS.items():
        assert name in declared, f"lamost.data lacks {name}: {sorted(declared)}"
        assert declared[name] == (unit, ucd), name


def test_tap_result_fields_carry_units_ucds(dachs):
    out = stilts("tapquery", f"tapurl={dachs.tap_url}",
                 "adql=SELECT TOP 3 obsid, designation, ra, dec, snrr FROM lamost.data",
                 "sync=true", "ofmt=votable", "out=-")
    from astropy.io.votable import parse_single_table

    fields = {f.name: f for f in parse_single_table(io.BytesIO(out.encode())).fields}
    assert str(fields["ra"].unit) == "deg" and fields["ra"].ucd == "pos.eq.ra;meta.main"
    assert str(fields["dec"].unit) == "deg" and fields["dec"].ucd == "pos.eq.dec;meta.main"
    assert fields["obsid"].datatype == "long"
    assert fields["snrr"].ucd == "stat.snr;em.opt.R"


def test_tap_rows_match_the_fits_headers(dachs):
    from astropy.io import fits

    rows = stilts_tap(dachs, "SELECT TOP 20 obsid, designation, filename, ra, dec, class, "
                             "subclass, z, snrr, access_url FROM lamost.data ORDER BY obsid")
    assert len(rows) == min(20, dachs.n_spectra)
    for row in rows:
        header = fits.getheader(dachs.data_dir / row["filename"])
        assert int(row["obsid"]) == header["OBSID"]
        assert row["designation"] == header["DESIG"]
        assert float(row["ra"]) == pytest.approx(header["RA"], abs=1e-9)
        assert float(row["dec"]) == pytest.approx(header["DEC"], abs=1e-9)
        assert (row["class"], row["subclass"]) == (header["CLASS"], header["SUBCLASS"])
        assert float(row["z"]) == pytest.approx(header["Z"], abs=1e-12)
        assert float(row["snrr"]) == pytest.approx(header["SNRR"], rel=1e-6)
        assert row["access_url"] == f"{dachs.base_url}/getproduct/lamost/data/{row['filename']}"


def test_adql_cone_on_plain_ra_dec_matches_ssa_location(dachs, field_centre):
    ra0, dec0 = field_centre
    plain = stilts_tap(dachs, "SELECT obsid FROM lamost.data WHERE 1 = CONTAINS("
                              f"POINT('ICRS', ra, dec), CIRCLE('ICRS', {ra0}, {dec0}, 0.2))")
    spoint = stilts_tap(dachs, "SELECT obsid FROM lamost.data WHERE 1 = CONTAINS("
                               f"ssa_location, CIRCLE('ICRS', {ra0}, {dec0}, 0.2))")
    assert {r["obsid"] for r in plain} == {r["obsid"] for r in spoint}
    assert plain


def test_obscore_publishes_every_spectrum(dachs):
    rows = stilts_tap(dachs, "SELECT COUNT(*) AS n, MIN(access_format) AS fmt, "
                             "MAX(s_ra) AS max_ra FROM ivoa.obscore "
                             "WHERE obs_collection = 'VO-AL-SYNTH-LAMOST'")
    assert int(rows[0]["n"]) == dachs.n_spectra
    assert rows[0]["fmt"] == "application/fits"
    assert 0 <= float(rows[0]["max_ra"]) < 360
    previews = stilts_tap(dachs, "SELECT COUNT(*) AS n FROM ivoa.obscore "
                                 "WHERE obs_collection = 'VO-AL-SYNTH-LAMOST' "
                                 "AND preview IS NOT NULL")
    assert int(previews[0]["n"]) == 0             # no preview links that would 404


# ---------------------------------------------------------------- SSAP

def _tap_cone(positions, ra0, dec0, radius):
    return {p["obsid"] for p in positions
            if separation_deg(p["ra"], p["dec"], ra0, dec0) <= radius}


def _near_edge(positions, ra0, dec0, radius, tol=0.5 / 3600):
    return {p["obsid"] for p in positions
            if abs(separation_deg(p["ra"], p["dec"], ra0, dec0) - radius) < tol}


def test_ssap_raw_size_is_a_radius_in_dachs(dachs, positions, field_centre):
    """DaCHS 2.7 treats SIZE as a radius (VO-STACK pitfall 7): plain HTTP, SIZE=r."""
    ra0, dec0 = field_centre
    distances = sorted(separation_deg(p["ra"], p["dec"], ra0, dec0) for p in positions)
    radius = max(0.25, distances[min(4, len(distances) - 1)] + 0.001)   # a few spectra inside
    url = dachs.ssap_url + "?" + urllib.parse.urlencode(
        {"REQUEST": "queryData", "POS": f"{ra0},{dec0}", "SIZE": radius, "FORMAT": "ALL"})
    from astropy.io.votable import parse_single_table

    table = parse_single_table(io.BytesIO(http_get(url))).to_table()
    got = {int(obsid) for obsid in table["obsid"]}
    expected = _tap_cone(positions, ra0, dec0, radius)
    edge = _near_edge(positions, ra0, dec0, radius)
    assert got - edge == expected - edge
    assert len(expected) >= 2


def test_stilts_ssa_cone_returns_spectra_within_radius(dachs, positions, field_centre):
    """STILTS sends SIZE = 2 x radius (a diameter), DaCHS reads it as a radius: the answer
    holds everything within `radius` and nothing beyond 2 x radius."""
    ra0, dec0 = field_centre
    radius = 0.15
    out = stilts("cone", "servicetype=ssa", f"serviceurl={dachs.ssap_url}", f"lon={ra0}",
                 f"lat={dec0}", f"radius={radius}", "ofmt=csv", "out=-")
    rows = list(csv.DictReader(io.StringIO(out)))
    got = {int(r["obsid"]) for r in rows}
    inner = _tap_cone(positions, ra0, dec0, radius) - _near_edge(positions, ra0, dec0, radius)
    outer = _tap_cone(positions, ra0, dec0, 2 * radius + 1 / 3600)
    assert inner <= got <= outer
    assert inner
    for r in rows:
        assert r["accref"].startswith(f"{dachs.base_url}/getproduct/")


def test_pyvo_ssa_search_and_download(dachs, field_centre):
    ra0, dec0 = field_centre
    service = pyvo.dal.SSAService(dachs.ssap_url)
    result = service.search(pos=(ra0, dec0), diameter=0.2, format="fits")
    assert len(result) >= 1
    record = result[0]
    url = record.getdataurl()
    assert url.startswith(f"{dachs.base_url}/getproduct/lamost/data/")
    assert record.getdataformat() == "application/fits"
    assert http_get(url) == dachs.local_file(url).read_bytes()


# ---------------------------------------------------------------- downloads and DataLink

def test_accref_downloads_the_original_fits_byte_identical(dachs):
    rows = stilts_tap(dachs, "SELECT TOP 5 accref, filename FROM lamost.data ORDER BY obsid")
    for row in rows:
        data = http_get(row["accref"])
        assert data == (dachs.data_dir / row["filename"]).read_bytes(), row["filename"]


def test_download_reads_with_read_spectrum_and_matches_tap(dachs, tmp_path):
    from vo_al.core.spectra.readers import read_spectrum

    rows = stilts_tap(dachs, "SELECT TOP 3 obsid, designation, ra, dec, subclass, accref "
                             "FROM lamost.data ORDER BY snrr DESC")
    for row in rows:
        path = tmp_path / f"{row['obsid']}.fits"
        path.write_bytes(http_get(row["accref"]))
        spectrum = read_spectrum(path)
        assert spectrum.instrument == "lamost"
        assert spectrum.meta.designation == row["designation"]
        assert spectrum.meta.obsid == row["obsid"]
        assert spectrum.meta.ra == pytest.approx(float(row["ra"]), abs=1e-9)
        assert spectrum.meta.dec == pytest.approx(float(row["dec"]), abs=1e-9)
        assert spectrum.meta.subclass == row["subclass"]
        assert 3650 < spectrum.wavelength[0] < 3750 and 9000 < spectrum.wavelength[-1] < 9200


def test_datalink_lists_the_fits_and_no_missing_preview(dachs):
    rows = stilts_tap(dachs, "SELECT TOP 1 ssa_pubDID, accref FROM lamost.data")
    url = dachs.datalink_url + "?" + urllib.parse.urlencode({"ID": rows[0]["ssa_pubDID"]})
    links = pyvo.dal.adhoc.DatalinkResults.from_result_url(url)
    semantics = {link["semantics"]: link for link in links}
    assert "#this" in semantics and "#preview" not in semantics
    assert semantics["#this"]["access_url"] == rows[0]["accref"]
    assert semantics["#this"]["content_type"] == "application/fits"


# ---------------------------------------------------------------- SIMBAD-like table

def test_simbad_like_table(dachs):
    with open(dachs.simbad_like_csv, newline="") as fh:
        shipped = list(csv.DictReader(fh))
    rows = stilts_tap(dachs, "SELECT COUNT(*) AS n FROM lamost.simbad_like")
    assert int(rows[0]["n"]) == len(shipped) > 100
    if (dachs.n_spectra, dachs.seed) != (1000, 1):
        pytest.skip("simbad_like.csv matches the default import (1000 spectra, seed 1) only")
    matches = stilts_tap(
        dachs, "SELECT d.obsid, d.filename, s.otype FROM lamost.data AS d "
               "JOIN lamost.simbad_like AS s ON 1 = CONTAINS(POINT('ICRS', s.ra, s.dec), "
               "CIRCLE('ICRS', d.ra, d.dec, 2.0/3600))")
    with open(dachs.truth, newline="") as fh:
        targets = {r["name"] for r in csv.DictReader(fh) if int(r["label"]) > 0}
    emission = {m["filename"] for m in matches if m["otype"] in ("Em*", "Be*")}
    assert emission == targets
    assert len(matches) > 100


# ---------------------------------------------------------------- crash and recovery

@pytest.mark.timeout(180)
def test_kill_and_restart(dachs):
    assert dachs.answers()
    dachs.kill()
    assert not dachs.answers(timeout=2)
    try:
        seconds = dachs.restart()
    finally:
        if not dachs.answers():
            dachs.restart()
    assert seconds < 60
    rows = stilts_tap(dachs, "SELECT COUNT(*) AS n FROM lamost.data")
    assert int(rows[0]["n"]) == dachs.n_spectra
    query = urllib.parse.urlencode({"REQUEST": "queryData", "MAXREC": 1})
    assert b"<TR>" in http_get(f"{dachs.ssap_url}?{query}")
