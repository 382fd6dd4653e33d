"""User preferences, project settings changes and the whole-spectrum prefetcher (core, no Qt)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from vo_al.core.base.errors import ParameterError, VoAlError
from vo_al.core.vo.harvest import SpectrumCache
from vo_al.core.session.preferences import (MAX_RECENT, UserPreferences, load_preferences,
                                    preferences_path, save_preferences)
from vo_al.core.session.project import Project
from vo_al.core.session.loop import ActiveLearningSession
from vo_al.core.session.settings import ProjectSettings
from vo_al.core.spectra.record import SpectrumMeta
from vo_al.core.vo.prefetch import SourceUnavailable, SpectrumPrefetcher
from vo_al.core.demo import make_lamost_spectrum, write_lamost_fits

from session_fixtures import fill_project


# -- preferences ---------------------------------------------------------------------------------
def test_preferences_live_in_the_user_config_folder_and_round_trip(tmp_path):
    assert not preferences_path().exists()          # each test has a private config folder
    prefs = load_preferences()
    assert prefs == UserPreferences()
    folders = [tmp_path / f"p{i}" for i in range(MAX_RECENT + 3)]
    for f in folders:
        f.mkdir()
        prefs.add_recent(f)
    prefs.add_recent(folders[2])                    # re-opened: moves to the front, once
    prefs.label_keys = "asd"
    path = save_preferences(prefs)
    again = load_preferences()
    assert again.recent_projects[0] == str(folders[2].resolve())
    assert len(again.recent_projects) == MAX_RECENT
    assert again.recent_projects.count(str(folders[2].resolve())) == 1
    assert again.label_keys == "asd" and json.loads(path.read_text())["label_keys"] == "asd"
    folders[-1].rmdir()                             # a moved project is skipped, not forgotten
    assert str(folders[-1].resolve()) not in again.existing_recent()
    assert str(folders[-1].resolve()) in again.recent_projects


def test_unreadable_preferences_are_kept_aside_and_defaults_used():
    path = preferences_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('{"recent_projects": ["/a"], "label_keys": ')      # cut off mid-write
    prefs = load_preferences()
    assert prefs.recent_projects == [] and str(path) in prefs.problem
    aside = path.with_name(path.name + ".unreadable")
    assert aside.read_text().startswith('{"recent_projects"')          # nothing thrown away


@pytest.mark.parametrize("keys", ["12", "112", "1 3"])
def test_bad_label_keys_are_refused_naming_the_value(keys):
    with pytest.raises(ParameterError, match="label_keys"):
        save_preferences(UserPreferences(label_keys=keys))
    assert not preferences_path().exists()


# -- project settings ------------------------------------------------------------------------------
def test_change_settings_is_validated_saved_and_seen_by_the_session(tmp_path):
    project = Project.create(tmp_path / "proj", tmp_path / "proj" / "pool")
    session = ActiveLearningSession(project)
    project.change_settings({"batch_size": "40", "warm_start": False})
    assert session.method.batch_size == 40 and session.method.warm_start is False
    on_disk = ProjectSettings.load(project.folder / "settings.json")
    assert on_disk.method.batch_size == 40

    before = (project.folder / "settings.json").read_text()
    with pytest.raises(ParameterError, match="precision_threshold"):
        project.change_settings({"batch_size": "60", "precision_threshold": "1.5"})
    assert (project.folder / "settings.json").read_text() == before     # all or nothing
    assert session.method.batch_size == 40
    with pytest.raises(ParameterError, match="patience.*abc"):
        project.change_settings({"patience": "abc"})
    project.close()


def test_preprocessing_is_fixed_once_the_pool_holds_spectra(tmp_path):
    project = Project.create(tmp_path / "proj", tmp_path / "proj" / "pool")
    project.change_settings(preprocess={"n_points": "120"})    # empty pool: allowed
    assert project.settings.preprocess.n_points == 120
    project.change_settings(preprocess={"n_points": "140"})
    fill_project(project, n_train=30, n_pool=20)
    with pytest.raises(ParameterError, match="window_min"):
        project.change_settings(preprocess={"window_min": "6500"})
    project.change_settings(preprocess={"window_min": "6519.0"})    # unchanged value: fine
    project.close()


# -- prefetching whole spectra ----------------------------------------------------------------------
def lamost_file(path, seed=0):
    wl, flux, ivar, andmask, ormask = make_lamost_spectrum(1, np.random.default_rng(seed))
    write_lamost_fits(path, wl, flux, ivar, andmask, ormask,
                      SpectrumMeta(name=path.stem, ra=10.0, dec=20.0))
    return path, len(wl)


@pytest.fixture
def fits_server(tmp_path):
    """A loopback HTTP server serving tmp_path/www; records the paths asked for."""
    www = tmp_path / "www"
    www.mkdir()
    hits: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            hits.append(self.path)
            file = www / self.path.lstrip("/")
            if not file.is_file():
                self.send_error(404, "no such spectrum")
                return
            body = file.read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}", www, hits
    httpd.shutdown()
    httpd.server_close()


def test_local_files_are_read_and_errors_name_the_file(tmp_path):
    path, n = lamost_file(tmp_path / "spec-1.fits")
    broken = tmp_path / "broken.fits"
    broken.write_bytes(b"SIMPLE  =                    T" + b"\0" * 100)
    fetch = SpectrumPrefetcher(tmp_path / "cache")
    try:
        assert len(fetch.request(str(path)).result(30).flux) == n
        assert fetch.request(str(path)) is fetch.request(str(path))     # held, not re-read
        with pytest.raises(SourceUnavailable, match="gone.fits.*not found"):
            fetch.request(str(tmp_path / "gone.fits")).result(30)
        with pytest.raises(VoAlError, match="broken.fits"):
            fetch.request(str(broken)).result(30)
        with pytest.raises(SourceUnavailable, match="ftp://"):
            fetch.request("ftp://example.org/x.fits").result(30)
    finally:
        fetch.close()


def test_urls_are_downloaded_once_into_the_harvest_cache(tmp_path, fits_server):
    base, www, hits = fits_server
    _, n = lamost_file(www / "spec-2.fits")
    (www / "page.fits").write_text("<html>not a spectrum</html>")
    url = f"{base}/spec-2.fits"
    cache = tmp_path / "cache"
    fetch = SpectrumPrefetcher(cache)
    try:
        assert len(fetch.request(url).result(30).flux) == n
        assert SpectrumCache(cache).has(url)
        with pytest.raises(VoAlError, match="404"):
            fetch.request(f"{base}/missing.fits").result(30)
        with pytest.raises(VoAlError, match="not a FITS file"):
            fetch.request(f"{base}/page.fits").result(30)
    finally:
        fetch.close()
    # a new prefetcher (the app restarted) reads the cached file: no second download
    again = SpectrumPrefetcher(cache)
    try:
        assert len(again.request(url).result(30).flux) == n
    finally:
        again.close()
    assert hits.count("/spec-2.fits") == 1
    assert not list(cache.rglob(".part-*"))          # no half-written file left in the cache


def test_only_the_newest_requests_are_held(tmp_path):
    paths = [lamost_file(tmp_path / f"s{i}.fits", seed=i)[0] for i in range(5)]
    fetch = SpectrumPrefetcher(None, workers=1, keep=3)
    try:
        futures = [fetch.request(str(p)) for p in paths]
        assert futures[-1].result(30) is not None
        assert fetch.request(str(paths[0])) is not futures[0]      # dropped, asked again
    finally:
        fetch.close()
