"""The structure of a FITS file, read strictly from its raw bytes, before any pixel is trusted.

* `read_fits_file` / `fits_bytes`: a file's FITS bytes, gunzipped by streaming decompression
  that stops as soon as the output passes a bound (LimitSettings.max_spectrum_bytes), so that a
  2 MB .fits.gz that expands to gigabytes costs at most the bound in memory.
* `split_hdus`: the header of every HDU and where its data lie, checked against itself and
  against the file's size: SIMPLE = T, a valid BITPIX, NAXIS and exactly the NAXISn it
  announces, PCOUNT/GCOUNT where they belong, binary-table columns (TFORMn) that fill NAXIS1,
  valid scaling cards, data of exactly the announced size padded with zeros, nothing after
  the last HDU. A header that contradicts itself or the bytes that follow it is a corrupt
  file, not a spectrum to guess at: a changed BITPIX, NAXIS or NAXISn otherwise reads other
  bytes as flux, and a real FITS in front of a gigabyte of zeros otherwise reads as that FITS.
* `RawHeader`: keyword values parsed by the FITS grammar (no NaN, no Inf), with typed accessors
  whose errors name the card, so a reader never takes 'CDELT1 = T' for 1 or lets an unparsable
  card escape as an astropy exception.

Errors: `fits_bytes` and `read_fits_file` raise SpectrumReadError naming the file; the checks of
the content raise `NotSpectrum(reason)`, which read_spectrum turns into a SpectrumReadError.
"""

from __future__ import annotations

import math
import os
import re
import zlib
from dataclasses import dataclass
from itertools import chain
from typing import Iterable

import numpy as np

from vo_al.core.base.errors import SpectrumReadError
from vo_al.core.base.limits import DEFAULT_LIMITS, MB
from vo_al.core.spectra.fits_cards import CARD_LENGTH, FITS_BLOCK

GZIP_MAGIC = b"\x1f\x8b"
FITS_MAGIC = b"SIMPLE  ="        # the first card of every FITS file
BITPIX_DTYPES = {8: ">u1", 16: ">i2", 32: ">i4", 64: ">i8", -32: ">f4", -64: ">f8"}
_READ_CHUNK = 1 << 16            # compressed bytes read at a time
_PIECE = 1 << 20                 # decompressed bytes made at a time
_MAX_NAXIS = 999                 # the FITS standard's limit
_INTEGER = re.compile(r"[+-]?[0-9]+\Z")
_REAL = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([EeDd][+-]?[0-9]+)?\Z")
_END_CARD = "END".ljust(CARD_LENGTH)
_NAXIS_N = re.compile(r"NAXIS([0-9]+)\Z")
_TFORM = re.compile(r"\s*([0-9]*)([LXBIJKAEDCMPQ])")
_TFORM_BYTES = {"L": 1, "B": 1, "I": 2, "J": 4, "K": 8, "A": 1, "E": 4, "D": 8, "C": 8,
                "M": 16, "P": 8, "Q": 16}          # bytes per element ('X' is in bits)


class NotSpectrum(Exception):
    """The content is not a spectrum we can read; carries the human-readable reason."""


# ---------------------------------------------------------------- bytes (bounded)

def _bound_text(max_bytes: int) -> str:
    return f"{max_bytes / MB:.3g} MB (the project setting max_spectrum_mb)"


def gunzip_bounded(chunks: Iterable[bytes], where, max_bytes: int) -> bytes:
    """The concatenated members of a gzip stream given in pieces, never more than `max_bytes`.

    Zero bytes after a member are the padding gzip allows; anything else after the last member
    is garbage. SpectrumReadError(where, ...) for a broken, truncated or oversized stream.
    """
    out = bytearray()
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    pending = b""
    try:
        for chunk in chunks:
            data, pending = pending + chunk, b""
            while data:
                if inflater is None:                     # between members
                    data = data.lstrip(b"\0")
                    if len(data) < 2:
                        pending = data                   # may be the start of a member's magic
                        break
                    if data[:2] != GZIP_MAGIC:
                        raise SpectrumReadError(where, "garbage after the end of the gzip "
                                                       f"stream (starting {data[:16]!r})")
                    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
                # pieces of at most 1 MiB: the output never needs twice the bound; and
                # max_length >= 1 always (0 would mean 'unbounded')
                out += inflater.decompress(data, min(_PIECE, max_bytes + 1 - len(out)))
                if len(out) > max_bytes:
                    raise SpectrumReadError(where, "decompresses to more than "
                                            f"{_bound_text(max_bytes)}: a decompression bomb, "
                                            "not a spectrum (a spectrum is well under 1 MB)")
                if inflater.eof:
                    data, inflater = inflater.unused_data, None
                else:
                    data = inflater.unconsumed_tail
    except zlib.error as exc:
        raise SpectrumReadError(where, f"broken gzip stream: {exc}") from None
    if pending.strip(b"\0"):
        raise SpectrumReadError(where, f"garbage after the end of the gzip stream ({pending!r})")
    if inflater is not None:
        raise SpectrumReadError(where, "broken gzip stream (truncated?): it ends before its "
                                       "end-of-stream marker")
    return bytes(out)


