"""The radius scan as a PNG: candidates matched and objects per candidate against the radius."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from vo_al.core.base.atomic import atomic_write_bytes
from vo_al.core.xmatch.match import DEFAULT_SIMBAD_RADIUS


def plot_radius_scan(scan, path, chosen: float | None = DEFAULT_SIMBAD_RADIUS,
                     title: str | None = None) -> Path:
    """PNG of the radius scan (`match.radius_scan`): candidates matched and objects per
    candidate vs radius, the chosen radius marked; written atomically to `path`."""
    # a bare Figure (no pyplot): drawn by the Agg canvas whatever backend a GUI has chosen
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 4.2), dpi=100)
    ax = fig.add_subplot()
    r = np.asarray(scan["radius"], float)
    ax.plot(r, scan["n_matched"], "o-", label="candidates with a match")
    ax.plot(r, scan["n_pairs"], "s--", label="objects within the radius (all pairs)")
    if chosen is not None:
        ax.axvline(chosen, color="grey", ls=":", label=f'chosen radius {chosen:g}"')
    ax.set_xscale("log")
    ax.set_xticks(r)
    ax.set_xticklabels([f"{x:g}" for x in r], fontsize=8)
    ax.set_xlabel("radius (arcsec)")
    ax.set_ylabel("count")
    ax.set_title(title or f"Radius scan: {scan.meta.get('catalogue', '')} "
                          f"({scan.meta.get('n_candidates', '?')} candidates)", fontsize=9)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    atomic_write_bytes(Path(path), buf.getvalue())
    return Path(path)
