"""vo-al against the real local DaCHS serving SDM spectra: the Ondřejov-like CCD700 archive
harvested in both SDM forms and as native files gives the same rows; the air collection is
converted to vacuum and LAMOST is not; the labelled training set comes straight from the
service, matched by publisher DID (the published Ondřejov labels file where ../shared has it).
"""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from vo_al.core.base.progress import run_job
from vo_al.core.pool import PoolStore
from vo_al.core.spectra.readers import read_spectrum
from vo_al.core.vo.datalink import DatalinkService, product_urls
from vo_al.core.vo.harvest import harvest_table
from vo_al.core.vo.network import make_session
from vo_al.core.vo.query import ssap_search
from vo_al.core.vo.services import VOService

pytestmark = pytest.mark.filterwarnings("ignore::astropy.units.UnitsWarning")
N_HARVEST = 40


def _service(archive) -> VOService:
    return VOService("ccd700-test", "ssap", archive.ssap_url, ssa_size="radius")


@pytest.fixture(scope="module")
def compliant(ccd700):
    """The archive's SSAP rows that are SDM documents (FORMAT=compliant), the first 40."""
    table = ssap_search(_service(ccd700), maxrec=N_HARVEST, params={"FORMAT": "compliant"})
    assert len(table) == N_HARVEST and table.meta.get("datalink")
    return table


def _harvest(tmp_path, table, form, tag):
    with PoolStore.create(tmp_path / f"pool-{tag}") as pool:
        report = run_job(harvest_table(pool, tmp_path / f"harvest-{tag}", table, form=form,
                                       workers=4))
        meta = pool.metadata(columns=["name", "instrument", "obsid", "designation", "source"])
        return report, meta, pool.rows(np.arange(len(pool)))


def test_sdm_votable_sdm_fits_and_native_give_the_same_rows(tmp_path, compliant, ccd700):
    forms = {}
    for form in (None, "sdm-votable", "sdm-fits", "native"):
        report, meta, rows = _harvest(tmp_path, compliant, form, form or "as-listed")
        assert report.failed == [] and report.added == N_HARVEST, report.failed[:3]
        order = np.argsort(meta["name"])
        forms[form] = (np.asarray(meta["name"])[order], rows[order], meta, order)
    names = forms[None][0]
    # pool names are the DIDs' last parts: what the Ondřejov labels are keyed by
    assert set(names) == {str(d).rsplit("/", 1)[-1] for d in compliant["ssa_pubDID"]}
    for form in ("sdm-votable", "sdm-fits", "native"):
        np.testing.assert_array_equal(forms[form][0], names)
        assert np.max(np.abs(forms[form][1] - forms[None][1])) <= 1e-6, form
    sources = {form: list(np.asarray(forms[form][2]["source"])) for form in forms}
    assert all("FORMAT=application%2Ffits" in s for s in sources["sdm-fits"])
    assert all(s.endswith(".fits") and "/ccd700/data/" in s for s in sources["native"])
    assert set(np.asarray(forms["sdm-fits"][2]["instrument"])) == {"ccd700"}


def test_air_collection_is_converted_lamost_is_not(tmp_path, compliant, ccd700, dachs):
    session = make_session()
    did = str(compliant["ssa_pubDID"][0])
    links = DatalinkService(compliant.meta["datalink"], compliant.meta["datalink_id"])
    urls = {form: product_urls(links, [did], form, session).urls[did]
            for form in ("sdm-fits", "sdm-votable", "native")}
    spectra = {}
    for form, url in urls.items():
        path = tmp_path / f"{form}.bin"
        path.write_bytes(session.get(url, timeout=30).content)
        spectra[form] = read_spectrum(path)
    native = spectra["native"]
    assert native.reader == "ccd700" and native.medium == "air"
    for form in ("sdm-fits", "sdm-votable"):
        sdm = spectra[form]
        assert sdm.medium == "air" and "air" in sdm.medium_reason.lower()
        np.testing.assert_allclose(sdm.wavelength, native.wavelength, rtol=0, atol=1e-6)
        assert np.all(sdm.wavelength > 6250.0 + 1.7)             # shifted from air to vacuum
        assert sdm.meta.obsid == did
    # LAMOST on the same server: SDM says vacuum, and its wavelengths stay as served
    lamost = ssap_search("local-ssap", maxrec=1)
    links = DatalinkService(lamost.meta["datalink"], lamost.meta["datalink_id"])
    lamost_did = str(lamost[lamost.meta["datalink_id"]][0])
    url = product_urls(links, [lamost_did], "sdm-fits", session).urls[lamost_did]
    path = tmp_path / "lamost-sdm.fits"
    path.write_bytes(session.get(url, timeout=30).content)
    sdm = read_spectrum(path)
    own = read_spectrum(dachs.local_file(str(lamost["accref"][0])))
    assert sdm.medium == "vacuum" and own.medium == "vacuum"
    np.testing.assert_allclose(sdm.wavelength, own.wavelength, rtol=2e-7)   # float32 rows


