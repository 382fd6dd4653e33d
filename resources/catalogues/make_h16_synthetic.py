"""Write h16_synthetic.csv: a tiny, deterministic H16-like catalogue for the offline path.

H16 is Hou et al. (2016), LAMOST DR2 emission-line stars; this file has the same columns as the
published table (designation,ra,dec,w1,w1_err,h,h_err,k,k_err,Halpha_type,objtype_Hou,
objtype_SIMBAD; '-' = missing) but NONE of its rows: every row is made up here.

Rows lie near the spectra that `scripts/dachs.sh import 1000 1` publishes (the test fixture's
import; positions from vo_al.core.demo.datasets.make_pool, as resources/dachs/make_simbad_like.py):

* every other emission-line target of the pool (truth.csv label > 0, in pool order) gets a row
  0.5-4.5" away (H16 positions differ from the FITS headers by up to 4.96"), so a 5" match
  finds it; its designation is made from the H16 position;
* 5 rows lie 8-30" from a non-target spectrum (no match at 5", found at 30");
* 5 rows lie far from every spectrum (RA 200-210 deg).

Usage: .venv/bin/python resources/catalogues/make_h16_synthetic.py [--n 1000] [--seed 1] [--out PATH]
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "dachs"))

from make_simbad_like import offset, pool_positions  # noqa: E402

from vo_al.core.demo import designation_for  # noqa: E402

COLUMNS = ["designation", "ra", "dec", "w1", "w1_err", "h", "h_err", "k", "k_err",
           "Halpha_type", "objtype_Hou", "objtype_SIMBAD"]


def _row(rng, ra, dec, halpha, otype_hou, otype_simbad):
    mags = ["-"] * 6
    if rng.random() < 0.7:                          # like H16: some have no IR photometry
        w1 = rng.uniform(8, 14)
        mags = [f"{w1:.3f}", f"{rng.uniform(0.02, 0.05):.3f}",
                f"{w1 + rng.uniform(-0.3, 0.3):.3f}", f"{rng.uniform(0.02, 0.05):.3f}",
                f"{w1 + rng.uniform(-0.3, 0.3):.3f}", f"{rng.uniform(0.02, 0.05):.3f}"]
    return [designation_for(ra, dec).replace("LAMOST ", ""), f"{ra:.7f}", f"{dec:.7f}",
            *mags, halpha, otype_hou, otype_simbad]


def build(n: int, seed: int) -> list[list[str]]:
    rng = np.random.default_rng(seed + 16_2016)
    positions = pool_positions(n, seed)
    rows = []
    targets = [p for p in positions if p[3] > 0]
    for k, (_name, ra, dec, label, _kind) in enumerate(targets):
        if k % 2:
            continue
        hra, hdec = offset(ra, dec, rng.uniform(0.5, 4.5), rng.uniform(0, 2 * math.pi))
        rows.append(_row(rng, hra, hdec, "I" if label == 1 else "II",
                         str(rng.choice(["Em*", "Be*", "HII-region", "YSO"])),
                         str(rng.choice(["-", "Em*", "Star", "Be*"]))))
    others = [p for p in positions if p[3] == 0]
    for _name, ra, dec, _label, _kind in others[:50:10]:
        hra, hdec = offset(ra, dec, rng.uniform(8, 30), rng.uniform(0, 2 * math.pi))
        rows.append(_row(rng, hra, hdec, "III", "HII-region", "-"))
    for i in range(5):
        rows.append(_row(rng, 200 + 2 * i + rng.random(), rng.uniform(-10, 10), "I", "Em*",
                         "-"))
    return rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1000, help="spectra in the import (1000)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the import (1)")
    parser.add_argument("--out", type=Path, default=HERE / "h16_synthetic.csv")
    args = parser.parse_args(argv)
    rows = build(args.n, args.seed)
    with open(args.out, "w", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(COLUMNS)
        writer.writerows(rows)
    print(f"wrote {len(rows)} rows to {args.out}")


if __name__ == "__main__":
    main()
