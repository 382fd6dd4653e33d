"""A project folder: settings, the labelled training set, a link to the pool, the session.

One writer at a time: every step that changes a project (train, score, query, label, estimate,
finish, ingest or harvest into its pool, import-training, a settings change) runs inside
`Project.writing(step)`, which holds project.lock (an flock, see base.lock: released by the OS
when its process dies, so a kill -9 never wedges the project). A second writer, in this process
or another, gets ProjectBusyError at once naming the holder's PID, step and start; nothing
waits. Reads (status, candidates, export, the dashboard) take no lock.
"""

from __future__ import annotations

import copy
import json
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np

from vo_al.core.base.atomic import atomic_write_text
from vo_al.core.base.errors import ParameterError, ProjectBusyError, ProjectError
from vo_al.core.base.lock import FileLock
from vo_al.core.session.labels import read_label_csv, spectrum_key
from vo_al.core.base.progress import CancelToken, Job, Progress
from vo_al.core.session.store import SessionStore
from vo_al.core.session.settings import ProjectSettings, update_settings

PROJECT_FILE = "project.json"
LOCK_FILE = "project.lock"
TRAINING_HARVEST_DIR = "harvest-training"     # job list and cache of import-training --ssap
TRAINING_NOT_FOUND = "training_not_found.txt"  # label ids the service did not have
FORMAT_VERSION = 1


