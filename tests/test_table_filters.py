"""Tables fit for astronomers, in the core: positions in sexagesimal, cells to the digits they
mean, the typed filter (`p_double > 0.9 and snr > 20 and single`) and what follows it (the
exports, `vo-al export/candidates --where`, the cross-match tables); the dashboard's mark of the
oracle batch; the training's progress from the balance to the first epoch."""

from __future__ import annotations

import re
import shutil

import numpy as np
import pytest
from astropy.table import Table

from session_fixtures import fill_project, tiny_settings
from vo_al.cli.commands import main as vo_al
from vo_al.core import xmatch as xm
from vo_al.core.base.errors import ParameterError
from vo_al.core.base.progress import CancelToken, run_job
from vo_al.core.base.sky import dec_dms, ra_hms, sexagesimal_degrees
from vo_al.core.export.cells import cell_format
from vo_al.core.export.filters import parse_filter, text_filter
from vo_al.core.jobs.crossmatch import (ALL, SHIPPED_H16, SHIPPED_SIMBAD_LIKE, CrossmatchSettings,
                                       crossmatch_job, export_job)
from vo_al.core.jobs.dashboard import dashboard_job
from vo_al.core.learning.strategies import entropy_score
from vo_al.core.session.candidates import COLUMNS, export_candidates, session_candidates
from vo_al.core.session.loop import ActiveLearningSession
from vo_al.core.session.project import Project

MAX_EPOCHS, PATIENCE = 7, 8          # the case: patience 8 with 6 epochs left
SIMBAD = xm.LocalCatalogue.from_file(SHIPPED_SIMBAD_LIKE)


def table(n: int = 400, seed: int = 0) -> dict:
    """A candidates-like table: numbers with NaN, text columns of mixed case, two *_sep."""
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.ones(3), n)
    snr = rng.uniform(2, 60, n)
    snr[rng.random(n) < 0.1] = np.nan
    return {"pool_index": np.arange(n, dtype=np.int64),
            "name": np.array([f"{rng.choice(['Spec', 'STAR'])}-{i:04d}" for i in range(n)]),
            "class": np.array(rng.choice(["single peak", "double peak"], n)),
            "origin": np.array(rng.choice(["predicted", "oracle", "precision"], n)),
            "ra": rng.uniform(0, 360, n), "dec": rng.uniform(-90, 90, n),
            "p_single": p[:, 1], "p_double": p[:, 2], "snr": snr,
            "simbad_sep": rng.uniform(0, 20, n), "h16_sep": rng.uniform(0, 5, n)}


# -- positions and cells --------------------------------------------------------------------------
@pytest.mark.parametrize("ra, text", [(150.1, "10:00:24.000"), (0.0, "00:00:00.000"),
                                      (359.99999999, "00:00:00.000"),   # never 24:00:00
                                      (15.0 * (1 - 0.002 / 3600), "00:59:59.998"),
                                      (44.99999999, "03:00:00.000")])  # 59.9999 s carries
def test_right_ascension_in_hours(ra, text):
    assert ra_hms(ra) == text


@pytest.mark.parametrize("dec, text", [(2.2, "+02:12:00.00"), (-0.5 / 3600, "-00:00:00.50"),
                                       (-89.999999999, "-90:00:00.00"),
                                       (-1e-9, "+00:00:00.00"), (30.0 + 59.999 / 3600,
                                                                 "+30:01:00.00")])
def test_declination_signed(dec, text):
    assert dec_dms(dec) == text


def test_sexagesimal_reads_back_within_its_last_digit():
    rng = np.random.default_rng(1)
    for ra, dec in zip(rng.uniform(0, 360, 500), rng.uniform(-90, 90, 500)):
        back_ra = sexagesimal_degrees(ra_hms(ra), hours=True)
        assert abs(back_ra - ra) <= 15 * 0.0005 / 3600 + 1e-9 or abs(back_ra - ra) > 359.99
        assert abs(sexagesimal_degrees(dec_dms(dec), hours=False) - dec) <= 0.005 / 3600 + 1e-9
    assert ra_hms(float("nan")) == "" and dec_dms(float("nan")) == ""


