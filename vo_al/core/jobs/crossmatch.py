"""The cross-match of a project's candidates as one job: what the Cross-match tab runs.

The same core calls as `vo-al crossmatch` (vo_al/cli/crossmatch.py): the candidates (and the
spectra the reviewer rejected) of the project, `session_candidates`, or a candidates table;
SIMBAD by the route the tab chose (`xmatch.SimbadRoute`: the CDS TAP service, the local DaCHS's
`lamost.simbad_like`, another TAP service or a catalogue file, or none), built by the same
`xmatch.simbad_catalogue` as the command line's; H16 from a file (or none);
`crossmatch_candidates` makes the four tables with the multiple-exposure groups, and
`radius_scan` the match counts per radius. Each catalogue is asked once per run, at the largest
radius needed (`FetchedCatalogue`), and the match and the scan are cut from that answer:
SIMBAD's TAP service is not asked twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

import vo_al

from vo_al.core import xmatch as xm
from vo_al.core.base.errors import Cancelled, VoAlError
from vo_al.core.base.progress import CancelToken, Progress
from vo_al.core.export.filters import parse_filter
from vo_al.core.export.formats import TABLE_FORMATS, parse_formats
from vo_al.core.session.candidates import session_candidates
from vo_al.core.session.loop import ActiveLearningSession

# the repository's shipped resources (an editable install / a checkout); absent from a wheel,
# where the file fields then start empty
RESOURCES = Path(vo_al.__file__).resolve().parent.parent / "resources"
SHIPPED_SIMBAD_LIKE = RESOURCES / "dachs" / "simbad_like.csv"
SHIPPED_H16 = RESOURCES / "catalogues" / "h16_synthetic.csv"

# the tab's words for the SIMBAD routes (xmatch.SIMBAD_ROUTE_SOURCES, in that order), as
# `vo-al crossmatch --simbad-service simbad|local|URL|none` / `--catalogue`
SIMBAD_SOURCE_LABELS = {"simbad": "CDS SIMBAD (online TAP)",
                        "local": "local DaCHS (lamost.simbad_like TAP)",
                        "file": "catalogue file…",
                        "url": "other TAP service (URL, table basic)…",
                        "none": "none"}
SIMBAD_SOURCES = tuple((key, SIMBAD_SOURCE_LABELS[key]) for key in xm.SIMBAD_ROUTE_SOURCES)
ALL = "all"


@dataclass(frozen=True)
class CrossmatchSettings:
    """What the widgets say, read on the GUI thread and handed to the job."""

    simbad_source: str = "simbad"          # a key of SIMBAD_SOURCES
    simbad_file: str = ""                  # for 'file'
    tap_url: str = ""                      # for 'url'
    h16_file: str = ""                     # '' = no H16 match
    radius: float = xm.DEFAULT_SIMBAD_RADIUS
    h16_radius: float = xm.DEFAULT_H16_RADIUS
    scan: bool = True

    def simbad_route(self) -> xm.SimbadRoute:
        """The SIMBAD route these settings choose; a ParameterError names a bad value."""
        return xm.SimbadRoute(self.simbad_source, file=self.simbad_file.strip(),
                              url=self.tap_url.strip())


@dataclass
class CrossmatchRun:
    """The job's result: the core's CrossmatchResult, the radius scan and per-table columns."""

    result: xm.CrossmatchResult
    scan: object | None                    # astropy Table (radius_scan), None without SIMBAD
    views: dict                            # 'all' and each TABLE_NAMES -> {column: array}
    settings: CrossmatchSettings
    from_project: bool                     # True: session_candidates (rejected included)

    @property
    def counts(self) -> dict:
        return self.result.counts()


def simbad_catalogue(settings: CrossmatchSettings):
    """The SIMBAD catalogue of the settings' route (None for 'none'), `xmatch.simbad_catalogue`."""
    return xm.simbad_catalogue(settings.simbad_route())


