"""Class labels as people and files write them."""

from __future__ import annotations

import csv
from pathlib import Path

from vo_al.core.base.errors import ParameterError
from vo_al.core.learning.classes import CLASS_NAMES, DOUBLE_PEAK, NON_TARGET, SINGLE_PEAK

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


# How other label files number the classes; None = a class the method does not use (skipped).
# The Ondřejov CCD700 set (Zenodo 10.5281/zenodo.2640970, bt-spectraldl's labels.csv) numbers
# emission 0, absorption 1, unknown 2, double-peak 3: its counts 5 301 / 6 102 / 398 / 1 533 are
# the paper's single-peak / absorption / (dropped) / double-peak numbers.
LABEL_SCHEMES = {
    "vo-al": {0: NON_TARGET, 1: SINGLE_PEAK, 2: DOUBLE_PEAK},
    "ondrejov": {0: SINGLE_PEAK, 1: NON_TARGET, 2: None, 3: DOUBLE_PEAK},
}


def read_label_csv(path: Path, scheme: str = "vo-al") -> list[tuple[str, int]]:
    """Rows (name, label) of a CSV with columns name/id and label.

    Numeric labels are mapped through `scheme` (LABEL_SCHEMES); class names are understood too.
    Classes the scheme maps to None (the Ondřejov set's 'unknown') are skipped, as in the paper.
    """
    if scheme not in LABEL_SCHEMES:
        raise ParameterError("label scheme", scheme, f"must be one of {sorted(LABEL_SCHEMES)}")
    numbering = LABEL_SCHEMES[scheme]
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
            raw = str(row[original["label"]]).strip()
            if raw.isdigit():
                if int(raw) not in numbering:
                    raise ParameterError("label", raw,
                                         f"{path}:{line}: not a class of scheme '{scheme}'")
                label = numbering[int(raw)]
                if label is None:
                    continue
            else:
                try:
                    label = parse_label(raw)
                except ParameterError:
                    raise ParameterError("label", raw, f"{path}:{line}: not a class") from None
            out.append((row[original[name_col]].strip(), label))
    return out