def _check_fits_magic(raw: bytes, where) -> bytes:
    if not raw:
        raise SpectrumReadError(where, "empty file (0 bytes)")
    if not raw.startswith(FITS_MAGIC):
        raise SpectrumReadError(where, f"not a FITS file (no SIMPLE card at the start: "
                                       f"{raw[:20]!r})")
    return raw


def fits_bytes(raw: bytes, where, head_only: bool = False, max_bytes: int | None = None) -> bytes:
    """The FITS content of a file's bytes `raw`: gunzipped when they start with the gzip magic.

    Raises SpectrumReadError(where, reason) when `raw` is empty, a broken gzip stream, larger
    than `max_bytes` (default: DEFAULT_LIMITS) once decompressed, or not FITS (no SIMPLE card at
    the start). With `head_only`, `raw` is only the start of a file (a download's first block)
    and only its first card is unpacked: enough to see the FITS magic, not to find a truncated
    stream.
    """
    if max_bytes is None:
        max_bytes = DEFAULT_LIMITS.max_spectrum_bytes
    if not raw:
        raise SpectrumReadError(where, "empty file (0 bytes)")
    if raw[:2] == GZIP_MAGIC:
        if head_only:
            try:
                raw = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(raw, CARD_LENGTH)
            except zlib.error as exc:
                raise SpectrumReadError(where, f"broken gzip stream (truncated?): {exc}") from None
        else:
            raw = gunzip_bounded([raw], where, max_bytes)
    elif not head_only and len(raw) > max_bytes:
        raise SpectrumReadError(where, f"{len(raw)} bytes, more than {_bound_text(max_bytes)}")
    return _check_fits_magic(raw, where)


def read_fits_file(path, max_bytes: int) -> bytes:
    """A file's FITS bytes (gunzipped if gzipped), reading and keeping at most `max_bytes`."""
    return _check_fits_magic(read_file_bounded(path, max_bytes), path)