def test_cells_keep_the_digits_their_quantity_means():
    assert cell_format("ra")(150.123456789) == "150.123457"
    assert cell_format("dec")(-2.5) == "-2.500000"
    assert cell_format("ra", sexagesimal=True)(150.123456789) == "10:00:29.630"
    assert cell_format("simbad_dec", sexagesimal=True)(-2.5) == "-02:30:00.00"
    assert cell_format("p_double")(np.float32(0.973125)) == "0.9731"        # a probability
    assert cell_format("p_single")(np.float32(3.2e-5)) == "3.2e-05"        # not '0.0000'
    assert cell_format("p_single")(0.0) == "0.0000" and cell_format("p_single")(5e-5) == "0.0001"
    assert cell_format("h16_sep")(3.14159) == "3.14"                         # arcsec
    assert cell_format("snr")(12.345) == "12.3"
    assert cell_format("fraction_matched")(0.12345) == "0.123"
    assert cell_format("snr")(np.nan) == "" and cell_format("ra", True)(np.nan) == ""
    assert cell_format("pool_index")(np.int64(7)) == "7"
    assert cell_format("name")("spec-1") == "spec-1"
    assert cell_format("not_a_known_column")(1234.5678) == "1235"


# -- the filter ------------------------------------------------------------------------------------
def expected(t: dict, keep) -> list[int]:
    """Rows where `keep(row)` holds, row by row in plain Python (NaN fails a comparison)."""
    rows = [{c: t[c][i] for c in t} for i in range(len(t["name"]))]
    return [i for i, r in enumerate(rows) if keep(r)]


def has_text(r, word) -> bool:
    return any(word in str(r[c]).lower() for c in ("name", "class", "origin"))


@pytest.mark.parametrize("expression, keep", [
    ("p_double > 0.9", lambda r: r["p_double"] > 0.9),
    ("snr > 20", lambda r: r["snr"] > 20),
    ("SNR<=20", lambda r: r["snr"] <= 20),
    ("snr != 20", lambda r: not np.isnan(r["snr"]) and r["snr"] != 20),
    ("p_double > 0.9 and snr > 20", lambda r: r["p_double"] > 0.9 and r["snr"] > 20),
    ("single and p_double >= 0.2 AND star", lambda r: has_text(r, "single")
     and r["p_double"] >= 0.2 and has_text(r, "star")),
    ("origin = ORACLE", lambda r: r["origin"] == "oracle"),
    ("origin != 'oracle' and class = double peak",
     lambda r: r["origin"] != "oracle" and r["class"] == "double peak"),
    ("simbad_sep <= 5", lambda r: r["simbad_sep"] <= 5),
    ("double peak", lambda r: has_text(r, "double peak")),
    ("  ", lambda r: True),
])
def test_filter_keeps_the_rows_a_person_means(expression, keep):
    t = table()
    parsed = parse_filter(expression, t)
    mask = parsed.mask(t)
    rows = list(range(len(t["name"]))) if mask is None else list(np.flatnonzero(mask))
    assert rows == expected(t, keep)
    assert len(parsed.apply(t)["name"]) == len(rows)


def test_a_column_may_be_named_by_the_end_of_its_name():
    t = table()
    del t["h16_sep"]
    assert parse_filter("sep <= 5", t).comparisons[0].column == "simbad_sep"
    assert parse_filter("double > 0.5", t).comparisons[0].column == "p_double"


@pytest.mark.parametrize("expression, reason", [
    ("foo > 3", "no column 'foo' (columns: pool_index, name,"),
    ("sep < 3", "'sep' may be simbad_sep or h16_sep: name one"),
    ("snr > twenty", "snr is a number column: 'twenty' is not a number"),
    ("origin > 3", "origin is a text column: compare it with = or !="),
    ("p_double >", "a value after '>'"),
    ("single and snr > 2x", "'2x' is not a number"),
])
def test_a_bad_filter_says_which_part_and_why(expression, reason):
    with pytest.raises(ParameterError) as caught:
        parse_filter(expression, table(), "where")
    assert reason in str(caught.value) and str(caught.value).startswith("where=")
    part = expression.split(" and ")[-1]
    assert caught.value.value == part


