"""A project's parameters in one typed object (method + preprocessing); defaults are the numbers of METHOD.md."""

from __future__ import annotations

import json
from dataclasses import dataclass, asdict, field, fields
from pathlib import Path

from vo_al.core.base.errors import ParameterError, ProjectError
from vo_al.core.base.limits import LimitSettings
from vo_al.core.spectra.settings import PreprocessSettings

@dataclass
class MethodSettings:
    """Active-learning loop, training and scoring parameters (Sect. 2-3 of the paper)."""

    batch_size: int = 100               # spectra the oracle labels per iteration
    strategy: str = "entropy"
    precision_sample: int = 30          # random predicted targets labelled to estimate precision
    precision_threshold: float = 0.8
    threshold_hits: int = 3             # stop when the estimate reached the threshold this often
    confidence: float = 0.95            # one-sided lower bound of precision
    train_batch: int = 64
    patience: int = 10                  # early stopping on the training loss
    min_delta: float = 1e-4
    long_patience: int = 100            # "long training" after the active phase
    long_min_delta: float = 1e-5
    # The authors "sped up the method by training the CNN during the active learning phase for a
    # smaller number of epochs" (Sect. 3.4): an epoch cap per iteration, and each iteration
    # continues from the previous one's weights; the long training at the end has its own cap.
    max_epochs: int = 30
    warm_start: bool = True
    long_max_epochs: int = 1000
    score_chunk: int = 65536
    # 'float32' (the method's) or 'bfloat16' (faster where the CPU or GPU has bf16; opt-in:
    # benchmarks/RESULTS.md "Scoring precision" has the speed and agreement measured)
    scoring_precision: str = "float32"
    # a Dask scheduler ('tcp://head:8786') whose workers see the project folder at the same
    # path: the pool is scored there (learning.distributed); '' scores in this process
    scoring_scheduler: str = ""
    seed: int = 0

    def validate(self) -> None:
        from vo_al.core.learning.strategies import STRATEGIES

        positive = ("batch_size", "precision_sample", "threshold_hits", "train_batch",
                    "patience", "long_patience", "max_epochs", "long_max_epochs", "score_chunk")
        for name in positive:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ParameterError(name, value, "must be a positive integer")
        if self.strategy not in STRATEGIES:
            raise ParameterError("strategy", self.strategy, f"must be one of {sorted(STRATEGIES)}")
        if not 0 < self.precision_threshold <= 1:
            raise ParameterError("precision_threshold", self.precision_threshold, "must be in (0, 1]")
        if not 0.5 <= self.confidence < 1:
            raise ParameterError("confidence", self.confidence, "must be in [0.5, 1)")
        from vo_al.core.learning.device import check_precision

        check_precision(self.scoring_precision)
        if not isinstance(self.scoring_scheduler, str) or any(
                c.isspace() for c in self.scoring_scheduler):
            raise ParameterError("scoring_scheduler", self.scoring_scheduler,
                                 "a Dask scheduler address such as tcp://host:8786, or '' to "
                                 "score in this process")
        for name in ("min_delta", "long_min_delta"):
            if getattr(self, name) < 0:
                raise ParameterError(name, getattr(self, name), "must be >= 0")


@dataclass
class ProjectSettings:
    method: MethodSettings
    preprocess: PreprocessSettings
    limits: LimitSettings = field(default_factory=LimitSettings)   # bounds, not method

    @classmethod
    def default(cls) -> "ProjectSettings":
        return cls(MethodSettings(), PreprocessSettings(), LimitSettings())

    def sections(self) -> dict:
        """{'method': MethodSettings, 'preprocess': PreprocessSettings, 'limits': LimitSettings}"""
        return {"method": self.method, "preprocess": self.preprocess, "limits": self.limits}

    def validate(self) -> None:
        for section in self.sections().values():
            section.validate()

    def to_json(self) -> str:
        return json.dumps({name: asdict(s) for name, s in self.sections().items()},
                          indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str, origin: str = "settings") -> "ProjectSettings":
        """Settings from their JSON text, `origin` (the file) named in every error: ProjectError
        when it is not JSON or not an object of sections, ParameterError naming the section or
        parameter (an unknown one, or a value of the wrong type)."""
        try:
            raw = json.loads(text)
        except ValueError as exc:
            raise ProjectError(f"{origin}: settings are unreadable (not JSON: {exc})") from None
        if not isinstance(raw, dict):
            raise ProjectError(f"{origin}: settings are not a JSON object of sections "
                               f"({type(raw).__name__})")
        kinds = {name: type(section) for name, section in cls.default().sections().items()}
        for name in raw:
            if name not in kinds:
                raise ParameterError(name, raw[name], f"unknown settings section in {origin} "
                                                      f"(known: {', '.join(kinds)})")
        # a settings.json of vo-al 0.1 has no 'limits': the defaults
        return cls(**{name: _build(kind, raw.get(name, {}), origin, name)
                      for name, kind in kinds.items()})

    def save(self, path: Path) -> None:
        from vo_al.core.base.atomic import atomic_write_text

        atomic_write_text(Path(path), self.to_json())

    @classmethod
    def load(cls, path: Path) -> "ProjectSettings":
        """A project's settings.json, checked; every error names the file (ProjectError when it
        is missing or unreadable, ParameterError for a value). Nothing is written."""
        path = Path(path)
        try:
            text = path.read_bytes().decode("utf-8")
        except FileNotFoundError:
            raise ProjectError(f"{path}: the project's settings file is missing") from None
        except OSError as exc:
            raise ProjectError(f"{path}: settings are unreadable ({exc.strerror})") from None
        except UnicodeDecodeError as exc:
            raise ProjectError(f"{path}: settings are unreadable (not UTF-8 text: {exc})") \
                from None
        settings = cls.from_json(text, str(path))
        try:
            settings.validate()
        except ParameterError as exc:
            raise ParameterError(exc.name, exc.value,
                                 f"{getattr(exc, 'expected', exc)} (in {path})") from None
        return settings


def _build(kind, values, origin: str, section: str):
    """A settings dataclass from a section's JSON object: every key known and of its type."""
    if not isinstance(values, dict):
        raise ProjectError(f"{origin}: section {section!r} is a {type(values).__name__}, not "
                           "an object of parameters")
    known = {f.name: f for f in fields(kind)}
    defaults = kind()
    for key, value in values.items():
        if key not in known:
            raise ParameterError(key, value, f"unknown {kind.__name__} parameter in {origin}")
        expected = type(getattr(defaults, key))
        allowed = (int, float) if expected is float else (expected,)
        if not isinstance(value, allowed) or (isinstance(value, bool) and expected is not bool):
            raise ParameterError(key, value, f"must be a {expected.__name__} (in {origin})")
    return kind(**values)


def update_settings(obj, **changes):
    """Set fields of a settings dataclass from strings or values, converting to the field's type."""
    known = {f.name: f for f in fields(obj)}
    for key, value in changes.items():
        if key not in known:
            raise ParameterError(key, value, f"unknown parameter of {type(obj).__name__}")
        current = getattr(obj, key)
        if isinstance(value, str) and not isinstance(current, str):
            try:
                if isinstance(current, bool):
                    value = {"true": True, "false": False, "1": True, "0": False}[value.lower()]
                else:
                    value = type(current)(value)
            except (KeyError, ValueError):
                raise ParameterError(key, value, f"must be a {type(current).__name__}") from None
        setattr(obj, key, value)
    return obj
