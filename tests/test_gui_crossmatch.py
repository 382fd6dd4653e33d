"""The Cross-match panel of the desktop application, offscreen, through the real core.

A tiny project is trained and scored through the session once per module. Its pool holds two
exposures (1.5″ apart) of each of 60 stars that lie far apart on the sky (≥ 400″), next to
objects of the shipped SIMBAD-like catalogue (so the local DaCHS's `lamost.simbad_like` matches
them too). The tests then write SIMBAD and H16 catalogues whose objects sit at chosen offsets
from chosen candidate stars, so each candidate's category is known from the construction alone.
"""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import math  # noqa: E402
import shutil  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import threading  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

pytest.importorskip("PyQt6")
pytest.importorskip("pyqtgraph")
pytest.importorskip("pytestqt")

from PyQt6.QtCore import QItemSelectionModel, Qt  # noqa: E402

from gui_support import assert_no_leaks, flush_deletes, tiny_settings, top_level_widgets  # noqa: E402
from session_fixtures import profile_rows  # noqa: E402
from vo_al.core import xmatch as xm  # noqa: E402
from vo_al.core.base.progress import CancelToken, run_job  # noqa: E402
from vo_al.core.session.project import Project  # noqa: E402
from vo_al.core.session.loop import ActiveLearningSession  # noqa: E402
from vo_al.core.session.candidates import session_candidates  # noqa: E402
from vo_al.core.jobs.crossmatch import (ALL, SHIPPED_H16, SHIPPED_SIMBAD_LIKE,  # noqa: E402
                                       CrossmatchSettings, crossmatch_job)
from vo_al.gui.crossmatch_panel import CrossmatchPanel  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
WAIT_MS = 60_000
N_STARS = 60
EXPOSURE_STEP = 1.5                     # arcsec north between a star's two exposures
H16_HEADER = ",".join(xm.H16_COLUMNS)


def offset(ra: float, dec: float, east: float = 0.0, north: float = 0.0) -> tuple[float, float]:
    """A position `east`/`north` arcsec away (small offsets on the tangent plane)."""
    return (ra + east / 3600.0 / math.cos(math.radians(dec)), dec + north / 3600.0)


def separated_positions(n: int, min_sep: float) -> list[tuple[float, float]]:
    """Positions of the shipped SIMBAD-like objects, each ≥ min_sep arcsec from the others."""
    cat = xm.LocalCatalogue.from_file(SHIPPED_SIMBAD_LIKE)
    chosen: list[int] = []
    for i in range(len(cat)):
        if all(cat.sky[i].separation(cat.sky[j]).arcsec >= min_sep for j in chosen):
            chosen.append(i)
        if len(chosen) == n:
            return [(float(cat.ra[i]), float(cat.dec[i])) for i in chosen]
    raise AssertionError(f"only {len(chosen)} objects {min_sep}″ apart in {SHIPPED_SIMBAD_LIKE}")


