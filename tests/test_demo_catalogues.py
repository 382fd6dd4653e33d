"""The offline demo's own SIMBAD-like and H16-like catalogues: a cross-match of the demo finds
the paper's four tables, through the same core calls as `vo-al crossmatch`."""

from __future__ import annotations

import numpy as np

from vo_al.core import xmatch as xm
from vo_al.core.session.candidates import candidate_table, rejected_table
from vo_al.core.demo.catalogues import project_catalogues
from vo_al.core.base.progress import run_job
from vo_al.core.demo.simulate import SimulationConfig, prepare


def test_the_demo_sky_has_its_own_catalogues_and_all_four_tables(tmp_path):
    config = SimulationConfig(n_train=120, n_pool=800, target_fraction=0.1, workers=1)
    project, oracle = run_job(prepare(tmp_path / "demo", config))
    try:
        found = project_catalogues(project.folder)
        assert set(found) == {"simbad", "h16"}
        before = {k: p.read_bytes() for k, p in found.items()}
        run_job(prepare(tmp_path / "demo", config))          # written once, kept as they are
        assert {k: p.read_bytes() for k, p in found.items()} == before

        # a perfect model's candidates are the true targets; the oracle rejected a few others
        labels = oracle.labels
        proba = np.eye(3, dtype=np.float32)[labels]
        rejected_idx = np.flatnonzero(labels == 0)[:10]
        oracle_labels = {int(i): 0 for i in rejected_idx}
        candidates = candidate_table(project.pool, proba, oracle_labels)
        rejected = rejected_table(project.pool, proba, oracle_labels)
        n_targets = int((labels > 0).sum())
        assert len(candidates["ra"]) == n_targets > 20

        simbad = xm.LocalCatalogue.from_file(found["simbad"])
        h16 = xm.h16_catalogue(found["h16"])
        result = xm.crossmatch_candidates(candidates, simbad, h16, radius=20, h16_radius=5,
                                          rejected=rejected)
        counts = result.counts()
        assert counts["rejected"] == 10
        # every other target is in H16; most of the rest are in SIMBAD; some in neither
        assert abs(counts["known_h16"] - n_targets / 2) <= 1
        assert counts["new_in_simbad"] > 0 and counts["new_unknown"] > 0
        assert sum(counts[k] for k in ("known_h16", "new_in_simbad", "new_unknown")) == n_targets
        # counterparts 0.2-12" away: fewer found at 5" than at 20"
        at5 = xm.crossmatch(simbad, candidates["ra"], candidates["dec"], 5).matched.sum()
        at20 = xm.crossmatch(simbad, candidates["ra"], candidates["dec"], 20).matched.sum()
        assert 0 < at5 < at20
    finally:
        project.close()
