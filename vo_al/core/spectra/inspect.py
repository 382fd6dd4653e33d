"""What the model sees of a few files: `vo-al preprocess FILE... --out OUT.npy [--plot OUT.png]`.

One row of `n_points` per file, in the order given (NaN where a file cannot be used), and for
each file the reader that read it, its instrument, air or vacuum and why, or the reason it was
rejected: how a person checks a new archive's files before ingesting millions of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vo_al.core.base.errors import SpectrumReadError
from vo_al.core.base.limits import LimitSettings
from vo_al.core.spectra.lines import HALPHA_VAC, HEI_6678_VAC
from vo_al.core.spectra.preprocess import preprocess_spectra, window_grid
from vo_al.core.spectra.readers import read_spectrum
from vo_al.core.spectra.settings import PreprocessSettings


@dataclass
class PreparedFile:
    """One file as preprocessing saw it; `reason` is None when `row` is usable."""

    path: str
    row: np.ndarray                 # (n_points,) float32, NaN where rejected
    reason: str | None = None
    reader: str = ""
    instrument: str = ""
    medium: str = ""
    medium_reason: str = ""

    @property
    def ok(self) -> bool:
        return self.reason is None

    def describe(self) -> str:
        if self.reader:
            read = (f"{self.reader} ({self.instrument}), {self.medium} wavelengths: "
                    f"{self.medium_reason}")
        else:
            read = "not read"
        return f"{self.path}: {'ok' if self.ok else 'REJECTED: ' + self.reason}; {read}"


def prepare_files(paths, settings: PreprocessSettings | None = None,
                  limits: LimitSettings | None = None, medium: str | None = None,
                  medium_origin: str = "--medium") -> list[PreparedFile]:
    """Read and preprocess `paths` in order: one PreparedFile each, never an exception for a
    file's own fault (its reason says what is wrong)."""
    settings = settings or PreprocessSettings()
    settings.validate()
    blank = np.full(settings.n_points, np.nan, np.float32)
    out: list[PreparedFile] = []
    for path in paths:
        try:
            spectrum = read_spectrum(path, limits, medium, medium_origin)
        except SpectrumReadError as exc:
            out.append(PreparedFile(str(path), blank.copy(), exc.reason))
            continue
        result = preprocess_spectra([spectrum], settings)
        out.append(PreparedFile(str(path), result.rows[0], result.reasons[0], spectrum.reader,
                                spectrum.instrument, spectrum.medium, spectrum.medium_reason))
    return out


def plot_prepared(prepared: list[PreparedFile], out, settings: PreprocessSettings | None = None,
                  max_lines: int = 24) -> Path:
    """A PNG of the usable rows on the window's vacuum wavelengths, offset for legibility."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    settings = settings or PreprocessSettings()
    grid = window_grid(settings)
    usable = [p for p in prepared if p.ok][:max_lines]
    fig, ax = plt.subplots(figsize=(8, 1.5 + 0.45 * max(len(usable), 1)), dpi=110)
    for k, item in enumerate(usable):
        ax.plot(grid, item.row + 2.2 * k, lw=1)
        ax.text(grid[-1] + 2, 2.2 * k, Path(item.path).name, fontsize=7, va="center")
    for line, label in ((HALPHA_VAC, "Hα"), (HEI_6678_VAC, "He I")):
        ax.axvline(line, color="0.7", lw=0.8, ls="--")
        ax.text(line + 1, 0.01, label, fontsize=7, ha="left", va="bottom",
                transform=ax.get_xaxis_transform(), color="0.4")
    ax.set_xlabel("vacuum wavelength (Å)")
    ax.set_ylabel("scaled flux (rows offset by 2.2)")
    rejected = len(prepared) - len([p for p in prepared if p.ok])
    ax.set_title(f"what the model sees: {len(usable)} of {len(prepared)} files"
                 + (f" ({rejected} rejected)" if rejected else ""), fontsize=9)
    ax.set_xlim(grid[0], grid[-1] + 40)
    fig.tight_layout()
    out = Path(out)
    fig.savefig(out)
    plt.close(fig)
    return out


__all__ = ["PreparedFile", "plot_prepared", "prepare_files"]
