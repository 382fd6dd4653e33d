"""The candidate table vo-al shares over SAMP: its columns, table-id, name and VOTable file.

Peers refer to it by table-id or URL and by row number; `CandidateTable` maps a row back to the
pool index and a sky position to the nearest candidate (for coord.pointAt.sky).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vo_al.core.base.errors import SampMessageError
from vo_al.core.base.sky import separation_arcsec


class CandidateTable:
    """The candidate table vo-al shares: columns, its own table-id and name, the VOTable file."""

    def __init__(self, columns: dict, table_id: str, name: str, path: Path):
        self.columns = columns
        self.table_id = str(table_id)
        self.name = str(name)
        self.path = Path(path)
        self.n_rows = len(next(iter(columns.values()))) if columns else 0
        self._ra = np.asarray(columns.get("ra", np.full(self.n_rows, np.nan)), dtype=float)
        self._dec = np.asarray(columns.get("dec", np.full(self.n_rows, np.nan)), dtype=float)

    @property
    def url(self) -> str:
        return self.path.resolve().as_uri()

    def pool_index(self, row: int) -> int:
        if "pool_index" in self.columns:
            return int(self.columns["pool_index"][row])
        return int(row)

    def row(self, row: int) -> dict:
        if not 0 <= row < self.n_rows:
            raise SampMessageError("row", row, f"must be in 0..{self.n_rows - 1}")
        return {k: (v[row].item() if hasattr(v[row], "item") else v[row])
                for k, v in self.columns.items()}

    def nearest(self, ra: float, dec: float, radius_arcsec: float) -> tuple[int, float] | None:
        """(row, separation in arcsec) of the candidate nearest (ra, dec) within the radius."""
        if self.n_rows == 0:
            return None
        sep = separation_arcsec(ra, dec, self._ra, self._dec)
        sep = np.where(np.isfinite(sep), sep, np.inf)
        row = int(np.argmin(sep))
        return (row, float(sep[row])) if sep[row] <= radius_arcsec else None
