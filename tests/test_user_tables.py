"""Malformed files a user hands vo-al: label CSVs, catalogues, H16 tables, saved query results and
a project's own files. Each is refused (or its bad rows skipped) with a typed error naming the
file, the row and the value, through the core call and, where there is one, the command line
(exit 2, the message on stderr, no traceback); nothing is recorded or changed on the way."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from vo_al.cli.commands import main
from vo_al.core import xmatch as xm
from vo_al.core.base.errors import ParameterError, PoolError, ProjectError, TableRowError
from vo_al.core.session.labels import apply_label_csv, read_label_csv
from vo_al.core.session.project import Project
from vo_al.core.session.settings import ProjectSettings

# RA 19h36m04.4s = 294.018333°, Dec +10°12'13.5" = 10.20375° (worked by hand: 15 * 19.601222)
SEXA_RA, SEXA_DEC = ("19:36:04.4", "+10:12:13.5")
RA_DEG, DEC_DEG = 294.0183333333, 10.20375


def cli(capsys, *argv) -> tuple[int, str]:
    """Run `vo-al ARGV` in this process: (exit status, stderr)."""
    rc = main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return rc, err


@pytest.fixture
def project(tmp_path):
    p = Project.create(tmp_path / "proj", tmp_path / "proj" / "pool", ProjectSettings.default())
    p.close()
    return tmp_path / "proj"


def _spectrum_folder(folder: Path, names) -> Path:
    """CCD700-like spectra around Hα (air, 0.25 Å pixels): a flat continuum, noise and an
    emission line of plausible strength (peak 1.5-3 x continuum, sigma ~1.5 Å)."""
    from vo_al.core.demo.files import write_ccd700_fits

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(3)
    wl = 6260.0 + 0.25 * np.arange(2000)                # 6260-6760 Å covers the window
    for name in names:
        peak = rng.uniform(0.5, 2.0)
        flux = 1000.0 * (1 + peak * np.exp(-0.5 * ((wl - 6562.8) / 1.5) ** 2)
                         + rng.normal(0, 0.01, wl.size))
        write_ccd700_fits(folder / f"{name}.fits", wl, flux, object_name=name)
    return folder


# ------------------------------------------------------------------ label CSVs

def _write(path: Path, data) -> Path:
    if isinstance(data, bytes):
        path.write_bytes(data)
    else:
        path.write_text(data, encoding="utf-8")
    return path


@pytest.mark.parametrize("content, named", [
    (b"name,label\nspec-\xe9,1\n", "line 2"),                       # Latin-1 'é'
    (b"name,label\nspec1,1\nspec2,\xff\xfe\n", "line 3"),           # not text at all
])
def test_a_label_csv_that_is_not_utf8_names_the_file_and_line(tmp_path, content, named):
    path = _write(tmp_path / "labels.csv", content)
    with pytest.raises(ParameterError) as exc:
        read_label_csv(path)
    assert str(path) in str(exc.value) and named in str(exc.value)
    assert "UTF-8" in str(exc.value)


def test_a_label_csv_with_a_byte_order_mark_is_read(tmp_path):
    path = _write(tmp_path / "labels.csv", "\ufeffname,label\nspec1,single\n")   # Excel's CSV UTF-8
    assert read_label_csv(path) == [("spec1", 1)]


@pytest.mark.parametrize("content, line, value", [
    ("name,label\nspec1,1\nspec2\n", 3, "spec2"),            # the label is missing
    ("label,name\n1,spec1\n2\n", 3, "2"),                   # the name is missing
    ("name,label\nspec1,1\n,2\n", 3, ""),                   # an empty name
])
def test_a_short_row_of_a_label_csv_names_the_line(tmp_path, content, line, value):
    path = _write(tmp_path / "labels.csv", content)
    with pytest.raises(TableRowError) as exc:
        read_label_csv(path)
    assert (exc.value.path, exc.value.where) == (str(path), f"line {line}")
    assert str(path) in str(exc.value) and f"line {line}" in str(exc.value)


def test_a_huge_field_in_a_label_csv_is_refused_with_its_line(tmp_path):
    path = _write(tmp_path / "labels.csv", "name,label\nspec1,1\n" + "x" * 140_000 + ",1\n")
    with pytest.raises(TableRowError) as exc:
        read_label_csv(path)
    assert exc.value.where == "line 3" and "131072" in str(exc.value)
    assert len(str(exc.value)) < 600                   # the value is shown cut, not whole


@pytest.mark.parametrize("name", ["missing.csv", "a-folder"])
def test_a_label_csv_that_cannot_be_read_is_named(tmp_path, name):
    (tmp_path / "a-folder").mkdir()
    with pytest.raises(ParameterError, match=f"labels file='{tmp_path / name}'"):
        read_label_csv(tmp_path / name)


def test_conflicting_labels_name_both_lines_and_values(tmp_path):
    path = _write(tmp_path / "labels.csv",
                  "name,label\nspec1.fits,single\nspec2,0\nivo://x/ccd700/spec1,2\n")
    with pytest.raises(TableRowError) as exc:
        read_label_csv(path)
    text = str(exc.value)
    assert exc.value.where == "line 4" and "line 2" in text and str(path) in text
    assert "'2'" in text and "'single'" in text


def test_the_same_label_twice_is_one_label(tmp_path):
    path = _write(tmp_path / "labels.csv", "name,label\nspec1,1\nspec2,0\nspec1.fits,single\n")
    assert read_label_csv(path) == [("spec1", 1), ("spec2", 0)]


def test_conflicting_labels_in_vo_al_label_record_nothing(tmp_path, capsys):
    from session_fixtures import fill_project, tiny_settings

    from vo_al.core.session.loop import ActiveLearningSession

    p = Project.create(tmp_path / "proj", tmp_path / "proj" / "pool", tiny_settings())
    fill_project(p, n_train=60, n_pool=200)
    session = ActiveLearningSession(p)
    pending = [f"pool-{i:06d}" for i in range(3)]
    # stand-in for a query: three spectra waiting for a label in iteration 1
    session.store.update_iteration(1, model_path="m", scores_path="s",
                                   query_json=[0, 1, 2], sample_json=[])
    assert [x.name for x in session.pending()] == pending
    csv_path = _write(tmp_path / "labels.csv",
                      f"name,label\n{pending[0]},1\n{pending[1]},0\n{pending[0]},2\n")
    with pytest.raises(TableRowError, match="line 4"):
        list(apply_label_csv(session, csv_path))
    assert session.store.oracle_labels() == {}           # not even the first row
    p.close()
    rc, err = cli(capsys, "label", tmp_path / "proj", "--csv", csv_path)
    assert rc == 2 and str(csv_path) in err and "line 4" in err and "line 2" in err
    assert ActiveLearningSession(Project.open(tmp_path / "proj")).store.oracle_labels() == {}


def test_import_training_refuses_conflicting_labels_before_anything(tmp_path, project, capsys):
    spectra = _spectrum_folder(tmp_path / "spectra", ["sa", "sb"])
    labels = _write(tmp_path / "labels.csv", "name,label\nsa,1\nsb,0\nsa.fits,0\n")
    p = Project.open(project)
    with pytest.raises(TableRowError, match="line 4.*line 2"):
        _run(p.import_training_set(spectra, labels))
    assert len(p.training) == 0 and p.store.training_labels() == {}
    p.close()
    rc, err = cli(capsys, "import-training", project, spectra, labels)
    assert rc == 2 and str(labels) in err and "line 4" in err
    p = Project.open(project)
    assert len(p.training) == 0 and p.store.training_labels() == {}
    p.close()


@pytest.mark.parametrize("labels, named", [
    (None, "cannot be read"),
    (b"name,label\nsa,1\nsb,\xe9\n", "line 3"),
])
def test_import_training_with_an_unreadable_labels_file(tmp_path, project, capsys, labels,
                                                        named):
    spectra = _spectrum_folder(tmp_path / "spectra", ["sa", "sb"])
    path = tmp_path / "labels.csv"
    if labels is not None:
        path.write_bytes(labels)
    rc, err = cli(capsys, "import-training", project, spectra, path)
    assert rc == 2 and str(path) in err and named in err


def _run(job):
    try:
        while True:
            next(job)
    except StopIteration as stop:
        return stop.value


# ------------------------------------------------------------------ catalogue coordinates

def test_sexagesimal_catalogue_positions_are_parsed(tmp_path):
    path = _write(tmp_path / "cat.csv", f"main_id,ra,dec,otype\nA,{SEXA_RA},{SEXA_DEC},Be*\n"
                                        "B,19h36m10s,-05d30m00s,Em*\nC,294.5,-5.25,*\n")
    cat = xm.LocalCatalogue.from_file(path)
    assert cat.ra == pytest.approx([RA_DEG, 294.0416666667, 294.5], abs=1e-8)
    assert cat.dec == pytest.approx([DEC_DEG, -5.5, -5.25], abs=1e-8)
    assert cat.skipped == ()
    m = xm.crossmatch(cat, [RA_DEG + 1 / 3600], [DEC_DEG], 5)
    # 1 s of RA at Dec 10.2° is cos(10.2°) arcsec on the sky
    assert list(m.match_id) == ["A"] and m.sep[0] == pytest.approx(
        np.cos(np.radians(DEC_DEG)), abs=1e-3)


def test_bad_catalogue_rows_are_skipped_with_a_warning_naming_file_row_value(tmp_path):
    path = _write(tmp_path / "cat.csv", "main_id,ra,dec\nA,10.5,20.0\nB,ten,20.0\n"
                                        "C,11.0,95.0\nD,,20.0\nE,12.0,21.0\n")
    with pytest.warns(xm.SkippedRowsWarning) as caught:
        cat = xm.LocalCatalogue.from_file(path)
    assert list(cat.ids) == ["A", "E"] and cat.ra.tolist() == [10.5, 12.0]
    assert [(s.row, s.column, s.value) for s in cat.skipped] == [
        (2, "ra", "ten"), (3, "dec", "95.0"), (4, "ra", "")]
    text = str(caught[0].message)
    assert str(path) in text and "3 of 5 rows" in text and "row 2" in text and "'ten'" in text


def test_a_catalogue_with_no_usable_position_is_refused(tmp_path):
    path = _write(tmp_path / "cat.csv", "main_id,ra,dec\nA,ten,20\nB,eleven,21\n")
    with pytest.raises(TableRowError) as exc:
        xm.LocalCatalogue.from_file(path)
    assert (exc.value.path, exc.value.where, exc.value.value) == (str(path), "row 1", "ten")
    assert "candidate" not in str(exc.value)


def test_an_out_of_range_catalogue_position_names_the_catalogue_not_a_candidate(tmp_path):
    path = _write(tmp_path / "cat.vot", "")
    from astropy.table import Table

    Table({"main_id": ["A", "B"], "ra": [10.0, 11.0], "dec": [95.0, np.nan]}).write(
        path, format="votable", overwrite=True)
    with pytest.raises(TableRowError) as exc:
        xm.LocalCatalogue.from_file(path)
    assert str(path) in str(exc.value) and "row 1" in str(exc.value)
    assert "candidate" not in str(exc.value)


def test_h16_with_sexagesimal_and_text_positions(tmp_path):
    header = ",".join(xm.H16_COLUMNS)
    rows = [f"J193604.40+101213.5,{SEXA_RA},{SEXA_DEC},-,-,-,-,-,-,single,Be,Be*",
            "J100000.00+050000.0,150.0,5.0,-,-,-,-,-,-,double,Be,Em*",
            "J000000.00+000000.0,nowhere,0.0,-,-,-,-,-,-,single,Be,Be*"]
    path = _write(tmp_path / "h16.csv", header + "\n" + "\n".join(rows) + "\n")
    with pytest.warns(xm.SkippedRowsWarning, match="row 3.*'nowhere'"):
        cat = xm.h16_catalogue(path)
    assert cat.ra == pytest.approx([RA_DEG, 150.0]) and cat.dec == pytest.approx([DEC_DEG, 5.0])
    assert list(cat.ids) == ["J193604.40+101213.5", "J100000.00+050000.0"]
    assert [s.row for s in cat.skipped] == [3]


@pytest.fixture
def scored(tmp_path):
    """A project whose finish committed scores: two candidates, s0 at the h:m:s position of
    the catalogues' object A, s1 far from everything."""
    from session_fixtures import profile_rows

    p = Project.create(tmp_path / "proj", tmp_path / "proj" / "pool", ProjectSettings.default())
    rng = np.random.default_rng(2)
    p.pool.add_rows(profile_rows(np.ones(2, int), rng),
                    [{"name": "s0.fits", "designation": "J0", "ra": RA_DEG, "dec": DEC_DEG},
                     {"name": "s1.fits", "designation": "J1", "ra": 150.0, "dec": 5.0}],
                    settings=p.settings.preprocess)
    (p.folder / "scores").mkdir()
    np.save(p.folder / "scores" / "final.npy", np.tile(np.float32([[0.1, 0.8, 0.1]]), (2, 1)))
    # the final scores count once a finish has committed them (ActiveLearningSession.finish)
    p.store.commit_final({"scores_path": "scores/final.npy", "candidates_path": "candidates.csv"})
    p.close()
    return tmp_path / "proj"


