"""The core never imports Qt: checked by import-linter's contract and by a real import."""

import os
import pkgutil
import shutil
import subprocess
import sys
from pathlib import Path

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
    modules = [f"vo_al.core.{m.name}" for m in pkgutil.iter_modules(vo_al.core.__path__)]
    modules.append("vo_al.cli")
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
    code = ("import vo_al.cli, vo_al.core.session, vo_al.core.project, vo_al.core.pool, sys\n"
            "print('tensorflow' in sys.modules or 'keras' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert result.stdout.strip() == "False", result.stderr
