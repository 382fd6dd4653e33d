#!/usr/bin/env bash
# What the single call on a lent GPU machine runs (issue 15). That machine has no package index:
# a venv that sees its own PyTorch / JAX / numpy (--system-site-packages) gets vo-al, Keras and
# Keras's small dependencies from benchmarks/.bundle/ (built here by device_bundle.sh and carried
# along), then benchmarks/bench_device.py runs within its budget and leaves in $OUT:
#   device.json          every figure measured;
#   device-section.md    the '## Device (GPU)' section of RESULTS.md (merge it here with
#                        `python benchmarks/bench_device.py --merge-section device-section.md`);
#   run_on_device.log    this script's whole output; environment.txt  Python, GPU, packages.
# Device tool: command `bash benchmarks/run_on_device.sh`, carry ["benchmarks/.bundle"].
# Arguments are passed on to bench_device.py (e.g. --cpu for a dry run on a CPU machine);
# KERAS_BACKEND (default jax), BUDGET_S (default 270) and PYTHON may be set.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/bench-work/device-out}
mkdir -p "$OUT"
exec > >(tee -a "$OUT/run_on_device.log") 2>&1
BUNDLE=benchmarks/.bundle
VENV=${VENV:-/tmp/vo-al-device-venv}
backend_asked=${KERAS_BACKEND:-}
export KERAS_BACKEND=${KERAS_BACKEND:-jax}
started=$(date +%s)

if [ ! -d "$BUNDLE/wheels" ]; then
    echo "no $BUNDLE/wheels: run benchmarks/device_bundle.sh and carry benchmarks/.bundle" >&2
    exit 2
fi

# the machine's Python: the first that has numpy and the backend asked for
PY=""
for candidate in ${PYTHON:-} python3 python; do
    if command -v "$candidate" >/dev/null 2>&1 \
            && "$candidate" -c "import numpy, $KERAS_BACKEND" 2>/dev/null; then
        PY=$(command -v "$candidate")
        break
    fi
done
if [ -z "$PY" ]; then
    echo "no Python here imports numpy and $KERAS_BACKEND" >&2
    exit 2
fi

{
    echo "python: $PY ($("$PY" --version 2>&1))"
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null \
        || echo "nvidia-smi: none"
    "$PY" -m pip list 2>/dev/null | grep -iE "^(jax|jaxlib|jax-cuda|torch|numpy|scipy|h5py|ml.dtypes|optree|keras|rich|onnxruntime|scikit-learn|imbalanced)" || true
} | tee "$OUT/environment.txt"

# a venv on top of the machine's packages (its pip comes from ensurepip, no network needed);
# where venv is missing, or the machine's Python is itself a venv (whose packages a new venv
# does not see), a --target folder on PYTHONPATH instead
if "$PY" -m venv --system-site-packages "$VENV" >/dev/null 2>&1 && [ -x "$VENV/bin/python" ] \
        && "$VENV/bin/python" -c "import numpy, $KERAS_BACKEND" 2>/dev/null; then
    VPY=$VENV/bin/python
    install() { "$VPY" -m pip install -q --no-index --find-links "$BUNDLE/wheels" --no-deps "$@"; }
else
    echo "python -m venv failed: installing into $VENV-site on PYTHONPATH"
    VPY=$PY
    mkdir -p "$VENV-site"
    export PYTHONPATH="$VENV-site${PYTHONPATH:+:$PYTHONPATH}"
    install() { "$PY" -m pip install -q --no-index --find-links "$BUNDLE/wheels" --no-deps \
                    --target "$VENV-site" "$@"; }
fi

# vo-al and Keras always from the bundle (the tested versions); the others only where the
# machine lacks them (its own h5py, ml_dtypes, rich ... stay as they are)
failed=0
while read -r dist; do
    [ -z "$dist" ] && continue
    module=${dist//-/_}
    case $dist in
        vo-al|keras) ;;
        absl-py) module=absl ;;
        markdown-it-py) module=markdown_it ;;
    esac
    if [ "$dist" != vo-al ] && [ "$dist" != keras ] && "$VPY" -c "import $module" 2>/dev/null; then
        continue
    fi
    if ! install "$dist"; then
        echo "could not install $dist from the bundle"
        case $dist in h5py) ;; *) failed=1 ;; esac
    fi
done < "$BUNDLE/install.txt"
if [ "$failed" != 0 ]; then
    echo "a required wheel is missing for $("$VPY" --version 2>&1)" >&2
    exit 3
fi
"$VPY" -c "import vo_al, keras; print('vo-al', vo_al.__version__, 'keras', keras.__version__, keras.backend.backend())"

# JAX without a working CUDA plugin falls back to the CPU: then PyTorch, if it sees the GPU
if [ -z "$backend_asked" ] && [[ " $* " != *" --cpu "* ]]; then
    if ! "$VPY" -c "import jax, sys; sys.exit(jax.devices()[0].platform != 'gpu')" 2>/dev/null \
            && "$VPY" -c "import torch, sys; sys.exit(not torch.cuda.is_available())" 2>/dev/null
    then
        echo "JAX sees no GPU here, PyTorch does: KERAS_BACKEND=torch"
        export KERAS_BACKEND=torch
    fi
fi

extra=()
if [ -f "$BUNDLE/precision_model_weights.npz" ] && [ -f "$BUNDLE/precision_rows.npy" ]; then
    extra=(--model "$BUNDLE/precision_model_weights.npz"
           --agreement-rows "$BUNDLE/precision_rows.npy")
fi
echo "setup took $(( $(date +%s) - started )) s"
"$VPY" benchmarks/bench_device.py --installed --json "$OUT/device.json" \
    --budget-s "${BUDGET_S:-270}" "${extra[@]}" "$@"
status=$?

title="Device (GPU)"
case " $* " in *" --cpu "*) title="Device (CPU dry run)" ;; esac
"$VPY" - "$OUT/device-section.md" "$title" <<'EOF'
import re, sys
from pathlib import Path
text = Path("benchmarks/RESULTS.md").read_text()
found = re.search(rf"^## {re.escape(sys.argv[2])}\n.*?(?=^## |\Z)", text, re.S | re.M)
if found:
    Path(sys.argv[1]).write_text(found.group(0).rstrip() + "\n")
    print(f"section written to {sys.argv[1]}")
else:
    print("no Device section in RESULTS.md")
EOF
echo "run_on_device: bench_device exit $status, $(( $(date +%s) - started )) s in all"
exit $status
