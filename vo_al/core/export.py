"""Catalogue export: candidate tables as VOTable (units, UCDs, descriptions, PARAMs), CSV, ECSV."""

from __future__ import annotations

import datetime
import os
from pathlib import Path

import numpy as np

from .errors import ParameterError

FORMATS = {"votable": "votable", "csv": "ascii.csv", "ecsv": "ascii.ecsv"}

# column -> (unit, UCD, description) for the columns vo-al writes
COLUMN_INFO = {
    "pool_index": (None, "meta.id", "Row of the spectrum in the vo-al pool"),
    "name": (None, "meta.id;meta.file", "File name or obsid of the spectrum"),
    "designation": (None, "meta.id;meta.main", "Survey designation of the target"),
    "ra": ("deg", "pos.eq.ra;meta.main", "Right ascension (ICRS) from the spectrum header"),
    "dec": ("deg", "pos.eq.dec;meta.main", "Declination (ICRS) from the spectrum header"),
    "class": (None, "meta.code.class", "Class: single peak, double peak or non-target"),
    "origin": (None, "meta.note", "predicted by the CNN, or labelled by the oracle"),
    "p_non_target": (None, "stat.probability", "CNN probability of the non-target class"),
    "p_single": (None, "stat.probability", "CNN probability of single-peak emission"),
    "p_double": (None, "stat.probability", "CNN probability of double-peak emission"),
    "snr": (None, "stat.snr", "Signal-to-noise ratio (r band) from the header"),
    "source": (None, "meta.ref.url", "Access URL (accref) or path of the spectrum"),
}


def to_astropy_table(columns: dict, params: dict | None = None):
    """A column dict (as from candidates.candidate_table) -> astropy Table with units/UCDs."""
    from astropy.table import Table

    table = Table()
    for name, values in columns.items():
        values = np.asarray(values)
        if values.dtype == object:
            values = values.astype(str)
        table[name] = values
        unit, ucd, description = COLUMN_INFO.get(name, (None, None, None))
        if unit:
            table[name].unit = unit
        if description:
            table[name].description = description
        if ucd:
            table[name].meta["ucd"] = ucd
    table.meta.update(params or {})
    return table


def write_catalogue(columns_or_table, path: Path, fmt: str | None = None,
                    params: dict | None = None) -> Path:
    """Write a catalogue atomically as VOTable, CSV or ECSV (chosen by `fmt` or the suffix).

    `params` (run settings: radii, iteration, model, date) become VOTable PARAMs and ECSV meta.
    """
    from astropy.io.votable import from_table

    path = Path(path)
    fmt = fmt or {".vot": "votable", ".xml": "votable", ".csv": "csv",
                  ".ecsv": "ecsv"}.get(path.suffix.lower())
    if fmt not in FORMATS:
        raise ParameterError("format", fmt, f"must be one of {sorted(FORMATS)} "
                             f"(or a .vot/.xml/.csv/.ecsv file name)")
    params = dict(params or {})
    params.setdefault("date", datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"))
    table = (columns_or_table if hasattr(columns_or_table, "colnames")
             else to_astropy_table(columns_or_table, params))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    if fmt == "votable":
        vot = from_table(table)
        resource_table = vot.get_first_table()
        for name in table.colnames:
            ucd = table[name].meta.get("ucd")
            if ucd:
                resource_table.get_field_by_id_or_name(name).ucd = ucd
        _add_params(resource_table, params)
        vot.to_xml(str(tmp))
    else:
        table.meta.update(params)
        table.write(tmp, format=FORMATS[fmt], overwrite=True)
    os.replace(tmp, path)
    return path


def _add_params(resource_table, params: dict) -> None:
    from astropy.io.votable.tree import Param

    for key, value in params.items():
        if isinstance(value, (bool, np.bool_)):
            datatype, value = "boolean", bool(value)
        elif isinstance(value, (int, np.integer)):
            datatype = "long"
        elif isinstance(value, (float, np.floating)):
            datatype = "double"
        else:
            datatype, value = "char", str(value)
        extra = {"arraysize": "*"} if datatype == "char" else {}
        resource_table.params.append(
            Param(resource_table._votable if hasattr(resource_table, "_votable") else None,
                  name=str(key), datatype=datatype, value=value, **extra))
