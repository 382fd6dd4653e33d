"""VOTable/CSV/ECSV export: units, UCDs, descriptions and PARAMs, read back by astropy and STILTS."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest

from vo_al.core.base.errors import ParameterError
from vo_al.core.export.catalogue import COLUMN_INFO, annotate, to_astropy_table, write_catalogue

PARAMS = {"simbad_radius_arcsec": 20.0, "h16_radius_arcsec": 5.0, "iteration": 7,
          "model": "models/iter-007.keras", "reviewed": True}


def _columns(n=3):
    return {"pool_index": np.arange(n), "name": np.array([f"s{i}.fits" for i in range(n)],
                                                         dtype=object),
            "designation": ["J1", "J2", ""][:n], "ra": np.linspace(10, 11, n),
            "dec": np.linspace(-5, 5, n), "class": ["single peak"] * n,
            "origin": ["oracle"] * n, "p_non_target": np.full(n, 0.1),
            "p_single": np.full(n, 0.7), "p_double": np.full(n, 0.2), "snr": [12.0, np.nan, 3.0][:n],
            "source": [f"http://127.0.0.1:8080/getproduct/lamost/data/s{i}.fits"
                       for i in range(n)],
            "simbad_sep": [1.5, np.nan, 19.0][:n], "simbad_id": ["A", "", "C"][:n]}


def stilts(*args):
    if shutil.which("stilts") is None:
        pytest.skip("STILTS not installed (scripts/dachs.sh install)")
    out = subprocess.run(["stilts", *args], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout + out.stderr


def test_votable_has_units_ucds_descriptions_params(tmp_path):
    from astropy.io.votable import parse_single_table

    path = write_catalogue(_columns(), tmp_path / "c.vot", params=PARAMS)
    vt = parse_single_table(str(path))
    f = {x.name: x for x in vt.fields}
    assert f["ra"].unit == "deg" and f["ra"].ucd == "pos.eq.ra;meta.main"
    assert f["simbad_sep"].unit == "arcsec" and f["simbad_sep"].ucd == "pos.angDistance"
    assert f["source"].ucd == "meta.ref.url"
    assert "nearest SIMBAD" in f["simbad_sep"].description
    params = {p.name: p.value for p in vt.params}
    assert params["iteration"] == 7 and params["simbad_radius_arcsec"] == 20.0
    assert params["model"] == "models/iter-007.keras" and params["reviewed"]
    assert "date" in params
    t = vt.to_table()
    assert str(t["ra"].unit) == "deg" and len(t) == 3
    # STILTS reads it and finds nothing to complain about
    assert "rows: 3" in stilts("tpipe", f"in={path}", "ifmt=votable", "omode=count")
    lint = stilts("votlint", f"{path}")
    assert "ERROR" not in lint.upper(), lint


def test_votable_from_an_astropy_table_is_annotated(tmp_path):
    from astropy.table import Table

    t = Table({"radius": [5.0, 20.0], "n_matched": [3, 4]})
    path = write_catalogue(t, tmp_path / "scan.xml", params={"catalogue": "x"})
    back = Table.read(path)
    assert str(back["radius"].unit) == "arcsec" and t["radius"].unit is None   # copy changed
    assert "rows: 2" in stilts("tpipe", f"in={path}", "ifmt=votable", "omode=count")


def test_csv_and_ecsv(tmp_path):
    from astropy.table import Table

    write_catalogue(_columns(), tmp_path / "c.csv", params=PARAMS)
    write_catalogue(_columns(), tmp_path / "c.ecsv", params=PARAMS)
    csv = Table.read(tmp_path / "c.csv")
    ecsv = Table.read(tmp_path / "c.ecsv")
    assert len(csv) == len(ecsv) == 3
    assert ecsv.meta["iteration"] == 7 and str(ecsv["simbad_sep"].unit) == "arcsec"
    assert ecsv["ra"].meta["ucd"] == "pos.eq.ra;meta.main"


def test_bad_format_is_a_parameter_error(tmp_path):
    with pytest.raises(ParameterError, match="format"):
        write_catalogue(_columns(), tmp_path / "c.txt")


def test_annotate_keeps_existing_info():
    t = to_astropy_table({"ra": [1.0]}, column_info={"ra": ("deg", "pos.eq.ra", "mine")})
    assert t["ra"].description == "mine"
    annotate(t)
    assert t["ra"].description == "mine"
    assert COLUMN_INFO["h16_sep"][0] == "arcsec"
