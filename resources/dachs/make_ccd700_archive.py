"""Write the files of the Ondřejov-like CCD700 archive the project's DaCHS publishes (ccd700.rd).

`scripts/dachs.sh import-ccd700 N [SEED]` runs this into a fresh folder, then moves it to
/var/gavo/inputs/ccd700. It writes:

* N native 1-D FITS files NAME.fits (vo_al.core.demo.files.write_ccd700_fits: linear AIR axis
  near Hα, ~0.257 Å/px, OBJECT 'HD nnnnnn', RA/DEC sexagesimal, DATE-OBS) made by
  vo_al.core.demo.observations.make_ccd700_spectrum of the spectrum's class;
* truth.csv with columns id,label: the publisher DID (ivo://AUTHORITY/ccd700/NAME) and the class
  in the Ondřejov labels file's scheme (0 single peak, 1 absorption, 3 double peak).

Names: with --labels (the Ondřejov set's labels.csv, ids ivo://asu.cas.cz/stel/ccd700/NAME) the
NAMEs and classes are real ones: of its ids with label != 2 (unknown), sorted, N evenly spaced
ones (deterministic, independent of SEED; they cover both naming schemes and the set's class mix,
where the first N sorted ids would be 3/4 single peak). Without it the names have the old
archive's form (year letter, month letter, day, 4-digit number, e.g. 'oe270005') and the classes
the training set's mix (vo_al.core.demo.datasets.training_labels). The observing date comes from
the name, as in the archive ('oe270005': o = 2005, e = May, 27th; 'a201510030016': 2015-10-03).

Usage: .venv/bin/python resources/dachs/make_ccd700_archive.py OUT N [SEED]
           [--labels labels.csv] [--authority vo-al.test]
"""

from __future__ import annotations

import argparse
import csv
import datetime
import math
import re
import sys
from pathlib import Path

import numpy as np

from vo_al.core.demo.datasets import training_labels
from vo_al.core.demo.files import write_ccd700_fits
from vo_al.core.demo.observations import make_ccd700_spectrum
from vo_al.core.session.labels import LABEL_SCHEMES

ONDREJOV = LABEL_SCHEMES["ondrejov"]                  # labels-file class -> vo-al class
UNKNOWN = 2                                           # the labels file's 'unknown' (skipped)
TO_ONDREJOV = {vo_al: ondrejov for ondrejov, vo_al in ONDREJOV.items() if vo_al is not None}
HD_LAST = 359083                                      # the HD and HDE catalogues' last number
MIN_DEC = -25.0                                       # what Ondřejov (latitude 49.9° N) reaches

# old names: year letter (a = 1991), month letter (a = January), day, running number
_OLD_NAME = re.compile(r"^([a-z])([a-l])(\d\d)(\d{4})[a-zA-Z]?$")
# new names: a letter, then YYYYMMDD and a running number
_NEW_NAME = re.compile(r"^[a-z](\d{4})(\d\d)(\d\d)(\d{4})$")
_NAME = re.compile(r"^[a-z][a-zA-Z0-9]+$")


def night_of(name: str) -> datetime.date | None:
    """The observing night a CCD700 file name encodes, or None when it encodes none."""
    old, new = _OLD_NAME.match(name), _NEW_NAME.match(name)
    try:
        if old:
            return datetime.date(1990 + ord(old[1]) - ord("a") + 1, ord(old[2]) - ord("a") + 1,
                                 int(old[3]))
        if new:
            return datetime.date(int(new[1]), int(new[2]), int(new[3]))
    except ValueError:                     # e.g. day 31 of a 30-day month
        return None
    return None


def names_from_labels(path: Path, n: int) -> list[tuple[str, int]]:
    """(NAME, label in the file's scheme) of N evenly spaced sorted ids with label != 2."""
    labels: dict[str, set[int]] = {}
    with open(path, newline="", encoding="utf-8-sig") as fh:
        for k, row in enumerate(csv.DictReader(fh), start=2):
            try:
                name, label = row["id"].strip().rsplit("/", 1)[-1], int(row["label"])
            except (KeyError, AttributeError, ValueError) as exc:
                raise SystemExit(f"{path}: line {k}: not an id,label row ({exc})")
            if label not in ONDREJOV:
                raise SystemExit(f"{path}: line {k}: label {label} is not 0, 1, 2 or 3")
            if _NAME.match(name):
                labels.setdefault(name, set()).add(label)
    # a name given two classes is left out, as is the 'unknown' class
    rows = sorted((name, label) for name, (label,) in
                  ((name, found) for name, found in labels.items() if len(found) == 1)
                  if label != UNKNOWN)
    if len(rows) < n:
        raise SystemExit(f"{path}: only {len(rows)} usable ids, {n} asked for")
    return [rows[int(i * len(rows) / n)] for i in range(n)]


def synthetic_names(n: int, rng: np.random.Generator) -> list[tuple[str, int]]:
    """N distinct old-form names (2001-2013) with the training set's class mix."""
    names: set[str] = set()
    while len(names) < n:
        year, month = int(rng.integers(11, 24)), int(rng.integers(1, 13))
        day, number = int(rng.integers(1, 29)), int(rng.integers(1, 100))
        names.add(f"{chr(96 + year)}{chr(96 + month)}{day:02d}{number:04d}")
    labels = training_labels(n, rng)
    return [(name, TO_ONDREJOV[int(label)]) for name, label in zip(sorted(names), labels)]


def write_archive(out: Path, n: int, seed: int, labels: Path | None, authority: str) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    spectra = names_from_labels(labels, n) if labels else synthetic_names(n, rng)
    hd_numbers = rng.choice(np.arange(1, HD_LAST + 1), size=n, replace=False)
    children = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(n)]
    rows = []
    for (name, label), hd, child in zip(spectra, hd_numbers, children):
        wl_air, flux = make_ccd700_spectrum(ONDREJOV[label], child)
        ra = float(child.uniform(0.0, 360.0))
        dec = math.degrees(math.asin(float(child.uniform(math.sin(math.radians(MIN_DEC)), 1.0))))
        night = night_of(name) or (datetime.date(2001, 1, 1)
                                   + datetime.timedelta(days=int(child.integers(0, 4748))))
        start = datetime.datetime.combine(night, datetime.time(18, 30)) \
            + datetime.timedelta(seconds=int(child.integers(0, 5 * 3600)))
        write_ccd700_fits(out / f"{name}.fits", wl_air, flux, f"HD {int(hd)}", ra, dec,
                          date_obs=start.isoformat(timespec="seconds"))
        rows.append((f"ivo://{authority}/ccd700/{name}", label))
    with open(out / "truth.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["id", "label"])
        writer.writerows(rows)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="folder to write (created)")
    parser.add_argument("n", type=int, help="number of spectra (>= 1)")
    parser.add_argument("seed", type=int, nargs="?", default=1)
    parser.add_argument("--labels", type=Path, help="the Ondřejov set's labels.csv (names)")
    parser.add_argument("--authority", default="vo-al.test", help="the DIDs' IVOA authority")
    args = parser.parse_args(argv)
    if args.n < 1:
        parser.error(f"n must be >= 1 (got {args.n})")
    if args.labels is not None and not args.labels.is_file():
        parser.error(f"--labels {args.labels}: no such file")
    write_archive(args.out, args.n, args.seed, args.labels, args.authority)
    return 0


if __name__ == "__main__":
    sys.exit(main())
