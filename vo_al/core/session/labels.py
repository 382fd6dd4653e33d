"""Class labels as people and files write them: names and numbers, and a session's label files.

The two files of the oracle's round trip are session policy, not a front end's: `write_pending_csv`
lists the spectra waiting for a label (with the model's probabilities), and `apply_label_csv`
records a CSV of name,label for them, matching names as `spectrum_key` does. The command line's
`vo-al query` and `vo-al label` are these calls; the GUI or a script can make them too.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, TextIO

from vo_al.core.base.errors import ParameterError, TableRowError
from vo_al.core.learning.classes import CLASS_NAMES, DOUBLE_PEAK, NON_TARGET, SINGLE_PEAK

if TYPE_CHECKING:       # loop imports the learning stack; labels stays light for the project
    from vo_al.core.session.loop import ActiveLearningSession, BatchLabel

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
    """Rows (name, label) of a CSV with columns name/id and label, one row per spectrum.

    Numeric labels are mapped through `scheme` (LABEL_SCHEMES); class names are understood too.
    Classes the scheme maps to None (the Ondřejov set's 'unknown') are skipped, as in the paper.
    The file is UTF-8 (a byte-order mark, as Excel writes one, is allowed). A spectrum named
    twice (as `spectrum_key` matches names) with the same class counts once; with two classes
    it is a conflict. Every problem is raised before a row is returned, naming the file: the
    file cannot be read (ParameterError), or a line is not UTF-8, too short, has an empty name,
    an unknown class, a field over csv's limit, or a conflict (TableRowError with the line,
    and for a conflict both lines and both values).
    """
    if scheme not in LABEL_SCHEMES:
        raise ParameterError("label scheme", scheme, f"must be one of {sorted(LABEL_SCHEMES)}")
    numbering = LABEL_SCHEMES[scheme]
    path = Path(path)
    reader = csv.reader(io.StringIO(_read_text(path), newline=""))
    try:
        header = next(reader, None)
        fields = [f.strip().lower() for f in header or []]
        name_col = next((c for c in ("name", "id", "file", "obsid") if c in fields), None)
        if name_col is None or "label" not in fields:
            raise ParameterError("labels file", str(path), "needs columns name (or id) and label")
        i_name, i_label = fields.index(name_col), fields.index("label")
        out: list[tuple[str, int]] = []
        first: dict[str, tuple[int, str, int | None]] = {}   # key -> (line, label text, class)
        for row in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in row):
                continue                                    # a blank line
            if len(row) <= max(i_name, i_label):
                raise TableRowError(path, f"line {line}", "row", ",".join(row),
                                    f"has {len(row)} field(s); needs {name_col} and label")
            name, raw = row[i_name].strip(), row[i_label].strip()
            if not name:
                raise TableRowError(path, f"line {line}", name_col, name, "an empty name")
            label = _class_of(raw, numbering, scheme, path, line)
            key = spectrum_key(name)
            if key in first:
                seen_line, seen_raw, seen = first[key]
                if seen != label:
                    raise TableRowError(path, f"line {line}", "label", raw,
                                        f"conflicts with line {seen_line}, which labels "
                                        f"{key!r} {seen_raw!r}")
                continue                                    # the same class again: one label
            first[key] = (line, raw, label)
            if label is not None:
                out.append((name, label))
    except csv.Error as exc:        # a field over csv.field_size_limit() (131 072), a NUL byte
        raise TableRowError(path, f"line {reader.line_num}", None, None, str(exc)) from None
    return out


def _read_text(path: Path) -> str:
    """A labels file's text, decoded as UTF-8; a typed error naming the file (and the line of
    the first byte that is not UTF-8: a Latin-1 file would otherwise match no name)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ParameterError("labels file", str(path), f"cannot be read ({exc.strerror})") from exc
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise TableRowError(path, f"line {line}", "byte", data[exc.start:exc.start + 1],
                            "is not UTF-8 text: save the file as UTF-8") from None


def _class_of(raw: str, numbering: dict, scheme: str, path: Path, line: int) -> int | None:
    """The class index of a label as written (None: a class the scheme skips)."""
    if raw.isdigit():
        if int(raw) not in numbering:
            raise TableRowError(path, f"line {line}", "label", raw,
                                f"not a class of scheme '{scheme}'")
        return numbering[int(raw)]
    try:
        return parse_label(raw)
    except ParameterError as exc:
        raise TableRowError(path, f"line {line}", "label", raw,
                            f"not a class ({exc.expected})") from None


# -- a session's label files ------------------------------------------------------------------
PENDING_COLUMNS = ("pool_index", "name", "purpose", "p_non_target", "p_single", "p_double")


def write_pending_csv(session: ActiveLearningSession, out: Path | TextIO) -> list[BatchLabel]:
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
    item: BatchLabel | None         # the spectrum labelled; None: no such spectrum waits


def apply_label_csv(session: ActiveLearningSession, path: Path,
                    scheme: str = "vo-al") -> Iterator[CsvLabel]:
    """Record the labels of a CSV name,label (read_label_csv) for the session's pending spectra.

    A name matches a pending spectrum as `spectrum_key` matches (file name, stem or IVOA id).
    The whole file is read and checked before anything is recorded (a bad row, or one spectrum
    given two classes, raises a ParameterError/TableRowError naming the file and line, and
    nothing is labelled; the same class twice is one label). Then each row is yielded as it is
    applied: a matched row after `session.label` has committed it, so reporting it promises it
    survives a crash; a row naming no pending spectrum with `item` None (nothing is recorded).
    """
    pending = {spectrum_key(p.name): p for p in session.pending()}
    for name, label in read_label_csv(Path(path), scheme):
        item = pending.get(spectrum_key(name))
        if item is not None:
            session.label(item.pool_index, label)
        yield CsvLabel(name, label, item)
