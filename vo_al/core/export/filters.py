"""The filter a person types over a table: words searched in its text columns and comparisons
of its columns, joined by 'and', evaluated with numpy over the column arrays.

    single                       rows where a text column contains 'single' (any case)
    p_double > 0.9               a numeric column compared with a number (<, <=, >, >=, =, !=)
    origin = oracle              a text column equal (any case) to a text, or not (!=)
    p_double > 0.9 and snr > 20 and lamost
                                 every part must hold

A column is named whole (any case) or by the end of its name when one column alone ends so
(`sep` is `simbad_sep` in a table without `h16_sep`). A missing value (NaN) passes no
comparison. A bad expression is a `ParameterError` naming the part and what is wrong with it
(an unknown or ambiguous column, a value that is not a number), never a traceback: the app
shows it beside the filter box, `vo-al export --where` and `vo-al candidates --where` print it.

The text search (`text_values`, `fold_case`, `contains`) is the app table's search too, so a
filtered export writes the rows the table shows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Mapping

import numpy as np

from vo_al.core.base.errors import ParameterError

_FOLD_CHUNK = 262_144     # rows case-folded at a time (bounds the temporary code arrays)
_AND = re.compile(r"\s+and\s+", re.IGNORECASE)
_COMPARISON = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)\s*(<=|>=|!=|==|=|<|>)\s*(.*)$")
_NUMBER_TESTS = {"<": np.less, "<=": np.less_equal, ">": np.greater, ">=": np.greater_equal,
                 "=": np.equal, "==": np.equal, "!=": np.not_equal}
_TEXT_OPERATORS = ("=", "==", "!=")


# -- the text search ------------------------------------------------------------------------------
def text_values(values) -> np.ndarray | None:
    """`values` as a numpy str array when it is a text column (str/bytes dtype, or objects that
    are strings), else None (numbers, booleans, dates: not searched as text)."""
    a = np.asarray(values)
    if a.dtype.kind == "U":
        return a
    if a.dtype.kind == "S":
        return np.char.decode(a, "utf-8", "replace")
    if a.dtype.kind != "O":
        return None
    if a.size == 0:
        return np.array([], dtype="U1")
    inferred = np.array(a.tolist())        # all str -> 'U'; all numbers -> numeric
    if inferred.dtype.kind == "U":
        return inferred
    if inferred.dtype.kind in "biufcmM":
        return None
    return a.astype(str)                   # mixed (str and None...): as the table shows them


def fold_case(text: np.ndarray) -> np.ndarray:
    """Lower-case a str array for case-insensitive search, as `str.lower` does. ASCII rows are
    folded with integer operations on the UCS-4 codes (`np.char.lower` calls `str.lower` per
    row), a chunk of rows at a time; only rows with other characters go through `str.lower`.
    An all-ASCII column comes back as bytes ('S', a quarter of the memory), else as str."""
    text = np.ascontiguousarray(text, dtype=np.str_)
    n, width = len(text), text.dtype.itemsize // 4
    if n == 0 or width == 0:
        return np.zeros(n, dtype="S1")
    codes = text.view(np.uint32).reshape(n, width)
    chunks = [slice(start, start + _FOLD_CHUNK) for start in range(0, n, _FOLD_CHUNK)]
    special = np.concatenate([c.start + np.flatnonzero((codes[c] > 127).any(axis=1))
                              for c in chunks])          # rows with a non-ASCII character
    folded = np.empty((n, width), dtype=np.uint8 if special.size == 0 else np.uint32)
    for c in chunks:
        part, out = codes[c], folded[c]
        np.copyto(out, part, casting="unsafe")           # ASCII codes fit a byte
        # 'A'..'Z' += 32; unsigned, the codes below 'A' wrap round to large numbers
        upper = np.subtract(out, 65, dtype=out.dtype) < 26
        out += upper.view(np.uint8) << 5
    if special.size == 0:
        return folded.view(f"S{width}").reshape(n)
    lowered = [s.lower() for s in text[special].tolist()]
    out = folded.view(f"U{width}").reshape(n)
    wider = max(len(s) for s in lowered)                  # 'İ'.lower() is two characters
    if wider > width:
        out = out.astype(f"U{wider}")
    out[special] = lowered
    return out


def contains(folded: np.ndarray, needle: str) -> np.ndarray:
    """Boolean mask: the rows of a `fold_case` array that contain the lower-case `needle`."""
    if folded.dtype.kind == "S":
        try:
            needle = needle.encode("ascii")
        except UnicodeEncodeError:        # an all-ASCII column cannot contain it
            return np.zeros(len(folded), dtype=bool)
    return np.strings.find(folded, needle) >= 0


def folded_column(values) -> np.ndarray | None:
    """A column ready for `contains` (None: not a text column)."""
    text = text_values(values)
    return None if text is None else fold_case(text)


def is_numeric(values) -> bool:
    return np.asarray(values).dtype.kind in "biuf"


# -- the filter -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Comparison:
    """One `column operator value` part of a filter; `value` a float for a numeric column, the
    lower-case text for a text column."""

    column: str
    operator: str
    value: float | str

    def mask(self, values) -> np.ndarray:
        values = np.asarray(values)
        if isinstance(self.value, str):
            text = text_values(values)
            equal = (np.zeros(len(values), bool) if text is None
                     else fold_case(text) == fold_case(np.array([self.value]))[0])
            return ~equal if self.operator == "!=" else equal
        numbers = values.astype(float)
        with np.errstate(invalid="ignore"):
            return _NUMBER_TESTS[self.operator](numbers, self.value) & ~np.isnan(numbers)


@dataclass(frozen=True)
class TableFilter:
    """A parsed filter (`parse_filter`): the rows where every word is in one of the text
    columns and every comparison holds. The empty filter keeps every row."""

    expression: str = ""
    words: tuple[str, ...] = ()              # lower case
    comparisons: tuple[Comparison, ...] = ()

    @property
    def is_empty(self) -> bool:
        return not self.words and not self.comparisons

    def describe(self) -> str:
        """'filter: …' for a catalogue's `selection` parameter and the status line."""
        return f"filter: '{self.expression.strip()}'" if not self.is_empty else ""

    def narrows(self, previous: "TableFilter") -> bool:
        """True when every row this filter keeps is one `previous` keeps, seen without reading
        the table: the same comparisons and each word a longer one (typing on)."""
        return (not previous.is_empty and self.comparisons == previous.comparisons
                and len(self.words) == len(previous.words)
                and all(old in new for old, new in zip(previous.words, self.words)))

    def mask(self, table: Mapping[str, np.ndarray], n: int | None = None,
             folded: Callable[[str], np.ndarray | None] | None = None,
             within: np.ndarray | None = None) -> np.ndarray | None:
        """Boolean mask of the `n` rows of `table` ({column: array}) that pass; None for the
        empty filter. `folded(column)` gives a column ready for `contains` (the app caches
        them; default: `folded_column`), `within` limits the work to those rows (the others
        fail). A comparison of a column the table lacks passes no row."""
        if self.is_empty:
            return None
        if n is None:
            n = len(next(iter(table.values()))) if table else 0
        folded = folded or (lambda name: folded_column(table[name]))
        rows = None if within is None else np.asarray(within, dtype=np.int64)

        def part(values: np.ndarray) -> np.ndarray:      # the rows looked at, not copied
            return values if rows is None else values[rows]

        keep = np.ones(n if rows is None else len(rows), dtype=bool)
        for c in self.comparisons:
            if c.column not in table:
                keep[:] = False
                break
            keep &= c.mask(part(np.asarray(table[c.column])))
        text_columns = ([f for f in (folded(name) for name in table) if f is not None]
                        if self.words else [])
        for word in self.words:
            found = np.zeros(len(keep), dtype=bool)
            for column in text_columns:
                found |= contains(part(column), word)
            keep &= found
        if rows is None:
            return keep
        mask = np.zeros(n, dtype=bool)
        mask[rows[keep]] = True
        return mask

    def apply(self, table: Mapping[str, np.ndarray]) -> dict:
        """The rows of `table` that pass, as a table of the same columns."""
        mask = self.mask(table)
        if mask is None:
            return dict(table)
        return {name: np.asarray(values)[mask] for name, values in table.items()}