class FetchedCatalogue:
    """A catalogue's pairs for fixed positions, fetched once in one stage of the job.

    `crossmatch_candidates` and `radius_scan` then get them again from here (cut to their radius
    and rows) instead of asking SIMBAD's TAP service twice; any other request goes to the
    catalogue itself.
    """

    def __init__(self, catalogue, ra, dec, radius: float):
        self.catalogue = catalogue
        self.name = getattr(catalogue, "name", "")
        self.ra = np.asarray(ra, dtype=float)
        self.dec = np.asarray(dec, dtype=float)
        self.fetched = catalogue.pairs(self.ra, self.dec, radius)

    @property
    def route(self):
        return getattr(self.catalogue, "route", None)

    def pairs(self, ra, dec, radius: float) -> xm.Pairs:
        ra, dec = np.asarray(ra, dtype=float), np.asarray(dec, dtype=float)
        n = ra.size
        if (radius <= self.fetched.radius and n <= self.ra.size
                and np.array_equal(ra, self.ra[:n]) and np.array_equal(dec, self.dec[:n])):
            p = self.fetched.within(radius)
            return p.select(p.cand < n)              # the first n rows: the candidates
        return self.catalogue.pairs(ra, dec, radius)


def table_columns(table) -> dict:
    """An astropy Table as {column: numpy array} for ColumnTableModel (masked -> ''/NaN)."""
    out = {}
    for name in table.colnames:
        col = table[name]
        mask = getattr(col, "mask", None)
        if mask is not None and np.any(mask):
            if col.dtype.kind in "USO":
                col = col.filled("")
            else:
                col = col.astype(float).filled(np.nan)
        out[name] = np.asarray(col)
    return out


def describe_groups(groups: dict, group_radius: float = xm.DEFAULT_GROUP_RADIUS) -> str:
    """One line on the multiple exposures: designation groups and position groups."""
    d, p = groups["designation"], groups["position"]
    return (f"multiple exposures: {d['n_rows']} candidate spectra in {d['n_groups']} "
            f"designation groups ({d['n_multiple']} with more than one spectrum, largest "
            f"{d['largest']}); {p['n_groups']} position groups within {group_radius:g}″ "
            f"({p['n_multiple']} with more than one spectrum, largest {p['largest']})")


def _blocking(token: CancelToken, stage: str, fn: Callable[[], object]):
    """Run one blocking call; a failure after a cancel counts as the cancel (the user stopped
    waiting for that service), anything else is raised as it is."""
    try:
        value = fn()
    except Exception:
        if token.cancelled:
            raise Cancelled(f"cancelled during {stage}") from None
        raise
    token.raise_if_cancelled(stage)
    return value


def _matched_once(token: CancelToken, stage: str, catalogue, ra, dec, radii):
    """The catalogue ready for every match at `radii` (arcsec) of these positions: a catalogue
    in memory (xmatch.LocalCatalogue) with its zone indexes built, any other (TAP) as a
    FetchedCatalogue holding its pairs within the largest radius."""
    largest = radii[-1]
    if isinstance(catalogue, xm.LocalCatalogue):
        yield Progress(stage, 0, 1, f"{catalogue.name}: zone index of {len(catalogue)} objects "
                                    f"for {ra.size} positions")
        for r in radii:
            _blocking(token, stage, lambda r=r: catalogue.zone_index(r))
        yield Progress(stage, 1, 1, "")
        return catalogue
    yield Progress(stage, 0, 1, f"{catalogue.name}: {ra.size} positions within {largest:g}″")
    fetched = _blocking(token, stage, lambda: FetchedCatalogue(catalogue, ra, dec, largest))
    yield Progress(stage, 1, 1, f"{fetched.fetched.cand.size} pairs")
    return fetched


