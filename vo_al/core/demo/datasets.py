"""The synthetic data sets: the labelled CCD700 training folder, the LAMOST-like pool folder, and
the same spectra as in-memory arrays for fast tests and simulations.

It feeds the demo, the simulation experiment and the tests, so it imitates what matters in the
paper (Škoda et al. 2020): a clean, high-resolution labelled set (Ondřejov CCD700, R ≈ 13 000,
classes ≈ 47 % absorption, 41 % single, 12 % double) and an unlabelled pool of a different domain
(LAMOST, R ≈ 1 800) whose rare targets hide among absorption stars and artefacts
(vo_al.core.demo.kinds). A pool's files lie on a few plates, as LAMOST fibres do.

Everything is seeded (numpy Generator); the makers derive one child seed per spectrum, so a
spectrum does not depend on how many came before it.
"""

from __future__ import annotations

import csv
import datetime
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vo_al.core.demo.files import (LamostHeader, PoolEntry, write_broken_files,
                                  write_ccd700_fits, write_lamost_fits)
from vo_al.core.demo.instruments import LAMOST_NPIX, ccd700_air_axis, lamost_wavelength
from vo_al.core.demo.kinds import (KIND_LABEL, LABEL_DEFAULT_KIND, SINGLE_TO_DOUBLE,
                                   TRAINING_CLASS_FRACTIONS, PoolMix)
from vo_al.core.demo.lines import C_KMS
from vo_al.core.demo.observations import LamostSpectrum, lamost_spectrum, make_ccd700_spectrum
from vo_al.core.spectra.preprocess import air_to_vacuum
from vo_al.core.spectra.record import SpectrumMeta

# ---------------------------------------------------------------- in-memory generators

@dataclass
class SyntheticArrays:
    """Raw spectra of one instrument on one grid, for fast tests and simulations."""

    wavelength: np.ndarray      # (L,) vacuum Å
    flux: np.ndarray            # (n, L)
    labels: np.ndarray          # (n,) int
    kinds: list                 # n kind names
    instrument: str             # 'lamost' or 'ccd700'

    @property
    def sigma_px(self) -> float:
        """The Gaussian degradation METHOD.md applies before interpolation (CCD700 only)."""
        return 7.0 if self.instrument == "ccd700" else 0.0


def exact_counts(n: int, fractions: dict) -> dict:
    """Integer counts summing to n, as close to n·fraction as possible (largest remainder)."""
    raw = {k: n * f for k, f in fractions.items()}
    counts = {k: int(math.floor(v)) for k, v in raw.items()}
    for k in sorted(raw, key=lambda k: raw[k] - counts[k], reverse=True)[:n - sum(counts.values())]:
        counts[k] += 1
    return counts


def training_labels(n: int, rng: np.random.Generator) -> np.ndarray:
    counts = exact_counts(n, TRAINING_CLASS_FRACTIONS)
    labels = np.concatenate([np.full(c, k, dtype=np.int64) for k, c in counts.items()])
    return rng.permutation(labels)


def pool_kinds(n: int, rng: np.random.Generator, target_fraction: float = 0.01,
               mix: PoolMix | None = None) -> list:
    """Kinds of n pool spectra: targets (single:double = 6:1) and the non-target mix, shuffled."""
    if not 0 <= target_fraction <= 1:
        raise ValueError(f"target_fraction={target_fraction} must be in [0, 1]")
    non_target = (mix or PoolMix()).fractions()
    fractions = {k: (1 - target_fraction) * f for k, f in non_target.items()}
    fractions["single"] = target_fraction * SINGLE_TO_DOUBLE / (SINGLE_TO_DOUBLE + 1)
    fractions["double"] = target_fraction / (SINGLE_TO_DOUBLE + 1)
    counts = exact_counts(n, fractions)
    kinds = [k for k, c in counts.items() for _ in range(c)]
    return [kinds[i] for i in rng.permutation(len(kinds))]


def _children(seed, n: int) -> list:
    return [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(n)]


