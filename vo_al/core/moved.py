"""The import paths of vo-al 0.1 (the flat `vo_al.core.*` modules and `vo_al.cli_*`), kept for
one release: importing one gives a DeprecationWarning naming the new home and a module whose
names are looked up there. They go in 0.3; CHANGELOG.md lists every move.

Each old path maps to the new modules that now hold its names, searched in order. A forwarding
module (PEP 562 `__getattr__`) rather than the new module itself under a second name: the new
modules keep their own `__name__` and `__spec__`, so pickling, child processes and `reload`
never see the old path.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import types
import warnings

REMOVED_IN = "0.3"

MOVED: dict[str, tuple[str, ...]] = {
    "vo_al.core.errors": ("vo_al.core.base.errors",),
    "vo_al.core.progress": ("vo_al.core.base.progress",),
    "vo_al.core.atomic": ("vo_al.core.base.atomic",),
    "vo_al.core.npy": ("vo_al.core.base.npy",),
    "vo_al.core.spectrum": ("vo_al.core.spectra.record",),
    "vo_al.core.readers": ("vo_al.core.spectra.readers",),
    "vo_al.core.preprocess": ("vo_al.core.spectra.preprocess",),
    "vo_al.core.model": ("vo_al.core.learning.model",),
    "vo_al.core.scoring": ("vo_al.core.learning.scoring",),
    "vo_al.core.balance": ("vo_al.core.learning.balance",),
    "vo_al.core.strategies": ("vo_al.core.learning.strategies",),
    "vo_al.core.precision": ("vo_al.core.learning.precision",),
    "vo_al.core.settings": ("vo_al.core.session.settings", "vo_al.core.spectra.settings",
                            "vo_al.core.learning.classes"),
    "vo_al.core.project": ("vo_al.core.session.project",),
    "vo_al.core.session_store": ("vo_al.core.session.store",),
    "vo_al.core.labels": ("vo_al.core.session.labels",),
    "vo_al.core.candidates": ("vo_al.core.session.candidates",),
    "vo_al.core.preferences": ("vo_al.core.session.preferences",),
    "vo_al.core.vo_services": ("vo_al.core.vo.services",),
    "vo_al.core.vo_query": ("vo_al.core.vo.query",),
    "vo_al.core.harvest": ("vo_al.core.vo.harvest",),
    "vo_al.core.spectrum_prefetch": ("vo_al.core.vo.prefetch",),
    "vo_al.core.samp_messages": ("vo_al.core.samp.messages",),
    "vo_al.core.crossmatch": ("vo_al.core.xmatch", "vo_al.core.session.candidates"),
    "vo_al.core.process_job": ("vo_al.core.jobs.process",),
    "vo_al.core.dashboard_data": ("vo_al.core.jobs.dashboard",),
    "vo_al.core.crossmatch_job": ("vo_al.core.jobs.crossmatch",),
    "vo_al.core.synthetic": ("vo_al.core.demo", "vo_al.core.demo.datasets", "vo_al.core.demo.files",
                             "vo_al.core.demo.observations", "vo_al.core.demo.kinds",
                             "vo_al.core.demo.instruments", "vo_al.core.demo.stars",
                             "vo_al.core.demo.lines", "vo_al.core.spectra.lines"),
    "vo_al.core.simulate": ("vo_al.core.demo.simulate",),
    "vo_al.core.oracle": ("vo_al.core.demo.oracle",),
    "vo_al.core.demo_catalogues": ("vo_al.core.demo.catalogues",),
    "vo_al.cli_vo": ("vo_al.cli.vo",),
    "vo_al.cli_crossmatch": ("vo_al.cli.crossmatch",),
    "vo_al.cli_samp": ("vo_al.cli.samp",),
}


def _caller_stacklevel() -> int:
    """The stack level of the `import` statement: the first frame outside importlib and here."""
    frame, level = sys._getframe(1), 1
    while frame is not None and (frame.f_code.co_filename.startswith("<frozen importlib")
                                 or frame.f_globals.get("__name__") == __name__):
        frame, level = frame.f_back, level + 1
    return level


def _forwarding_module(old: str, targets: tuple[str, ...]) -> types.ModuleType:
    module = types.ModuleType(old, f"Moved: see {', '.join(targets)}.")
    homes = [importlib.import_module(t) for t in targets]

    def __getattr__(name: str):
        for home in homes:
            if hasattr(home, name):
                return getattr(home, name)
        raise AttributeError(f"module {old!r} (moved to {targets[0]}) has no attribute {name!r}")

    def __dir__():
        return sorted({n for home in homes for n in dir(home) if not n.startswith("__")})

    module.__getattr__ = __getattr__
    module.__dir__ = __dir__
    return module


class _MovedLoader(importlib.abc.Loader):
    def __init__(self, targets: tuple[str, ...]) -> None:
        self.targets = targets

    def create_module(self, spec):
        warnings.warn(f"{spec.name} moved to {self.targets[0]} in vo-al 0.2; the old path goes "
                      f"in {REMOVED_IN} (CHANGELOG.md)", DeprecationWarning,
                      stacklevel=_caller_stacklevel())
        return _forwarding_module(spec.name, self.targets)

    def exec_module(self, module) -> None:
        pass


class MovedModuleFinder(importlib.abc.MetaPathFinder):
    """Finds the old paths of MOVED (and nothing else)."""

    def find_spec(self, fullname, path=None, target=None):
        targets = MOVED.get(fullname)
        if targets is None:
            return None
        return importlib.util.spec_from_loader(fullname, _MovedLoader(targets))


def install() -> None:
    if not any(isinstance(f, MovedModuleFinder) for f in sys.meta_path):
        sys.meta_path.append(MovedModuleFinder())
