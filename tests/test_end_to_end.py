"""End to end: synthetic FITS -> project -> the loop, through the command line and the core."""

import csv
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from vo_al.core.demo import make_pool, make_training_set
from vo_al.core.base.errors import ProjectError
from vo_al.core.base.progress import run_job
from vo_al.core.session.settings import ProjectSettings
from vo_al.core.demo.simulate import SimulationConfig, report_markdown, run_simulation

pytestmark = pytest.mark.slow


def vo_al(*args, check=True):
    result = subprocess.run([sys.executable, "-m", "vo_al.cli", *map(str, args)],
                            capture_output=True, text=True, timeout=900)
    if check:
        assert result.returncode == 0, result.stderr[-3000:]
    return result


def test_command_line_runs_one_iteration_on_fits_files(tmp_path):
    train_dir = make_training_set(tmp_path / "train", n=300, seed=3)
    pool_dir = make_pool(tmp_path / "pool", n=1500, seed=4, broken=3)
    project = tmp_path / "proj"
    vo_al("create", project, "--set", "batch_size=25", "--set", "precision_sample=10",
          "--set", "max_epochs=3")
    out = vo_al("import-training", project, train_dir, train_dir / "labels.csv").stdout
    assert json.loads(out)["labelled"] == 300
    out = vo_al("ingest", project, pool_dir).stdout
    added, rejected = map(int, re.search(r"added (\d+),.* rejected (\d+)", out).groups())
    # the 3 broken files, and the 'gap' artefacts whose H-alpha window is mostly dead columns
    # (flux 0, ivar 0): too little usable data there for a row
    kind = {r["name"]: r["kind"] for r in csv.DictReader(open(pool_dir / "truth.csv"))}
    shown = [os.path.basename(p) for p in re.findall(r"  rejected (\S+): ", out)]
    assert added + rejected == 1503 and 3 < rejected < 100
    assert all(kind[name] == "gap" or kind[name].startswith("broken-") for name in shown)
    assert sum(kind[name].startswith("broken-") for name in shown) == 3
    again = vo_al("ingest", project, pool_dir).stdout          # resumable: nothing twice
    assert "added 0, skipped 1503" in again           # rejected files are remembered too
    vo_al("train", project)
    vo_al("score", project)
    vo_al("query", project, "--out", tmp_path / "pending.csv")
    with open(tmp_path / "pending.csv") as fh:
        pending = list(csv.DictReader(fh))
    assert sum(r["purpose"] == "query" for r in pending) == 25
    truth = {r["name"]: r["label"] for r in csv.DictReader(open(pool_dir / "truth.csv"))}
    with open(tmp_path / "labels.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["name", "label"])
        for r in pending:
            w.writerow([r["name"], truth[r["name"]]])
    labelled = vo_al("label", project, "--csv", tmp_path / "labels.csv").stdout
    assert labelled.count("ack ") == len(pending)
    assert "precision" in vo_al("estimate", project).stdout
    status = json.loads(vo_al("status", project, "--json").stdout)
    summary = vo_al("status", project).stdout            # a short human summary by default
    assert "next step" in summary and len(summary.splitlines()) <= 10
    assert status["oracle_labels"] == 25 and status["next_step"] in ("train", "finish")
    vo_al("candidates", project, "--out", tmp_path / "cand.csv")
    assert (tmp_path / "cand.csv").read_text().startswith("pool_index,name")
    bad = vo_al("query", tmp_path / "nowhere", check=False)
    assert bad.returncode == 2 and "nowhere" in bad.stderr and "not a vo-al project" in bad.stderr


def test_simulation_with_baseline_plot_and_final_candidates(tmp_path):
    settings = ProjectSettings.default()
    settings.method.batch_size = 50
    settings.method.max_epochs = 3
    settings.method.long_max_epochs = 3
    config = SimulationConfig(n_train=400, n_pool=2000, max_iterations=2, seed=7)
    report = run_job(run_simulation(tmp_path, config, settings))
    assert [r["iteration"] for r in report.iterations] == [0, 1]
    assert report.iterations[1]["n_train"] == 450
    assert report.baseline["target_predicted"] >= 0
    png = (tmp_path / "precision.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    saved = json.loads((tmp_path / "simulation.json").read_text())
    assert len(saved["iterations"]) == 2
    final = report.final
    predicted = sum(sum(row.values()) for row in final["confusion"].values())
    assert predicted == final["target_predicted"]
    candidates = list(csv.DictReader(open(tmp_path / "project" / "candidates.csv")))
    oracle = [c for c in candidates if c["origin"] == "oracle"]
    assert len(oracle) == final["oracle_targets"]
    # the model's targets and the oracle's, less the predicted ones a person rejected in a
    # precision sample, plus the precision-sample targets it had not predicted (candidates.py)
    from vo_al.core.session.project import Project

    project = Project.open(tmp_path / "project")
    try:
        oracle_labels = project.store.oracle_labels()
        reviewed = {i: v for i, v in project.store.reviewed_labels().items()
                    if i not in oracle_labels}
        predicted_classes = np.load(tmp_path / "project" / "scores" / "final.npy").argmax(1)
    finally:
        project.close()
    rejected = sum(1 for i, v in reviewed.items() if v == 0 and predicted_classes[i] > 0)
    added = sum(1 for i, v in reviewed.items() if v > 0 and predicted_classes[i] == 0)
    assert len(candidates) == (final["target_predicted"] + final["oracle_targets"]
                               - rejected + added)
    assert sum(1 for c in candidates if c["origin"] == "precision") == \
        sum(1 for v in reviewed.values() if v > 0)
    assert "| iteration |" in report_markdown(report)

    # running again on the finished folder resumes to "done" at once instead of spinning
    again = run_job(run_simulation(tmp_path, config, settings))
    assert again.iterations == [] and again.final is None
    # and a folder made for other data is refused, naming it
    other = SimulationConfig(n_train=400, n_pool=3000, max_iterations=2, seed=7)
    with pytest.raises(ProjectError, match="n_pool"):
        run_job(run_simulation(tmp_path, other, settings))
