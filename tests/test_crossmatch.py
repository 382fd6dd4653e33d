"""Cross-matching (issue 4): local and TAP routes, radius limits and scan, H16, groups, tables."""

from __future__ import annotations

import math
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from vo_al.core import xmatch as xm
from vo_al.core.base.errors import ParameterError

REPO = Path(__file__).resolve().parents[1]
SIMBAD_LIKE = REPO / "resources" / "dachs" / "simbad_like.csv"
H16_SYNTHETIC = REPO / "resources" / "catalogues" / "h16_synthetic.csv"


def haversine_arcsec(ra1, dec1, ra2, dec2) -> float:
    """Independent of astropy: the haversine formula."""
    p1, p2 = math.radians(dec1), math.radians(dec2)
    dl = math.radians(ra2 - ra1)
    h = math.sin((p2 - p1) / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return math.degrees(2 * math.asin(math.sqrt(h))) * 3600


def write_csv(path: Path, rows, header="main_id,ra,dec,otype") -> Path:
    path.write_text(header + "\n" + "\n".join(",".join(map(str, r)) for r in rows) + "\n")
    return path


# ------------------------------------------------------------------ local route

@pytest.fixture
def small_catalogue(tmp_path):
    # candidates: A (10, 0), B (150, 60), C (200, -30) with nothing near
    rows = [
        ("objA1", 10.0, 0.0 + 10 / 3600, "Star"),           # 10" north of A
        ("objA2", 10.0 + 7 / 3600, 0.0, "Em*"),              # 7" east of A (dec 0)
        ("objA3", 10.0, 0.0 - 40 / 3600, "G"),               # 40" south of A
        ("objB1", 150.0 + 12 / 3600 / math.cos(math.radians(60)), 60.0, "Be*"),
    ]
    return write_csv(tmp_path / "cat.csv", rows), rows


def test_local_match_against_hand_computed_separations(small_catalogue):
    path, rows = small_catalogue
    cat = xm.LocalCatalogue.from_file(path)
    ra, dec = [10.0, 150.0, 200.0], [0.0, 60.0, -30.0]
    m = xm.crossmatch(cat, ra, dec, 20)
    assert list(m.match_id) == ["objA2", "objB1", ""]
    assert list(m.otype) == ["Em*", "Be*", ""]
    assert list(m.n_match) == [2, 1, 0]
    assert m.sep[0] == pytest.approx(7.0, abs=1e-6)
    # along a parallel at dec 60 the great-circle distance is a little under 12"
    expected = haversine_arcsec(150.0, 60.0, rows[3][1], rows[3][2])
    assert m.sep[1] == pytest.approx(expected, abs=1e-6) and expected < 12
    assert math.isnan(m.sep[2])
    # at 45" the 40" object counts too; the nearest is unchanged
    m45 = xm.crossmatch(cat, ra, dec, 45)
    assert list(m45.n_match) == [3, 1, 0] and m45.match_id[0] == "objA2"


@pytest.mark.parametrize("fmt", ["votable", "fits", "ecsv"])
def test_local_catalogue_reads_votable_fits_ecsv(small_catalogue, tmp_path, fmt):
    from astropy.table import Table

    path, _ = small_catalogue
    t = Table.read(path, format="ascii.csv")
    t.rename_column("ra", "RAJ2000")                 # guessed column names
    t.rename_column("dec", "DEJ2000")
    out = tmp_path / f"cat.{ {'votable': 'vot'}.get(fmt, fmt) }"
    t.write(out, format=fmt)
    m = xm.crossmatch(xm.LocalCatalogue.from_file(out), [10.0], [0.0], 20)
    assert m.match_id[0] == "objA2" and m.n_match[0] == 2


@pytest.mark.parametrize("bad", [4.99, 0, -5, 300.01, 3600, float("nan"), "x"])
def test_radius_out_of_range_is_a_parameter_error_naming_it(small_catalogue, bad):
    cat = xm.LocalCatalogue.from_file(small_catalogue[0])
    with pytest.raises(ParameterError) as exc:
        xm.crossmatch(cat, [10.0], [0.0], bad)
    assert repr(bad) in str(exc.value) and "5" in str(exc.value) and "300" in str(exc.value)


def test_radius_limits_are_inclusive(small_catalogue):
    cat = xm.LocalCatalogue.from_file(small_catalogue[0])
    assert xm.crossmatch(cat, [10.0], [0.0], 5).n_match[0] == 0
    assert xm.crossmatch(cat, [10.0], [0.0], 300).n_match[0] == 3


def test_radius_scan_is_monotonic_and_plotted(tmp_path):
    cat = xm.LocalCatalogue.from_file(SIMBAD_LIKE)
    rng = np.random.default_rng(0)
    ra = cat.ra[:100] + rng.uniform(-0.02, 0.02, 100)
    dec = cat.dec[:100] + rng.uniform(-0.02, 0.02, 100)
    scan = xm.radius_scan(cat, ra, dec)
    assert list(scan["radius"]) == list(map(float, xm.SCAN_RADII))
    for col in ("n_matched", "n_pairs", "n_multiple"):
        assert np.all(np.diff(scan[col]) >= 0), col
    assert scan["n_pairs"][-1] > scan["n_pairs"][0]
    assert scan["new_matched"].sum() == scan["n_matched"][-1]
    png = xm.plot_radius_scan(scan, tmp_path / "scan.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ParameterError, match="radii"):
        xm.radius_scan(cat, ra, dec, [5, 400])


# ------------------------------------------------------------------ the zone route (issue 13)

def brute_force(ra, dec, cat_ra, cat_dec, radius):
    """Every separation computed (no index): per candidate the nearest row (ties: the first
    row), its separation, and the count within `radius`."""
    from vo_al.core.base.sky import separation_arcsec

    n = len(ra)
    best, sep, count = np.full(n, -1), np.full(n, np.nan), np.zeros(n, int)
    for start in range(0, n, 200):
        block = slice(start, start + 200)
        d = separation_arcsec(np.asarray(ra)[block, None], np.asarray(dec)[block, None],
                              cat_ra[None, :], cat_dec[None, :])
        within = d <= radius
        count[block] = within.sum(axis=1)
        d = np.where(within, d, np.inf)
        arg = np.argmin(d, axis=1)                         # first row among equal minima
        hit = np.isfinite(d[np.arange(d.shape[0]), arg])
        best[block] = np.where(hit, arg, -1)
        sep[block] = np.where(hit, d[np.arange(d.shape[0]), arg], np.nan)
    return best, sep, count


def search_around_sky_counts(ra, dec, cat_ra, cat_dec, radius):
    """The previous local route: astropy's search_around_sky, counted per candidate."""
    from astropy import units as u

    i, _, _, _ = xm.sky_coords(cat_ra, cat_dec).search_around_sky(
        xm.sky_coords(ra, dec), radius * u.arcsec)
    return np.bincount(i, minlength=len(ra))


class PairsOnly:
    """A catalogue that answers only `pairs` (as a TAP catalogue or the app's fetched one
    does): crossmatch and radius_scan then compute everything from the pairs."""

    def __init__(self, catalogue):
        self.catalogue, self.name = catalogue, catalogue.name

    def pairs(self, ra, dec, radius):
        return self.catalogue.pairs(ra, dec, radius)


def _fields():
    """(name, catalogue RA, Dec, candidate RA, Dec): random, clustered (fibre offsets and exact
    duplicates), around both poles, and across RA 0/360 (RA written as 359.9, -0.1 and 360)."""
    rng = np.random.default_rng(13)
    d = 1 / 3600

    def patch(n, ra0, dec0, size):
        dec = dec0 + rng.uniform(-size, size, n)
        return ra0 + rng.uniform(-size, size, n) / np.cos(np.radians(dec)), dec

    def offsets(ra, dec, n, max_arcsec):
        pick = rng.integers(0, ra.size, n)
        r, a = rng.uniform(0, max_arcsec, n) * d, rng.uniform(0, 2 * np.pi, n)
        return (ra[pick] + r * np.cos(a) / np.cos(np.radians(dec[pick])),
                dec[pick] + r * np.sin(a))

    fields = []
    cra, cdec = patch(4000, 150.0, 20.0, 0.25)                 # ~16 000 per square degree
    fields.append(("random", cra, cdec, *patch(600, 150.0, 20.0, 0.27)))
    # fibre-offset-like: groups of 1-4 exposures within 3" of a star, some at the same place
    centre_ra, centre_dec = patch(1500, 210.0, -35.0, 0.2)
    g_ra, g_dec = offsets(centre_ra, centre_dec, 3000, 3.0)
    cra = np.r_[centre_ra, g_ra, centre_ra[:300]]                # 300 exact duplicates
    cdec = np.r_[centre_dec, g_dec, centre_dec[:300]]
    fields.append(("clustered", cra, cdec, *offsets(centre_ra, centre_dec, 700, 4.0)))
    for pole in (90.0, -90.0):
        s = np.sign(pole)
        cra = np.r_[rng.uniform(0, 360, 3000), 0.0, 123.0]      # two objects on the pole
        cdec = np.r_[pole - s * rng.uniform(0, 0.3, 3000), pole, pole]
        qra = np.r_[rng.uniform(-180, 540, 500), 0.0, 45.0]
        qdec = np.r_[pole - s * rng.uniform(0, 0.32, 500), pole, pole - s * 10 * d]
        fields.append((f"pole {pole:+.0f}", cra, cdec, qra, qdec))
    cra, cdec = patch(4000, 0.0, 5.0, 0.25)
    qra, qdec = patch(600, 0.0, 5.0, 0.26)
    cra = np.where(cra < 0, cra + 360.0, cra)                  # the catalogue: 359.9...
    qra = np.r_[qra, 360.0, 0.0, -1e-9]                        # candidates: -0.1, 360, 0
    qdec = np.r_[qdec, 5.0, 5.0, 5.0]
    fields.append(("RA 0/360", cra, cdec, qra, qdec))
    return fields


FIELDS = _fields()


@pytest.mark.parametrize("radius", [5, 20, 300])
@pytest.mark.parametrize("field", FIELDS, ids=[f[0] for f in FIELDS])
def test_zone_route_equals_brute_force_and_search_around_sky(field, radius):
    _, cra, cdec, ra, dec = field
    cat = xm.LocalCatalogue(cra, cdec, name="field")
    best, sep, count = brute_force(ra, dec, cat.ra, cat.dec, radius)
    m = xm.crossmatch(cat, ra, dec, radius)
    np.testing.assert_array_equal(m.n_match, count)
    np.testing.assert_array_equal(m.match_id, np.where(best >= 0, best.astype(str), ""))
    np.testing.assert_allclose(m.sep, sep, rtol=0, atol=1e-6, equal_nan=True)
    np.testing.assert_array_equal(m.n_match, search_around_sky_counts(ra, dec, cra, cdec, radius))
    if radius == 20:
        assert m.matched.sum() > 50 and (m.n_match > 1).sum() > 5      # a real test of both
    # the pairs themselves: one per (candidate, object) within the radius, sorted
    p = cat.pairs(ra, dec, radius)
    np.testing.assert_array_equal(np.bincount(p.cand, minlength=len(ra)), count)
    assert np.all(np.diff(p.cand) >= 0) and np.all(p.sep <= radius)
    assert len(set(zip(p.cand.tolist(), p.obj_id.tolist()))) == p.cand.size


@pytest.mark.parametrize("field", FIELDS, ids=[f[0] for f in FIELDS])
def test_zone_route_equals_the_route_from_pairs_in_small_chunks(field):
    _, cra, cdec, ra, dec = field
    cat = xm.LocalCatalogue(cra, cdec, otypes=np.where(np.arange(cra.size) % 3, "Star", "QSO"),
                            extra={"mag": np.arange(cra.size) * 0.5}, name="field")
    from_pairs = xm.crossmatch(PairsOnly(cat), ra, dec, 30)
    scan_from_pairs = xm.radius_scan(PairsOnly(cat), ra, dec)
    from vo_al.core.xmatch.zones import MAX_TRIED

    for max_tried in (MAX_TRIED, 97):      # one chunk, and many (split intervals too)
        cat.max_tried = max_tried
        m = xm.crossmatch(cat, ra, dec, 30)
        for column, values in from_pairs.columns("m").items():
            np.testing.assert_array_equal(m.columns("m")[column], values, err_msg=column)
        scan = xm.radius_scan(cat, ra, dec)
        for column in scan.colnames:
            np.testing.assert_array_equal(scan[column], scan_from_pairs[column])
    assert m.extra["mag"].dtype.kind == "f" and m.otype.dtype.kind == "U"


def test_ties_go_to_the_first_catalogue_row_in_any_chunking():
    # rows 0 and 1 lie 10" north and south of the candidate (equal separations to the bit);
    # row 1 is in the lower zone, so it is met first
    d = 1 / 3600
    cat = xm.LocalCatalogue([10.0, 10.0, 10.0], [10 * d, -10 * d, 15 * d], ["N", "S", "far"])
    for max_tried in (1, 2, 1000):
        cat.max_tried = max_tried
        m = xm.crossmatch(cat, [10.0], [0.0], 20)
        assert m.match_id.tolist() == ["N"] and m.n_match.tolist() == [3]
        assert cat.pairs([10.0], [0.0], 20).obj_id.tolist() == ["N", "S", "far"]


def test_counts_within_radii_in_any_order():
    d = 1 / 3600
    cat = xm.LocalCatalogue([10.0, 10.0, 10.0], [10 * d, 19.5 * d, 45 * d], name="line")
    counts = cat.counts_within([10.0, 10.0], [0.0, 1.0], [45, 5, 20, 10])
    np.testing.assert_array_equal(counts[:, 0], [3, 0, 2, 1])
    np.testing.assert_array_equal(counts[:, 1], [0, 0, 0, 0])
    with pytest.raises(ParameterError, match="radii"):
        cat.counts_within([10.0], [0.0], [])
    with pytest.raises(ParameterError, match="radii"):
        cat.counts_within([10.0], [0.0], [20, 400])


def test_zone_indexes_are_kept_per_radius_and_bounded():
    cat = xm.LocalCatalogue(*FIELDS[0][1:3], name="random")
    ra, dec = FIELDS[0][3:]
    xm.crossmatch(cat, ra, dec, 20)
    index = cat.zone_index(20.0)
    xm.crossmatch(cat, ra, dec, 20)
    assert cat.zone_index(20.0) is index                   # built once, then reused
    for radius in (30, 60, 90):
        xm.crossmatch(cat, ra, dec, radius)
    assert len(cat._zones) <= cat.MAX_ZONE_INDEXES


def test_empty_catalogue_or_candidates():
    cat = xm.LocalCatalogue([10.0], [0.0])
    m = xm.crossmatch(cat, [], [], 20)
    assert len(m) == 0
    far = xm.crossmatch(cat, [200.0], [0.0], 20)
    assert far.n_match.tolist() == [0] and far.match_id.tolist() == [""]
    assert xm.radius_scan(cat, [200.0], [0.0])["n_matched"].max() == 0


# ------------------------------------------------------------------ multiple exposures

def test_group_by_designation():
    g = xm.group_by_designation(["J1", "J2", "J1", "", "J3", "J2", " "])
    assert list(g) == [1, 2, 1, 3, 4, 2, 5]             # blanks are groups of their own
    assert list(xm.group_sizes(g)) == [2, 2, 2, 1, 1, 2, 1]
    s = xm.group_summary(g)
    assert s["n_groups"] == 5 and s["n_multiple"] == 2 and s["histogram"] == {1: 3, 2: 2}


def test_group_by_position_is_friends_of_friends():
    d = 1 / 3600
    ra = [10.0, 10 + 4 * d, 10 + 8 * d,          # a chain: 4" steps, ends 8" apart: one group
          50.0, 50.0,                            # two exposures at one position
          80.0, 80 + 6 * d,                      # 6" apart: two groups at 5"
          359.9995, 0.0005]                      # across RA 0: 3.6" apart
    dec = [0.0] * 9
    g = xm.group_by_position(ra, dec, 5)
    assert list(g) == [1, 1, 1, 2, 2, 3, 4, 5, 5]
    assert list(xm.group_by_position(ra, dec, 6.5))[5:7] == [3, 3]
    with pytest.raises(ParameterError):
        xm.group_by_position(ra, dec, 1)


def test_designation_and_position_groups_differ():
    # the paper: designations are not unique identifiers (398 vs 436 groups)
    d = 1 / 3600
    designation = ["JA", "JA", "JA", "JB"]
    ra, dec = [10.0, 10.0 + 2 * d, 10.5, 10.5 + 1 * d], [0.0] * 4
    assert xm.group_summary(xm.group_by_designation(designation))["n_groups"] == 2
    assert list(xm.group_by_position(ra, dec)) == [1, 1, 2, 2]


# ------------------------------------------------------------------ H16

def test_h16_loader_on_the_real_first_rows(real_data):
    path = real_data / "h16-first-rows.csv"
    if not path.is_file():
        pytest.skip(f"{path} not present")
    t = xm.load_h16(path)
    assert t.colnames == list(xm.H16_COLUMNS)
    assert len(t) == 10
    assert t["designation"][0] == "J064057.10+095356.1"
    assert t["ra"][0] == pytest.approx(100.23792) and t["ra"].unit == "deg"
    assert t["w1"].mask[0] and not t["w1"].mask[5] and t["w1"][5] == pytest.approx(12.182)
    assert t["objtype_SIMBAD"].mask[0] and t["objtype_SIMBAD"][6] == "Star in Cluster"
    assert t["w1"].unit == "mag" and t["w1"].meta["ucd"].startswith("phot.mag")
    cat = xm.h16_catalogue(t)
    m = xm.crossmatch(cat, [100.23792 + 3 / 3600], [9.8989399], 5)
    assert m.match_id[0] == "J064057.10+095356.1" and m.otype[0] == "HII-region"
    assert m.extra["Halpha_type"][0] == "II"


def test_shipped_synthetic_h16_is_reproducible_and_matches_targets(tmp_path):
    import sys

    out = tmp_path / "h16.csv"
    subprocess.run([sys.executable, str(H16_SYNTHETIC.parent / "make_h16_synthetic.py"),
                    "--out", str(out)], check=True, capture_output=True, cwd=REPO)
    assert out.read_bytes() == H16_SYNTHETIC.read_bytes()
    t = xm.load_h16(H16_SYNTHETIC)
    assert t.colnames == list(xm.H16_COLUMNS)
    assert t["w1"].mask.any() and not t["w1"].mask.all()
    # its near-target rows are the SIMBAD-like Em*/Be* counterparts' neighbours (< 5" + 1.5")
    simbad = xm.LocalCatalogue.from_file(SIMBAD_LIKE)
    m = xm.crossmatch(simbad, t["ra"], t["dec"], 10)
    near = m.matched & np.isin(m.otype, ["Em*", "Be*"])
    assert near.sum() >= 3 and np.all(m.sep[near] < 6.5)


# ------------------------------------------------------------------ links and tables

def test_simbad_links():
    url = xm.simbad_coo_url(100.23792, -9.8989399, 20)
    assert url == ("http://simbad.cds.unistra.fr/simbad/sim-coo?Coord=100.237920+-9.898940"
                   "&Radius=20&Radius.unit=arcsec")
    assert "%2B9.898940" in xm.simbad_coo_url(100.23792, 9.8989399, 5)
    assert xm.simbad_id_url("V* BD+10 123") == \
        "http://simbad.cds.unistra.fr/simbad/sim-id?Ident=V%2A+BD%2B10+123"


def _columns(ra, dec, designation, start=0):
    n = len(ra)
    return {"pool_index": np.arange(start, start + n), "name": [f"s{i}.fits" for i in range(n)],
            "designation": designation, "ra": np.asarray(ra, float),
            "dec": np.asarray(dec, float), "class": ["single peak"] * n,
            "origin": ["predicted"] * n, "p_non_target": np.full(n, 0.1),
            "p_single": np.full(n, 0.8), "p_double": np.full(n, 0.1), "snr": np.full(n, 30.0),
            "source": [f"http://127.0.0.1/spec/{start + i}.fits" for i in range(n)]}


def test_the_four_tables(small_catalogue, tmp_path):
    simbad = xm.LocalCatalogue.from_file(small_catalogue[0], name="simbad-test")
    h16 = xm.h16_catalogue(xm.load_h16(write_csv(
        tmp_path / "h16.csv", [("J0002", 150.0, 60.0 + 2 / 3600, "-", "-", "-", "-", "-", "-",
                                "I", "Be*", "-")], ",".join(xm.H16_COLUMNS))))
    cand = _columns([10.0, 150.0, 200.0, 200.0 + 1 / 3600], [0.0, 60.0, -30.0, -30.0],
                    ["JA", "JB", "JC", "JC"])
    rejected = _columns([10.0], [0.0 + 9 / 3600], ["JR"], start=100)
    r = xm.crossmatch_candidates(cand, simbad, h16, rejected=rejected,
                                 params={"iteration": 4, "model": "iter-004.keras"})
    tables = r.tables()
    assert list(tables["known_h16"]["designation"]) == ["JB"]        # H16 wins over SIMBAD
    assert list(tables["new_in_simbad"]["designation"]) == ["JA"]
    assert list(tables["new_unknown"]["designation"]) == ["JC", "JC"]
    assert list(tables["rejected"]["designation"]) == ["JR"]
    assert tables["rejected"]["simbad_id"][0] == "objA1"            # matched too
    assert list(r.table["group_designation"]) == [1, 2, 3, 3, 0]
    assert list(r.table["group_position_size"]) == [1, 1, 2, 2, 0]
    assert all(u.startswith(xm.SIMBAD_COO_URL) for u in r.table["simbad_url"])
    assert r.table["simbad_id_url"][2] == ""
    assert r.table["source"][0] == "http://127.0.0.1/spec/0.fits"
    assert r.params["simbad_radius_arcsec"] == 20 and r.params["h16_radius_arcsec"] == 5
    assert r.params["iteration"] == 4 and r.groups["designation"]["n_groups"] == 3
    paths = xm.write_tables(r, tmp_path / "out")
    assert len(paths) == 15
    from astropy.io.votable import parse_single_table

    vt = parse_single_table(str(tmp_path / "out" / "known_h16.vot"))
    params = {p.name: p.value for p in vt.params}
    assert params["table"] == "known_h16" and params["h16_radius_arcsec"] == 5.0
    assert vt.get_field_by_id("simbad_sep").unit == "arcsec"
    assert vt.get_field_by_id("h16_sep").ucd == "pos.angDistance"
    assert _stilts_count(tmp_path / "out" / "crossmatch.vot") in (None, 5)


def _stilts_count(path):
    if shutil.which("stilts") is None:
        return None
    out = subprocess.run(["stilts", "tpipe", f"in={path}", "ifmt=votable", "omode=count"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return int(out.stdout.split("rows:")[1].split()[0])


# ------------------------------------------------------------------ TAP route (local DaCHS)

def _pool_positions(dachs):
    from vo_al.core.vo.query import tap_query

    t = tap_query(dachs.tap_url, "SELECT TOP 5000 obsid, designation, ra, dec FROM lamost.data "
                                 "ORDER BY obsid", mode="sync")
    return np.asarray(t["ra"], float), np.asarray(t["dec"], float)


def test_tap_upload_route_equals_local_file_route(dachs):
    ra, dec = _pool_positions(dachs)
    tap = xm.TapCatalogue(dachs.tap_url, xm.SIMBAD_LIKE_COLUMNS, batch_size=400)
    assert tap.supports_upload()                    # DaCHS 2.7 announces TAP_UPLOAD
    local = xm.LocalCatalogue.from_file(dachs.simbad_like_csv)
    for radius in (20, 300):                        # 300" works over TAP
        mt = xm.crossmatch(tap, ra, dec, radius)
        ml = xm.crossmatch(local, ra, dec, radius)
        assert tap.route == "upload"
        assert mt.matched.sum() > 0
        np.testing.assert_array_equal(mt.match_id, ml.match_id)
        np.testing.assert_array_equal(mt.otype, ml.otype)
        np.testing.assert_array_equal(mt.n_match, ml.n_match)
        np.testing.assert_allclose(mt.sep, ml.sep, atol=1e-6, equal_nan=True)
    assert mt.n_match.max() >= 2                    # 300" takes in the decoys


def test_tap_or_circles_fallback_equals_local(dachs):
    ra, dec = _pool_positions(dachs)
    sel = slice(0, 120)
    tap = xm.TapCatalogue(dachs.tap_url, xm.SIMBAD_LIKE_COLUMNS, upload=False, or_batch_size=40)
    local = xm.LocalCatalogue.from_file(dachs.simbad_like_csv)
    mt = xm.crossmatch(tap, ra[sel], dec[sel], 300)
    ml = xm.crossmatch(local, ra[sel], dec[sel], 300)
    assert tap.route == "or-circles"
    np.testing.assert_array_equal(mt.match_id, ml.match_id)
    np.testing.assert_array_equal(mt.n_match, ml.n_match)


def test_tap_overflow_splits_batches(dachs):
    ra, dec = _pool_positions(dachs)
    tap = xm.TapCatalogue(dachs.tap_url, xm.SIMBAD_LIKE_COLUMNS, maxrec=20)
    local = xm.LocalCatalogue.from_file(dachs.simbad_like_csv)
    mt = xm.crossmatch(tap, ra[:200], dec[:200], 20)
    np.testing.assert_array_equal(mt.n_match, xm.crossmatch(local, ra[:200], dec[:200], 20).n_match)


def test_tap_errors_are_typed(dachs):
    from vo_al.core.base.errors import VOError

    bad = xm.TapCatalogue(dachs.tap_url, xm.CatalogueColumns("lamost.no_such_table"))
    with pytest.raises(VOError) as exc:
        xm.crossmatch(bad, [110.0], [40.0], 20)
    assert "no_such_table" in str(exc.value)


@pytest.mark.skipif(os.environ.get("VO_AL_REMOTE") != "1",
                    reason="contacts the real SIMBAD TAP: set VO_AL_REMOTE=1")
def test_real_simbad_tap():
    tap = xm.TapCatalogue()                          # http://simbad.cds.unistra.fr/simbad/sim-tap
    m = xm.crossmatch(tap, [83.8221, 10.6846], [-5.3911, 41.2692], 20)   # M42 region, M31
    assert tap.route == "upload" and m.matched.all()


# ------------------------------------------------------------------ the SIMBAD route

def test_simbad_route_builds_each_catalogue(monkeypatch):
    monkeypatch.setenv("VO_AL_DACHS_PORT", "8123")
    simbad = xm.simbad_catalogue(xm.SimbadRoute())
    assert (simbad.name, simbad.service.url, simbad.columns) == \
        ("SIMBAD", xm.SIMBAD_TAP_URL, xm.SIMBAD_COLUMNS)
    local = xm.simbad_catalogue(xm.SimbadRoute("local"))
    assert (local.name, local.service.url, local.columns) == \
        ("local simbad_like", "http://127.0.0.1:8123/tap", xm.SIMBAD_LIKE_COLUMNS)
    other = xm.simbad_catalogue(xm.SimbadRoute("url", url="https://example.org/tap",
                                               table="cat", id_column="oid"))
    assert other.columns == xm.CatalogueColumns("cat", "oid")
    assert other.name == "https://example.org/tap cat"
    assert xm.simbad_catalogue(xm.SimbadRoute("local", table="my.table")).columns.table == \
        "my.table"
    from_file = xm.simbad_catalogue(xm.SimbadRoute("file", file=str(SIMBAD_LIKE)))
    assert isinstance(from_file, xm.LocalCatalogue) and from_file.name == "simbad_like.csv"
    assert xm.simbad_catalogue(xm.SimbadRoute("none")) is None


@pytest.mark.parametrize("route, named", [
    (dict(source="sky"), "SIMBAD source='sky'"),
    (dict(source="file", file="  "), "SIMBAD catalogue file='  '"),
    (dict(source="url", url="ftp://example.org/tap"), "TAP service='ftp://example.org/tap'"),
    (dict(source="url"), "TAP service=''"),
    (dict(source="local", ra_column=""), "ra column=''"),
])
def test_a_bad_simbad_route_is_a_parameter_error_naming_the_value(route, named):
    with pytest.raises(ParameterError) as exc:
        xm.SimbadRoute(**route)
    assert str(exc.value).startswith(named)


def test_the_cli_and_the_tab_choose_the_same_routes(tmp_path):
    import argparse

    from vo_al.cli.crossmatch import _simbad_route, add_crossmatch_commands
    from vo_al.core.jobs.crossmatch import SIMBAD_SOURCES, CrossmatchSettings

    parser = argparse.ArgumentParser()
    add_crossmatch_commands(parser.add_subparsers(dest="command", required=True))

    def cli(*argv):
        return _simbad_route(parser.parse_args(["crossmatch", str(tmp_path), *map(str, argv)]))

    assert cli() == xm.SimbadRoute("simbad") == CrossmatchSettings().simbad_route()
    assert cli("--simbad-service", "local") == CrossmatchSettings("local").simbad_route()
    assert cli("--simbad-service", "none") == CrossmatchSettings("none").simbad_route()
    assert cli("--catalogue", SIMBAD_LIKE) == xm.SimbadRoute("file", file=str(SIMBAD_LIKE)) \
        == CrossmatchSettings("file", f" {SIMBAD_LIKE} ").simbad_route()
    url = "http://127.0.0.1:9/tap"
    assert cli("--simbad-service", url) == CrossmatchSettings("url", tap_url=url).simbad_route()
    assert cli("--simbad-service", url, "--tap-table", "t", "--id-column", "oid",
               "--otype-column", "kind").columns == xm.CatalogueColumns("t", "oid",
                                                                          otype="kind")
    assert [key for key, _ in SIMBAD_SOURCES] == list(xm.SIMBAD_ROUTE_SOURCES)
    with pytest.raises(ParameterError, match="--simbad-service='sky'"):
        cli("--simbad-service", "sky")
    with pytest.raises(ParameterError, match="not both"):
        cli("--catalogue", SIMBAD_LIKE, "--simbad-service", "simbad")


# ------------------------------------------------------------------ CLI on a project

@pytest.fixture
def scored_project(tmp_path):
    from session_fixtures import profile_rows

    from vo_al.core.session.project import Project
    from vo_al.core.session.settings import ProjectSettings

    project = Project.create(tmp_path / "proj", tmp_path / "proj" / "pool",
                             ProjectSettings.default())
    rng = np.random.default_rng(1)
    local = xm.LocalCatalogue.from_file(SIMBAD_LIKE)
    n = 12
    ra = np.r_[local.ra[:10] + 1 / 3600, 250.0, 250.0 + 2 / 3600]
    dec = np.r_[local.dec[:10], 10.0, 10.0]
    metas = [{"name": f"s{i:03d}.fits", "designation": f"J{i // 2:03d}", "ra": float(ra[i]),
              "dec": float(dec[i]), "snr": 20.0, "instrument": "lamost",
              "source": f"http://127.0.0.1:8080/getproduct/lamost/data/s{i:03d}.fits"}
             for i in range(n)]
    project.pool.add_rows(profile_rows(np.zeros(n, int), rng), metas,
                          settings=project.settings.preprocess)
    proba = np.tile(np.array([[0.1, 0.8, 0.1]], np.float32), (n, 1))
    (project.folder / "scores").mkdir(exist_ok=True)
    np.save(project.folder / "scores" / "final.npy", proba)
    # the final scores count once a finish has committed them (ActiveLearningSession.finish)
    project.store.commit_final({"scores_path": "scores/final.npy",
                                "candidates_path": "candidates.csv"})
    project.store.add_oracle_label(3, "s003.fits", 0, 1)       # rejected by the reviewer
    project.store.add_oracle_label(4, "s004.fits", 2, 1)
    folder = project.folder
    project.close()
    return folder


def test_cli_crossmatch_radius_scan_export(scored_project, tmp_path, capsys):
    import argparse

    from vo_al.cli.crossmatch import add_crossmatch_commands

    parser = argparse.ArgumentParser()
    add_crossmatch_commands(parser.add_subparsers(dest="command", required=True))

    def run(*argv):
        args = parser.parse_args([str(a) for a in argv])
        args.func(args)

    out = tmp_path / "xm"
    run("crossmatch", scored_project, "--catalogue", SIMBAD_LIKE, "--h16", H16_SYNTHETIC,
        "--out", out)
    from astropy.table import Table

    allrows = Table.read(out / "crossmatch.ecsv")
    assert len(allrows) == 12                       # 11 candidates + 1 rejected
    assert list(allrows[allrows["category"] == "rejected"]["pool_index"]) == [3]
    assert (allrows["category"] == "new_in_simbad").sum() == 9
    assert (allrows["category"] == "new_unknown").sum() == 2
    assert allrows.meta["simbad_radius_arcsec"] == 20
    assert {p.name for p in out.iterdir()} >= {f"{t}.{s}" for t in xm.TABLE_NAMES
                                               for s in ("vot", "csv", "ecsv")}
    capsys.readouterr()
    run("radius-scan", scored_project, "--catalogue", SIMBAD_LIKE, "--out", out)
    assert (out / "radius_scan.png").stat().st_size > 1000
    scan = Table.read(out / "radius_scan.vot")
    # the screen shows what the numbers mean (11 candidates: a fraction to 3 decimals); the
    # files keep every digit
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].split() == list(scan.colnames)
    fractions = [line.split()[scan.colnames.index("fraction_matched")] for line in printed[3:-1]]
    assert len(fractions) == len(scan) and all(len(f.split(".")[1]) == 3 for f in fractions)
    assert any(len(repr(float(f)).split(".")[1]) > 3 for f in scan["fraction_matched"])
    assert len(scan) == len(xm.SCAN_RADII) and str(scan["radius"].unit) == "arcsec"
    run("export", scored_project, "--out", out / "cands.vot")
    run("export", scored_project, "--out", out / "rejected.csv", "--rejected")
    assert len(Table.read(out / "cands.vot")) == 11
    assert len(Table.read(out / "rejected.csv")) == 1
    with pytest.raises(ParameterError, match="radius"):
        run("crossmatch", scored_project, "--catalogue", SIMBAD_LIKE, "--radius", "400")
    with pytest.raises(ParameterError, match="not both"):
        run("crossmatch", scored_project, "--catalogue", SIMBAD_LIKE,
            "--simbad-service", "local")


def test_cli_crossmatch_over_local_tap(dachs, scored_project, tmp_path, monkeypatch):
    import argparse

    from vo_al.cli.crossmatch import add_crossmatch_commands

    monkeypatch.setenv("VO_AL_DACHS_PORT", str(dachs.port))
    parser = argparse.ArgumentParser()
    add_crossmatch_commands(parser.add_subparsers(dest="command", required=True))
    out_tap, out_file = tmp_path / "tap", tmp_path / "file"
    for argv in (["--simbad-service", "local", "--out", out_tap],
                 ["--catalogue", dachs.simbad_like_csv, "--out", out_file]):
        args = parser.parse_args([str(a) for a in ["crossmatch", scored_project, *argv,
                                                   "--formats", "csv"]])
        args.func(args)
    from astropy.table import Table

    a, b = Table.read(out_tap / "crossmatch.csv"), Table.read(out_file / "crossmatch.csv")
    assert list(a["simbad_id"].filled("")) == list(b["simbad_id"].filled(""))
    assert list(a["category"]) == list(b["category"])