def text_filter(text: str) -> TableFilter:
    """The whole of `text` as one word (a plain substring search, nothing parsed)."""
    text = str(text or "")
    return TableFilter(text, (text.lower(),) if text else ())


def _column(name: str, columns, part: str, what: str) -> str:
    """The column `name` stands for: itself (any case), else the one column ending in
    '_name'; a ParameterError naming the part when there is none or several."""
    lower = {c.lower(): c for c in columns}
    if name.lower() in lower:
        return lower[name.lower()]
    ending = [c for c in columns if c.lower().endswith("_" + name.lower())]
    if len(ending) == 1:
        return ending[0]
    if ending:
        raise ParameterError(what, part, f"'{name}' may be {' or '.join(ending)}: name one")
    raise ParameterError(what, part, f"no column '{name}' (columns: {', '.join(columns)})")


def _typeless(values, value: str) -> bool:
    """An empty column (a table not filled yet) says nothing of its kind: a value that is no
    number is then compared as text."""
    if len(values):
        return False
    try:
        float(value)
    except ValueError:
        return True
    return False


def _value(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    return text


def parse_filter(expression: str, table: Mapping[str, np.ndarray],
                 what: str = "filter") -> TableFilter:
    """Parse `expression` against the columns of `table` (see the module docstring); `what`
    names the expression in an error ('filter', 'where')."""
    expression = str(expression or "")
    words, comparisons = [], []
    for part in (p.strip() for p in _AND.split(expression.strip())):
        if not part:
            continue
        found = _COMPARISON.match(part)
        if found is None:
            words.append(part.lower())
            continue
        name, operator, raw = found.groups()
        column = _column(name, list(table), part, what)
        value = _value(raw)
        if not value:
            raise ParameterError(what, part, f"a value after '{operator}'")
        if is_numeric(table[column]) and not _typeless(table[column], value):
            try:
                number = float(value)
            except ValueError:
                raise ParameterError(what, part, f"{column} is a number column: "
                                                 f"'{value}' is not a number") from None
            comparisons.append(Comparison(column, operator, number))
        elif operator in _TEXT_OPERATORS:
            comparisons.append(Comparison(column, operator, value.lower()))
        else:
            raise ParameterError(what, part, f"{column} is a text column: compare it with "
                                             f"= or !=")
    return TableFilter(expression, tuple(words), tuple(comparisons))
