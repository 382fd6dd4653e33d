#!/usr/bin/env bash
# Build benchmarks/.bundle/ (gitignored): what a lent GPU machine needs beyond its own PyTorch,
# JAX, numpy and scipy to run benchmarks/bench_device.py, since it has no package index:
#   - vo-al itself (a wheel of this checkout, no dependencies);
#   - Keras (the version of .venv, which the tests run) and what `import keras` needs: the pure
#     Python absl-py, rich (+ markdown-it-py, mdurl, pygments), namex, packaging,
#     typing-extensions (optree's); the binary optree and ml-dtypes (jax brings its own; a
#     torch-only machine does not), and h5py (Keras's declared dependency; not imported by the
#     benchmark): manylinux x86_64 wheels for CPython 3.10-3.13, the device's version being
#     unknown;
#   - if bench-work/precision/ exists (`python benchmarks/bench_precision.py
#     --save-for-device bench-work/precision`): its trained weights and rows, so the device run
#     checks bf16 against float32 on the same model and spectra.
# The whole folder must stay under 60 MiB (the device tool carries 64 MiB in all).
# Usage: bash benchmarks/device_bundle.sh     (then benchmarks/run_on_device.sh on the device)
set -euo pipefail
cd "$(dirname "$0")/.."
BUNDLE=benchmarks/.bundle
PY=${PYTHON:-.venv/bin/python}
PYTHONS=${BUNDLE_PYTHONS:-"3.10 3.11 3.12 3.13"}
LIMIT_MIB=60

version() { "$PY" -c "import importlib.metadata as m; print(m.version('$1'))"; }

rm -rf "$BUNDLE"
mkdir -p "$BUNDLE/wheels"
"$PY" -m pip wheel -q --no-deps --no-build-isolation -w "$BUNDLE/wheels" . 2>&1 | grep -v WARNING || true

pure=()
for name in keras absl-py rich markdown-it-py mdurl pygments namex packaging typing-extensions; do
    pure+=("$name==$(version "$name")")
done
"$PY" -m pip download -q --no-deps --only-binary :all: -d "$BUNDLE/wheels" "${pure[@]}" 2>&1 \
    | grep -v WARNING || true

for v in $PYTHONS; do
    "$PY" -m pip download -q --no-deps --only-binary :all: --implementation cp \
        --python-version "$v" --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 \
        --platform manylinux_2_28_x86_64 -d "$BUNDLE/wheels" optree ml-dtypes h5py 2>&1 \
        | grep -v WARNING || true
done

if [ -d bench-work/precision ]; then
    cp bench-work/precision/precision_model_weights.npz bench-work/precision/precision_rows.npy \
        "$BUNDLE/"
fi

# The names run_on_device.sh installs (a distribution per line, binary or not)
printf '%s\n' vo-al keras absl-py rich markdown-it-py mdurl pygments namex packaging \
    typing-extensions optree ml-dtypes h5py > "$BUNDLE/install.txt"

ls -l "$BUNDLE" "$BUNDLE/wheels"
bytes=$(du -sb "$BUNDLE" | cut -f1)
echo "bundle: $BUNDLE, $((bytes / 1024 / 1024)) MiB ($bytes bytes)"
for need in vo_al keras absl_py rich optree ml_dtypes; do
    ls "$BUNDLE/wheels" | grep -qi "^${need}-" || { echo "missing wheel: $need" >&2; exit 1; }
done
if [ "$bytes" -gt $((LIMIT_MIB * 1024 * 1024)) ]; then
    echo "the bundle is over $LIMIT_MIB MiB" >&2
    exit 1
fi
