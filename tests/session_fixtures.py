"""Small in-memory spectra for session tests: rows made by the real preprocessing."""

from __future__ import annotations

import numpy as np

from vo_al.core.spectra.preprocess import preprocess_batch
from vo_al.core.session.settings import ProjectSettings


def tiny_settings(**method) -> ProjectSettings:
    """Method settings small enough for a test to train and query in seconds."""
    s = ProjectSettings.default()
    s.method.batch_size = 20
    s.method.precision_sample = 10
    s.method.max_epochs = 2
    s.method.long_max_epochs = 3
    s.method.patience = 1
    s.method.train_batch = 128
    for k, v in method.items():
        setattr(s.method, k, v)
    return s


def profile_rows(labels: np.ndarray, rng: np.random.Generator, noise=(0.01, 0.2)) -> np.ndarray:
    """Preprocessed rows of Hα absorption (0), single-peak (1) or double-peak (2) emission."""
    wl = np.linspace(6450, 6800, 900)
    n = len(labels)
    centre = 6564.6 * (1 + rng.normal(0, 100, n) / 3e5)[:, None]
    width = rng.uniform(1.5, 4, n)[:, None]
    g = lambda c, w: np.exp(-0.5 * ((wl - c) / w) ** 2)
    amp = rng.uniform(0.3, 3, n)[:, None]
    sep = rng.uniform(2.5, 6, n)[:, None]
    flux = np.ones((n, wl.size))
    flux -= np.where(labels[:, None] == 0, 0.6 * g(centre, width), 0)
    flux += np.where(labels[:, None] == 1, amp * g(centre, width), 0)
    flux += np.where(labels[:, None] == 2, amp * (g(centre - sep, width / 2)
                                                  + g(centre + sep, width / 2)), 0)
    flux += rng.normal(0, 1, flux.shape) * rng.uniform(*noise, n)[:, None]
    return preprocess_batch(wl, flux, 0.0).rows


def fill_project(project, n_train=300, n_pool=2000, seed=0, pool_meta=None):
    """A project with an in-memory training set and pool; returns the pool's true labels.
    `pool_meta(i)` gives metadata of pool row i that replaces or adds to the defaults."""
    rng = np.random.default_rng(seed)
    y0 = rng.choice(3, n_train, p=[0.47, 0.41, 0.12])
    project.training.add_rows(profile_rows(y0, rng),
                              [{"name": f"train-{i:05d}", "instrument": "ccd700"}
                               for i in range(n_train)], settings=project.settings.preprocess)
    project.store.set_training_labels([f"train-{i:05d}" for i in range(n_train)], y0)
    truth = rng.choice(3, n_pool, p=[0.9, 0.08, 0.02])
    rows = profile_rows(truth, rng, noise=(0.02, 0.6))
    metas = [{"name": f"pool-{i:06d}", "ra": 10 + i * 1e-3, "dec": 20.0, "instrument": "lamost",
              "source": f"http://127.0.0.1/spec/{i}.fits", **(pool_meta(i) if pool_meta else {})}
             for i in range(n_pool)]
    project.pool.add_rows(rows, metas, settings=project.settings.preprocess)
    return truth
