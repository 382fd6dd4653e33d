"""The candidates of a session, one owner: what every table, export, cross-match and SAMP send uses.

Final candidates (paper Sect. 2.3) are the pool spectra predicted as target plus the oracle's
targets; a spectrum the oracle labelled overrides its prediction (origin 'oracle'), so one the
reviewer rejected is never a candidate. Precision-sample labels are kept out of training, as
the method says, but they are a person's verdict too: a spectrum labelled in a precision sample
takes that label here (origin 'precision'; an oracle label, made later or earlier, wins), so a
spectrum a person called non-target is never listed as a candidate with p = 1. The rejected
spectra (every non-target label of either kind) are a table of the same columns. `session_candidates(session)` gives both with the provenance of the scores;
the CLI, the dashboard, the cross-match, the exports and SAMP all call it (or `candidate_table`
with scores they already hold).
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vo_al.core.base.atomic import atomic_write_text
from vo_al.core.base.errors import ProjectError
from vo_al.core.export.cells import cell_format, is_position
from vo_al.core.export.filters import parse_filter
from vo_al.core.learning.classes import CLASS_NAMES, NON_TARGET, TARGET_CLASSES
from vo_al.core.learning.scoring import predicted_classes

COLUMNS = ("pool_index", "name", "designation", "ra", "dec", "class", "origin",
           "p_non_target", "p_single", "p_double", "snr", "source")
TABLE_META = ("name", "designation", "ra", "dec", "snr", "source")   # read from the pool


def _rows_table(pool, rows: np.ndarray, proba: np.ndarray, class_names, origin) -> dict:
    """The COLUMNS of pool `rows`: metadata from the pool, class, origin, probabilities."""
    meta = pool.metadata(rows, list(TABLE_META))
    p = np.asarray(proba[rows]) if len(rows) else np.empty((0, 3), np.float32)
    return {"pool_index": rows, "name": meta["name"], "designation": meta["designation"],
            "ra": meta["ra"], "dec": meta["dec"], "class": class_names, "origin": origin,
            "p_non_target": p[:, 0], "p_single": p[:, 1], "p_double": p[:, 2],
            "snr": meta["snr"], "source": meta["source"]}


def person_labels(oracle: dict, reviewed: dict | None) -> dict:
    """pool index -> (label, origin): precision-sample labels, overridden by oracle labels."""
    out = {int(i): (int(lab), "precision") for i, lab in (reviewed or {}).items()}
    out.update({int(i): (int(lab), "oracle") for i, lab in oracle.items()})
    return out


def candidate_table(pool, proba: np.ndarray, oracle: dict, reviewed: dict | None = None) -> dict:
    """Column-oriented table of candidates, ordered by pool index.

    `oracle` maps pool index -> label; an oracle label overrides the prediction (origin
    'oracle'), so a spectrum the oracle rejected is never a candidate. `reviewed` (pool index ->
    precision-sample label) does the same with origin 'precision', below the oracle's.
    """
    predicted = predicted_classes(proba)
    is_candidate = np.isin(predicted, TARGET_CLASSES)
    classes = predicted.astype(np.int64)
    # fixed-width str arrays, not object arrays: the app sorts and filters them with numpy
    origin = np.full(len(predicted), "predicted", dtype="U9")
    person = person_labels(oracle, reviewed)
    if person:
        index = np.fromiter(person, dtype=np.int64)
        labels = np.array([person[i][0] for i in index], dtype=np.int64)
        is_candidate[index] = np.isin(labels, TARGET_CLASSES)
        classes[index] = labels
        origin[index] = [person[i][1] for i in index]
    rows = np.flatnonzero(is_candidate)
    return _rows_table(pool, rows, proba, np.asarray(CLASS_NAMES)[classes[rows]], origin[rows])


def rejected_table(pool, proba: np.ndarray, oracle: dict, reviewed: dict | None = None) -> dict:
    """Spectra a person rejected: every non-target label (class 0), of the oracle or of a
    precision sample (origin 'oracle' / 'precision'; the oracle's label wins).

    Same columns as `candidate_table` (class 'non-target'); p_* are the CNN's latest
    probabilities, so a high p_single/p_double shows what the model had thought before (or
    despite) the person's label.
    """
    person = person_labels(oracle, reviewed)
    rows = np.array(sorted(i for i, (lab, _) in person.items() if lab == NON_TARGET),
                    dtype=np.int64)
    return _rows_table(pool, rows, proba,
                       np.full(rows.size, CLASS_NAMES[NON_TARGET], dtype=object),
                       np.array([person[int(i)][1] for i in rows], dtype=object))


@dataclass
class SessionCandidates:
    """A session's candidates and rejected spectra, and where they come from."""

    candidates: dict            # COLUMNS -> arrays
    rejected: dict              # the same columns
    provenance: dict            # project, iteration, n_oracle_labels, model, scores


def session_candidates(session, proba: np.ndarray | None = None,
                       scores: str = "given") -> SessionCandidates:
    """The candidates of `session`'s latest scores (`latest_scores`: the final ones only once
    the finish has committed, and only while they cover the pool) and its oracle labels; or of
    `proba`, which `scores` names in the provenance."""
    project = session.project
    source = None
    if proba is None:
        source = session.latest_scores_source()
        proba, scores = session.scores_of(source), source["scores"]
    oracle = session.store.oracle_labels()
    reviewed = session.store.reviewed_labels()
    provenance = {"project": str(project.folder), "iteration": int(session.iteration),
                  "n_oracle_labels": len(oracle), "n_precision_labels": len(reviewed),
                  "scores": scores, **_exact_source(session, source)}
    return SessionCandidates(candidate_table(project.pool, proba, oracle, reviewed),
                             rejected_table(project.pool, proba, oracle, reviewed), provenance)


def candidates_basis(session) -> tuple:
    """What `session`'s candidates are made from, read without opening a score file: the
    project, the latest scores (which, their file and its size and time) and every oracle and
    precision-sample label. Two equal bases give the same candidates, so a panel that shows
    results made from another basis is stale (the app compares them after every step)."""
    try:
        source = session.latest_scores_source()
    except ProjectError:
        scores = None                      # not scored yet
    else:
        path = session.project.folder / source["scores_file"]
        try:
            st = os.stat(path)
            stamp = (st.st_mtime_ns, st.st_size)
        except OSError:
            stamp = None
        scores = (source["scores"], str(source["scores_file"]), stamp)
    store = session.store
    return (str(session.project.folder), scores, tuple(sorted(store.oracle_labels().items())),
            tuple(sorted(store.reviewed_labels().items())))


_HASHES: dict = {}          # (path, size, mtime_ns) -> sha256: a model file is hashed once


def file_sha256(path: Path) -> str:
    import hashlib

    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    if key not in _HASHES:
        digest = hashlib.sha256()
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
        _HASHES[key] = digest.hexdigest()
    return _HASHES[key]


def _exact_source(session, source: dict | None) -> dict:
    """What a catalogue must say it came from: the model file and its sha256, the score
    file, the iteration that made them, the settings and vo-al's version. `source` None: the
    caller's own probabilities (only the settings and version are known)."""
    from vo_al import __version__

    import json

    settings = json.dumps(json.loads(session.project.settings.to_json()), sort_keys=True,
                          separators=(",", ":"))
    out = {"vo_al_version": __version__, "settings": settings}
    if source is None:
        return dict(out, model="", model_sha256="", scores_file="")
    model = source["model"]
    path = session.project.folder / model if model else None
    sha = file_sha256(path) if path is not None and path.is_file() else ""
    return dict(out, model=model, model_sha256=sha, scores_file=source["scores_file"],
                scores_iteration=source["iteration"])


def write_table_csv(table: dict, path: Path, columns=COLUMNS) -> Path:
    """`columns` of `table` as CSV: positions in degrees to 6 decimals (6 significant digits
    put 150.1234° at 150.123, 3.6″ off), other floats to 6 significant digits."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(columns)
    n = len(table[columns[0]])
    positions = {c: cell_format(c) for c in columns if is_position(c)}
    for i in range(n):
        row = []
        for c in columns:
            v = table[c][i]
            if c in positions:
                v = positions[c](v)
            elif isinstance(v, (float, np.floating)):
                v = f"{v:.6g}"
            row.append(v)
        writer.writerow(row)
    atomic_write_text(Path(path), buf.getvalue())
    return Path(path)


def write_candidates(session, proba: np.ndarray, path: Path) -> Path:
    return write_table_csv(session_candidates(session, proba).candidates, path)


def export_candidates(session, path: Path, rejected: bool = False, fmt: str | None = None,
                      pool_indices=None, selection: str = "", where: str = "") -> dict:
    """Write the session's candidates (or rejected spectra) as a catalogue with their provenance:
    `vo-al export` and the dashboard's export buttons. The format comes from `fmt` or the suffix.

    `pool_indices`: only the rows of these pool spectra (the app's filtered view), and
    `selection` says which in the catalogue's parameters (e.g. "filter: single"); `where`: only
    the rows a filter keeps (`core.export.filters`, e.g. "p_double > 0.9 and snr > 20"). The
    result gives 'rows' written and 'of' the rows of the whole table."""
    from vo_al.core.export.catalogue import write_catalogue

    found = session_candidates(session)
    table = found.rejected if rejected else found.candidates
    total = len(table["ra"])
    params = dict(found.provenance, table="rejected" if rejected else "candidates")
    keep = None                       # None: every row
    if where:
        chosen = parse_filter(where, table, "where")
        keep = chosen.mask(table)
        selection = "; ".join(t for t in (selection, chosen.describe()) if t)
    if pool_indices is not None:
        shown = np.isin(np.asarray(table["pool_index"]), np.asarray(pool_indices, dtype=np.int64))
        keep = shown if keep is None else keep & shown
    if keep is not None:
        table = {c: np.asarray(v)[keep] for c, v in table.items()}
        params["selection"] = (f"{int(keep.sum())} of {total} {params['table']}"
                               + (f" ({selection})" if selection else ""))
    written = write_catalogue(table, Path(path), fmt, params)
    return {"path": str(written), "rows": len(table["ra"]), "of": total,
            "table": params["table"]}
