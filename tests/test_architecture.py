"""The order of the house: import-linter's contracts (no Qt in the core, the layers), and real imports."""

import os
import pkgutil
import shutil
import subprocess
import sys
from pathlib import Path

import vo_al.cli
import vo_al.core

REPO = Path(__file__).resolve().parents[1]
QT = ("PyQt6", "PyQt5", "PySide6", "PySide2", "pyqtgraph", "superqt", "qtpy")


def test_import_linter_contract_holds():
    lint = shutil.which("lint-imports", path=os.path.dirname(sys.executable)) or shutil.which("lint-imports")
    assert lint, "import-linter is a test dependency (pip install -e .[test])"
    result = subprocess.run([lint, "--config", str(REPO / "pyproject.toml")], cwd=REPO,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "KEPT" in result.stdout


def test_importing_every_core_module_loads_no_qt():
    modules = [m.name for m in pkgutil.walk_packages(vo_al.core.__path__, "vo_al.core.")]
    modules += [m.name for m in pkgutil.walk_packages(vo_al.cli.__path__, "vo_al.cli.")]
    code = ("import importlib, sys\n"
            f"for m in {modules!r}: importlib.import_module(m)\n"
            f"bad = [q for q in {QT!r} if q in sys.modules]\n"
            "print(','.join(bad))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=REPO, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "", f"core imported {result.stdout.strip()}"


def test_core_does_not_import_tensorflow_at_import_time():
    """`vo-al status` and the labelling path must stay fast: Keras is imported lazily."""
    code = ("import vo_al.cli, vo_al.core.session, vo_al.core.pool, vo_al.core.vo, sys\n"
            "print('tensorflow' in sys.modules or 'keras' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert result.stdout.strip() == "False", result.stderr
