"""The 1-D CNN of the paper (Sect. 3.4, Fig. 4) in Keras 3, trained epoch by epoch as a job.

Nothing here ties the model to one backend: TensorFlow is the default, and JAX or PyTorch work
through KERAS_BACKEND. Keras is imported lazily because `import tensorflow` costs seconds and
hundreds of MB, which commands such as `vo-al status` should not pay.
"""

from __future__ import annotations

import logging
import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vo_al.core.base.atomic import fsync_dir, remove_quietly, temporary_sibling
from vo_al.core.base.errors import Cancelled
from vo_al.core.base.progress import CancelToken, Job, Progress

from vo_al.core.learning.classes import N_CLASSES


# What TensorFlow's C++ side prints on stderr at start-up whatever TF_CPP_MIN_LOG_LEVEL says
# (absl before its InitializeLog, oneDNN's notice, the CPU feature guard, CUDA probing on a
# machine without CUDA): noise to a person reading vo-al's own output, dropped; anything else
# printed meanwhile is passed on.
_STARTUP_NOISE = ("All log messages before absl::InitializeLog()", "oneDNN custom operations",
                  "cpu_feature_guard", "This TensorFlow binary is optimized",
                  "To enable the following instructions", "Unable to register cu",
                  "TF-TRT Warning", "Could not find cuda drivers", "computation placer already",
                  "cuda_dnn.cc", "cuda_blas.cc", "cuda_fft.cc", "E0000 00:00", "W0000 00:00")


@contextmanager
def _quiet_startup():
    """fd 2 into a temporary file while the backend starts; its lines that are not start-up
    noise are written back to stderr afterwards (a real error is never hidden)."""
    import sys
    import tempfile

    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):           # no real fd 2 (an embedded interpreter): as it is
        yield
        return
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            kept = [line for line in captured.read().decode("utf-8", "replace").splitlines()
                    if line.strip() and not any(noise in line for noise in _STARTUP_NOISE)]
            for line in kept:
                print(line, file=sys.stderr)


_started = False


def _keras():
    global _started
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from vo_al.core.learning.device import configure_backend

    configure_backend()                  # before Keras's first import fixes the backend
    if not _started:
        with _quiet_startup():
            import keras

            if keras.backend.backend() == "tensorflow":
                import tensorflow as tf

                tf.constant(0.0) + 1.0   # the first op: where oneDNN says its notice
        _started = True
    import keras

    # tf.function retracing notices (a new model per iteration, a short last batch) are noise
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    return keras


def build_cnn(n_points: int = 140, n_classes: int = N_CLASSES, seed: int = 0):
    """input 140x1 -> 2x conv3-64 -> pool -> 2x conv3-128 -> pool -> 2x conv3-256 -> pool ->
    fc-512 -> dropout .5 -> fc-512 -> dropout .5 -> softmax(3). ReLU, Adam defaults."""
    keras = _keras()
    from keras import layers

    keras.utils.set_random_seed(seed)
    conv = dict(kernel_size=3, padding="same", activation="relu")
    model = keras.Sequential([
        keras.Input(shape=(n_points, 1)),
        layers.Conv1D(64, **conv), layers.Conv1D(64, **conv),
        layers.MaxPooling1D(pool_size=2, strides=2, padding="valid"),
        layers.Conv1D(128, **conv), layers.Conv1D(128, **conv),
        layers.MaxPooling1D(pool_size=2, strides=2, padding="valid"),
        layers.Conv1D(256, **conv), layers.Conv1D(256, **conv),
        layers.MaxPooling1D(pool_size=2, strides=2, padding="valid"),
        layers.Flatten(),
        layers.Dense(512, activation="relu"), layers.Dropout(0.5),
        layers.Dense(512, activation="relu"), layers.Dropout(0.5),
        layers.Dense(n_classes, activation="softmax"),
    ], name="vo_al_cnn")
    model.compile(optimizer=keras.optimizers.Adam(), loss="categorical_crossentropy",
                  metrics=["accuracy"])
    return model


@dataclass
class TrainingReport:
    epochs: int
    best_epoch: int
    best_loss: float
    stopped_early: bool
    history: list = field(default_factory=list)   # per epoch: {"loss": .., "accuracy": ..}


