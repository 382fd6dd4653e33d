"""Ways to break a FITS file, for the reader tests and the reader fuzz test: header card edits,
bit flips, and gzip decompression bombs (cheap to build: a deflate block of zeros repeats)."""

from __future__ import annotations

import zlib
from functools import lru_cache

import numpy as np

BLOCK = 2880
CARD = 80
ZERO_CHUNK = 1 << 20             # 1 MiB of zeros, compressed once, repeated


def header_end(raw: bytes, start: int = 0) -> int:
    """Offset just past the END card of the header that starts at `start`."""
    for i in range(start, len(raw), CARD):
        if raw[i:i + 8] == b"END     ":
            return i + CARD
    raise ValueError("no END card")


def header_starts(raw: bytes) -> list[int]:
    """Offsets of the headers of every HDU: 0 and each block that starts with XTENSION."""
    return [0] + [i for i in range(BLOCK, len(raw), BLOCK) if raw[i:i + 8] == b"XTENSION"]


def card_offset(raw: bytes, key: str, start: int = 0) -> int | None:
    """Offset of the first value card `key` of the header at `start`, or None."""
    want = key.encode().ljust(8) + b"= "
    for i in range(start, header_end(raw, start), CARD):
        if raw[i:i + 10] == want:
            return i
    return None


def set_card(raw: bytes, key: str, value: str, start: int = 0) -> bytes | None:
    """`raw` with the card `key` of the header at `start` set to the value text `value` (as
    written on the card: 'NaN', 'T', "'text'", '1E300'); inserted before END when absent and the
    header's last block has room; None when it cannot be placed."""
    text = f"{key:<8}= {value:>20}".ljust(CARD)[:CARD].encode("latin-1")
    at = card_offset(raw, key, start)
    if at is not None:
        return raw[:at] + text + raw[at + CARD:]
    end = header_end(raw, start)
    if end % BLOCK == 0:                      # END is the block's last card: no room
        return None
    return raw[:end - CARD] + text + b"END".ljust(CARD) + raw[end + CARD:]   # same size


def delete_card(raw: bytes, key: str, start: int = 0) -> bytes:
    """`raw` with the card `key` of the header at `start` blanked out (same size)."""
    at = card_offset(raw, key, start)
    return raw if at is None else raw[:at] + b" " * CARD + raw[at + CARD:]


def flip_bits(raw: bytes, rng: np.random.Generator, count: int, start: int = 0,
              stop: int | None = None) -> bytes:
    """`raw` with `count` random bits flipped in bytes [start, stop)."""
    out = bytearray(raw)
    stop = len(raw) if stop is None else stop
    for pos in rng.integers(start, stop, count):
        out[pos] ^= 1 << int(rng.integers(8))
    return bytes(out)


@lru_cache(maxsize=1)
def _zeros_compressed() -> tuple[bytes, bytes]:
    """1 MiB of zeros as a deflate block after a full flush, and as a whole gzip member."""
    zeros = bytes(ZERO_CHUNK)
    co = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    co.compress(b"x")
    co.flush(zlib.Z_FULL_FLUSH)
    block = co.compress(zeros) + co.flush(zlib.Z_FULL_FLUSH)
    return block, zlib.compress(zeros, 9, wbits=16 + zlib.MAX_WBITS)


def gzip_bomb(fits: bytes, expand_to: int, one_member: bool) -> bytes:
    """A .fits.gz of `fits` followed by zeros, at least `expand_to` bytes once decompressed.

    `one_member`: one gzip stream (its deflate blocks of zeros, after a full flush, repeat
    byte for byte, so gigabytes cost milliseconds; the trailer's CRC is left wrong: a reader
    must stop long before it). Otherwise concatenated gzip members, every one valid, as
    `cat a.gz b.gz > c.gz` makes."""
    block, member = _zeros_compressed()
    repeats = -(-max(0, expand_to - len(fits)) // ZERO_CHUNK)
    if one_member:
        co = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
        head = co.compress(fits) + co.flush(zlib.Z_FULL_FLUSH)
        return head + block * repeats + co.flush()
    return zlib.compress(fits, 9, wbits=16 + zlib.MAX_WBITS) + member * repeats