def test_cli_crossmatch_goes_on_past_bad_catalogue_rows(scored, tmp_path, capsys):
    cat = _write(tmp_path / "cat.csv", f"main_id,ra,dec,otype\nA,{SEXA_RA},{SEXA_DEC},Be*\n"
                                       "B,n/a,5.0,Em*\n")
    header = ",".join(xm.H16_COLUMNS)
    h16 = _write(tmp_path / "h16.csv", f"{header}\nJ193604.40+101213.5,{SEXA_RA},{SEXA_DEC},"
                                       "-,-,-,-,-,-,single,Be,Be*\nJX,-,-,-,-,-,-,-,-,d,Be,Em*\n")
    rc = main(["crossmatch", str(scored), "--catalogue", str(cat), "--h16", str(h16), "--out",
               str(tmp_path / "xm"), "--formats", "csv"])
    captured = capsys.readouterr()
    assert rc == 0 and "Traceback" not in captured.err
    assert f"warning: {cat}: 1 of 2 rows skipped" in captured.err and "row 2" in captured.err
    assert f"warning: {h16}: 1 of 2 rows skipped" in captured.err
    assert '"known_h16": 1' in captured.out                   # s0 matched A, given as h:m:s


def test_cli_crossmatch_refuses_a_catalogue_without_one_position(scored, tmp_path, capsys):
    cat = _write(tmp_path / "cat.csv", "main_id,ra,dec\nA,north,5\nB,south,6\n")
    rc, err = cli(capsys, "crossmatch", scored, "--catalogue", cat, "--out", tmp_path / "xm")
    assert rc == 2 and f"{cat}, row 1: ra='north'" in err
    assert not (tmp_path / "xm").exists()


