"""Write simbad_like.csv: a small, deterministic SIMBAD-like catalogue for cross-match tests.

The objects lie around the spectra that `scripts/dachs.sh import N SEED` publishes (by default
the test fixture's import: N=1000, SEED=1), so an ADQL or STILTS cross-match of lamost.data with
lamost.simbad_like finds something:

* every emission-line target of the pool (truth.csv label > 0) gets a counterpart 0.2-1.5"
  away, otype 'Em*' (single peak) or 'Be*' (double peak);
* a deterministic quarter of the other spectra get a counterpart 0.2-2" away, otype 'Star'
  (a few 'PM*', 'EB*', 'RGB*');
* about 50 decoys lie 10-60" from a spectrum (no match within 5"), otype 'Star' or 'G'.

Columns: main_id, ra, dec, otype. Nothing is fetched: positions come from running
vo_al.core.demo.datasets.make_pool exactly as scripts/dachs.sh does, in a temporary folder.

Usage: .venv/bin/python resources/dachs/make_simbad_like.py [--n 1000] [--seed 1] [--out PATH]
"""

from __future__ import annotations

import argparse
import csv
import math
import tempfile
from pathlib import Path

import numpy as np
from astropy.io import fits

from vo_al.core.demo import make_pool

HERE = Path(__file__).resolve().parent


def pool_positions(n: int, seed: int) -> list[tuple[str, float, float, int, str]]:
    """(name, ra, dec, label, kind) of the pool `scripts/dachs.sh import n seed` publishes."""
    with tempfile.TemporaryDirectory() as tmp:
        make_pool(tmp, n, seed=seed, gz_fraction=0.0, table_fraction=0.0)
        rows = []
        with open(Path(tmp) / "truth.csv", newline="") as fh:
            for row in csv.DictReader(fh):
                header = fits.getheader(Path(tmp) / row["name"])
                rows.append((row["name"], float(header["RA"]), float(header["DEC"]),
                             int(row["label"]), row["kind"]))
    return rows


def offset(ra: float, dec: float, arcsec: float, angle: float) -> tuple[float, float]:
    d = arcsec / 3600.0
    new_dec = dec + d * math.sin(angle)
    new_ra = (ra + d * math.cos(angle) / max(math.cos(math.radians(new_dec)), 1e-6)) % 360.0
    return new_ra, new_dec


def build(n: int, seed: int) -> list[tuple[str, float, float, str]]:
    rng = np.random.default_rng(seed + 20_201)
    out = []
    for i, (_name, ra, dec, label, _kind) in enumerate(pool_positions(n, seed)):
        if label > 0:
            otype = "Em*" if label == 1 else "Be*"
            sep = rng.uniform(0.2, 1.5)
        elif rng.random() < 0.25:
            otype = str(rng.choice(["Star"] * 7 + ["PM*", "EB*", "RGB*"]))
            sep = rng.uniform(0.2, 2.0)
        else:
            if rng.random() < 0.07:      # a decoy: near, but not a counterpart
                dra, ddec = offset(ra, dec, rng.uniform(10, 60), rng.uniform(0, 2 * math.pi))
                out.append((f"SYN D{i:06d}", round(dra, 7), round(ddec, 7),
                            "G" if rng.random() < 0.3 else "Star"))
            continue
        mra, mdec = offset(ra, dec, sep, rng.uniform(0, 2 * math.pi))
        out.append((f"SYN {otype.rstrip('*').upper()} {i:06d}", round(mra, 7), round(mdec, 7),
                    otype))
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1000, help="spectra in the import (1000)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the import (1)")
    parser.add_argument("--out", type=Path, default=HERE / "simbad_like.csv")
    args = parser.parse_args(argv)
    rows = build(args.n, args.seed)
    with open(args.out, "w", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["main_id", "ra", "dec", "otype"])
        writer.writerows(rows)
    print(f"wrote {len(rows)} objects to {args.out}")


if __name__ == "__main__":
    main()
