"""Class labels as people and files write them."""

from __future__ import annotations

import csv
from pathlib import Path

from .errors import ParameterError
from .settings import CLASS_NAMES, DOUBLE_PEAK, NON_TARGET, SINGLE_PEAK

_ALIASES = {
    "0": NON_TARGET, "non-target": NON_TARGET, "nontarget": NON_TARGET, "absorption": NON_TARGET,
    "uninteresting": NON_TARGET, "other": NON_TARGET, "no": NON_TARGET,
    "1": SINGLE_PEAK, "single": SINGLE_PEAK, "single peak": SINGLE_PEAK, "single-peak": SINGLE_PEAK,
    "2": DOUBLE_PEAK, "double": DOUBLE_PEAK, "double peak": DOUBLE_PEAK, "double-peak": DOUBLE_PEAK,
}


def parse_label(value) -> int:
    """0/1/2 or a class name (case-insensitive) -> class index; ParameterError otherwise."""
    key = str(value).strip().lower()
    if key in _ALIASES:
        return _ALIASES[key]
    raise ParameterError("label", value, f"must be 0/1/2 or one of {', '.join(CLASS_NAMES)}")


def label_name(label: int) -> str:
    return CLASS_NAMES[int(label)]


def spectrum_key(name: str) -> str:
    """Key that matches a file name, its stem or an IVOA id (ivo://.../ccd700/uc050029)."""
    key = str(name).strip().rsplit("/", 1)[-1]
    for suffix in (".gz", ".fits", ".fit"):
        if key.lower().endswith(suffix):
            key = key[: -len(suffix)]
    return key


def read_label_csv(path: Path, allow=(NON_TARGET, SINGLE_PEAK, DOUBLE_PEAK)) -> list[tuple[str, int]]:
    """Rows (name, label) of a CSV with columns name/id and label.

    Labels outside `allow` (e.g. the Ondřejov set's 'unknown' = 3) are skipped, as in the paper.
    """
    path = Path(path)
    out = []
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        fields = [f.strip().lower() for f in reader.fieldnames or []]
        name_col = next((c for c in ("name", "id", "file", "obsid") if c in fields), None)
        if name_col is None or "label" not in fields:
            raise ParameterError("labels file", str(path), "needs columns name (or id) and label")
        original = {f.strip().lower(): f for f in reader.fieldnames}
        for line, row in enumerate(reader, start=2):
            raw = row[original["label"]]
            try:
                label = parse_label(raw)
            except ParameterError:
                if str(raw).strip().isdigit():
                    continue       # a numeric class we do not use (unknown)
                raise ParameterError("label", raw, f"{path}:{line}: not a class") from None
            if label in allow:
                out.append((row[original[name_col]].strip(), label))
    return out
