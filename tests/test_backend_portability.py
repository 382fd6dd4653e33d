"""Model files are portable between Keras backends, the backend is chosen as documented, and
bf16 scoring is the float32 model computing in bf16.

A model trained under TensorFlow (this process's backend) is loaded and scored under JAX in a
child process (Keras fixes its backend at import): the same probabilities within 1e-5 and the
same entropy query batch. The JAX CPU wheel is a test dependency (pyproject's `test` extra).
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import numpy as np
import pytest

from session_fixtures import profile_rows
from vo_al.core.learning.device import choose_backend, nvidia_gpu_present
from vo_al.core.learning.model import build_cnn, predict_proba, save_model, train
from vo_al.core.learning.strategies import query

_SCORE_UNDER = """
import sys
import numpy as np
from pathlib import Path
from vo_al.core.learning.model import load_model, predict_proba, describe_device
model = load_model(Path(sys.argv[1]))
np.save(sys.argv[3], predict_proba(model, np.load(sys.argv[2])))
print(describe_device("float32"))
"""


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A CNN trained a few epochs under TensorFlow on plausible profiles, and a pool to score."""
    from vo_al.core.base.progress import run_job

    rng = np.random.default_rng(7)
    labels = rng.integers(0, 3, 600)
    model = build_cnn(seed=3)
    run_job(train(model, profile_rows(labels, rng), labels, max_epochs=4, patience=10))
    folder = tmp_path_factory.mktemp("portable")
    path = folder / "model.keras"
    save_model(model, path)
    pool = profile_rows(rng.integers(0, 3, 3000), rng, noise=(0.05, 0.6))
    return model, path, pool, folder


@pytest.mark.skipif(importlib.util.find_spec("jax") is None,
                    reason="JAX is not installed (the test extra installs its CPU wheel)")
def test_a_tensorflow_model_scores_the_same_under_jax(trained):
    import keras

    model, path, pool, folder = trained
    assert keras.backend.backend() == "tensorflow"
    proba_tf = predict_proba(model, pool)
    np.save(folder / "pool.npy", pool)
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    done = subprocess.run([sys.executable, "-c", _SCORE_UNDER, str(path), str(folder / "pool.npy"),
                           str(folder / "jax.npy")], env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "jax" in done.stdout and "CPU" in done.stdout
    proba_jax = np.load(folder / "jax.npy")
    assert np.max(np.abs(proba_jax - proba_tf)) <= 1e-5
    available = np.ones(len(pool), dtype=bool)
    batch_tf = query("entropy", proba_tf, available, 100)
    batch_jax = query("entropy", proba_jax, available, 100)
    assert set(batch_tf.tolist()) == set(batch_jax.tolist())


def test_bf16_scoring_is_the_float32_model_in_bf16(trained):
    model, _, pool, _ = trained
    f32 = predict_proba(model, pool)
    bf16 = predict_proba(model, pool, precision="bfloat16")
    assert bf16.dtype == np.float32
    np.testing.assert_allclose(bf16.sum(axis=1), 1.0, atol=1e-5)   # a float32 softmax
    assert np.max(np.abs(bf16 - f32)) < 0.05                        # bf16: ~3 digits
    sure = np.max(f32, axis=1) > 0.9
    assert np.all(np.argmax(bf16[sure], 1) == np.argmax(f32[sure], 1))
    with pytest.raises(Exception, match="scoring_precision"):
        predict_proba(model, pool[:4], precision="float16")


def test_backend_choice_follows_the_documented_order():
    assert choose_backend({"KERAS_BACKEND": "torch"}).backend == "torch"
    choice = choose_backend({})
    if not nvidia_gpu_present():
        assert choice.backend == "tensorflow" and "no GPU" in choice.reason
    else:                                        # a GPU machine: JAX or torch when installed
        assert choice.backend in ("jax", "torch", "tensorflow") and "GPU" in choice.reason
