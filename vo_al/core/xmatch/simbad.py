"""SIMBAD: links to its pages, and the one route a cross-match takes to its SIMBAD.

Links: `simbad_coo_url` (SIMBAD's page of every object within a radius of a position),
`simbad_id_url` (one object by its identifier) and `simbad_links` (both per row, as the
cross-match tables carry them).

The route: where the "SIMBAD" of a cross-match comes from, chosen here for both the command
line (`vo-al crossmatch --simbad-service ... / --catalogue FILE`) and the app's Cross-match
tab. A `SimbadRoute` says it, validated when made (a ParameterError names the bad value), and
`simbad_catalogue` builds its catalogue:

* ``simbad``: the CDS SIMBAD TAP service (`catalogues.SIMBAD_TAP_URL`), named "SIMBAD"
* ``local``: the local DaCHS's TAP service (`vo.services.local_dachs_base`), its
  ``lamost.simbad_like`` table, named "local simbad_like"
* ``url``: any other TAP service, by its http(s) URL
* ``file``: a SIMBAD-like catalogue file (VOTable, FITS, CSV, ECSV) as a `LocalCatalogue`,
  its columns guessed from their names
* ``none``: no SIMBAD match

For the three TAP routes, `table` and the column names say where the table keeps the id, the
position and the type (a `CatalogueColumns`); an empty `table` is the route's own: ``basic``,
or ``lamost.simbad_like`` for ``local``.
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass

import numpy as np

from vo_al.core.base.errors import ParameterError
from vo_al.core.vo.services import local_dachs_base
from vo_al.core.xmatch.catalogues import (SIMBAD_COLUMNS, SIMBAD_LIKE_COLUMNS, SIMBAD_TAP_URL,
                                          CatalogueColumns, LocalCatalogue, TapCatalogue)
from vo_al.core.xmatch.match import DEFAULT_SIMBAD_RADIUS

SIMBAD_COO_URL = "http://simbad.cds.unistra.fr/simbad/sim-coo"
SIMBAD_ID_URL = "http://simbad.cds.unistra.fr/simbad/sim-id"

# ---------------------------------------------------------------- links

def simbad_coo_url(ra: float, dec: float, radius: float = DEFAULT_SIMBAD_RADIUS) -> str:
    """SIMBAD's page of every object within `radius` arcsec of (ra, dec)."""
    coord = urllib.parse.quote_plus(f"{float(ra):.6f} {float(dec):+.6f}")
    return f"{SIMBAD_COO_URL}?Coord={coord}&Radius={float(radius):g}&Radius.unit=arcsec"


def simbad_id_url(main_id: str) -> str:
    """SIMBAD's page of one object by its identifier."""
    return f"{SIMBAD_ID_URL}?Ident={urllib.parse.quote_plus(str(main_id))}"


def simbad_links(ra, dec, radius: float, main_ids=None) -> tuple[np.ndarray, np.ndarray]:
    """(sim-coo URL per row, sim-id URL per row or '' where no main id)."""
    coo = np.array([simbad_coo_url(a, d, radius) for a, d in zip(ra, dec)], dtype=object)
    ids = main_ids if main_ids is not None else [""] * len(coo)
    by_id = np.array([simbad_id_url(m) if str(m).strip() else "" for m in ids], dtype=object)
    return coo.astype(str), by_id.astype(str)


# ---------------------------------------------------------------- the route

SIMBAD_ROUTE_SOURCES = ("simbad", "local", "file", "url", "none")
TAP_ROUTE_SOURCES = ("simbad", "local", "url")


def is_tap_url(text) -> bool:
    """Whether `text` can be a TAP service's address: an http:// or https:// URL."""
    return str(text).startswith(("http://", "https://"))


@dataclass(frozen=True)
class SimbadRoute:
    """Where a cross-match's SIMBAD comes from (see the module's docstring for the sources)."""

    source: str = "simbad"                  # one of SIMBAD_ROUTE_SOURCES
    file: str = ""                          # for 'file'
    url: str = ""                           # for 'url'
    table: str = ""                         # TAP routes; '' = basic (lamost.simbad_like: local)
    id_column: str = SIMBAD_COLUMNS.id
    ra_column: str = SIMBAD_COLUMNS.ra
    dec_column: str = SIMBAD_COLUMNS.dec
    otype_column: str = SIMBAD_COLUMNS.otype

    def __post_init__(self):
        if self.source not in SIMBAD_ROUTE_SOURCES:
            raise ParameterError("SIMBAD source", self.source, ", ".join(SIMBAD_ROUTE_SOURCES))
        if self.source == "file" and not str(self.file).strip():
            raise ParameterError("SIMBAD catalogue file", self.file,
                                 "a VOTable, FITS, CSV or ECSV file")
        if self.source == "url" and not is_tap_url(self.url):
            raise ParameterError("TAP service", self.url, "an http:// or https:// URL")
        if self.source in TAP_ROUTE_SOURCES:
            for what in ("id", "ra", "dec", "otype"):
                name = getattr(self, f"{what}_column")
                if not str(name).strip():
                    raise ParameterError(f"{what} column", name,
                                         f"the name of the TAP table's {what} column")

    @property
    def columns(self) -> CatalogueColumns:
        """Where the TAP table keeps what a match needs (the TAP routes)."""
        own = SIMBAD_LIKE_COLUMNS if self.source == "local" else SIMBAD_COLUMNS
        return CatalogueColumns(self.table or own.table, self.id_column, self.ra_column,
                                self.dec_column, self.otype_column)


def simbad_catalogue(route: SimbadRoute):
    """The catalogue of a route: a TapCatalogue, a LocalCatalogue ('file'), or None ('none')."""
    if route.source == "none":
        return None
    if route.source == "file":
        return LocalCatalogue.from_file(route.file)
    if route.source == "simbad":
        return TapCatalogue(SIMBAD_TAP_URL, route.columns, name="SIMBAD")
    if route.source == "local":
        return TapCatalogue(f"{local_dachs_base()}/tap", route.columns, name="local simbad_like")
    return TapCatalogue(route.url, route.columns)