class Sky:
    """The pool's layout: star s has exposures 2s and 2s+1; designation per star, except that
    stars 10k and 10k+1 share one (designations are not unique identifiers, as in the paper)."""

    def __init__(self):
        self.stars = []
        for s, (ra, dec) in enumerate(separated_positions(N_STARS, 400.0)):
            self.stars.append(offset(ra, dec, east=4.0 + 3.0 * (s % 5)))   # 4-16″ from it

    def star(self, pool_index: int) -> int:
        return pool_index // 2

    def position(self, pool_index: int) -> tuple[float, float]:
        ra, dec = self.stars[pool_index // 2]
        return offset(ra, dec, north=EXPOSURE_STEP * (pool_index % 2))

    def designation(self, pool_index: int) -> str:
        s = pool_index // 2
        return f"J{s - 1 if s % 10 == 1 else s:04d}"

    def metas(self) -> list[dict]:
        return [{"name": f"spec-{i:04d}", "designation": self.designation(i),
                 "ra": self.position(i)[0], "dec": self.position(i)[1], "snr": 30.0,
                 "instrument": "lamost", "source": f"http://127.0.0.1/spec/{i}.fits"}
                for i in range(2 * N_STARS)]


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    """(folder, Sky, candidate pool indices, rejected pool index): trained, scored, one label."""
    folder = tmp_path_factory.mktemp("crossmatch") / "proj"
    sky = Sky()
    rng = np.random.default_rng(3)
    project = Project.create(folder, folder / "pool", tiny_settings(max_epochs=3))
    try:
        y0 = rng.choice(3, 300, p=[0.47, 0.41, 0.12])
        project.training.add_rows(profile_rows(y0, rng),
                                  [{"name": f"train-{i:05d}", "instrument": "ccd700"}
                                   for i in range(len(y0))],
                                  settings=project.settings.preprocess)
        project.store.set_training_labels([f"train-{i:05d}" for i in range(len(y0))], y0)
        truth = np.repeat(rng.choice(3, N_STARS, p=[0.4, 0.45, 0.15]), 2)
        project.pool.add_rows(profile_rows(truth, rng, noise=(0.01, 0.1)), sky.metas(),
                              settings=project.settings.preprocess)
        session = ActiveLearningSession(project)
        run_job(session.train())
        run_job(session.score())
        session.query()
        rejected = session.pending()[0].pool_index
        session.label(rejected, 0)                   # the reviewer rejects one spectrum
        # the candidates, independently of the core's tables: arg-max single/double peak,
        # minus the reviewer's rejection
        proba = np.asarray(session.latest_probabilities())
        is_candidate = np.isin(np.argmax(proba, axis=1), [1, 2])
        is_candidate[rejected] = False
        candidates = np.flatnonzero(is_candidate)
    finally:
        project.close()
    stars = {sky.star(int(i)) for i in candidates} - {sky.star(rejected)}
    assert len(stars) >= 8, f"the tiny model found too few candidate stars ({len(stars)})"
    return folder, sky, candidates, rejected


@pytest.fixture
def project(scored):
    p = Project.open(scored[0])
    yield p
    p.close()


@pytest.fixture
def panel(qtbot, qapp, project):
    """A cross-match panel over the open project (closed, deleted and leak-checked after)."""
    before = top_level_widgets()
    p = CrossmatchPanel(lambda: {}, project_getter=lambda: project)
    p.show()
    qtbot.waitExposed(p)
    held = [p]
    yield held
    p.shutdown()
    p.close()
    p.deleteLater()
    held.clear()
    del p
    assert_no_leaks(before)


class Construction:
    """SIMBAD and H16 files with objects at chosen offsets from chosen candidate stars."""

    def __init__(self, scored, folder: Path):
        _, sky, candidates, rejected = scored
        self.sky, self.candidates, self.rejected = sky, candidates, rejected
        stars = sorted({sky.star(int(i)) for i in candidates} - {sky.star(rejected)})
        self.h16_stars = set(stars[0:2])           # H16 2″ east (and SIMBAD 10″ north)
        self.near_stars = set(stars[2:5])          # SIMBAD 10″ north: within 20″
        self.far_stars = set(stars[5:7])           # SIMBAD 40″ north: within 60″, not 20″
        self.rejected_star = sky.star(rejected)    # SIMBAD 3″ south of the rejected spectrum
        simbad, h16 = [], []
        for s in sorted(self.h16_stars | self.near_stars):
            simbad.append((f"NEAR {s}", *offset(*sky.stars[s], north=10.0), "Em*"))
        for s in sorted(self.far_stars):
            simbad.append((f"FAR {s}", *offset(*sky.stars[s], north=40.0), "Be*"))
        simbad.append(("REJ", *offset(*sky.position(rejected), north=-3.0), "Star"))
        simbad.append(("NOWHERE", 200.0, -60.0, "G"))
        for s in sorted(self.h16_stars):
            ra, dec = offset(*sky.stars[s], east=2.0)
            h16.append((f"H{s:04d}", f"{ra:.8f}", f"{dec:.8f}", *["-"] * 6, "I", "Be*", "Em*"))
        self.simbad_file = folder / "simbad.csv"
        self.simbad_file.write_text("main_id,ra,dec,otype\n" + "".join(
            f"{i},{ra:.8f},{dec:.8f},{t}\n" for i, ra, dec, t in simbad))
        self.h16_file = folder / "h16.csv"
        self.h16_file.write_text(H16_HEADER + "\n" + "".join(",".join(r) + "\n" for r in h16))

    def category(self, pool_index: int, radius: float) -> str:
        s = self.sky.star(pool_index)
        if s in self.h16_stars:
            return "known_h16"
        if s in self.near_stars or s == self.rejected_star or (radius >= 40.5
                                                               and s in self.far_stars):
            return "new_in_simbad"
        return "new_unknown"

    def counts(self, radius: float) -> dict:
        counts = {name: 0 for name in xm.TABLE_NAMES}
        for i in self.candidates:
            counts[self.category(int(i), radius)] += 1
        counts["rejected"] = 1
        return counts

    def groups(self) -> tuple[int, int]:
        """(designation groups, position groups) of the candidates, from the layout."""
        return (len({self.sky.designation(int(i)) for i in self.candidates}),
                len({self.sky.star(int(i)) for i in self.candidates}))


def run_panel(qtbot, panel) -> object:
    with qtbot.waitSignal(panel.finished, timeout=WAIT_MS) as blocker:
        assert panel.run() is not None
        assert not panel.run_button.isEnabled() and panel.cancel_button.isEnabled()
    assert panel.run_button.isEnabled() and not panel.is_running
    return blocker.args[0]


def choice_counts(panel) -> dict:
    """The table selector's entries, 'name (count)', as {name: count}."""
    out = {}
    for i in range(panel.table_choice.count()):
        text = panel.table_choice.itemText(i)
        out[panel.table_choice.itemData(i)] = int(text.rsplit("(", 1)[1].rstrip(")"))
    return out


def use_files(panel, construction) -> None:
    panel.set_source("file")
    panel.catalogue.setText(str(construction.simbad_file))
    panel.h16_enabled.setChecked(True)
    panel.h16.setText(str(construction.h16_file))


# ------------------------------------------------------------------------------------- tests

def test_defaults_are_the_papers_and_the_shipped_files(panel):
    p = panel[0]
    assert p.radius.minimum() == 5 and p.radius.maximum() == 300 and p.radius.value() == 20
    assert p.h16_radius.value() == 5 and p.h16_radius.minimum() == 5
    assert p.source.currentData() == "simbad"           # as `vo-al crossmatch`
    assert [p.source.itemData(i) for i in range(p.source.count())] == \
        ["simbad", "local", "file", "url", "none"]
    assert Path(p.catalogue.text()) == REPO / "resources" / "dachs" / "simbad_like.csv"
    assert Path(p.h16.text()) == REPO / "resources" / "catalogues" / "h16_synthetic.csv"
    assert SHIPPED_SIMBAD_LIKE.is_file() and SHIPPED_H16.is_file()
    assert p.h16_enabled.isChecked() and not p.export_button.isEnabled()


def test_the_four_tables_groups_scan_and_selection(panel, qtbot, scored, project, tmp_path):
    p = panel[0]
    c = Construction(scored, tmp_path)
    use_files(p, c)
    stages = []
    with qtbot.waitSignal(p.finished, timeout=WAIT_MS) as blocker:
        worker = p.run()
        worker.progress.connect(lambda pr: stages.append(pr.stage))
    run = blocker.args[0]
    assert [s for i, s in enumerate(stages) if i == 0 or stages[i - 1] != s] == \
        ["reading catalogues", "SIMBAD match", "H16 match", "radius scan"]
    assert run.from_project

    # the counts: as the construction says, and as the core gives for the same inputs
    expected = c.counts(20)
    assert run.counts == expected
    found = session_candidates(ActiveLearningSession(project))
    cands, rejected, params = found.candidates, found.rejected, found.provenance
    core = xm.crossmatch_candidates(cands, xm.LocalCatalogue.from_file(c.simbad_file),
                                    xm.h16_catalogue(c.h16_file), radius=20, h16_radius=5,
                                    rejected=rejected, params=params)
    assert core.counts() == expected
    assert choice_counts(p) == {ALL: len(c.candidates) + 1, **expected}
    assert list(run.result.table["category"]) == list(core.table["category"])
    assert list(run.result.table["simbad_id"]) == list(core.table["simbad_id"])
    assert sorted(run.result.table["pool_index"]) == sorted([*c.candidates, c.rejected])
    for i, category in zip(run.result.table["pool_index"], run.result.table["category"]):
        if i != c.rejected:
            assert category == c.category(int(i), 20), i

    # each table in the view, sortable; the rejected spectrum matched its object too
    for name in (ALL, *xm.TABLE_NAMES):
        p.table_choice.setCurrentIndex(p.table_choice.findData(name))
        assert p.model.rowCount() == choice_counts(p)[name]
    assert p.model.table["pool_index"].tolist() == [c.rejected]
    assert p.model.table["simbad_id"].tolist() == ["REJ"]
    assert p.model.table["simbad_sep"][0] == pytest.approx(3.0, abs=0.01)
    p.table_choice.setCurrentIndex(p.table_choice.findData("known_h16"))
    h16_ids = {f"H{s:04d}" for s in c.h16_stars}
    assert set(p.model.table["h16_id"]) == h16_ids
    assert np.all(p.model.table["h16_sep"] < 2.6)

    # sorted by pool_index descending, selecting the first view row gives the largest index
    p.table_choice.setCurrentIndex(p.table_choice.findData(ALL))
    column = p.model.columns.index("pool_index")
    p.table.sortByColumn(column, Qt.SortOrder.DescendingOrder)
    with qtbot.waitSignal(p.row_selected, timeout=WAIT_MS) as blocker:
        p.table.selectionModel().setCurrentIndex(
            p.proxy.index(0, column), QItemSelectionModel.SelectionFlag.ClearAndSelect
            | QItemSelectionModel.SelectionFlag.Rows)
    assert blocker.args == [int(max(*c.candidates, c.rejected))]
    assert p.current_pool_index() == blocker.args[0]

    # multiple exposures
    n_designation, n_position = c.groups()
    assert run.result.groups["designation"]["n_groups"] == n_designation
    assert run.result.groups["position"]["n_groups"] == n_position
    text = p.groups_label.text()
    assert f"in {n_designation} designation groups" in text
    assert f"{n_position} position groups within 5″" in text

    # the radius scan (candidates only): the core's scan, and the construction at 20″ and 60″
    x, y = p.plot.matched_curve.getData()
    scan = xm.radius_scan(xm.LocalCatalogue.from_file(c.simbad_file), cands["ra"],
                          cands["dec"], sorted(set(map(float, xm.SCAN_RADII)) | {20.0}))
    assert list(x) == list(scan["radius"]) and list(y) == list(scan["n_matched"])
    in_20 = sum(c.category(int(i), 20) != "new_unknown" for i in c.candidates)
    in_60 = sum(c.category(int(i), 60) != "new_unknown" for i in c.candidates)
    assert y[list(x).index(20.0)] == in_20 and y[list(x).index(60.0)] == in_60
    assert p.plot.chosen_line.value() == 20.0
    assert "known_h16 " in p.status.text() and "within 20″" in p.status.text()

    # a wider radius takes in the objects 40″ away
    p.radius.setValue(60)
    run60 = run_panel(qtbot, p)
    assert run60.counts == c.counts(60)
    assert run60.counts["new_in_simbad"] > run.counts["new_in_simbad"]
    assert run60.result.params["simbad_radius_arcsec"] == 60
    assert p.plot.chosen_line.value() == 60.0

    # no H16: nothing is known_h16; no SIMBAD: no scan, everything else new_unknown
    p.h16_enabled.setChecked(False)
    run_none = run_panel(qtbot, p)
    assert run_none.counts["known_h16"] == 0
    assert run_none.result.params["h16_catalogue"] == "none"
    p.set_source("none")
    p.h16_enabled.setChecked(True)
    run_h16 = run_panel(qtbot, p)
    assert run_h16.scan is None and len(p.plot.matched_curve.getData()[0] or []) == 0
    assert run_h16.counts["known_h16"] == expected["known_h16"]
    assert run_h16.counts["new_in_simbad"] == 0


def test_export_writes_votables_that_stilts_and_astropy_read(panel, qtbot, scored, tmp_path):
    from astropy.io.votable import parse_single_table
    from astropy.table import Table

    p = panel[0]
    c = Construction(scored, tmp_path)
    use_files(p, c)
    run = run_panel(qtbot, p)
    out = tmp_path / "tables"
    with qtbot.waitSignal(p.exported, timeout=WAIT_MS) as blocker:
        assert p.export_tables(out) is not None
        assert not p.run_button.isEnabled()
    paths = blocker.args[0]
    names = {f"{t}.{s}" for t in ("crossmatch", *xm.TABLE_NAMES, "radius_scan")
             for s in ("vot", "csv")}
    assert {Path(x).name for x in paths} == names
    assert {x.name for x in out.iterdir()} == names              # nothing else (no temp files)
    assert p.run_button.isEnabled() and f"wrote {len(names)} files" in p.status.text()
    counts = {**run.counts, "crossmatch": len(run.result.table)}
    for name, n in counts.items():
        t = Table.read(out / f"{name}.vot")
        assert len(t) == n, name
        assert len(Table.read(out / f"{name}.csv", format="ascii.csv")) == n
        assert set(t["category"]) <= ({name} if name != "crossmatch" else set(xm.TABLE_NAMES))
        vt = parse_single_table(str(out / f"{name}.vot"))
        params = {x.name: x.value for x in vt.params}
        assert params["table"] == name and params["simbad_radius_arcsec"] == 20.0
        assert params["h16_radius_arcsec"] == 5.0
        assert vt.get_field_by_id("simbad_sep").unit == "arcsec"
    scan = Table.read(out / "radius_scan.vot")
    assert list(scan["n_matched"]) == list(run.scan["n_matched"])
    if shutil.which("stilts") is None:
        pytest.skip("STILTS not installed (scripts/dachs.sh install)")
    for name, n in counts.items():
        proc = subprocess.run(["stilts", "tpipe", f"in={out / f'{name}.vot'}", "ifmt=votable",
                               "omode=count"], capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        assert int(proc.stdout.split("rows:")[1].split()[0]) == n, name
    lint = subprocess.run(["stilts", "votlint", str(out / "crossmatch.vot")],
                          capture_output=True, text=True, timeout=120)
    assert "ERROR" not in (lint.stdout + lint.stderr).upper(), lint.stdout + lint.stderr


def test_export_failure_is_named_and_the_panel_stays_usable(panel, qtbot, scored, tmp_path):
    p = panel[0]
    with qtbot.waitSignal(p.failed, timeout=WAIT_MS) as blocker:
        assert p.export_tables(tmp_path / "x") is None          # nothing to export yet
    assert "run the cross-match first" in blocker.args[0]
    c = Construction(scored, tmp_path)
    use_files(p, c)
    run_panel(qtbot, p)
    blocker_file = tmp_path / "a-file"
    blocker_file.write_text("not a folder")
    with qtbot.waitSignal(p.failed, timeout=WAIT_MS) as blocker:
        p.export_tables(blocker_file)
    assert str(blocker_file) in blocker.args[0] and str(blocker_file) in p.status.text()
    with qtbot.waitSignal(p.failed, timeout=WAIT_MS) as blocker:
        p.export_tables(tmp_path / "y", formats=("votable", "fits"))
    assert "fits" in blocker.args[0]
    with qtbot.waitSignal(p.exported, timeout=WAIT_MS):
        p.export_tables(tmp_path / "z", formats=("ecsv",))
    assert p.export_button.isEnabled() and p.run_button.isEnabled()


def test_without_a_project_the_candidates_table_is_matched(qtbot, qapp, scored, project,
                                                            tmp_path):
    before = top_level_widgets()
    cands = session_candidates(ActiveLearningSession(project)).candidates
    c = Construction(scored, tmp_path)
    p = CrossmatchPanel(lambda: cands)                  # as the main window makes it today
    try:
        with qtbot.waitSignal(p.failed, timeout=WAIT_MS):
            p.set_source("file")
            p.catalogue.setText("")
            p.run()                                       # no file chosen: said, not raised
        use_files(p, c)
        run = run_panel(qtbot, p)
        assert not run.from_project
        assert run.counts == {**c.counts(20), "rejected": 0}
        assert len(run.result.table) == len(c.candidates)
    finally:
        p.close()
        p.deleteLater()
        del p
    empty = CrossmatchPanel(lambda: {})
    try:
        with qtbot.waitSignal(empty.failed, timeout=WAIT_MS) as blocker:
            assert empty.run() is None
        assert "no candidates" in blocker.args[0]
    finally:
        empty.deleteLater()
        del empty
    flush_deletes()
    assert not [x for x in top_level_widgets() - before if x.isVisible() or x.parent() is None]


def test_local_dachs_tap_route_equals_the_file_route(panel, qtbot, dachs, monkeypatch):
    monkeypatch.setenv("VO_AL_DACHS_PORT", str(dachs.port))
    p = panel[0]
    p.radius.setValue(12)              # stars lie 4-16″ from their SIMBAD-like object
    p.set_source("local")
    tap = run_panel(qtbot, p)
    p.set_source("file")
    p.catalogue.setText(str(dachs.simbad_like_csv))
    local = run_panel(qtbot, p)
    assert tap.result.params["simbad_route"] == "upload"
    assert tap.result.params["simbad_catalogue"] == "local simbad_like"
    a, b = tap.result.table, local.result.table
    matched = np.asarray(b["simbad_n"]) > 0
    assert 0 < matched.sum() < len(b)                    # 12″ takes in some stars, not all
    for col in ("simbad_id", "simbad_otype", "simbad_n", "category"):
        assert list(a[col]) == list(b[col]), col
    np.testing.assert_allclose(a["simbad_sep"], b["simbad_sep"], atol=1e-6, equal_nan=True)
    assert tap.counts == local.counts
    for col in ("n_matched", "n_pairs", "n_multiple"):
        assert list(tap.scan[col]) == list(local.scan[col]), col
    assert tap.scan["n_matched"][-1] == len(local.result.table) - local.counts["rejected"]


def test_bad_catalogue_and_unreachable_tap_fail_clearly(panel, qtbot, scored, tmp_path):
    p = panel[0]
    bad = tmp_path / "bad.csv"
    bad.write_text("x,y\n1,2\n")
    p.set_source("file")
    p.catalogue.setText(str(bad))
    with qtbot.waitSignal(p.failed, timeout=WAIT_MS) as blocker:
        p.run()
    assert "bad.csv" in blocker.args[0] and "RA" in blocker.args[0]
    assert p.run_button.isEnabled() and not p.cancel_button.isEnabled()

    p.catalogue.setText(str(tmp_path / "missing.vot"))
    with qtbot.waitSignal(p.failed, timeout=WAIT_MS) as blocker:
        p.run()
    assert "missing.vot" in blocker.args[0] and "missing.vot" in p.status.text()

    c = Construction(scored, tmp_path)
    p.catalogue.setText(str(c.simbad_file))
    p.h16.setText(str(bad))
    with qtbot.waitSignal(p.failed, timeout=WAIT_MS) as blocker:
        p.run()
    assert "H16" in blocker.args[0] and "bad.csv" in blocker.args[0]

    with socket.socket() as s:                            # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/tap"
    p.set_source("url")
    p.tap_url.setText(url)
    p.h16.setText(str(c.h16_file))
    with qtbot.waitSignal(p.failed, timeout=WAIT_MS) as blocker:
        p.run()
    assert blocker.args[0].startswith(f"VOServiceError: {url}")        # names the service
    assert url in p.status.text()

    # still usable: the same panel runs to the end afterwards
    use_files(p, c)
    assert run_panel(qtbot, p).counts == c.counts(20)


class SilentServer:
    """Accepts HTTP connections and never answers, until released (a service that hangs)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.1)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/tap"
        self.connections: list[socket.socket] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, socket.timeout):
                continue
            except OSError:
                return
            self.connections.append(conn)

    def release(self):
        self.stop.set()
        self.thread.join(5)
        self.sock.close()
        for conn in self.connections:
            conn.close()


def test_cancel_while_the_service_does_not_answer(panel, qtbot, scored, tmp_path):
    p = panel[0]
    c = Construction(scored, tmp_path)
    use_files(p, c)
    first = run_panel(qtbot, p)
    server = SilentServer()
    try:
        p.set_source("url")
        p.tap_url.setText(server.url)
        stages = []
        worker = p.run()
        worker.progress.connect(lambda pr: stages.append(pr.stage))
        qtbot.waitUntil(lambda: "SIMBAD match" in stages and bool(server.connections),
                        timeout=WAIT_MS)
        assert p.is_running and "SIMBAD match" in p.progress.text()
        with qtbot.waitSignal(p.cancelled, timeout=WAIT_MS):
            qtbot.mouseClick(p.cancel_button, Qt.MouseButton.LeftButton)
            server.release()                   # the abandoned request ends
    finally:
        server.release()
    assert worker.was_aborted and worker.error is None
    assert "cancelled" in p.status.text()
    assert p.result is first                               # the last result is still shown
    assert p.run_button.isEnabled() and not p.cancel_button.isEnabled()
    assert p.export_button.isEnabled()
    use_files(p, c)
    assert run_panel(qtbot, p).counts == first.counts


def test_each_catalogue_is_asked_once_per_run(project, scored, tmp_path, monkeypatch):
    """The match, the groups and the radius scan share one request per catalogue. A catalogue
    that only answers `pairs` (SIMBAD over TAP is slow) is asked once, at the scan's largest
    radius, and cut from that; a catalogue in memory builds one zone index per radius and never
    lists every pair within the scan's 300″ (nearest pairs and counts only)."""
    from vo_al.core.jobs import crossmatch as job_module
    from vo_al.core.xmatch import catalogues

    c = Construction(scored, tmp_path)
    asked, built = [], []
    pairs, zone_index = xm.LocalCatalogue.pairs, catalogues.ZoneIndex

    def counting(self, ra, dec, radius):
        asked.append((self.name, len(ra), radius))
        return pairs(self, ra, dec, radius)

    def indexing(ra, dec, radius_deg):
        built.append(round(radius_deg * 3600.0, 6))
        return zone_index(ra, dec, radius_deg)

    monkeypatch.setattr(xm.LocalCatalogue, "pairs", counting)
    monkeypatch.setattr(catalogues, "ZoneIndex", indexing)
    settings = CrossmatchSettings("file", str(c.simbad_file), "", str(c.h16_file), radius=20)
    run = run_job(crossmatch_job(CancelToken(), settings, project))
    assert asked == [] and sorted(built) == [5.0, 20.0, 300.0]
    assert run.counts == c.counts(20)

    class PairsOnly:                        # what a TAP catalogue offers: pairs, nothing more
        def __init__(self, catalogue):
            self.catalogue, self.name = catalogue, catalogue.name

        def pairs(self, ra, dec, radius):
            return self.catalogue.pairs(ra, dec, radius)

    local_simbad = job_module.simbad_catalogue
    monkeypatch.setattr(job_module, "simbad_catalogue", lambda s: PairsOnly(local_simbad(s)))
    asked.clear()
    again = run_job(crossmatch_job(CancelToken(), settings, project))
    rows = len(c.candidates) + 1                             # candidates + the rejected one
    assert asked == [("simbad.csv", rows, 300.0)]
    assert again.counts == run.counts


def test_the_main_windows_panel(qtbot, qapp, scored, tmp_path):
    """The panel as the main window wires it: its candidates (and, once the window passes its
    project, the rejected spectra too) are matched; closing the window shuts the panel down."""
    from vo_al.gui.main_window import MainWindow

    before = top_level_widgets()
    c = Construction(scored, tmp_path)
    w = MainWindow(scored[0])
    p = worker = None
    try:
        w.show()
        qtbot.waitExposed(w)
        p, shown = w.crossmatch, w.dashboard.model
        qtbot.waitUntil(lambda: shown.rowCount() == len(c.candidates),
                        timeout=WAIT_MS)          # the dashboard fills its table (candidates)
        use_files(p, c)
        run = run_panel(qtbot, p)
        with_rejected = run.counts["rejected"] == 1
        assert run.from_project == with_rejected
        assert run.counts == {**c.counts(20), "rejected": int(with_rejected)}
        p.radius.setValue(60)
        worker = p.run()
        assert worker is not None and p.is_running
    finally:
        w.close()                                # cancels and waits for the running match
        w.deleteLater()
        del w, p                                 # pyqtgraph's menus live as long as these
    assert worker.wait(0)                        # its thread has ended already
    del worker
    flush_deletes()
    assert not [x for x in top_level_widgets() - before if x.isVisible() or x.parent() is None]


def test_an_empty_radius_scan_has_the_axes_of_one(qtbot):
    from vo_al.gui.crossmatch_panel import EMPTY_SCAN_COUNT, RadiusScanPlot

    plot = RadiusScanPlot()
    qtbot.addWidget(plot)
    plot.resize(600, 250)
    plot.show()
    qtbot.waitExposed(plot)
    (x0, x1), (y0, y1) = plot.viewRange()
    assert -20 < x0 <= min(xm.SCAN_RADII) and max(xm.SCAN_RADII) <= x1 < 320      # not ±400
    assert y0 <= 0 and EMPTY_SCAN_COUNT <= y1 < 2 * EMPTY_SCAN_COUNT
    for side in ("left", "bottom"):
        axis = plot.getAxis(side)
        assert not axis.autoSIPrefix and "x0.001" not in axis.labelString()
    assert not plot.chosen_line.isVisible()                  # no 'radius 0″' before a scan


def test_the_filter_decides_what_export_writes(panel, qtbot, scored, tmp_path):
    from astropy.table import Table

    p = panel[0]
    c = Construction(scored, tmp_path)
    use_files(p, c)
    run = run_panel(qtbot, p)
    everything = run.views[ALL]
    ra = p.model.columns.index("ra")
    first = p.proxy.mapToSource(p.proxy.index(0, ra)).row()
    assert p.proxy.index(0, ra).data() == f"{p.model.table['ra'][first]:.6f}"

    p.filter_box.edit.setText("simbad_sep <= 15")            # the 10″ objects, not the 40″
    assert p.filter_box.error.isHidden()
    shown = p.model.table["simbad_sep"] <= 15
    assert 0 < p.proxy.rowCount() == shown.sum() < len(shown)
    out = tmp_path / "filtered"
    with qtbot.waitSignal(p.exported, timeout=WAIT_MS):
        assert p.export_tables(out, formats=("csv",)) is not None
    kept = everything["simbad_sep"] <= 15
    back = Table.read(out / "crossmatch.csv", format="ascii.csv")
    assert sorted(back["pool_index"]) == sorted(everything["pool_index"][kept])
    near = {i for i in c.candidates if c.sky.star(int(i)) in c.near_stars}
    assert near <= set(back["pool_index"])
    assert "(filter: 'simbad_sep <= 15')" in p.status.text()

    p.filter_box.edit.setText("simbad_sep <= near")          # the reason, and no export of it
    assert "'near' is not a number" in p.filter_box.error.text()
    assert p.proxy.table_filter().expression == "simbad_sep <= 15"
