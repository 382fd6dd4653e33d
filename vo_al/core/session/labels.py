"""Class labels as people and files write them: names and numbers, and a session's label files.

The two files of the oracle's round trip are session policy, not a front end's: `write_pending_csv`
lists the spectra waiting for a label (with the model's probabilities), and `apply_label_csv`
records a CSV of name,label for them, matching names as `spectrum_key` does. The command line's
`vo-al query` and `vo-al label` are these calls; the GUI or a script can make them too.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, TextIO

from vo_al.core.base.errors import ParameterError
from vo_al.core.learning.classes import CLASS_NAMES, DOUBLE_PEAK, NON_TARGET, SINGLE_PEAK

if TYPE_CHECKING:       # loop imports the learning stack; labels stays light for the project
    from vo_al.core.session.loop import ActiveLearningSession, PendingLabel

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
    try:
        fh = open(path, newline="")
    except OSError as exc:
        raise ParameterError("labels file", str(path), f"cannot be read ({exc.strerror})") from exc
    with fh:
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


# -- a session's label files ------------------------------------------------------------------
PENDING_COLUMNS = ("pool_index", "name", "purpose", "p_non_target", "p_single", "p_double")


def write_pending_csv(session: ActiveLearningSession, out: Path | TextIO) -> list[PendingLabel]:
    """Write the spectra of `session` waiting for a label as CSV (PENDING_COLUMNS); return them.

    The rows are `session.pending()` (oracle batch first, then the precision sample) with the
    current iteration's class probabilities to 4 decimals. `out` is a file path or an open text
    stream (the command line's stdout). Raises ProjectError when the iteration is not scored and
    ParameterError naming the file when it cannot be written.
    """
    pending = session.pending()
    proba = session.probabilities()         # before the file is opened: a refusal writes nothing
    if not isinstance(out, (str, Path)):
        _write_pending_rows(out, pending, proba)
        return pending
    try:
        with open(out, "w", newline="") as fh:
            _write_pending_rows(fh, pending, proba)
    except OSError as exc:
        raise ParameterError("pending labels file", str(out),
                             f"cannot be written ({exc.strerror})") from exc
    return pending


def _write_pending_rows(fh: TextIO, pending, proba) -> None:
    writer = csv.writer(fh)
    writer.writerow(PENDING_COLUMNS)
    for p in pending:
        writer.writerow([p.pool_index, p.name, p.purpose]
                        + [f"{v:.4f}" for v in proba[p.pool_index]])


@dataclass(frozen=True)
class CsvLabel:
    """One row of a labels CSV as `apply_label_csv` applied it."""

    name: str                       # as the file writes it
    label: int
    item: PendingLabel | None       # the spectrum labelled; None: no such spectrum waits


def apply_label_csv(session: ActiveLearningSession, path: Path,
                    scheme: str = "vo-al") -> Iterator[CsvLabel]:
    """Record the labels of a CSV name,label (read_label_csv) for the session's pending spectra.

    A name matches a pending spectrum as `spectrum_key` matches (file name, stem or IVOA id).
    The whole file is read and checked before anything is recorded (a bad row raises
    ParameterError naming the file and line, and nothing is labelled). Then each row is yielded
    as it is applied: a matched row after `session.label` has committed it, so reporting it
    promises it survives a crash; a row naming no pending spectrum with `item` None (nothing is
    recorded). A name that comes twice raises ProjectError on its second row (it is no longer
    pending); the rows before it stay recorded.
    """
    pending = {spectrum_key(p.name): p for p in session.pending()}
    for name, label in read_label_csv(Path(path), scheme):
        item = pending.get(spectrum_key(name))
        if item is not None:
            session.label(item.pool_index, label)
        yield CsvLabel(name, label, item)