class Project:
    """Layout:
        project.json     format version, pool location, creation time
        settings.json    method and preprocessing parameters
        session.sqlite   labels, iterations, precision estimates (durable per label)
        project.lock     held (flock) by the one process changing the project; says who
        training/        pool store of the labelled training set (e.g. Ondřejov CCD700)
        models/          iter-NNN.keras checkpoints, final.keras
        scores/          iter-NNN.npy class probabilities of the whole pool
    """

    def __init__(self, folder: Path, info: dict, settings: ProjectSettings):
        self.folder = Path(folder)
        self.info = info
        self.settings = settings
        self._pool = None
        self._training = None
        self._store = None
        self._writer: int | None = None      # the thread holding project.lock through us

    # -- creation ----------------------------------------------------------------------------
    @classmethod
    def create(cls, folder: Path, pool_folder: Path, settings: ProjectSettings | None = None
               ) -> "Project":
        folder = Path(folder)
        if (folder / PROJECT_FILE).exists():
            raise ProjectError(f"{folder}: a project already exists here")
        settings = settings or ProjectSettings.default()
        settings.validate()
        folder.mkdir(parents=True, exist_ok=True)
        pool_folder = Path(pool_folder).resolve()
        try:
            pool_ref = str(pool_folder.relative_to(folder.resolve()))
        except ValueError:
            pool_ref = str(pool_folder)
        info = {"format": FORMAT_VERSION, "pool": pool_ref, "created": time.time()}
        settings.save(folder / "settings.json")
        atomic_write_text(folder / PROJECT_FILE, json.dumps(info, indent=2))
        return cls(folder, info, settings)

    @classmethod
    def open(cls, folder: Path) -> "Project":
        folder = Path(folder)
        path = folder / PROJECT_FILE
        if not path.exists():
            raise ProjectError(f"{folder}: not a vo-al project (no {PROJECT_FILE})")
        try:
            info = json.loads(path.read_bytes().decode("utf-8"))
        except (OSError, ValueError) as exc:        # ValueError: not UTF-8, not JSON
            raise ProjectError(f"{path}: unreadable ({exc})") from exc
        if not isinstance(info, dict):
            raise ProjectError(f"{path}: not a vo-al project file (a JSON "
                               f"{type(info).__name__}, not an object)")
        if info.get("format") != FORMAT_VERSION:
            raise ProjectError(f"{path}: format {info.get('format')!r}, expected {FORMAT_VERSION}")
        if not isinstance(info.get("pool"), str) or not info["pool"]:
            raise ProjectError(f"{path}: names no pool folder (pool={info.get('pool')!r})")
        return cls(folder, info, ProjectSettings.load(folder / "settings.json"))

    def save_settings(self) -> None:
        with self.writing("settings"):
            self.settings.validate()
            self.settings.save(self.folder / "settings.json")

    def change_settings(self, method: dict | None = None, preprocess: dict | None = None,
                        limits: dict | None = None) -> ProjectSettings:
        """Change method, preprocessing and limit parameters, validated, saved, all or nothing.

        Values may be strings (from a form or the command line). Method parameters and limits
        apply from the next step on. Preprocessing parameters cannot change once spectra were preprocessed with
        them (the pool's and the training set's rows would no longer agree): ParameterError.
        """
        with self.writing("settings"):
            changed = copy.deepcopy(self.settings)
            update_settings(changed.method, **(method or {}))
            update_settings(changed.limits, **(limits or {}))
            for key, value in (preprocess or {}).items():
                update_settings(changed.preprocess, **{key: value})
                if getattr(changed.preprocess, key) != getattr(self.settings.preprocess, key) \
                        and self._has_rows():
                    raise ParameterError(key, value, "cannot change: the pool or training set "
                                                     "already holds spectra preprocessed with "
                                                     f"{getattr(self.settings.preprocess, key)!r}")
            changed.validate()
            changed.save(self.folder / "settings.json")
            self.settings = changed
            return changed

    def _has_rows(self) -> bool:
        return len(self.pool) > 0 or len(self.training) > 0

    # -- parts ---------------------------------------------------------------------------------
    @property
    def pool_folder(self) -> Path:
        ref = Path(self.info["pool"])
        return ref if ref.is_absolute() else self.folder / ref

    @property
    def pool(self):
        if self._pool is None:
            self._pool = self._open_or_create_pool(self.pool_folder)
        return self._pool

    @property
    def training(self):
        if self._training is None:
            self._training = self._open_or_create_pool(self.folder / "training")
        return self._training

    def _open_or_create_pool(self, folder: Path):
        from vo_al.core.pool.store import POOL_JSON, PoolStore

        if (folder / POOL_JSON).exists():
            return PoolStore.open(folder)
        return PoolStore.create(folder, self.settings.preprocess)

    @property
    def store(self) -> SessionStore:
        if self._store is None:
            self._store = SessionStore(self.folder / "session.sqlite")
        return self._store

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None

    # -- one writer --------------------------------------------------------------------------
    @contextmanager
    def writing(self, step: str) -> Iterator[None]:
        """Hold the project lock while `step` changes the project (see the module docstring).

        ProjectBusyError at once when another process, or another Project object or thread of
        this one, holds it. Nested in the holding thread (a step inside a step) it is the same
        lock. A step that is a job takes it when it starts, so it checks the session's state
        under the lock, and keeps it until it ends, is cancelled or fails."""
        me = threading.get_ident()
        if self._writer == me:
            yield
            return
        lock = FileLock(self.folder / LOCK_FILE)
        try:
            holder = lock.try_acquire(step)
        except OSError as exc:
            raise ProjectError(f"{self.folder}: cannot take the project lock {LOCK_FILE} for "
                               f"{step} ({exc.strerror or exc})") from exc
        if holder is not None:
            raise ProjectBusyError(self.folder, holder.pid, holder.step, holder.since)
        self._writer = me
        try:
            yield
        finally:
            self._writer = None
            lock.release()

    # -- the labelled training set -------------------------------------------------------------
    def import_training_set(self, folder: Path, labels_csv: Path, workers: int = 2,
                            cancel: CancelToken | None = None,
                            scheme: str = "vo-al", medium: str | None = None) -> Job[dict]:
        """Ingest labelled spectra (FITS) and their labels; spectra without a label are skipped.

        `scheme` says how the CSV numbers classes (see labels.LABEL_SCHEMES; 'ondrejov' for the
        published Ondřejov CCD700 labels)."""
        from vo_al.core.pool.ingest import ingest_folder

        with self.writing("import-training"):
            labels = {spectrum_key(n): v for n, v in read_label_csv(labels_csv, scheme)}
            report = yield from ingest_folder(self.training, folder,
                                              settings=self.settings.preprocess,
                                              workers=workers, cancel=cancel,
                                              limits=self.settings.limits, medium=medium)
            names = self.training.metadata(columns=["name"])["name"]
            keys = [spectrum_key(n) for n in names]
            keep = [(n, labels[k]) for n, k in zip(names, keys) if k in labels]
            if not keep:
                raise ProjectError(f"{labels_csv}: no label matches a spectrum in {folder}")
            self.store.set_training_labels([n for n, _ in keep], [v for _, v in keep])
            return {"ingested": report.added, "rejected": len(report.rejected),
                    "labelled": len(keep), "unlabelled": len(names) - len(keep)}

    def import_training_from_service(self, service, labels_csv: Path, *,
                                     scheme: str = "vo-al", form: str | None = None,
                                     medium: str | None = None, workers: int = 8,
                                     session=None, maxrec: int | None = None,
                                     cancel: CancelToken | None = None) -> Job[dict]:
        """Job: the labelled training set straight from an SSAP service (with DataLink).

        The labels file's ids (publisher DIDs such as ivo://asu.cas.cz/stel/ccd700/uc050029,
        or file names) are matched to the service's spectra by the DID's last part or the file
        name (labels.spectrum_key); the matched spectra are harvested into the training pool in
        `form` ('native', 'sdm-votable', 'sdm-fits' through DataLink; None: the access URLs the
        query gives), resumable and cached as `harvest` is (PROJECT/harvest-training). Ids the
        service does not have are reported (and written to training_not_found.txt); `medium`
        is for files that do not say air or vacuum (else the service's setting).
        """
        from vo_al.core.vo.harvest import harvest_table
        from vo_al.core.vo.query import as_service, ssap_search

        with self.writing("import-training"):
            labels = {spectrum_key(n): v for n, v in read_label_csv(labels_csv, scheme)}
            if not labels:
                raise ProjectError(f"{labels_csv}: no labels to import")
            service = as_service(service, "ssap")
            yield Progress("import-training", 0, len(labels), f"asking {service.url}")
            table = ssap_search(service, maxrec=maxrec or max(2 * len(labels), 10_000),
                                session=session, limits=self.settings.limits)
            did_column = next((c for c in table.colnames
                               if c.lower() in ("ssa_pubdid", "obs_publisher_did")), None)
            name_column = next((c for c in table.colnames
                                if c.lower() in ("filename", "file_name")), None)
            if did_column is None and name_column is None:
                raise ProjectError(f"{service.url}: the SSAP result has neither a publisher "
                                   f"DID (ssa_pubDID) nor a file name column to match "
                                   f"{labels_csv} with (columns: {', '.join(table.colnames)})")

            def key_of(row) -> str:
                for column in (did_column, name_column):
                    if column is not None and str(row[column]).strip():
                        key = spectrum_key(str(row[column]))
                        if key in labels:
                            return key
                return ""

            keys = [key_of(row) for row in table]
            matched = table[[bool(k) for k in keys]]
            found = {k for k in keys if k}
            missing = sorted(k for k in labels if k not in found)
            atomic_write_text(self.folder / TRAINING_NOT_FOUND,
                              "".join(f"{k}\n" for k in missing))
            if not len(matched):
                raise ProjectError(f"{labels_csv}: none of its {len(labels)} ids is a spectrum "
                                   f"of {service.url} ({len(table)} spectra)")
            report = yield from harvest_table(
                self.training, self.folder / TRAINING_HARVEST_DIR, matched, form=form,
                settings=self.settings.preprocess, workers=workers, cancel=cancel,
                limits=self.settings.limits, medium=medium or service.medium or None,
                session=session)
            names = self.training.metadata(columns=["name"])["name"]
            keep = [(n, labels[spectrum_key(n)]) for n in names if spectrum_key(n) in labels]
            if not keep:
                raise ProjectError(f"{labels_csv}: no labelled spectrum could be harvested "
                                   f"from {service.url} ({len(report.failed)} failed)")
            self.store.set_training_labels([n for n, _ in keep], [v for _, v in keep])
            return {"service": service.url, "labels": len(labels), "matched": len(matched),
                    "not_found": len(missing), "ingested": report.added,
                    "skipped": report.skipped, "failed": len(report.failed),
                    "labelled": len(keep), "not_found_file": str(self.folder /
                                                                 TRAINING_NOT_FOUND),
                    "failures": [list(f) for f in report.failed[:20]]}

    def training_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """(rows, labels) of the initial labelled set."""
        labels = self.store.training_labels()
        if not labels:
            raise ProjectError(f"{self.folder}: no labelled training set imported")
        names = list(labels)
        index = self.training.index_of(names)
        return self.training.rows(index), np.array([labels[n] for n in names], dtype=np.int64)