def read_file_bounded(path, max_bytes: int) -> bytes:
    """A file's bytes (gunzipped if gzipped, whatever they hold), reading and keeping at most
    `max_bytes`: SpectrumReadError naming the file for more, an empty file, or an I/O error."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(2)
            if head == GZIP_MAGIC:
                chunks = chain([head], iter(lambda: fh.read(_READ_CHUNK), b""))
                raw = gunzip_bounded(chunks, path, max_bytes)
                if not raw:
                    raise SpectrumReadError(path, "empty file (0 bytes)")
                return raw
            size = os.fstat(fh.fileno()).st_size
            if size > max_bytes:
                raise SpectrumReadError(path, f"file of {size} bytes, more than "
                                              f"{_bound_text(max_bytes)}")
            raw = head + fh.read(max_bytes + 1 - len(head))   # bounded even where size lies
    except OSError as exc:
        raise SpectrumReadError(path, f"cannot read file: {exc}", retryable=True) from exc
    if len(raw) > max_bytes:
        raise SpectrumReadError(path, f"file larger than {_bound_text(max_bytes)}")
    if not raw:
        raise SpectrumReadError(path, "empty file (0 bytes)")
    return raw


# ---------------------------------------------------------------- header values

@dataclass(frozen=True)
class Unparsable:
    """A value field that is no FITS value (NaN, Inf, a bit-flipped number): kept as its text."""

    text: str

    def __str__(self) -> str:
        return self.text


def finite_number(value) -> float:
    """A metadata value (a card's, a PARAM's, a table cell's) as a finite float, NaN where it is
    none: absent, a logical, not a number, NaN or infinite. One rule for every reader's meta."""
    if value is None or isinstance(value, (bool, np.bool_)):
        return float("nan")
    try:
        number = float(value)
    except (TypeError, ValueError):
        return float("nan")
    return number if math.isfinite(number) else float("nan")


def checked_sky(value: float, key: str, is_ra: bool) -> float:
    """RA/DEC in degrees, NaN where unknown; NotSpectrum naming `key` where outside the sphere."""
    low, high, what = (0.0, 360.0, "right ascension") if is_ra else \
        (-90.0, 90.0, "declination")
    if math.isfinite(value) and not low <= value <= high:
        raise NotSpectrum(f"{key} = {value!r} is not a {what} in degrees ({low:g} to {high:g})")
    return value


def parse_value(field: str):
    """A card's value field (after '= ') -> str, bool, int, float, Unparsable, or None when the
    value is undefined. Numbers follow the FITS grammar: 'NaN', 'Inf' or '1.2.3' are Unparsable
    (float() would take the first two)."""
    text = field.strip(" ")             # FITS pads with spaces only (not str.strip's \xa0 etc.)
    if text.startswith("'"):
        # string: ends at the first single quote not doubled; '' is an escaped quote; only a
        # comment ('/ ...') may follow it
        out, i = [], 1
        while i < len(text):
            ch = text[i]
            if ch == "'":
                if text[i + 1:i + 2] != "'":
                    rest = text[i + 1:].lstrip(" ")
                    return "".join(out).rstrip(" ") if not rest or rest.startswith("/") \
                        else Unparsable(text)
                i += 1
            out.append(ch)
            i += 1
        return Unparsable(text)                          # no closing quote
    value = text.split("/", 1)[0].strip(" ")
    if not value:
        return None
    if value in ("T", "F"):
        return value == "T"
    if _INTEGER.match(value):
        return int(value)
    if _REAL.match(value):
        return float(value.replace("D", "E").replace("d", "e"))   # may overflow to inf
    return Unparsable(value)


def _show(value) -> str:
    """A value as it stands on the card, for error messages."""
    if isinstance(value, bool):
        return "T" if value else "F"
    if isinstance(value, str):
        return repr(value)
    return str(value)


class RawHeader:
    """The value cards of one HDU header: keyword -> parsed value, checked when asked for.

    A keyword repeated with different values contradicts itself (NotSpectrum when read); the
    typed accessors raise NotSpectrum naming the card when a value is not of their kind.
    """

    def __init__(self, fields: dict, repeats: dict, hdu: int):
        self._fields = fields          # keyword -> value field of its first card
        self._repeats = repeats        # keyword -> value fields of its later cards
        self._parsed: dict = {}
        self.hdu = hdu

    def where(self) -> str:
        return "the primary header" if self.hdu == 0 else f"the header of HDU {self.hdu}"

    def __contains__(self, key) -> bool:
        return key in self._fields

    def keys(self):
        return self._fields.keys()

    def get(self, key, default=None):
        if key not in self._fields:
            return default
        if key not in self._parsed:
            value = parse_value(self._fields[key])
            others = {parse_value(f) for f in self._repeats.get(key, ())} - {value}
            if others:
                shown = ", ".join(sorted(_show(v) for v in others))
                raise NotSpectrum(f"{key} appears more than once in {self.where()} with "
                                  f"different values ({_show(value)}, {shown}): the header "
                                  "contradicts itself")
            self._parsed[key] = value
        value = self._parsed[key]
        return default if value is None else value

    def number(self, key) -> float | None:
        """A finite number, or None where the card is absent or its value undefined."""
        value = self.get(key)
        if value is None:
            return None
        if isinstance(value, Unparsable):
            raise NotSpectrum(f"{key} = {value.text} in {self.where()} is not a valid FITS "
                              "number")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            kind = "a logical" if isinstance(value, bool) else "a string"
            raise NotSpectrum(f"{key} = {_show(value)} in {self.where()} is {kind}, not a "
                              "number")
        try:
            number = float(value)
        except OverflowError:
            number = math.inf
        if not math.isfinite(number):
            text = self._fields[key].split("/", 1)[0].strip()
            raise NotSpectrum(f"{key} = {text} in {self.where()} is not a finite number")
        return number

    def logical(self, key) -> bool | None:
        value = self.get(key)
        if value is not None and not isinstance(value, bool):
            raise NotSpectrum(f"{key} = {_show(value)} in {self.where()} is not T or F")
        return value

    def integer(self, key) -> int | None:
        value = self.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise NotSpectrum(f"{key} = {_show(value)} in {self.where()} is not an integer")
        return value


def parse_header(raw: bytes, start: int, hdu: int) -> tuple[RawHeader, int]:
    """The header that starts at byte `start` and the offset of its data (after its END)."""
    fields: dict = {}
    repeats: dict = {}
    for block_start in range(start, len(raw) - FITS_BLOCK + 1, FITS_BLOCK):
        # one decode and C-level slicing per block: parsing card by card in bytes is 3x slower
        text = raw[block_start:block_start + FITS_BLOCK].decode("latin-1")
        for i in range(0, FITS_BLOCK, CARD_LENGTH):
            if text[i + 8:i + 10] == "= ":
                key = text[i:i + 8].rstrip()
                if key in fields:
                    repeats.setdefault(key, []).append(text[i + 10:i + CARD_LENGTH])
                else:
                    fields[key] = text[i + 10:i + CARD_LENGTH]
            elif text[i:i + CARD_LENGTH] == _END_CARD:       # columns 4-80 blank
                return RawHeader(fields, repeats, hdu), block_start + FITS_BLOCK
    where = "the primary header" if hdu == 0 else f"the header of HDU {hdu}"
    raise NotSpectrum(f"{where} has no END card in whole 2880-byte blocks: truncated or corrupt")


# ---------------------------------------------------------------- HDUs and their sizes

@dataclass
class Hdu:
    """One header-and-data unit: its header, and where and how large its data are."""

    header: RawHeader
    bitpix: int
    axes: tuple                # (NAXIS1, NAXIS2, ...), FITS order
    data_start: int
    data_size: int             # bytes, without the padding to a whole block

    @property
    def shape(self) -> tuple:
        """The data's numpy shape (NAXISn first)."""
        return tuple(reversed(self.axes))


def _check_defined(header: RawHeader, numbers: tuple, integers: tuple = (),
                   strings: tuple = ()) -> None:
    """Keywords that change how data are read (scaling, blanks, shapes) must be valid values of
    their kind wherever they stand: NotSpectrum naming the card otherwise."""
    for keys, read in ((numbers, header.number), (integers, header.integer)):
        for key in keys:
            if key in header and read(key) is None:
                raise NotSpectrum(f"{key} in {header.where()} has no value")
    for key in strings:
        if key in header and not isinstance(header.get(key), str):
            raise NotSpectrum(f"{key} = {_show(header.get(key))} in {header.where()} is not a "
                              "string")


def _structure(header: RawHeader) -> tuple[int, tuple, int]:
    """(BITPIX, axes, data size in bytes) of a header, checked card by card."""
    where = header.where()
    bitpix = header.integer("BITPIX")
    if bitpix is None:
        raise NotSpectrum(f"{where} has no BITPIX card")
    if bitpix not in BITPIX_DTYPES:
        raise NotSpectrum(f"BITPIX = {bitpix} in {where} is not a FITS data type "
                          "(8, 16, 32, 64, -32 or -64)")
    naxis = header.integer("NAXIS")
    if naxis is None:
        raise NotSpectrum(f"{where} has no NAXIS card")
    if not 0 <= naxis <= _MAX_NAXIS:
        raise NotSpectrum(f"NAXIS = {naxis} in {where} is not between 0 and {_MAX_NAXIS}")
    axes = []
    for n in range(1, naxis + 1):
        length = header.integer(f"NAXIS{n}")
        if length is None:
            raise NotSpectrum(f"NAXIS = {naxis} but {where} has no NAXIS{n} card")
        if length < 0:
            raise NotSpectrum(f"NAXIS{n} = {length} in {where} is negative")
        axes.append(length)
    for key in header.keys():
        match = _NAXIS_N.match(key)
        if match and not 1 <= int(match.group(1)) <= naxis:
            raise NotSpectrum(f"NAXIS = {naxis} but {key} = {_show(header.get(key))} is set in "
                              f"{where}: the header contradicts itself")
    _check_defined(header, ("BSCALE", "BZERO"), ("BLANK",))
    count = math.prod(axes) if axes else 0
    pcount, gcount = header.integer("PCOUNT"), header.integer("GCOUNT")
    pcount = 0 if pcount is None else pcount
    gcount = 1 if gcount is None else gcount
    if header.hdu == 0:
        header.logical("EXTEND")          # astropy reads it to look for extensions
        if header.logical("GROUPS"):
            raise NotSpectrum("random-groups FITS file (GROUPS = T): not a spectrum")
        if (pcount, gcount) != (0, 1):
            # a primary image has neither; astropy would size its data by them
            raise NotSpectrum(f"PCOUNT = {pcount}, GCOUNT = {gcount} in {where}: a primary "
                              "image has no parameters or groups (0 and 1)")
    else:
        for key in ("PCOUNT", "GCOUNT"):
            if header.get(key) is None:      # mandatory in every extension
                raise NotSpectrum(f"{where} has no {key} value (an extension must state it)")
        if pcount < 0 or gcount < 1:
            raise NotSpectrum(f"PCOUNT = {pcount}, GCOUNT = {gcount} in {where}: must be >= 0 "
                              "and >= 1")
        count = (pcount + count) * gcount
    return bitpix, tuple(axes), count * abs(bitpix) // 8


def _check_bintable(header: RawHeader, axes: tuple) -> None:
    """The columns of a binary table (TFIELDS, TFORMn, TTYPEn) must fill NAXIS1 bytes a row."""
    where = header.where()
    fields = header.integer("TFIELDS")
    if fields is None or not 0 <= fields <= _MAX_NAXIS:
        raise NotSpectrum(f"TFIELDS = {_show(header.get('TFIELDS'))} in {where}: not a number "
                          f"of columns (0 to {_MAX_NAXIS})")
    width = 0
    for i in range(1, fields + 1):
        form, name = header.get(f"TFORM{i}"), header.get(f"TTYPE{i}")
        if form is None:
            raise NotSpectrum(f"TFIELDS = {fields} but {where} has no TFORM{i} card")
        match = _TFORM.match(form) if isinstance(form, str) else None
        if match is None:
            raise NotSpectrum(f"TFORM{i} = {_show(form)} in {where} is not a column format")
        if not isinstance(name, str):
            # legal FITS, but a spectrum's table names its columns (and astropy needs names)
            raise NotSpectrum(f"TTYPE{i} = {_show(name)} in {where}: column {i} has no name"
                              if name is not None else
                              f"column {i} of {where} has no name (no TTYPE{i} card)")
        _check_defined(header, (f"TSCAL{i}", f"TZERO{i}"), (f"TNULL{i}",), (f"TDIM{i}",))
        repeat = int(match.group(1) or 1)
        code = match.group(2)
        width += (repeat + 7) // 8 if code == "X" else repeat * _TFORM_BYTES[code]
    row = axes[0] if axes else 0
    if width != row:
        raise NotSpectrum(f"the {fields} columns of {where} (TFORMn) fill {width} bytes a row, "
                          f"NAXIS1 = {row}: the header contradicts itself")


def split_hdus(raw: bytes) -> list[Hdu]:
    """Every HDU of the FITS bytes `raw`, whose headers must agree with the bytes: the data of
    exactly the announced size (the last HDU's final padding may be short), data padding of
    zeros, and nothing after the last HDU. NotSpectrum(reason) otherwise."""
    hdus: list[Hdu] = []
    offset = 0
    while True:
        index = len(hdus)
        header, data_start = parse_header(raw, offset, index)
        first = "SIMPLE" if index == 0 else "XTENSION"
        value = header.get(first)
        if index == 0 and value is not True:
            raise NotSpectrum(f"SIMPLE = {_show(value)}: the file says it does not conform to "
                              "FITS, so its layout cannot be trusted")
        if index > 0 and not isinstance(value, str):
            raise NotSpectrum(f"XTENSION = {_show(value)} in {header.where()} is not an "
                              "extension type")
        bitpix, axes, size = _structure(header)
        if index > 0 and value.strip().upper() == "BINTABLE":
            _check_bintable(header, axes)
        end = data_start + size
        if end > len(raw):
            raise NotSpectrum(f"file is truncated: {header.where()} announces {size} data bytes "
                              f"(BITPIX = {bitpix}, NAXISn = {list(axes)}) from byte "
                              f"{data_start}, but the file has {len(raw)} bytes")
        hdus.append(Hdu(header, bitpix, axes, data_start, size))
        padded = end + (-size % FITS_BLOCK)
        if padded < len(raw) and raw[padded:padded + 8] != b"XTENSION":
            raise NotSpectrum(f"{len(raw) - padded} bytes after the end of the last HDU (at "
                              f"byte {padded}): trailing garbage, or a header (BITPIX, NAXISn) "
                              "that understates its data")
        fill = b" " if value == "TABLE" else b"\0"       # ASCII tables are padded with blanks
        if raw[end:padded].strip(fill):
            raise NotSpectrum(f"the padding after the data of HDU {index} is not all "
                              f"{'blanks' if fill == b' ' else 'zeros'}: the header (BITPIX, "
                              "NAXISn) understates the size of its data")
        if padded >= len(raw):
            return hdus
        offset = padded
