"""The command line says what happened and nothing else: no backend start-up noise, no 'ETA
nan', a bar that stops before its total says so, `vo-al status` is a short summary."""

from __future__ import annotations

import io
import subprocess
import sys

import pytest

from vo_al.core.base.errors import VOError, reason_text
from vo_al.core.base.progress import Progress, TextProgressBar


def test_bars_have_no_nan_and_say_where_they_ended():
    out = io.StringIO()
    bar = TextProgressBar(out, min_interval=0.0)
    bar(Progress("train", 0, 60, "starting"))
    for epoch in range(1, 34):
        bar(Progress("train", epoch, 60, "loss 0.1"))
    bar(Progress("train", 33, 60, "early stopping: no improvement"))
    bar(Progress("score", 10, 10))
    bar.close()
    text = out.getvalue()
    assert "nan" not in text.lower() and "ETA     --" in text
    first, second = text.split("\n")[:2]
    assert first.endswith("ended at 33 of 60") and "early stopping" in first
    assert "10/10" in second and "ended at" not in second


def test_the_backend_starts_without_noise_on_stderr():
    code = ("from vo_al.core.learning.model import _keras, build_cnn\n"
            "import numpy as np\n_keras()\n"
            "build_cnn().predict_on_batch(np.zeros((2, 140, 1), 'f4'))\n"
            "import sys; print('real error line', file=sys.stderr)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300, env={**__import__("os").environ,
                                            "TF_CPP_MIN_LOG_LEVEL": ""})
    assert done.returncode == 0, done.stderr
    assert "oneDNN" not in done.stderr and "absl::InitializeLog" not in done.stderr
    assert "real error line" in done.stderr            # what is not noise still shows


def test_status_is_a_short_summary_and_json_on_request(tmp_path):
    import json

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "vo_al.cli", *args], capture_output=True,
                              text=True, timeout=120)

    project = tmp_path / "p"
    assert cli("create", str(project)).returncode == 0
    summary = cli("status", str(project)).stdout.splitlines()
    assert summary[2] == "iteration 1: next step train" and len(summary) <= 8
    assert summary[-1] == f"next      vo-al train {project}"
    assert json.loads(cli("status", str(project), "--json").stdout)["iteration"] == 0


def test_an_unreachable_service_keeps_its_whole_reason():
    """'The service d...' was a reason cut at 300 characters: the word that said what was
    wrong was lost. Errors of VO queries and SAMP replies carry the whole text, on one line."""
    from vo_al.core.samp.hub import error_text
    from vo_al.core.vo.query import ssap_search

    long = RuntimeError("The service " + "did not answer; " * 40 + "\nthe end of the reason")
    assert reason_text(long).endswith("the end of the reason") and "\n" not in reason_text(long)
    assert error_text(long) == reason_text(long)
    with pytest.raises(VOError) as info:                 # nothing listens on port 9
        ssap_search("http://127.0.0.1:9/ssa", (10.0, 10.0), 0.1)
    assert not info.value.reason.endswith("...") and "unreachable" in info.value.reason