def test_typing_on_narrows_within_the_rows_kept_before():
    t = table(3000, seed=4)
    previous = parse_filter("p_double > 0.3 and s", t)
    typed = parse_filter("p_double > 0.3 and spec-0", t)
    assert typed.narrows(previous) and not previous.narrows(typed)
    assert not parse_filter("p_double > 0.4 and spec", t).narrows(previous)
    within = np.flatnonzero(previous.mask(t))
    np.testing.assert_array_equal(typed.mask(t, within=within), typed.mask(t))
    # a plain text is one word, parsed or not: 'a > b' is searched, not compared
    assert text_filter("Spec-00 > x").words == ("spec-00 > x",)
    # an empty table (not filled yet) holds no kind: text is compared as text
    empty = {c: np.array([]) for c in COLUMNS}
    assert parse_filter("origin = oracle", empty).comparisons[0].value == "oracle"


# -- what follows the filter ----------------------------------------------------------------------
def pool_meta(i: int) -> dict:
    """S/N 5-54; the first 100 spectra 3″ from objects of the shipped SIMBAD-like catalogue."""
    meta = {"snr": 5.0 + i % 50}
    if i < 100:
        meta.update(ra=float(SIMBAD.ra[i]) + 3 / 3600, dec=float(SIMBAD.dec[i]))
    return meta


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    """A project trained (MAX_EPOCHS, PATIENCE) and scored, and the training's progress."""
    folder = tmp_path_factory.mktemp("tables") / "proj"
    project = Project.create(folder, folder / "pool",
                             tiny_settings(max_epochs=MAX_EPOCHS, patience=PATIENCE,
                                           batch_size=10))
    try:
        fill_project(project, n_train=200, n_pool=600, pool_meta=pool_meta)
        session = ActiveLearningSession(project)
        seen = []
        run_job(session.train(), seen.append)
        run_job(session.score())
    finally:
        project.close()
    return folder, seen


@pytest.fixture
def session(scored, tmp_path):
    folder = tmp_path / "proj"
    shutil.copytree(scored[0], folder)
    project = Project.open(folder)
    yield ActiveLearningSession(project)
    project.close()


def test_training_bar_starts_after_the_balance_and_never_promises_more_epochs(scored):
    _, seen = scored
    stages = [(p.stage, p.done, p.total) for p in seen]
    assert stages[:3] == [("balance", 0, 1), ("balance", 1, 1), ("train", 0, MAX_EPOCHS)]
    epochs = [p for p in seen if p.stage == "train" and p.done]
    assert len(epochs) == MAX_EPOCHS
    for p in epochs:
        left = MAX_EPOCHS - p.done
        promised = re.search(r"stops after (\d+) more", p.message)
        assert promised is None or int(promised.group(1)) <= left, p.message
    # patience 8 with 6 epochs left: the cap ends it, and the message says so
    assert epochs[0].message.endswith("the epoch cap ends it in 6")


