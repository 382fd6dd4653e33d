"""Where the CNN runs: the Keras backend, the device and the precision of scoring.

Keras 3 fixes its backend when it is first imported, from KERAS_BACKEND. vo-al chooses before
that import (`configure_backend`, called by model._keras):

* KERAS_BACKEND set by the user: that backend, always;
* else an NVIDIA GPU on the machine (a /dev/nvidia* device or nvidia-smi) and JAX with CUDA
  installed (`pip install 'vo-al[gpu]'`): JAX, on the GPU;
* else PyTorch with CUDA where it is installed and sees a GPU: PyTorch;
* else TensorFlow on the CPU (the default install: `tensorflow-cpu` on x86_64).

Why JAX on GPUs: its CUDA wheels come from the package index and install beside
`tensorflow-cpu` (the `tensorflow` and `tensorflow-cpu` distributions both own the
`tensorflow` package and cannot share one environment, so vo-al never asks for GPU TensorFlow).
Model files are Keras `.keras` archives with no backend in them: a model trained under one
backend loads and scores under another (tests/test_backend_portability.py).

Precision: 'float32' (the method's) or 'bfloat16' (Keras mixed precision for scoring: bf16
compute with float32 weights and a float32 softmax). On CPUs with AVX512-BF16/AMX and on GPUs
bf16 is faster; it is the default only where benchmarks/bench_precision.py measured it both
>= 1.5x faster and in agreement with float32 (see `DEFAULT_SCORING_PRECISION` and RESULTS.md).
"""

from __future__ import annotations

import glob
import importlib.util
import os
import shutil
from dataclasses import dataclass

BACKENDS = ("tensorflow", "jax", "torch")
PRECISIONS = ("float32", "bfloat16")
# bf16 is opt-in: see RESULTS.md, "Scoring precision" (the agreement and speed measured there)
DEFAULT_SCORING_PRECISION = "float32"


@dataclass(frozen=True)
class BackendChoice:
    backend: str
    reason: str


def nvidia_gpu_present() -> bool:
    """Cheap: an NVIDIA device node or nvidia-smi (no driver call, no CUDA import)."""
    return bool(glob.glob("/dev/nvidia[0-9]*")) or shutil.which("nvidia-smi") is not None


def _jax_gpu() -> bool:
    if importlib.util.find_spec("jax") is None:
        return False
    try:
        import jax

        return any(d.platform == "gpu" for d in jax.devices())
    except Exception:                 # noqa: BLE001 - no CUDA plugin, no driver: not usable
        return False


def _torch_gpu() -> bool:
    if importlib.util.find_spec("torch") is None:
        return False
    try:
        import torch

        return bool(torch.cuda.is_available())
    except Exception:                 # noqa: BLE001
        return False


def choose_backend(environ=None) -> BackendChoice:
    """The backend Keras should use here, and why (see the module docstring)."""
    environ = os.environ if environ is None else environ
    asked = environ.get("KERAS_BACKEND", "").strip()
    if asked:
        return BackendChoice(asked, "KERAS_BACKEND")
    if nvidia_gpu_present():
        if _jax_gpu():
            return BackendChoice("jax", "an NVIDIA GPU and JAX with CUDA")
        if _torch_gpu():
            return BackendChoice("torch", "an NVIDIA GPU and PyTorch with CUDA")
        return BackendChoice("tensorflow", "an NVIDIA GPU, but no GPU backend installed "
                             "(pip install 'vo-al[gpu]'): TensorFlow on the CPU")
    return BackendChoice("tensorflow", "no GPU: TensorFlow on the CPU")


_chosen: BackendChoice | None = None


def configure_backend() -> BackendChoice:
    """Set KERAS_BACKEND for this process before Keras is imported (once; later calls return
    the first choice: Keras cannot change backend in a running process)."""
    global _chosen
    if _chosen is None:
        _chosen = choose_backend()
        os.environ["KERAS_BACKEND"] = _chosen.backend
    return _chosen


def check_precision(precision) -> str:
    from vo_al.core.base.errors import ParameterError

    if precision not in PRECISIONS:
        raise ParameterError("scoring_precision", precision, f"one of {', '.join(PRECISIONS)}")
    return precision


def describe_device(precision: str | None = None) -> str:
    """'GPU (NVIDIA H200), jax, bfloat16' or 'CPU, tensorflow, float32': what computes."""
    from vo_al.core.learning.model import _keras

    keras = _keras()
    backend = keras.backend.backend()
    suffix = f", {precision}" if precision else ""
    try:
        if backend == "tensorflow":
            import tensorflow as tf

            gpus = tf.config.list_physical_devices("GPU")
            where = f"GPU ({gpus[0].name})" if gpus else "CPU"
        elif backend == "jax":
            import jax

            dev = jax.devices()[0]
            where = f"{dev.platform.upper()} ({dev.device_kind})"
        elif backend == "torch":
            import torch

            where = (f"GPU ({torch.cuda.get_device_name(0)})" if torch.cuda.is_available()
                     else "CPU")
        else:
            where = "unknown"
    except Exception as exc:  # noqa: BLE001 - informative only; never fail a run on it
        return f"unknown ({backend}: {exc}){suffix}"
    return f"{where}, {backend}{suffix}"