def test_a_did_the_service_does_not_know_is_reported(ccd700, compliant):
    links = DatalinkService(compliant.meta["datalink"], compliant.meta["datalink_id"])
    known = str(compliant["ssa_pubDID"][0])
    found = product_urls(links, [known, f"ivo://{ccd700.authority}/ccd700/zz999999"],
                         "sdm-fits", make_session())
    assert list(found.urls) == [known]
    assert found.failed and found.failed[0][0].endswith("zz999999") and found.failed[0][1]


def _labels_file(tmp_path, ccd700) -> tuple[Path, int]:
    """The published Ondřejov labels file the archive's names were taken from (its ids are
    those names with the real authority), else the archive's truth in the same scheme. Which
    one is the import's record, not whether ../shared has the file now: an archive imported
    with synthetic names matches only a handful of the real ids by chance."""
    real = ccd700.labels_source
    if real is not None:
        return real, sum(1 for _ in csv.DictReader(real.open()))
    path = tmp_path / "labels.csv"
    rows = list(csv.DictReader(ccd700.truth.open()))
    with path.open("w") as fh:
        fh.write("id,label\n")
        for row in rows:
            fh.write(f"{row['id'].replace(ccd700.authority, 'asu.cas.cz/stel')},{row['label']}\n")
        fh.write("ivo://asu.cas.cz/stel/ccd700/xx000001,1\n")         # not on the service
    return path, len(rows) + 1


def test_import_training_from_the_service_by_did(tmp_path, ccd700):
    from vo_al.core.session.labels import read_label_csv, spectrum_key
    from vo_al.core.session.project import Project

    labels, n_labels = _labels_file(tmp_path, ccd700)
    project = Project.create(tmp_path / "proj", tmp_path / "proj" / "pool")
    result = run_job(project.import_training_from_service(
        _service(ccd700), labels, scheme="ondrejov", form="sdm-fits", workers=4))
    truth = {row["id"].rsplit("/", 1)[-1]: int(row["label"])
             for row in csv.DictReader(ccd700.truth.open())}
    assert result["matched"] == ccd700.n_spectra == result["ingested"]
    assert result["labelled"] == ccd700.n_spectra and result["failed"] == 0
    wanted = {spectrum_key(name) for name, _ in read_label_csv(labels, "ondrejov")}
    assert result["labels"] == len(wanted) and n_labels >= len(wanted)
    assert result["not_found"] == len(wanted - set(truth)) > 0
    missing = Path(result["not_found_file"]).read_text().split()
    assert len(missing) == result["not_found"] and not set(missing) & set(truth)
    stored = project.store.training_labels()
    scheme = {0: 1, 1: 0, 3: 2}                    # ondrejov 0 single, 1 absorption, 3 double
    assert {name: label for name, label in stored.items()} == \
        {name: scheme[label] for name, label in truth.items()}
    # resumable and cached: again, nothing new is downloaded
    again = run_job(project.import_training_from_service(
        _service(ccd700), labels, scheme="ondrejov", form="sdm-fits"))
    assert again["ingested"] == 0 and again["skipped"] == ccd700.n_spectra
    project.close()


def test_cli_import_training_and_harvest_forms(tmp_path, ccd700):
    labels, _ = _labels_file(tmp_path, ccd700)
    proj = tmp_path / "p"

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "vo_al.cli", *args], capture_output=True,
                              text=True, timeout=600)

    assert cli("create", str(proj)).returncode == 0
    done = cli("import-training", str(proj), "--ssap", ccd700.ssap_url, "--labels", str(labels),
               "--scheme", "ondrejov")
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"{ccd700.n_spectra} labelled spectra" in done.stdout and "ids not on the service" \
        in done.stdout
    bad = cli("import-training", str(proj), "--ssap", ccd700.ssap_url)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    harvest = cli("harvest", str(proj), "--service", ccd700.ssap_url, "--whole-service",
                  "--maxrec", "12", "--ssa-format", "compliant", "--form", "sdm-votable")
    assert harvest.returncode == 0, harvest.stderr[-2000:]
    assert "added 12," in harvest.stdout and "pool holds 12 spectra" in harvest.stdout
