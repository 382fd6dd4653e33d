"""Durable storage of an active-learning session in SQLite (one file in the project folder).

Every label is its own committed transaction in WAL mode with synchronous=FULL: once `label()`
returns, the label survives a kill -9 or a power cut. Arrays (scores) and models live in files
beside the database and are referenced from it only after they were written atomically. The
final step (model, scores, candidates) counts only once `commit_final` has recorded it, in one
transaction after its three files were renamed into place.
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

from vo_al.core.base.errors import ProjectError

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS training_labels (
    name TEXT PRIMARY KEY, label INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS iterations (
    iteration INTEGER PRIMARY KEY,
    model_path TEXT, training_json TEXT, n_train INTEGER,
    scores_path TEXT, query_json TEXT, sample_json TEXT, estimate_json TEXT,
    started REAL, finished REAL);
CREATE TABLE IF NOT EXISTS oracle_labels (
    pool_index INTEGER PRIMARY KEY, name TEXT NOT NULL, label INTEGER NOT NULL,
    iteration INTEGER NOT NULL, seq INTEGER NOT NULL, time REAL NOT NULL);
CREATE TABLE IF NOT EXISTS precision_labels (
    iteration INTEGER NOT NULL, pool_index INTEGER NOT NULL, name TEXT NOT NULL,
    label INTEGER NOT NULL, seq INTEGER NOT NULL, time REAL NOT NULL,
    PRIMARY KEY (iteration, pool_index));
CREATE TABLE IF NOT EXISTS final (
    key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


# the tables and their columns holding JSON (every other column is a number or a name)
JSON_COLUMNS = {"meta": {"value"}, "training_labels": set(), "oracle_labels": set(),
                "precision_labels": set(), "final": {"value"},
                "iterations": {"training_json", "query_json", "sample_json", "estimate_json"}}


def schema_columns() -> dict[str, list[str]]:
    """{table: its columns} as SCHEMA creates them (read from SQLite itself: one owner)."""
    db = sqlite3.connect(":memory:")
    try:
        db.executescript(SCHEMA)
        names = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return {t: [r[1] for r in db.execute(f"PRAGMA table_info({t})")] for t in names}
    finally:
        db.close()


class SessionStore:
    def __init__(self, path: Path):
        """Open (or create) the session database. A file that is not one, another program's
        SQLite database or a damaged one is a ProjectError naming it, and is left as it is:
        it is checked before the first write."""
        self.path = Path(path)
        try:
            self.db = sqlite3.connect(self.path, isolation_level=None, timeout=30.0,
                                      check_same_thread=False)
        except sqlite3.Error as exc:
            raise ProjectError(f"{self.path}: the session database cannot be opened ({exc})") \
                from exc
        try:
            self._check()
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")
            self.db.executescript(SCHEMA)
        except (sqlite3.DatabaseError, ValueError) as exc:
            # ValueError: text that is not UTF-8 (UnicodeDecodeError), a value that is not JSON
            self.db.close()
            raise ProjectError(f"{self.path}: not a readable vo-al session database ({exc}); "
                               "it was left as it is") from exc
        except ProjectError:
            self.db.close()
            raise

    def _check(self) -> None:
        """Before anything is written: the file is empty or a sound database with our tables."""
        tables = {row[0] for row in self.db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")}
        if tables and "oracle_labels" not in tables:
            raise ProjectError(f"{self.path}: not a vo-al session database (its tables: "
                               f"{', '.join(sorted(tables))}); it was left as it is")
        problems = [row[0] for row in self.db.execute("PRAGMA quick_check")]
        if problems != ["ok"]:
            shown = "; ".join(problems[:3]) + ("; ..." if len(problems) > 3 else "")
            raise ProjectError(f"{self.path}: the session database is damaged ({shown}); it was "
                               "left as it is")
        self._check_columns(tables)
        self._read_everything(tables)

    def _check_columns(self, tables: set) -> None:
        """Each of our tables present has the columns SCHEMA gives it (a damaged schema can
        still parse, with a column name changed)."""
        for table, wanted in schema_columns().items():
            if table not in tables:
                continue
            have = {row[1] for row in self.db.execute(f"PRAGMA table_info({table})")}
            missing = [c for c in wanted if c not in have]
            if missing:
                raise ProjectError(f"{self.path}: table {table} lacks the column(s) "
                                   f"{', '.join(missing)}: not a vo-al session database of this "
                                   "version, or a damaged one; it was left as it is")

    def _read_everything(self, tables: set) -> None:
        """Read every row of our tables once, JSON decoded as the store's readers decode it:
        quick_check sees the pages, not their values, and a damaged value (text that is not
        UTF-8, JSON cut short) would otherwise fail later, in whatever step reads it. The
        tables are small (labels and iterations), so this costs milliseconds."""
        for table, json_columns in JSON_COLUMNS.items():
            if table not in tables:
                continue
            cursor = self.db.execute(f"SELECT * FROM {table}")
            names = [c[0] for c in cursor.description]
            for row in cursor:
                for name, value in zip(names, row):
                    if name in json_columns and value:
                        try:
                            json.loads(value)
                        except ValueError as exc:
                            raise ProjectError(
                                f"{self.path}: table {table}, column {name}: a damaged value "
                                f"({exc}); the session database was left as it is") from exc

    def close(self) -> None:
        self.db.close()

    # -- small helpers -------------------------------------------------------------------
    def _next_seq(self) -> int:
        row = self.db.execute(
            "SELECT MAX(s) FROM (SELECT MAX(seq) AS s FROM oracle_labels "
            "UNION ALL SELECT MAX(seq) FROM precision_labels)").fetchone()
        return (row[0] or 0) + 1

    def get_meta(self, key: str, default=None):
        row = self.db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return json.loads(row[0]) if row else default

    def set_meta(self, key: str, value) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(value)))

    # -- training set ----------------------------------------------------------------------
    def set_training_labels(self, names, labels) -> None:
        with self.db:
            self.db.execute("BEGIN")
            self.db.execute("DELETE FROM training_labels")
            self.db.executemany("INSERT INTO training_labels VALUES (?, ?)",
                                [(str(n), int(v)) for n, v in zip(names, labels)])

    def training_labels(self) -> dict:
        return dict(self.db.execute("SELECT name, label FROM training_labels"))

    # -- iterations ------------------------------------------------------------------------
    def iteration_row(self, iteration: int) -> dict | None:
        cur = self.db.execute("SELECT * FROM iterations WHERE iteration=?", (iteration,))
        row = cur.fetchone()
        if row is None:
            return None
        out = dict(zip([c[0] for c in cur.description], row))
        for key in ("training_json", "query_json", "sample_json", "estimate_json"):
            out[key] = json.loads(out[key]) if out[key] else None
        return out

    def iterations(self) -> list[dict]:
        numbers = [r[0] for r in self.db.execute("SELECT iteration FROM iterations ORDER BY 1")]
        return [self.iteration_row(i) for i in numbers]

    def update_iteration(self, iteration: int, **fields) -> None:
        for key in ("training_json", "query_json", "sample_json", "estimate_json"):
            if key in fields and fields[key] is not None:
                fields[key] = json.dumps(fields[key])
        with self.db:
            self.db.execute("BEGIN")
            self.db.execute("INSERT OR IGNORE INTO iterations (iteration, started) VALUES (?, ?)",
                            (iteration, time.time()))
            if fields:
                sets = ", ".join(f"{k}=?" for k in fields)
                self.db.execute(f"UPDATE iterations SET {sets} WHERE iteration=?",
                                (*fields.values(), iteration))

    # -- labels ------------------------------------------------------------------------------
    def add_oracle_label(self, pool_index: int, name: str, label: int, iteration: int) -> None:
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute("INSERT OR REPLACE INTO oracle_labels VALUES (?, ?, ?, ?, ?, ?)",
                            (int(pool_index), name, int(label), iteration, self._next_seq(),
                             time.time()))

    def add_precision_label(self, iteration: int, pool_index: int, name: str, label: int) -> None:
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute("INSERT OR REPLACE INTO precision_labels VALUES (?, ?, ?, ?, ?, ?)",
                            (iteration, int(pool_index), name, int(label), self._next_seq(),
                             time.time()))

    def remove_last_label(self, iteration: int) -> tuple | None:
        """Undo the most recent label of `iteration`; returns (kind, pool_index, label)."""
        q = ("SELECT 'oracle', pool_index, label, seq FROM oracle_labels WHERE iteration=? "
             "UNION ALL SELECT 'precision', pool_index, label, seq FROM precision_labels "
             "WHERE iteration=? ORDER BY seq DESC LIMIT 1")
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            row = self.db.execute(q, (iteration, iteration)).fetchone()
            if row is None:
                return None
            kind, index, label, _ = row
            if kind == "oracle":
                self.db.execute("DELETE FROM oracle_labels WHERE pool_index=?", (index,))
            else:
                self.db.execute("DELETE FROM precision_labels WHERE iteration=? AND pool_index=?",
                                (iteration, index))
        return kind, index, label

    def oracle_labels(self) -> dict:
        """pool_index -> label of every oracle label (these are training data)."""
        return dict(self.db.execute("SELECT pool_index, label FROM oracle_labels"))

    def oracle_label_rows(self) -> list[tuple]:
        return list(self.db.execute(
            "SELECT pool_index, name, label, iteration FROM oracle_labels ORDER BY seq"))

    def precision_labels(self, iteration: int) -> dict:
        return dict(self.db.execute(
            "SELECT pool_index, label FROM precision_labels WHERE iteration=?", (iteration,)))

    def reviewed_labels(self) -> dict:
        """pool_index -> the latest precision-sample label a person gave it, over all
        iterations. Not training data (the method forgets them); but a person's verdict,
        which the candidates list respects (session.candidates)."""
        return dict(self.db.execute(
            "SELECT pool_index, label FROM precision_labels ORDER BY seq"))

    # -- final state -------------------------------------------------------------------------
    # The finish is committed by one transaction writing the whole `final` table, after its
    # files were renamed into place; its key `candidates_path` is the mark (the last key older
    # versions wrote). Until then the final files, whatever is on disk, are not the project's.
    def commit_final(self, record: dict) -> None:
        """Record a finish as one unit: every key of `record` (it must name candidates_path),
        replacing whatever an earlier finish recorded."""
        if "candidates_path" not in record:
            raise ValueError("a final record names its candidates_path")
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute("DELETE FROM final")
            self.db.executemany("INSERT INTO final VALUES (?, ?)",
                                [(k, json.dumps(v)) for k, v in record.items()])

    def clear_final(self) -> None:
        """Forget the recorded finish (before a new one replaces its files)."""
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute("DELETE FROM final")

    def final_record(self) -> dict | None:
        """The committed finish ({key: value}), or None when no finish has committed."""
        record = {k: json.loads(v) for k, v in self.db.execute("SELECT key, value FROM final")}
        return record if record.get("candidates_path") else None

    def get_final(self, key: str, default=None):
        record = self.final_record() or {}
        return record.get(key, default)