def child_rng(seed, i: int) -> np.random.Generator:
    """`_children(seed, n)[i]`, made alone (for any n > i)."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(i,)))


def training_arrays(n: int, rng: np.random.Generator) -> SyntheticArrays:
    """n CCD700 spectra on one vacuum grid (fixed grating setting) with training-set classes."""
    labels = training_labels(n, rng)
    children = _children(int(rng.integers(2 ** 63)), n)
    wl_vac = air_to_vacuum(ccd700_air_axis())
    flux = np.empty((n, wl_vac.size), dtype=np.float32)
    for i, (label, child) in enumerate(zip(labels, children)):
        wl_air, f = make_ccd700_spectrum(int(label), child)
        flux[i] = np.interp(wl_vac, air_to_vacuum(wl_air), f)
    kinds = [LABEL_DEFAULT_KIND[int(k)] for k in labels]
    return SyntheticArrays(wl_vac, flux, labels, kinds, "ccd700")


def pool_arrays(n: int, rng: np.random.Generator, target_fraction: float = 0.01,
                mix: PoolMix | None = None) -> SyntheticArrays:
    """n LAMOST-like spectra (flux only) with their truth, without touching the disk."""
    kinds = pool_kinds(n, rng, target_fraction, mix)
    children = _children(int(rng.integers(2 ** 63)), n)
    flux = np.empty((n, LAMOST_NPIX), dtype=np.float32)
    for i, (kind, child) in enumerate(zip(kinds, children)):
        flux[i] = lamost_spectrum(KIND_LABEL[kind], child, kind).flux
    labels = np.array([KIND_LABEL[k] for k in kinds], dtype=np.int64)
    return SyntheticArrays(lamost_wavelength(), flux, labels, kinds, "lamost")


# ---------------------------------------------------------------- folder makers

def _write_csv(path: Path, header: list, rows: list) -> None:
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)


def make_training_set(out_dir, n: int = 2000, seed: int = 0) -> Path:
    """n CCD700 FITS files (classes ≈ 47 % absorption, 41 % single, 12 % double) + labels.csv."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    labels = training_labels(n, rng)
    children = _children(seed, n)
    rows = []
    for i, (label, child) in enumerate(zip(labels, children)):
        wl_air, flux, meta = training_spectrum(i, int(label), child)
        write_ccd700_fits(out / meta.name, wl_air, flux, meta.designation, meta.ra, meta.dec)
        rows.append((meta.name, int(label)))
    _write_csv(out / "labels.csv", ["name", "label"], rows)
    return out


def training_spectrum(i: int, label: int, child: np.random.Generator, rv: float | None = None
                      ) -> tuple[np.ndarray, np.ndarray, SpectrumMeta]:
    """Training spectrum i: (air wavelength, flux, what its file's header says: name, object,
    position); `rv` replaces the star's own draw."""
    wl_air, flux = make_ccd700_spectrum(label, child, rv)
    ra = float(child.uniform(0, 360))
    dec = float(np.degrees(np.arcsin(child.uniform(-0.3, 1))))    # northern sky
    return wl_air, flux, SpectrumMeta(name=training_name(i), designation=f"SYN {i:06d}",
                                      ra=ra, dec=dec)


def training_name(i: int) -> str:
    return f"ccd700-{i:06d}.fits"


@dataclass
class Plate:
    """A LAMOST plate: field centre, plan id, night. Fibres lie within 2.5° of the centre."""

    planid: str
    ra: float
    dec: float
    lmjd: int