def crossmatch_job(token: CancelToken, settings: CrossmatchSettings, project=None,
                   candidates: dict | None = None):
    """The job (worker thread): yields Progress, returns a CrossmatchRun.

    Stages: 'reading catalogues', 'SIMBAD match', 'H16 match', 'radius scan'.
    """
    stage = "reading catalogues"
    yield Progress(stage, 0, 3, "candidates")
    if project is not None:
        found = _blocking(token, stage, lambda: session_candidates(ActiveLearningSession(project)))
        candidates, rejected, params = found.candidates, found.rejected, found.provenance
    else:
        rejected, params = None, {"candidates": "the candidates table of the window"}
    if candidates is None or len(candidates.get("ra", ())) == 0:
        raise VoAlError("no candidates to cross-match yet: score the pool first")
    yield Progress(stage, 1, 3, "SIMBAD catalogue")
    simbad = _blocking(token, stage, lambda: simbad_catalogue(settings))
    yield Progress(stage, 2, 3, "H16 catalogue")
    h16 = (_blocking(token, stage, lambda: xm.h16_catalogue(settings.h16_file))
           if settings.h16_file else None)
    yield Progress(stage, 3, 3, "")

    # candidates first, then the rejected spectra: the row order of crossmatch_candidates
    ra = np.asarray(candidates["ra"], dtype=float)
    dec = np.asarray(candidates["dec"], dtype=float)
    if rejected is not None and len(rejected["ra"]):
        ra = np.r_[ra, np.asarray(rejected["ra"], dtype=float)]
        dec = np.r_[dec, np.asarray(rejected["dec"], dtype=float)]
    radius = xm.check_radius(settings.radius, "radius")
    h16_radius = xm.check_radius(settings.h16_radius, "h16 radius")
    radii = sorted(set(map(float, xm.SCAN_RADII)) | {radius}) if settings.scan else [radius]
    # a catalogue in memory answers each match from its zone index (nearest pairs and counts,
    # never every pair within the scan's 300″): the stage builds the indexes the match and the
    # scan use; a remote catalogue is asked once, here, for every pair within the largest radius
    if simbad is not None:
        stage = "SIMBAD match"
        simbad = yield from _matched_once(token, stage, simbad, ra, dec,
                                          sorted({radius, radii[-1]}))
    if h16 is not None:
        stage = "H16 match"
        h16 = yield from _matched_once(token, stage, h16, ra, dec, [h16_radius])
    result = xm.crossmatch_candidates(candidates, simbad, h16, radius=radius,
                                      h16_radius=h16_radius, rejected=rejected, params=params)
    scan = None
    if simbad is not None and settings.scan:
        yield Progress("radius scan", 0, 1, f"{len(radii)} radii")
        scan = xm.radius_scan(simbad, candidates["ra"], candidates["dec"], radii)
        yield Progress("radius scan", 1, 1, "")
    views = {ALL: table_columns(result.table)}
    views.update({name: table_columns(t) for name, t in result.tables().items()})
    return CrossmatchRun(result, scan, views, settings, project is not None)


def filtered_result(run: CrossmatchRun, where: str) -> xm.CrossmatchResult:
    """The run's result with only the rows the filter `where` keeps (core.export.filters, as
    the panel's filter box shows them), saying which in its `selection` parameter."""
    table = run.views[ALL]
    keep = parse_filter(where, table, "where").mask(table)
    result = run.result
    if keep is None:
        return result
    selection = f"{int(keep.sum())} of {len(keep)} rows (filter: '{where.strip()}')"
    return xm.CrossmatchResult(result.table[keep], dict(result.params, selection=selection),
                               result.groups)


def export_job(run: CrossmatchRun, folder: Path, formats, where: str = "") -> list[Path]:
    """The four tables and all rows (write_tables), and the radius scan where there is one.
    `where`: a filter leaving in every table only the rows it keeps (the scan is of all
    candidates)."""
    from vo_al.core.export.catalogue import write_catalogue

    formats = parse_formats(formats, "format")
    paths = list(xm.write_tables(filtered_result(run, where), folder, formats))
    if run.scan is not None:
        params = dict(run.result.params, catalogue=run.scan.meta.get("catalogue", ""),
                      radii=",".join(f"{r:g}" for r in run.scan["radius"]))
        paths += [write_catalogue(run.scan, folder / f"radius_scan{TABLE_FORMATS[fmt].suffix}", fmt,
                                  params) for fmt in formats]
    return [Path(p) for p in paths]
