"""Writing FITS headers and files as raw bytes: 80-character cards, 2880-byte blocks.

Headers are formatted here instead of through astropy.io.fits: building Header/HDU objects costs
~2.8 ms a file, this ~0.1 ms, and the output is plain standard FITS (the tests read it back with
astropy and verify it). The synthetic survey writes its files this way (vo_al.core.demo.files).
"""

from __future__ import annotations

import gzip
import math
from pathlib import Path

import numpy as np

FITS_BLOCK = 2880           # bytes; headers and data each fill whole blocks
CARD_LENGTH = 80


def format_value(value) -> str:
    """A card's value field: logicals and numbers right-aligned in 20 columns, strings quoted."""
    if isinstance(value, (bool, np.bool_)):
        return f"{'T' if value else 'F':>20}"
    if isinstance(value, (int, np.integer)):
        return f"{int(value):>20}"
    if isinstance(value, (float, np.floating)):
        text = repr(float(value)).upper()
        if "E" in text and "." not in text:
            text = text.replace("E", ".0E")
        elif "." not in text and "E" not in text:
            text += ".0"
        return f"{text:>20}"
    quoted = "'" + str(value).replace("'", "''").ljust(8) + "'"
    return f"{quoted:<20}"


def card(key: str, value, comment: str = "") -> str:
    """One 80-character header card 'KEY     = value / comment'."""
    text = f"{key:<8}= {format_value(value)}"
    if len(text) > CARD_LENGTH:
        raise ValueError(f"header value of {key} does not fit on one card")
    if comment:
        text = f"{text} / {comment}"[:CARD_LENGTH]     # comments may be cut, values never
    return text.ljust(CARD_LENGTH)


def header_bytes(cards: list) -> bytes:
    """Header cards [(key, value, comment)] -> padded header bytes; None values are skipped."""
    lines = []
    for key, value, comment in cards:
        if value is None or (isinstance(value, float) and not math.isfinite(value)):
            continue
        lines.append(card(key, value, comment))
    lines.append("END".ljust(CARD_LENGTH))
    text = "".join(lines)
    return pad_to_block(text.encode("ascii"), b" ")


def pad_to_block(data: bytes, fill: bytes) -> bytes:
    """`data` filled up to a whole number of FITS blocks (spaces for headers, zeros for data)."""
    return data + fill * (-len(data) % FITS_BLOCK)


def write_fits_bytes(path: Path, data: bytes) -> None:
    """Write a file's bytes, making its folder; gzipped (reproducibly: no mtime) when `path`
    ends in .gz."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.name.lower().endswith(".gz"):
        data = gzip.compress(data, compresslevel=6, mtime=0)
    path.write_bytes(data)