def _plates(n: int, rng: np.random.Generator) -> list:
    count = max(3, -(-n // 3000))
    plates = []
    for k in range(count):
        ra = float(rng.uniform(0, 360))
        dec = float(rng.uniform(-5, 60))                  # LAMOST's sky
        lmjd = 55900 + int(rng.integers(0, 1000))
        prefix = "GAC" if rng.random() < 0.5 else "HD"
        planid = f"{prefix}{int(ra / 15):02d}{int(round(abs(dec))):02d}{'N' if dec >= 0 else 'S'}" \
                 f"{k:02d}V{int(rng.integers(1, 4))}"
        plates.append(Plate(planid, ra, dec, lmjd))
    return plates


def _fibre_position(plate: Plate, rng: np.random.Generator) -> tuple[float, float]:
    radius = 2.5 * math.sqrt(float(rng.random()))                  # uniform in the 5° field
    angle = float(rng.uniform(0, 2 * math.pi))
    dec = plate.dec + radius * math.sin(angle)
    ra = (plate.ra + radius * math.cos(angle) / max(math.cos(math.radians(dec)), 1e-3)) % 360.0
    return ra, dec


@dataclass
class PoolLayout:
    """Where a pool's n spectra come from: their kinds, plates and per-spectrum seeds."""

    seed: int
    kinds: list
    plates: list

    @classmethod
    def draw(cls, n: int, rng: np.random.Generator, seed: int, target_fraction: float,
             mix: PoolMix | None) -> "PoolLayout":
        return cls(seed, pool_kinds(n, rng, target_fraction, mix), _plates(n, rng))

    @property
    def fibres_per_plate(self) -> int:
        return -(-len(self.kinds) // len(self.plates))

    def file_name(self, i: int) -> str:
        """The LAMOST file name of spectrum i: spec-LMJD-PLANID_spSS-FFF.fits."""
        plate = self.plates[i // self.fibres_per_plate]
        slot = i % self.fibres_per_plate
        return f"spec-{plate.lmjd}-{plate.planid}_sp{1 + slot // 250:02d}-{1 + slot % 250:03d}.fits"

    def child(self, i: int) -> np.random.Generator:
        """Spectrum i's own generator."""
        return child_rng(self.seed, i)

    def spectrum(self, i: int, child: np.random.Generator, snr: float | None = None,
                 rv: float | None = None) -> tuple[LamostSpectrum, LamostHeader]:
        """Spectrum i of kind kinds[i] and its header (no truth in it: CLASS is 'STAR');
        `snr` and `rv` replace the demo's own draws where given."""
        kind = self.kinds[i]
        plate = self.plates[i // self.fibres_per_plate]
        slot = i % self.fibres_per_plate
        spectrum = lamost_spectrum(KIND_LABEL[kind], child, kind, snr=snr, rv=rv)
        ra, dec = _fibre_position(plate, child)
        header = LamostHeader(
            obsid=100_000_000 + i, ra=round(ra, 6), dec=round(dec, 6),
            subclass=spectrum.star.subclass(child),
            z=round(spectrum.star.rv / C_KMS, 8), snr_r=spectrum.snr,
            snr_g=spectrum.snr * float(child.uniform(0.4, 0.9)),
            objname=str(int(child.integers(10 ** 14, 10 ** 15))), planid=plate.planid,
            lmjd=plate.lmjd, spid=1 + slot // 250, fiberid=1 + slot % 250,
            date_obs=_date_obs(plate.lmjd), filename=self.file_name(i))
        return spectrum, header


def make_pool(out_dir, n: int = 20000, target_fraction: float = 0.01, seed: int = 1,
              gz_fraction: float = 0.05, table_fraction: float = 0.2, broken: int = 0,
              mix: PoolMix | None = None) -> Path:
    """n LAMOST-like FITS files (image and table layouts, some gzipped) + truth.csv.

    truth.csv has columns name,label,kind; the FITS headers carry no truth (CLASS is 'STAR').
    `broken` extra files (label -1, kind 'broken-...') are written only when asked.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    layout = PoolLayout.draw(n, rng, seed, target_fraction, mix)
    gz = rng.random(n) < gz_fraction
    table = rng.random(n) < table_fraction
    entries = []
    for i, kind in enumerate(layout.kinds):
        name = layout.file_name(i) + (".gz" if gz[i] else "")
        spectrum, header = layout.spectrum(i, layout.child(i))
        write_lamost_fits(out / name, *spectrum.arrays(), meta=header,
                          layout="table" if table[i] else "image")
        entries.append(PoolEntry(name, KIND_LABEL[kind], kind))
    entries += write_broken_files(out, broken, rng)
    write_truth_csv(out / "truth.csv", entries)
    return out


def write_truth_csv(path: Path, entries: list) -> None:
    """truth.csv (name,label,kind) of a pool's PoolEntry list: what the simulated oracle reads."""
    _write_csv(path, ["name", "label", "kind"], [(e.name, e.label, e.kind) for e in entries])


def _date_obs(lmjd: int) -> str:
    day = datetime.date(1858, 11, 17) + datetime.timedelta(days=lmjd)
    return f"{day.isoformat()}T18:30:00"