# ------------------------------------------------------------------ radius-scan --radii

@pytest.mark.parametrize("radii, value", [("5,abc", "abc"), ("5,1000", "1000"), (",", ",")])
def test_radius_scan_radii_name_the_bad_value(project, capsys, radii, value):
    rc, err = cli(capsys, "radius-scan", project, "--catalogue", "nowhere.csv", "--radii", radii)
    assert rc == 2 and f"--radii={value!r}" in err


# ------------------------------------------------------------------ harvest --table

LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE VOTABLE [
 <!ENTITY a "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa">
 <!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">
 <!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">
]>
<VOTABLE version="1.3" xmlns="http://www.ivoa.net/xml/VOTable/v1.3"><RESOURCE><TABLE>
<FIELD name="accref" datatype="char" arraysize="*"/>
<DATA><TABLEDATA><TR><TD>&c;</TD></TR></TABLEDATA></DATA></TABLE></RESOURCE></VOTABLE>
"""


def _good_votable(path: Path) -> Path:
    from astropy.table import Table

    Table({"accref": ["http://127.0.0.1:9/spec/a.fits", "http://127.0.0.1:9/spec/b.fits"],
           "ra": [10.0, 11.0], "dec": [5.0, 6.0]}).write(path, format="votable",
                                                          overwrite=True)
    return path


def _bad_tables(tmp_path: Path) -> dict:
    good = _good_votable(tmp_path / "good.vot").read_bytes()
    (tmp_path / "truncated.vot").write_bytes(good[: len(good) // 2])
    (tmp_path / "laughs.vot").write_text(LAUGHS)
    (tmp_path / "result.txt").write_bytes(good)
    (tmp_path / "nourl.csv").write_text("ra,dec\n10,5\n")
    return {"missing.vot": "an existing", "truncated.vot": "readable",
            "laughs.vot": "entit", "result.txt": ".vot", "nourl.csv": "access URL"}


def test_harvest_tables_that_are_not_usable(tmp_path):
    from vo_al.core.vo.harvest import read_harvest_table

    for name, reason in _bad_tables(tmp_path).items():
        with pytest.raises(ParameterError) as exc:
            read_harvest_table(tmp_path / name)
        assert str(tmp_path / name) in str(exc.value) and reason in str(exc.value), name
    assert len(read_harvest_table(tmp_path / "good.vot")) == 2


def test_a_billion_laughs_table_is_refused_before_it_is_parsed(tmp_path, monkeypatch):
    """No entity is expanded: the parser is never reached."""
    import astropy.table

    from vo_al.core.vo.harvest import read_harvest_table

    (tmp_path / "laughs.vot").write_text(LAUGHS)
    monkeypatch.setattr(astropy.table.Table, "read", lambda *a, **k: pytest.fail("parsed"))
    with pytest.raises(ParameterError, match="entit"):
        read_harvest_table(tmp_path / "laughs.vot")


def test_cli_harvest_table_errors(tmp_path, project, capsys):
    for name, reason in _bad_tables(tmp_path).items():
        rc, err = cli(capsys, "harvest", project, "--table", tmp_path / name)
        assert rc == 2 and str(tmp_path / name) in err and reason in err, name
    assert not (project / "harvest" / "harvest.json").exists()


# ------------------------------------------------------------------ a project's own files

@pytest.mark.parametrize("content, reason", [
    ('{"method": {"batch_size": 1', "unreadable"),            # truncated
    (b"\x00\x01\xff\xfe", "unreadable"),                       # not text
    ("[1, 2]", "not a JSON object"),
    ('{"method": 5}', "'method'"),
    ('{"method": {"batch_size": "abc"}}', "batch_size='abc'"),
    ('{"preprocess": {"window_min": "abc"}}', "window_min='abc'"),
    ('{"method": {"warm_start": 1}}', "warm_start=1"),
])
def test_a_broken_settings_json_is_named(project, capsys, content, reason):
    path = project / "settings.json"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    before = path.read_bytes()
    with pytest.raises((ProjectError, ParameterError)) as exc:
        Project.open(project)
    assert str(path) in str(exc.value) and reason in str(exc.value)
    rc, err = cli(capsys, "status", project)
    assert rc == 2 and str(path) in err and reason in err
    assert path.read_bytes() == before


def test_a_missing_settings_json_is_a_project_error(project):
    (project / "settings.json").unlink()
    with pytest.raises(ProjectError, match="settings.json"):
        Project.open(project)


@pytest.mark.parametrize("content", [b"not a database " * 300,
                                     b"SQLite format 3\x00" + b"\xff" * 2000])
def test_a_garbage_session_database_is_named_and_left_alone(project, capsys, content):
    path = project / "session.sqlite"
    path.write_bytes(content)
    with pytest.raises(ProjectError) as exc:
        Project.open(project).store
    assert str(path) in str(exc.value)
    rc, err = cli(capsys, "status", project)
    assert rc == 2 and str(path) in err
    assert path.read_bytes() == content


def test_a_foreign_sqlite_file_is_not_taken_for_a_session(project):
    import sqlite3

    path = project / "session.sqlite"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE photos (id INTEGER, file TEXT)")
    db.commit()
    db.close()
    before = path.read_bytes()
    with pytest.raises(ProjectError, match="not a vo-al session"):
        Project.open(project).store
    assert path.read_bytes() == before


@pytest.fixture
def pool_project(project):
    from session_fixtures import profile_rows

    p = Project.open(project)
    p.pool.add_rows(profile_rows(np.zeros(4, int), np.random.default_rng(0)),
                    [{"name": f"s{i}.fits"} for i in range(4)], settings=p.settings.preprocess)
    p.pool.seal()
    p.close()
    return project


@pytest.mark.parametrize("cut", ["tail", "header", "empty", "garbage"])
def test_a_truncated_pool_segment_is_a_pool_error_naming_it(pool_project, capsys, cut):
    from vo_al.core.pool.store import PoolStore

    seg = sorted((pool_project / "pool").glob("seg-*.npy"))[0]
    whole = seg.read_bytes()
    broken = {"tail": whole[:-100], "header": whole[:60], "empty": b"",
              "garbage": b"garbage!" * 64}[cut]
    seg.write_bytes(broken)
    with pytest.raises(PoolError) as exc:
        PoolStore.open(pool_project / "pool")
    assert seg.name in str(exc.value)
    rc, err = cli(capsys, "status", pool_project)
    assert rc == 2 and seg.name in err
    assert seg.read_bytes() == broken


# ------------------------------------------------------------------ many malformed files

def _mutations(data: bytes, rng: np.random.Generator, n: int):
    """`n` damaged copies of `data`, as files get damaged: cut short, bytes replaced by noise,
    a Latin-1 or NUL byte, a line doubled or dropped, a quote or a delimiter lost or added."""
    lines = data.split(b"\n")
    for _ in range(n):
        kind = rng.integers(7)
        b = bytearray(data)
        if kind == 0:
            b = b[: rng.integers(len(b))]
        elif kind == 1:
            at = rng.integers(len(b))
            b[at:at + 4] = bytes(rng.integers(0, 256, 4, dtype=np.uint8))
        elif kind == 2:
            b.insert(int(rng.integers(len(b))), int(rng.choice([0x00, 0xE9, 0xFF, 0x22])))
        elif kind in (3, 4):
            i = int(rng.integers(1, len(lines)))
            cut = lines[:i] + ([lines[i - 1]] if kind == 3 else []) + lines[i + 1:]
            b = bytearray(b"\n".join(cut))
        elif kind == 5:
            commas = [i for i, c in enumerate(b) if c == ord(",")]
            del b[int(rng.choice(commas))]
        else:
            b.insert(int(rng.integers(len(b))), ord(","))
        yield bytes(b)


def test_damaged_label_csvs_are_read_or_refused_with_a_typed_error(tmp_path):
    from vo_al.core.base.errors import VoAlError

    good = "name,label\n" + "".join(f"spec{i:03d}.fits,{['0', 'single', '2'][i % 3]}\n"
                                    for i in range(30))
    path = tmp_path / "labels.csv"
    refused = 0
    for data in _mutations(good.encode(), np.random.default_rng(11), 300):
        path.write_bytes(data)
        try:
            rows = read_label_csv(path)
        except VoAlError as exc:
            refused += 1
            assert str(path) in str(exc)
        else:
            assert all(isinstance(n, str) and n and v in (0, 1, 2) for n, v in rows)
    assert 0 < refused < 300


def test_damaged_catalogues_are_read_or_refused_with_a_typed_error(tmp_path):
    from vo_al.core.base.errors import VoAlError

    rng = np.random.default_rng(5)
    ra, dec = rng.uniform(0, 360, 30), np.degrees(np.arcsin(rng.uniform(-1, 1, 30)))
    good = "main_id,ra,dec,otype\n" + "".join(
        f"obj{i},{a:.6f},{d:+.6f},Em*\n" if i % 2 else
        f"obj{i},{int(a // 15):02d}:{int(a % 15 * 4):02d}:{a % 0.25 * 240:05.2f},{d:+.5f},Be*\n"
        for i, (a, d) in enumerate(zip(ra, dec)))
    path = tmp_path / "cat.csv"
    refused = 0
    for data in _mutations(good.encode(), np.random.default_rng(12), 200):
        path.write_bytes(data)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", xm.SkippedRowsWarning)
                cat = xm.LocalCatalogue.from_file(path)
        except VoAlError as exc:
            refused += 1
            assert str(path) in str(exc)
        else:
            assert np.all(np.isfinite(cat.ra)) and np.all(np.abs(cat.dec) <= 90)
            assert len(cat) + len(cat.skipped) >= 1
    assert refused < 200


def test_a_settings_json_cut_anywhere_is_a_typed_error(project):
    from vo_al.core.base.errors import VoAlError

    path = project / "settings.json"
    whole = path.read_bytes()
    for cut in range(len(whole)):         # every prefix, the empty file included
        path.write_bytes(whole[:cut])
        with pytest.raises(VoAlError, match=str(path)):
            ProjectSettings.load(path)
