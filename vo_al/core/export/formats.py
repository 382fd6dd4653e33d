"""The table formats vo-al reads and writes: one table of names, file suffixes and astropy formats.

Every place that turns a format name into a suffix, a suffix into a format, or checks a
`--formats` list asks this table: the export writers, the cross-match tables, the radius scan,
`vo-al export`, the app's save dialogs and the readers of catalogue and candidate files.
`read_table_file` is the one reader of a table file a user hands vo-al (a catalogue, H16, a saved
query result): every failure is a ParameterError naming the file, and an XML file that declares
entities is refused before it is parsed (no "billion laughs": a VOTable needs no DTD).
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from pathlib import Path

from vo_al.core.base.errors import ParameterError
from vo_al.core.base.xml_prolog import XML_PROLOG_BYTES, xml_declares_entities


@dataclass(frozen=True)
class TableFormat:
    name: str                  # what the user types: --format votable
    suffix: str                # what vo-al writes: candidates.vot
    astropy: str               # astropy.table's format name
    suffixes: tuple[str, ...]  # what vo-al recognises when reading or choosing by file name
    label: str                 # how a file dialog names it
    writable: bool = True      # vo-al writes it (FITS tables are read only)


TABLE_FORMATS = {f.name: f for f in (
    TableFormat("votable", ".vot", "votable", (".vot", ".xml", ".votable"), "VOTable"),
    TableFormat("csv", ".csv", "ascii.csv", (".csv",), "CSV"),
    TableFormat("ecsv", ".ecsv", "ascii.ecsv", (".ecsv",), "ECSV"),
    TableFormat("fits", ".fits", "fits", (".fits", ".fit", ".fits.gz", ".fit.gz"), "FITS table",
                writable=False),
)}
EXPORT_FORMATS = tuple(name for name, f in TABLE_FORMATS.items() if f.writable)


def file_suffix(path) -> str:
    """The suffix that names a table's format: '.fits.gz' counts as one."""
    path = Path(path)
    if path.suffix.lower() == ".gz":
        return "".join(path.suffixes[-2:]).lower()
    return path.suffix.lower()


def format_of(path, writable: bool = False) -> TableFormat | None:
    """The format a file name says, or None."""
    suffix = file_suffix(path)
    for f in TABLE_FORMATS.values():
        if suffix in f.suffixes and (f.writable or not writable):
            return f
    return None


def export_format(name: str | None, path=None, what: str = "format") -> TableFormat:
    """A writable format by name, else by the file name's suffix; a typed error otherwise."""
    if name is None and path is not None:
        found = format_of(path, writable=True)
        if found is None:
            raise ParameterError(what, str(path), "a file name ending in "
                                 f"{'/'.join(s for n in EXPORT_FORMATS for s in TABLE_FORMATS[n].suffixes)}"
                                 " (or give the format)")
        return found
    key = str(name).strip().lower()
    if key not in EXPORT_FORMATS:
        raise ParameterError(what, name, f"one of {', '.join(EXPORT_FORMATS)}")
    return TABLE_FORMATS[key]


def parse_formats(text, what: str = "--formats") -> list[str]:
    """'votable,csv' (or a sequence of names) -> checked format names, in the order given."""
    names = text.split(",") if isinstance(text, str) else list(text)
    return [export_format(n, what=what).name for n in names if str(n).strip()]


def dialog_filters() -> dict[str, str]:
    """File-dialog filter -> suffix of every writable format, e.g. 'VOTable (*.vot *.xml)'."""
    out = {}
    for name in EXPORT_FORMATS:
        f = TABLE_FORMATS[name]
        globs = " ".join(f"*{s}" for s in f.suffixes if s != ".votable")
        out[f"{f.label} ({globs})"] = f.suffix
    return out


# ---------------------------------------------------------------- reading a user's table file

def read_table_file(path, what: str = "table", fmt: str | None = None):
    """A user's table file (VOTable, FITS, CSV, ECSV; the format from `fmt`, an astropy format
    name, or the suffix) as an astropy Table. ParameterError(`what`, path) says why not: no such
    file, an unknown suffix, XML entities, or the reader's own complaint (a truncated VOTable,
    a CSV with ragged rows ...)."""
    from astropy.table import Table

    path = Path(path)
    if not path.is_file():
        raise ParameterError(what, str(path), "an existing VOTable, FITS, CSV or ECSV file")
    known = format_of(path)
    fmt = fmt or (known.astropy if known else None)
    if fmt is None:
        suffixes = "/".join(s for f in TABLE_FORMATS.values() for s in f.suffixes)
        raise ParameterError(what, str(path), f"a {suffixes} file (or give the format)")
    if fmt == "votable":
        try:
            with open(path, "rb") as fh:
                refused = xml_declares_entities(fh.read(XML_PROLOG_BYTES))
        except OSError as exc:
            raise ParameterError(what, str(path), f"cannot be read ({exc.strerror})") from exc
        if refused:
            raise ParameterError(what, str(path), refused)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")          # VOTable/FITS unit warnings
            return Table.read(path, format=fmt)
    except Exception as exc:                         # noqa: BLE001 - any reader failure
        raise ParameterError(what, str(path), f"a readable {fmt} table "
                                              f"({type(exc).__name__}: {exc})") from exc