def train(model, x: np.ndarray, y: np.ndarray, *, batch_size: int = 64, patience: int = 10,
          min_delta: float = 1e-4, max_epochs: int = 1000, seed: int = 0,
          cancel: CancelToken | None = None, stage: str = "train") -> Job[TrainingReport]:
    """Fit on (x, y) with early stopping on the TRAINING loss (the paper has no validation split).

    Stops when the loss has not improved by at least `min_delta` for `patience` epochs and
    restores the best weights. Yields one Progress per epoch; cancel is checked between epochs
    (the model then keeps its best weights so far and Cancelled is raised).
    """
    keras = _keras()
    keras.utils.set_random_seed(seed)
    x = np.asarray(x, dtype=np.float32)[..., None]
    y_onehot = keras.utils.to_categorical(np.asarray(y), N_CLASSES).astype(np.float32)
    best_loss, best_epoch, best_weights, wait = np.inf, -1, None, 0
    history = []
    epoch = 0
    stopped_early = False
    for epoch in range(max_epochs):
        if cancel is not None and cancel.cancelled:
            if best_weights is not None:
                model.set_weights(best_weights)
            raise Cancelled(f"training cancelled after {epoch} epochs")
        fit = model.fit(x, y_onehot, batch_size=batch_size, epochs=1, shuffle=True, verbose=0)
        logs = {k: float(v[-1]) for k, v in fit.history.items()}
        history.append(logs)
        loss = logs["loss"]
        if loss < best_loss - min_delta:
            best_loss, best_epoch, wait = loss, epoch, 0
            best_weights = model.get_weights()
        else:
            wait += 1
        # total = the epoch cap: the bar and its ETA are an upper bound (early stopping ends
        # sooner, and says so in the message)
        left = max_epochs - (epoch + 1)
        if wait >= patience:
            why = (f"early stopping: no improvement of {min_delta:g} in {patience} epochs; "
                   f"best weights (epoch {best_epoch + 1}) kept")
        elif left == 0:
            why = "the epoch cap (max_epochs) is reached"
        elif patience - wait <= left:
            why = f"stops after {patience - wait} more without improvement"
        else:
            why = f"the epoch cap ends it in {left}"
        yield Progress(stage, epoch + 1, max_epochs,
                       f"loss {loss:.4f} best {best_loss:.4f} (epoch {best_epoch + 1}); {why}",
                       {"epoch": epoch + 1, **logs})
        if wait >= patience:
            stopped_early = True
            break
    if best_weights is not None:
        model.set_weights(best_weights)
    return TrainingReport(len(history), best_epoch + 1, float(best_loss), stopped_early, history)


def predict_proba(model, rows: np.ndarray, batch_size: int = 2048,
                  precision: str = "float32") -> np.ndarray:
    """Class probabilities (n, 3) float32 for preprocessed rows (n, 140).

    A loop of `predict_on_batch` rather than `model.predict`: on a freshly trained model the first
    large `model.predict` call ran at ~3.2 k spectra/s against ~4.8 k/s for this loop (later
    calls at par), and scoring meets a fresh model every iteration; see benchmarks/RESULTS.md.
    `precision` 'bfloat16' scores with a mixed-precision twin of the model (device.py).
    """
    from vo_al.core.learning.device import check_precision

    scorer = model if check_precision(precision) == "float32" else precision_twin(model,
                                                                                  precision)
    out = np.empty((len(rows), N_CLASSES), np.float32)
    for start in range(0, len(rows), batch_size):
        x = np.asarray(rows[start:start + batch_size], dtype=np.float32)[..., None]
        out[start:start + len(x)] = np.asarray(scorer.predict_on_batch(x), dtype=np.float32)
    return out


def precision_twin(model, precision: str = "bfloat16"):
    """The model computing in `precision` (Keras mixed policy: bf16 compute, float32
    variables) with the model's own weights; its softmax stays float32, so probabilities are
    normalised as the float32 model's are. Cached on the model (its weights do not change after
    training; a retrained model is a new object)."""
    cache = getattr(model, "_vo_al_twins", None)
    if cache is None:
        cache = {}
        try:
            model._vo_al_twins = cache
        except AttributeError:           # a model that takes no attributes: no cache
            pass
    if precision in cache:
        return cache[precision]
    keras = _keras()
    last = model.layers[-1]
    policy = f"mixed_{precision}"

    def clone(layer):
        config = layer.get_config()
        config["dtype"] = "float32" if layer is last else policy
        return layer.__class__.from_config(config)

    twin = keras.models.clone_model(model, clone_function=clone)
    twin.set_weights(model.get_weights())
    cache[precision] = twin
    return twin


def save_model(model, path: Path) -> None:
    """Save atomically: a crash while saving keeps the previous checkpoint intact.

    The temporary is this call's own (PID + random part): two processes saving the same
    checkpoint never write into one file, and a failed save removes its temporary."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_sibling(path)
    try:
        model.save(tmp)
        os.replace(tmp, path)
    except BaseException:
        remove_quietly(tmp)
        raise
    fsync_dir(path.parent)


def load_model(path: Path):
    keras = _keras()
    return keras.models.load_model(Path(path))


def describe_device(precision: str | None = None) -> str:
    """What computes: 'GPU (NVIDIA H200), jax, bfloat16' or 'CPU, tensorflow' (device.py)."""
    from vo_al.core.learning.device import describe_device as describe

    return describe(precision)
