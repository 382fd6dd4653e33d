"""SIMBAD-like and H16-like catalogues of the offline demo's synthetic sky.

The demo's pool lies wherever `datasets.make_pool` put it, far from the objects of the shipped
offline catalogues (resources/, made for the test server's import): a cross-match of the demo
would find nothing and show none of the paper's four tables. So `prepare` writes two catalogues
of the demo's own sky into the project's `catalogues/` folder, where the Cross-match tab looks
first. Every object is made up from the synthetic truth, the way real catalogues relate to a
survey:

* H16-like (Hou et al. 2016 columns): half of the emission-line stars, 0.5-4.5" away (H16
  positions differ from LAMOST headers by up to 4.96"), plus a few unrelated H II regions;
* SIMBAD-like (main_id, ra, dec, otype): most emission-line stars as Em*/Be* at 0.2-12" (some
  beyond 5": the radius scan shows them arrive), a quarter of the other stars as Star/PM*/EB*
  within 2", and decoys 10-60" from a spectrum (found only at large radii).

So a demo's candidates fall into all four tables: known in H16, new in SIMBAD, new and unknown,
and rejected (the oracle's non-targets).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from vo_al.core.base.atomic import atomic_write_text
from vo_al.core.demo.files import designation_for

CATALOGUE_DIR = "catalogues"
SIMBAD_FILE = "simbad_like.csv"
H16_FILE = "h16_like.csv"
H16_COLUMNS = ["designation", "ra", "dec", "w1", "w1_err", "h", "h_err", "k", "k_err",
               "Halpha_type", "objtype_Hou", "objtype_SIMBAD"]


def project_catalogues(project_folder) -> dict[str, Path]:
    """{'simbad': path, 'h16': path} of the catalogues a project's folder holds (may be empty)."""
    folder = Path(project_folder) / CATALOGUE_DIR
    found = {"simbad": folder / SIMBAD_FILE, "h16": folder / H16_FILE}
    return {k: p for k, p in found.items() if p.is_file()}


def _offset(ra, dec, arcsec, angle):
    """Positions `arcsec` away from (ra, dec) in direction `angle` (small-angle, per element)."""
    d = np.asarray(arcsec, float) / 3600.0
    new_dec = np.asarray(dec, float) + d * np.sin(angle)
    cos_dec = np.maximum(np.cos(np.radians(new_dec)), 1e-6)
    return (np.asarray(ra, float) + d * np.cos(angle) / cos_dec) % 360.0, new_dec


def _csv_text(header: list[str], rows: list[list]) -> str:
    import io

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def simbad_like_rows(ra, dec, labels, rng: np.random.Generator) -> list[list]:
    rows = []
    for i, (r, d, label) in enumerate(zip(ra, dec, labels)):
        if label > 0 and rng.random() < 0.85:
            otype, sep = ("Em*" if label == 1 else "Be*"), rng.uniform(0.2, 12.0)
        elif label == 0 and rng.random() < 0.25:
            otype, sep = str(rng.choice(["Star"] * 7 + ["PM*", "EB*", "RGB*"])), \
                rng.uniform(0.2, 2.0)
        elif rng.random() < 0.05:                   # a decoy: near, not a counterpart
            otype, sep = ("G" if rng.random() < 0.3 else "Star"), rng.uniform(10.0, 60.0)
        else:
            continue
        mra, mdec = _offset(r, d, sep, rng.uniform(0, 2 * np.pi))
        rows.append([f"DEMO {otype.rstrip('*').upper()} {i:06d}", f"{float(mra):.7f}",
                     f"{float(mdec):.7f}", otype])
    return rows


def h16_like_rows(ra, dec, labels, rng: np.random.Generator) -> list[list]:
    rows = []
    targets = np.flatnonzero(np.asarray(labels) > 0)
    others = np.flatnonzero(np.asarray(labels) == 0)
    chosen = [(i, True) for i in targets[::2]] + [(i, False) for i in others[:200:40]]
    for i, is_target in chosen:
        sep = rng.uniform(0.5, 4.5) if is_target else rng.uniform(8.0, 30.0)
        hra, hdec = _offset(ra[i], dec[i], sep, rng.uniform(0, 2 * np.pi))
        hra, hdec = float(hra), float(hdec)
        mags = ["-"] * 6
        if rng.random() < 0.7:                      # as in H16, some lack IR photometry
            w1 = rng.uniform(8, 14)
            mags = [f"{w1:.3f}", f"{rng.uniform(0.02, 0.05):.3f}",
                    f"{w1 + rng.uniform(-0.3, 0.3):.3f}", f"{rng.uniform(0.02, 0.05):.3f}",
                    f"{w1 + rng.uniform(-0.3, 0.3):.3f}", f"{rng.uniform(0.02, 0.05):.3f}"]
        halpha = ("I" if labels[i] == 1 else "II") if is_target else "III"
        hou = str(rng.choice(["Em*", "Be*", "YSO"])) if is_target else "HII-region"
        rows.append([designation_for(hra, hdec).replace("LAMOST ", ""), f"{hra:.7f}",
                     f"{hdec:.7f}", *mags, halpha, hou,
                     str(rng.choice(["-", "Em*", "Star", "Be*"])) if is_target else "-"])
    return rows


def write_demo_catalogues(project_folder, pool, labels, seed: int = 0) -> dict[str, Path]:
    """Write the demo's SIMBAD-like and H16-like catalogues (once) for a pool whose true classes
    are `labels` (aligned with the pool rows); returns their paths."""
    folder = Path(project_folder) / CATALOGUE_DIR
    meta = pool.metadata(columns=["ra", "dec"])
    ra, dec = np.asarray(meta["ra"], float), np.asarray(meta["dec"], float)
    labels = np.asarray(labels)
    paths = {"simbad": folder / SIMBAD_FILE, "h16": folder / H16_FILE}
    if not paths["simbad"].is_file():
        rows = simbad_like_rows(ra, dec, labels, np.random.default_rng([seed, 2020]))
        atomic_write_text(paths["simbad"], _csv_text(["main_id", "ra", "dec", "otype"], rows))
    if not paths["h16"].is_file():
        rows = h16_like_rows(ra, dec, labels, np.random.default_rng([seed, 2016]))
        atomic_write_text(paths["h16"], _csv_text(H16_COLUMNS, rows))
    return paths