def test_export_and_the_command_line_follow_the_filter(session, tmp_path, capsys):
    candidates = session_candidates(session).candidates
    where = "p_double > 0.5 and snr > 20"
    kept = parse_filter(where, candidates).mask(candidates)
    assert 0 < kept.sum() < len(kept)

    done = export_candidates(session, tmp_path / "c.ecsv", where=where)
    back = Table.read(done["path"], format="ascii.ecsv")
    assert done["rows"] == len(back) == kept.sum() and done["of"] == len(kept)
    assert list(back["pool_index"]) == list(candidates["pool_index"][kept])
    assert back.meta["selection"] == f"{kept.sum()} of {len(kept)} candidates " \
                                     f"(filter: '{where}')"

    folder = str(session.project.folder)
    session.project.close()
    assert vo_al(["export", folder, "--out", str(tmp_path / "w.csv"), "--where", where]) == 0
    assert f"wrote {kept.sum()} of {len(kept)} rows" in capsys.readouterr().out
    assert len(Table.read(tmp_path / "w.csv", format="ascii.csv")) == kept.sum()
    assert vo_al(["candidates", folder, "--out", str(tmp_path / "l.csv"), "--where", where]) == 0
    assert f"{kept.sum()} of {len(kept)} candidates" in capsys.readouterr().out
    listed = Table.read(tmp_path / "l.csv", format="ascii.csv")
    assert len(listed) == kept.sum()
    # positions to 6 decimals of a degree (6 significant digits were 3.6″ off at RA 150°)
    np.testing.assert_allclose(listed["ra"], candidates["ra"][kept], rtol=0, atol=5e-7)
    np.testing.assert_allclose(listed["dec"], candidates["dec"][kept], rtol=0, atol=5e-7)

    # a bad expression: the one-line error and exit 2, nothing written
    assert vo_al(["export", folder, "--out", str(tmp_path / "bad.vot"),
                  "--where", "p_double > high"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["vo-al export: error: where='p_double > high': p_double is a number "
                   "column: 'high' is not a number"]
    assert not (tmp_path / "bad.vot").exists()


def test_the_crossmatch_export_follows_the_filter(session, tmp_path):
    found = session_candidates(session)
    settings = CrossmatchSettings(simbad_source="file", simbad_file=str(SHIPPED_SIMBAD_LIKE),
                                  h16_file=str(SHIPPED_H16), scan=False)
    run = run_job(crossmatch_job(CancelToken(), settings, None, found.candidates))
    where = "p_double > 0.5 and simbad_n = 0"
    everything = run.views[ALL]
    kept = parse_filter(where, everything).mask(everything)
    assert 0 < kept.sum() < len(kept)
    export_job(run, tmp_path, ["ecsv"], where)
    back = Table.read(tmp_path / "crossmatch.ecsv", format="ascii.ecsv")
    assert sorted(back["pool_index"]) == sorted(everything["pool_index"][kept])
    assert back.meta["selection"] == f"{kept.sum()} of {len(kept)} rows (filter: '{where}')"
    parts = sum(len(Table.read(tmp_path / f"{name}.ecsv", format="ascii.ecsv"))
                for name in ("known_h16", "new_in_simbad", "new_unknown", "rejected"))
    assert parts == kept.sum()


# -- the dashboard's mark of the oracle batch ------------------------------------------------------
def test_the_batch_starts_at_the_entropy_of_its_least_uncertain_spectrum(session):
    stages = []
    data = run_job(dashboard_job(session), lambda p: stages.append(p.stage))
    proba = np.asarray(session.latest_probabilities())
    h = entropy_score(proba)
    size = session.method.batch_size
    free = np.ones(len(h), bool)
    free[list(session.store.oracle_labels())] = False
    assert not data.batch_queried and data.batch_size == size
    assert data.batch_entropy == pytest.approx(np.sort(h[free])[::-1][size - 1])

    # queried: the chosen batch's own least uncertain spectrum, the same line
    batch = session.query()["batch"]
    again = run_job(dashboard_job(session, cache=data.summaries, previous=data))
    assert again.batch_queried and again.batch_size == len(batch) == size
    assert again.batch_entropy == pytest.approx(h[batch].min())
    assert again.batch_entropy == pytest.approx(data.batch_entropy)

    # labelling the batch moves nothing and reads no scores file again
    for item in session.pending():
        if item.purpose == "query":
            session.label(item.pool_index, 1)
    stages.clear()
    labelled = run_job(dashboard_job(session, cache=again.summaries, previous=again),
                       lambda p: stages.append(p.stage))
    assert labelled.batch_entropy == pytest.approx(again.batch_entropy)
    assert set(stages) == {"candidates"}
