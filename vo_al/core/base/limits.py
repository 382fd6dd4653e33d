"""How much vo-al lets one file, one download or one query cost: the bounds a hostile or broken
input meets before it can fill the memory, the disk or the clock.

A spectrum file is well under 1 MB (a LAMOST spectrum ~0.3 MB, a CCD700 one ~0.1 MB): the
default bounds are far above any real spectrum and far below what a decompression bomb or an
endless download would take. They are project settings (`vo-al settings --set
max_spectrum_mb=64`), not method parameters: they change no result, only what is refused.
"""

from __future__ import annotations

from dataclasses import dataclass

from vo_al.core.base.errors import ParameterError

MB = 1 << 20


@dataclass
class LimitSettings:
    max_spectrum_mb: float = 16.0       # a spectrum file, decompressed
    max_download_mb: float = 16.0       # one downloaded file, as received
    download_deadline_s: float = 300.0  # one download, from the request to its last byte
    query_deadline_s: float = 900.0     # one SSAP/TAP query, from the request to its result

    def validate(self) -> None:
        for name in ("max_spectrum_mb", "max_download_mb", "download_deadline_s",
                     "query_deadline_s"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ParameterError(name, value, "must be a positive number")

    @property
    def max_spectrum_bytes(self) -> int:
        return int(self.max_spectrum_mb * MB)

    @property
    def max_download_bytes(self) -> int:
        return int(self.max_download_mb * MB)


DEFAULT_LIMITS = LimitSettings()
