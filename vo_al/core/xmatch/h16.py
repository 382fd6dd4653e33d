"""H16, Hou et al. (2016)'s LAMOST DR2 emission-line stars: the table read as published, and
as a catalogue to match.

`load_h16` reads the table (the published CSV, '-' for missing values, or a VOTable, FITS or
ECSV copy) with units, UCDs and descriptions (`H16_INFO`); `h16_catalogue` makes it a
`LocalCatalogue` (id = designation, type = objtype_Hou, plus the Hα profile type). The H16
radius defaults to 5": H16's positions differ from the FITS headers by up to 4.96".
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vo_al.core.base.errors import ParameterError, TableRowError
from vo_al.core.xmatch.catalogues import LocalCatalogue, read_table

DEFAULT_H16_RADIUS = 5.0                     # arcsec, H16 vs FITS header offsets <= 4.96"

H16_COLUMNS = ("designation", "ra", "dec", "w1", "w1_err", "h", "h_err", "k", "k_err",
               "Halpha_type", "objtype_Hou", "objtype_SIMBAD")
H16_EXTRA = ("Halpha_type", "objtype_Hou", "objtype_SIMBAD")
H16_INFO = {
    "designation": ("meta.id;meta.main", "LAMOST designation (H16 gives objects, not spectra)"),
    "ra": ("pos.eq.ra;meta.main", "Right ascension (J2000) in H16"),
    "dec": ("pos.eq.dec;meta.main", "Declination (J2000) in H16"),
    "w1": ("phot.mag;em.IR.3-4um", "WISE W1 magnitude"),
    "w1_err": ("stat.error;phot.mag;em.IR.3-4um", "Error of W1"),
    "h": ("phot.mag;em.IR.H", "2MASS H magnitude"),
    "h_err": ("stat.error;phot.mag;em.IR.H", "Error of H"),
    "k": ("phot.mag;em.IR.K", "2MASS Ks magnitude"),
    "k_err": ("stat.error;phot.mag;em.IR.K", "Error of Ks"),
    "Halpha_type": ("src.class", "H-alpha profile type (H16)"),
    "objtype_Hou": ("src.class", "Object type given by Hou et al. (2016)"),
    "objtype_SIMBAD": ("src.class", "SIMBAD object type quoted by H16"),
}


def load_h16(path):
    """Hou et al. (2016) table as published (CSV, '-' = missing -> masked); or VOTable/FITS/ECSV.

    Returns an astropy Table with units on the magnitudes (mag) and on ra/dec (deg) where they
    are numbers; positions written as text (19:36:04.4, +10:12:13.5) stay as written, for
    `h16_catalogue` to read (RA in hours, Dec in degrees). `meta['file']` names the file.
    """
    from astropy.table import MaskedColumn, Table

    path = Path(path)
    if path.suffix.lower() == ".csv":
        if not path.is_file():
            raise ParameterError("H16 catalogue", str(path), "an existing file")
        try:
            table = Table.read(path, format="ascii.csv", fill_values=[("-", "0"), ("", "0")],
                               fill_include_names=None)
        except Exception as exc:                     # noqa: BLE001
            raise ParameterError("H16 catalogue", str(path),
                                 f"a readable CSV ({type(exc).__name__}: {exc})") from exc
    else:
        table = read_table(path)
    missing = [c for c in ("designation", "ra", "dec") if c not in table.colnames]
    if missing:
        raise ParameterError("H16 catalogue", str(path), f"columns {', '.join(missing)} "
                                                         f"(has {', '.join(table.colnames)})")
    for c in table.colnames:
        if not isinstance(table[c], MaskedColumn):
            table[c] = MaskedColumn(table[c], mask=np.zeros(len(table), bool))
    for c in ("w1", "w1_err", "h", "h_err", "k", "k_err"):
        if c in table.colnames:
            if table[c].dtype.kind not in "f":
                table[c] = MaskedColumn(_magnitudes(table[c], path, c), mask=table[c].mask)
            table[c].unit = "mag"
    for c in ("ra", "dec"):
        if table[c].dtype.kind in "iuf":
            table[c].unit = "deg"
    for name, (ucd, description) in H16_INFO.items():
        if name in table.colnames:
            table[name].meta["ucd"] = ucd
            table[name].description = description
    table.meta["catalogue"] = "H16 (Hou et al. 2016, LAMOST DR2 emission-line stars)"
    table.meta["file"] = str(path)
    return table


def _magnitudes(col, path, name: str) -> np.ndarray:
    """A magnitude column as floats (masked cells 0, masked anyway); TableRowError naming the
    file, row and value of the first cell that is not a number."""
    values = col.filled(0)
    try:
        return np.asarray(values, float)
    except (TypeError, ValueError):
        for i, v in enumerate(values):
            try:
                float(v)
            except (TypeError, ValueError):
                raise TableRowError(path, f"row {i + 1}", name, str(v),
                                    "a magnitude (a number, or '-' for none)") from None
        raise


def h16_catalogue(table_or_path) -> LocalCatalogue:
    """H16 as a LocalCatalogue: id = designation, type = objtype_Hou, plus Hα type. Rows
    without a usable position are skipped with a warning naming the file (from_table)."""
    table = table_or_path if hasattr(table_or_path, "colnames") else load_h16(table_or_path)
    otype = "objtype_Hou" if "objtype_Hou" in table.colnames else None
    return LocalCatalogue.from_table(table, name="H16", ra="ra", dec="dec", id="designation",
                                     otype=otype, extra=["Halpha_type"],
                                     source=table.meta.get("file", "H16"))
