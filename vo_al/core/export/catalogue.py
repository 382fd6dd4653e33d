"""Catalogue export: candidate tables as VOTable (units, UCDs, descriptions, PARAMs), CSV, ECSV."""

from __future__ import annotations

import datetime
import os
from pathlib import Path

import numpy as np

from vo_al.core.export.formats import export_format

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

# the columns of a cross-match (vo_al.core.xmatch): one block per catalogue prefix
_MATCH_INFO = {
    "id": (None, "meta.id;meta.main", "Identifier of the nearest {cat} object within the radius"),
    "otype": (None, "src.class", "Object type of the nearest {cat} object"),
    "sep": ("arcsec", "pos.angDistance", "Distance to the nearest {cat} object"),
    "n": (None, "meta.number", "Number of {cat} objects within the radius"),
    "ra": ("deg", "pos.eq.ra", "Right ascension of the nearest {cat} object"),
    "dec": ("deg", "pos.eq.dec", "Declination of the nearest {cat} object"),
}
for _prefix, _cat in (("simbad", "SIMBAD"), ("h16", "H16")):
    for _key, (_unit, _ucd, _desc) in _MATCH_INFO.items():
        COLUMN_INFO[f"{_prefix}_{_key}"] = (_unit, _ucd, _desc.format(cat=_cat))
COLUMN_INFO.update({
    "h16_Halpha_type": (None, "src.class", "H-alpha profile type of the H16 object"),
    "group_designation": (None, "meta.id;meta.dataset", "Group of spectra sharing one "
                          "designation (multiple exposures); 0 = not grouped"),
    "group_designation_size": (None, "meta.number", "Spectra in the designation group"),
    "group_position": (None, "meta.id;meta.dataset", "Group of spectra linked within the "
                       "group radius (friends-of-friends); 0 = not grouped"),
    "group_position_size": (None, "meta.number", "Spectra in the positional group"),
    "simbad_url": (None, "meta.ref.url", "SIMBAD query around the position (sim-coo)"),
    "simbad_id_url": (None, "meta.ref.url", "SIMBAD page of the nearest object (sim-id)"),
    "category": (None, "meta.code", "known_h16, new_in_simbad, new_unknown or rejected"),
    "radius": ("arcsec", "phys.angSize;obs.param", "Cross-match radius"),
    "n_matched": (None, "meta.number", "Candidates with at least one object within the radius"),
    "n_pairs": (None, "meta.number", "Candidate-object pairs within the radius"),
    "n_multiple": (None, "meta.number", "Candidates with two or more objects within the radius"),
    "fraction_matched": (None, "arith.ratio", "Fraction of candidates with a match"),
    "mean_objects": (None, "arith.ratio", "Objects within the radius per candidate"),
    "new_matched": (None, "meta.number", "Candidates matched at this radius and not the "
                    "previous one"),
})


def to_astropy_table(columns: dict, params: dict | None = None,
                     column_info: dict | None = None):
    """A column dict (as from candidates.candidate_table) -> astropy Table with units/UCDs.

    `column_info` adds or overrides {column: (unit, ucd, description)} for this table.
    """
    from astropy.table import Table

    table = Table()
    for name, values in columns.items():
        if not hasattr(values, "mask"):
            values = np.asarray(values)
            if values.dtype == object:
                values = values.astype(str)
        table[name] = values
    annotate(table, column_info)
    table.meta.update(params or {})
    return table


def annotate(table, column_info: dict | None = None, overwrite: bool = False):
    """Set unit, UCD (col.meta['ucd']) and description from COLUMN_INFO where a column lacks
    them (or always with `overwrite`); returns the table (changed in place)."""
    info = {**COLUMN_INFO, **(column_info or {})}
    for name in table.colnames:
        if name not in info:
            continue
        unit, ucd, description = info[name]
        col = table[name]
        if unit and (overwrite or col.unit is None):
            col.unit = unit
        if description and (overwrite or not col.description):
            col.description = description
        if ucd and (overwrite or not col.meta.get("ucd")):
            col.meta["ucd"] = ucd
    return table


def write_catalogue(columns_or_table, path: Path, fmt: str | None = None,
                    params: dict | None = None) -> Path:
    """Write a catalogue atomically as VOTable, CSV or ECSV (chosen by `fmt` or the suffix).

    `params` (run settings: radii, iteration, model, date) become VOTable PARAMs and ECSV meta.
    """
    from astropy.io.votable import from_table

    path = Path(path)
    fmt = export_format(fmt, path)
    params = dict(params or {})
    params.setdefault("date", datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"))
    if hasattr(columns_or_table, "colnames"):
        table = annotate(columns_or_table.copy(copy_data=False))
    else:
        table = to_astropy_table(columns_or_table, params)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    if fmt.name == "votable":
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
        table.write(tmp, format=fmt.astropy, overwrite=True)
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
