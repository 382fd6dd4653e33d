"""The order of the house: import-linter's contracts (no Qt in the core, the layers), and real imports."""

import os
import pkgutil
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

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
    modules += [m.name for m in pkgutil.walk_packages(vo_al.cli.__path__, "vo_al.cli.")
                if not m.name.endswith(".__main__")]             # that one runs the CLI
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


def test_every_contract_is_kept_and_the_layers_are_among_them():
    lint = shutil.which("lint-imports", path=os.path.dirname(sys.executable)) or shutil.which("lint-imports")
    result = subprocess.run([lint, "--config", str(REPO / "pyproject.toml")], cwd=REPO,
                            capture_output=True, text=True)
    kept = [line for line in result.stdout.splitlines() if line.endswith(" KEPT")]
    assert any("layered" in line for line in kept), result.stdout
    assert any("never on a session" in line for line in kept), result.stdout
    assert "BROKEN" not in result.stdout


# one name each old module had in 0.1, and where it lives now
OLD_NAMES = {
    "vo_al.core.readers": ("read_spectrum", "vo_al.core.spectra.readers"),
    "vo_al.core.settings": ("PreprocessSettings", "vo_al.core.spectra.settings"),
    "vo_al.core.synthetic": ("make_pool", "vo_al.core.demo.datasets"),
    "vo_al.core.crossmatch": ("crossmatch_candidates", "vo_al.core.xmatch.tables"),
    "vo_al.core.harvest": ("harvest_table", "vo_al.core.vo.harvest"),
    "vo_al.core.process_job": ("run_in_process", "vo_al.core.jobs.process"),
    "vo_al.cli_crossmatch": ("add_crossmatch_commands", "vo_al.cli.crossmatch"),
}


def test_the_old_import_paths_warn_and_give_the_same_objects():
    import importlib

    from vo_al.core.moved import MOVED

    for old, (name, home) in OLD_NAMES.items():
        sys.modules.pop(old, None)
        with pytest.warns(DeprecationWarning, match=rf"{old} moved to "):
            module = importlib.import_module(old)
        assert getattr(module, name) is getattr(importlib.import_module(home), name), old
    # and every old path resolves to modules that exist
    for old, targets in MOVED.items():
        for target in targets:
            importlib.import_module(target)
    # the packages that kept an old module's name re-export its main names, without a warning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        from vo_al.core.pool import PoolStore, ingest_folder  # noqa: F401
        from vo_al.core.samp import SampLink  # noqa: F401
        from vo_al.core.session import ActiveLearningSession  # noqa: F401
        from vo_al.core.export import write_catalogue  # noqa: F401
