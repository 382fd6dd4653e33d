"""The user's preferences (not the method's): recent projects, label keys, a blind precision
sample, how the tables write RA/Dec, the first-run offer.

Method parameters belong to a project (`settings.json` in its folder) because they decide its
results; everything here is about one person's desk and lives in the platform's per-user config
folder (`vo_services.user_config_dir()`, overridable with VO_AL_CONFIG_DIR), as JSON written
atomically. A preferences file that cannot be read is never overwritten silently: it is moved
aside (``preferences.json.unreadable``) and the defaults are used, with the reason kept in
`UserPreferences.problem` for the GUI to show.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Callable

from vo_al.core.base.atomic import atomic_write_text
from vo_al.core.base.errors import ParameterError
from vo_al.core.vo.services import user_config_dir

PREFERENCES_FILE = "preferences.json"
MAX_RECENT = 10
DEFAULT_LABEL_KEYS = "123"          # key for non-target, single peak, double peak


@dataclass
class UserPreferences:
    recent_projects: list[str] = field(default_factory=list)    # newest first
    demo_offered: bool = False          # the first-run offer of the offline demo was shown
    label_keys: str = DEFAULT_LABEL_KEYS
    prefetch: int = 8                   # spectra read ahead of the one on screen
    # hide the model's probabilities while labelling the precision sample: seen, they can
    # bias the person's verdicts and so the precision estimate made from them
    blind_precision_sample: bool = False
    sexagesimal_coordinates: bool = False   # every table's RA/Dec as hh:mm:ss / ±dd:mm:ss
    window_geometry: str = ""           # the app's window and docks as last closed (Qt's
    window_state: str = ""              # saveGeometry / saveState, base64)
    problem: str = ""                   # why the file on disk was not used (not saved)

    def validate(self) -> None:
        keys = self.label_keys
        if len(keys) != 3 or len(set(keys.upper())) != 3 or not all(k.isprintable() and
                                                                    not k.isspace() for k in keys):
            raise ParameterError("label_keys", keys, "three different printable keys")
        if not 0 <= int(self.prefetch) <= 100:
            raise ParameterError("prefetch", self.prefetch, "must be in 0..100")
        if not isinstance(self.sexagesimal_coordinates, bool):
            raise ParameterError("sexagesimal_coordinates", self.sexagesimal_coordinates,
                                 "must be true or false")
        if not isinstance(self.blind_precision_sample, bool):
            raise ParameterError("blind_precision_sample", self.blind_precision_sample,
                                 "must be true or false")

    def add_recent(self, folder) -> None:
        """Put `folder` first in the recent list (once), keeping MAX_RECENT entries."""
        folder = str(Path(folder).resolve())
        self.recent_projects = [folder] + [p for p in self.recent_projects if p != folder]
        del self.recent_projects[MAX_RECENT:]

    def existing_recent(self) -> list[str]:
        """Recent projects whose folder still exists (a moved project is skipped, not forgotten)."""
        return [p for p in self.recent_projects if Path(p).is_dir()]


def preferences_path() -> Path:
    return user_config_dir() / PREFERENCES_FILE


def load_preferences(path: Path | None = None) -> UserPreferences:
    path = Path(path) if path is not None else preferences_path()
    if not path.is_file():
        return UserPreferences()
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(raw, dict):
            raise ValueError("not a JSON object")
        known = {f.name for f in fields(UserPreferences)} - {"problem"}
        prefs = UserPreferences(**{k: v for k, v in raw.items() if k in known})
        prefs.recent_projects = [str(p) for p in prefs.recent_projects]
        prefs.validate()
        return prefs
    except (OSError, ValueError, TypeError, ParameterError) as exc:
        aside = path.with_name(path.name + ".unreadable")
        try:
            path.replace(aside)
            kept = f"; moved to {aside}"
        except OSError:
            kept = ""
        return UserPreferences(problem=f"{path}: unreadable preferences ({exc}){kept}; "
                                       f"using the defaults")


def save_preferences(prefs: UserPreferences, path: Path | None = None) -> Path:
    prefs.validate()
    path = Path(path) if path is not None else preferences_path()
    data = {k: v for k, v in asdict(prefs).items() if k != "problem"}
    atomic_write_text(path, json.dumps(data, indent=2) + "\n")
    return path


def update_preferences(change: Callable[[UserPreferences], None],
                       path: Path | None = None) -> UserPreferences:
    """Read the file afresh, apply `change`, validate and save; returns what was saved.

    Two windows (or the app and a second one) each hold a copy: saving a stale copy would undo
    what the other saved (a recent project, the label keys), so every change starts from disk."""
    prefs = load_preferences(path)
    change(prefs)
    save_preferences(prefs, path)
    return prefs
