"""Pool scoring on a Dask distributed cluster: the pool's rows in partitions, one score file.

The same job as `scoring.score_pool`, spread over the workers of a Dask cluster whose machines
see the project folder at the same path (a shared file system). What travels is small: to a
worker, the pool folder, a global row range and the model file's path and SHA-256; back, the
range's (k, 3) float32 probabilities. Each worker opens the pool (PoolStore, kept open in the
worker process) and reads its rows from the segment files itself, after checking that the first
and last rows of its range carry the names the client sent: a worker whose view of pool.sqlite
differs (SQLite's WAL index is not kept coherent across machines by network file systems, or
another pool lies at the same path) stops with an error instead of scoring shifted rows. It
loads the model file once (kept in the worker process, keyed by path and content hash, so a
retrained model under the same name is loaded anew). Keras is imported in the workers only: the
client never imports TensorFlow.

The client writes each partition into the score file's memory-mapped temporary as it arrives
(`scoring.score_file`, the one owner of how a score file is published), with a bounded number
of partitions in flight (memory stays bounded however large the pool), and renames it to
`out_path` only once every partition is in. A failed or cancelled run
removes the temporary, so no partial score file is ever published.

Failures: a task that raises is retried (`retries`) on whichever worker is free; a worker that
dies takes its tasks with it and the scheduler runs them elsewhere (up to Dask's
`distributed.scheduler.allowed-failures` deaths per task, then KilledWorker). A cluster that
cannot finish (no worker for `worker_timeout` seconds, a task that keeps failing, the scheduler
gone) ends the job with DistributedError naming the scheduler and the reason.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import queue
import secrets
import threading
import time
from collections import OrderedDict
from pathlib import Path

import numpy as np

from vo_al.core.base.errors import DistributedError, ParameterError, VoAlError
from vo_al.core.base.progress import CancelToken, Job, Progress
from vo_al.core.learning.scoring import score_file

DEFAULT_CHUNK_ROWS = 16384      # a few seconds of CNN per partition: small next to task overhead
CONNECT_TIMEOUT_S = 10.0        # reaching the scheduler
WORKER_TIMEOUT_S = 60.0         # waiting for a first worker, or for one to come back
DEFAULT_RETRIES = 2             # re-runs of a partition whose task raised
_POLL_S = 0.5                   # how often a waiting client looks at the cancel token and workers
_MODELS_PER_WORKER = 2          # models kept in a worker process (this iteration's and the last)


# ---------------------------------------------------------------- in the worker process

_worker_lock = threading.Lock()
_worker_models: "OrderedDict[tuple[str, str], object]" = OrderedDict()
_worker_pools: dict = {}           # folder -> (PoolStore, pool.json identity)


def _this_worker() -> tuple[str, str]:
    """(scheduler address, worker address) as the running worker knows them."""
    from distributed import get_worker

    try:
        worker = get_worker()
    except ValueError:                  # called outside a task (a test calling it directly)
        return "(none)", "(this process)"
    return str(worker.scheduler.address), str(worker.address)


def _worker_model(model_path: str, digest: str):
    """The model in `model_path`, loaded once per worker process and content hash."""
    key = (model_path, digest)
    with _worker_lock:
        model = _worker_models.get(key)
        if model is not None:
            _worker_models.move_to_end(key)
            return model
        scheduler, worker = _this_worker()
        try:
            seen = _file_digest(Path(model_path))
        except OSError as exc:
            raise DistributedError(scheduler, f"cannot read the model file {model_path} "
                                   f"({exc.strerror or exc}): the workers must see the project "
                                   f"folder at the same path as the client", worker) from None
        if seen != digest:
            raise DistributedError(scheduler, f"the model file {model_path} differs here from "
                                   f"the client's (SHA-256 {seen[:12]}… vs {digest[:12]}…): "
                                   f"a stale copy, or not the same shared file system", worker)
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        from vo_al.core.learning.model import load_model

        try:
            model = load_model(Path(model_path))
        except Exception as exc:            # noqa: BLE001 - Keras raises many kinds here
            raise DistributedError(scheduler, f"cannot load the model file {model_path}: "
                                   f"{type(exc).__name__}: {exc}", worker) from None
        _worker_models[key] = model
        while len(_worker_models) > _MODELS_PER_WORKER:
            _worker_models.popitem(last=False)
        return model


def _worker_rows(pool_folder: str, start: int, stop: int, first_name: str,
                 last_name: str) -> np.ndarray:
    """Pool rows start..stop-1 (global indices) as the worker reads them from the pool folder,
    once the names of the first and last are the client's `first_name` and `last_name`."""
    from vo_al.core.pool.store import POOL_JSON, PoolStore

    try:
        described = os.stat(os.path.join(pool_folder, POOL_JSON))
    except OSError as exc:
        scheduler, worker = _this_worker()
        raise DistributedError(scheduler, f"cannot see the pool {pool_folder} "
                               f"({exc.strerror or exc}): the workers must see the project "
                               f"folder at the same path as the client", worker) from None
    # a pool made anew in the same folder has a new pool.json: never read the old one's maps
    identity = (described.st_dev, described.st_ino, described.st_mtime_ns)
    with _worker_lock:
        pool, opened_as = _worker_pools.get(pool_folder, (None, None))
        if pool is not None and opened_as != identity:
            pool.close()
            pool = None
        if pool is None:
            pool = PoolStore.open(pool_folder)
            _worker_pools[pool_folder] = (pool, identity)
        if len(pool) < stop:            # rows committed after this worker opened the pool
            pool.refresh()
    if len(pool) < stop:
        scheduler, worker = _this_worker()
        raise DistributedError(scheduler, f"the pool {pool_folder} holds {len(pool)} rows "
                               f"here, the client scores {stop}: not the same pool (or a "
                               f"file system that shows this worker an older state)", worker)
    # SQLite's WAL index is shared memory, which a network file system does not keep coherent
    # between machines: a worker whose view of pool.sqlite differs would map rows elsewhere
    names = pool.metadata([start, stop - 1], columns=["name"])["name"]
    if (str(names[0]), str(names[-1])) != (first_name, last_name):
        scheduler, worker = _this_worker()
        raise DistributedError(scheduler, f"the pool {pool_folder} here has {names[0]!r} ... "
                               f"{names[-1]!r} at rows {start}-{stop - 1}, the client "
                               f"{first_name!r} ... {last_name!r}: not the same state of the "
                               f"pool (a network file system showing this worker an older "
                               f"pool.sqlite, or another pool at the same path)", worker)
    return pool.rows(np.arange(start, stop, dtype=np.int64))


def _score_partition(pool_folder: str, start: int, stop: int, first_name: str,
                     last_name: str, model_path: str, digest: str, batch_size: int,
                     precision: str) -> np.ndarray:
    """One Dask task: P(class) (stop - start, 3) float32 for a range of pool rows."""
    from vo_al.core.learning.model import predict_proba

    model = _worker_model(model_path, digest)
    rows = _worker_rows(pool_folder, start, stop, first_name, last_name)
    return predict_proba(model, rows, batch_size=batch_size, precision=precision)


def _worker_sees(pool_folder: str, model_path: str, model_size: int) -> str | None:
    """Run on every worker before scoring: None, or why this worker cannot read the inputs."""
    from vo_al.core.pool.store import POOL_JSON

    if not os.path.isfile(os.path.join(pool_folder, POOL_JSON)):
        return f"no pool at {pool_folder}"
    try:
        size = os.stat(model_path).st_size
    except OSError as exc:
        return f"cannot see the model file {model_path} ({exc.strerror or exc})"
    if size != model_size:
        return (f"the model file {model_path} has {size} bytes here, {model_size} on the "
                f"client")
    return None


# ---------------------------------------------------------------- in the client

def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _connect(scheduler, connect_timeout: float):
    """(client, whether this job made it and must close it, the scheduler's address)."""
    from distributed import Client

    if isinstance(scheduler, Client):
        address = getattr(scheduler.scheduler, "address", None) or "(the given client)"
        if scheduler.status not in ("running", "connecting"):
            raise DistributedError(address, f"the Dask client is {scheduler.status}")
        return scheduler, False, str(address)
    if not isinstance(scheduler, str) or not scheduler.strip():
        raise ParameterError("scheduler", scheduler, "a Dask scheduler address such as "
                             "tcp://host:8786, or a distributed.Client")
    address = scheduler.strip()
    try:
        client = Client(address, timeout=connect_timeout, set_as_default=False)
    except (ValueError, TypeError) as exc:      # an address distributed cannot parse
        raise ParameterError("scheduler", scheduler, f"a Dask scheduler address such as "
                             f"tcp://host:8786 ({exc})") from None
    except (OSError, TimeoutError, asyncio.TimeoutError) as exc:
        raise DistributedError(address, f"cannot reach the scheduler within "
                               f"{connect_timeout:g} s ({exc})") from None
    return client, True, address


def _worker_count(client) -> int:
    return len(client.nthreads())


def _wait_for_workers(client, address: str, worker_timeout: float) -> None:
    try:
        client.wait_for_workers(1, timeout=worker_timeout)
    except (TimeoutError, asyncio.TimeoutError):         # one class from Python 3.11 on
        raise DistributedError(address, f"no worker joined the cluster within "
                               f"{worker_timeout:g} s (start some: dask worker {address})"
                               ) from None


def _check_workers_see(client, address: str, pool_folder: str, model_path: str) -> None:
    seen = client.run(_worker_sees, pool_folder, model_path, os.stat(model_path).st_size)
    blind = {worker: why for worker, why in seen.items() if why is not None}
    if blind:
        worker, why = next(iter(blind.items()))
        more = f" (and {len(blind) - 1} other worker(s))" if len(blind) > 1 else ""
        raise DistributedError(address, f"{why}{more}: the workers must see the project folder "
                               f"at the same path as the client (a shared file system)", worker)


def _task_error(address: str, start: int, stop: int, exc: BaseException,
                retries: int) -> DistributedError:
    where = f"rows {start}-{stop - 1}"
    if type(exc).__name__ == "KilledWorker":
        return DistributedError(address, f"{where}: every worker that ran them died ({exc})")
    failed = f"{where} failed on every try ({retries + 1})"
    if isinstance(exc, DistributedError):
        return DistributedError(address, f"{failed}: {exc.reason}", exc.worker)
    return DistributedError(address, f"{failed}: {type(exc).__name__}: {exc}")


def _open_pool(pool):
    """(PoolStore, whether this job opened it): a PoolStore as given, or a pool folder."""
    from vo_al.core.pool.store import PoolStore

    if isinstance(pool, PoolStore):
        return pool, False
    if isinstance(pool, (str, os.PathLike)):
        return PoolStore.open(pool), True
    raise ParameterError("pool", pool, "a PoolStore or a pool folder (the workers read its "
                         "files, so an in-memory array cannot be scored on a cluster)")


def score_pool_distributed(model_path, pool, out_path, scheduler,
                           chunk_rows: int = DEFAULT_CHUNK_ROWS, batch_size: int = 2048,
                           cancel: CancelToken | None = None, precision: str = "float32", *,
                           retries: int = DEFAULT_RETRIES, max_in_flight: int | None = None,
                           connect_timeout: float = CONNECT_TIMEOUT_S,
                           worker_timeout: float = WORKER_TIMEOUT_S) -> Job[Path]:
    """Write P(class) for every pool row to `out_path` (.npy, N x 3 float32), scored on the
    Dask cluster at `scheduler` (an address such as 'tcp://host:8786', or a distributed.Client,
    which is used and left open).

    The contract of `scoring.score_pool`: N is the pool's length when scoring starts; Progress
    ('score', done, N) after each partition; cancel is honoured while waiting for partitions
    (those in flight are cancelled); the file appears complete or not at all. `model_path` is a
    saved .keras model; `pool` a PoolStore or a pool folder. Both must be visible to every
    worker at the same absolute path. `chunk_rows` rows make one task; at most `max_in_flight`
    tasks (default twice the cluster's worker threads) are submitted at once. A task that
    raises runs again up to `retries` times. `connect_timeout`: seconds to reach the scheduler;
    `worker_timeout`: seconds to wait for a first worker, or with every worker gone.
    ParameterError for a bad argument, DistributedError when the cluster cannot finish.
    """
    from vo_al.core.learning.device import check_precision

    check_precision(precision)
    for name, value, least in (("chunk_rows", chunk_rows, 1), ("batch_size", batch_size, 1),
                               ("retries", retries, 0), ("max_in_flight", max_in_flight, 1)):
        if value is None and name == "max_in_flight":
            continue
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < least:
            raise ParameterError(name, value, f"a whole number >= {least}")
    for name, value in (("connect_timeout", connect_timeout),
                        ("worker_timeout", worker_timeout)):
        if not isinstance(value, (int, float)) or not value > 0:
            raise ParameterError(name, value, "a number of seconds > 0")
    model_path = Path(os.path.abspath(model_path))
    if not model_path.is_file():
        raise ParameterError("model_path", str(model_path), "an existing saved model file")
    out_path = Path(out_path)
    digest = _file_digest(model_path)

    pool, owns_pool = _open_pool(pool)
    client = None
    owns_client = False
    try:
        pool_folder = os.path.abspath(pool.folder)
        total = len(pool)
        client, owns_client, address = _connect(scheduler, connect_timeout)
        with score_file(out_path, total) as proba:
            yield Progress("score", 0, total)
            if total:
                try:
                    _wait_for_workers(client, address, worker_timeout)
                    _check_workers_see(client, address, pool_folder, str(model_path))
                except VoAlError:
                    raise
                except Exception as exc:            # a worker or the scheduler went away
                    raise DistributedError(address, f"{type(exc).__name__}: {exc}") from exc
                yield from _score_partitions(
                    client, address, proba, pool, pool_folder, total, str(model_path), digest,
                    int(chunk_rows), int(batch_size), precision, cancel, int(retries),
                    max_in_flight, float(worker_timeout))
        return out_path
    finally:
        if owns_client and client is not None:
            client.close()
        if owns_pool:
            pool.close()


def _score_partitions(client, address: str, proba: np.ndarray, pool, pool_folder: str,
                      total: int, model_path: str, digest: str, chunk_rows: int,
                      batch_size: int, precision: str, cancel: CancelToken | None,
                      retries: int, max_in_flight: int | None,
                      worker_timeout: float) -> Job[None]:
    """Submit the partitions, a bounded number at a time, and write each into `proba` as it
    arrives (in the order they complete); Progress after each."""
    ranges = [(start, min(start + chunk_rows, total)) for start in range(0, total, chunk_rows)]
    ends = np.array([(start, stop - 1) for start, stop in ranges], dtype=np.int64).ravel()
    end_names = pool.metadata(ends, columns=["name"])["name"].reshape(-1, 2)
    run = secrets.token_hex(6)          # task keys of their own: never another run's results
    pending: dict = {}                  # future -> (start, stop)
    arrived: queue.Queue = queue.Queue()        # futures done, put there by Dask's callback
    submitted = done = 0
    workerless_since = None
    try:
        while submitted < len(ranges) or pending:
            if cancel is not None:
                cancel.raise_if_cancelled("scoring")
            if submitted < len(ranges):
                limit = max_in_flight or max(2, 2 * sum(client.nthreads().values()))
                while submitted < len(ranges) and len(pending) < limit:
                    start, stop = ranges[submitted]
                    first_name, last_name = end_names[submitted]
                    future = client.submit(_score_partition, pool_folder, start, stop,
                                           str(first_name), str(last_name), model_path,
                                           digest, batch_size, precision,
                                           key=f"vo-al-score-{run}-{submitted:06d}",
                                           retries=retries, pure=False)
                    pending[future] = (start, stop)
                    future.add_done_callback(arrived.put)
                    submitted += 1
            try:
                future = arrived.get(timeout=_POLL_S)
            except queue.Empty:         # nothing came: is anyone still working?
                if _worker_count(client):
                    workerless_since = None
                    continue
                now = time.monotonic()
                workerless_since = workerless_since or now
                if now - workerless_since > worker_timeout:
                    raise DistributedError(address, f"every worker has left the cluster, none "
                                           f"came back within {worker_timeout:g} s ({done} of "
                                           f"{total} rows scored)") from None
                continue
            start, stop = pending.pop(future)
            if future.status == "error":
                raise _task_error(address, start, stop, future.exception(), retries)
            if future.status != "finished":
                raise DistributedError(address, f"rows {start}-{stop - 1}: the task was "
                                       f"{future.status} by the cluster (a restarted "
                                       f"scheduler, or this client lost)")
            block = future.result()
            del future                  # the result's last reference: the cluster frees it
            if not (isinstance(block, np.ndarray) and block.shape == (stop - start,
                                                                      proba.shape[1])):
                raise DistributedError(address, f"rows {start}-{stop - 1}: a worker returned "
                                       f"{type(block).__name__} {getattr(block, 'shape', '')}, "
                                       f"not ({stop - start}, {proba.shape[1]}) probabilities")
            proba[start:stop] = block
            done += stop - start
            yield Progress("score", done, total)
    except (VoAlError, GeneratorExit):
        raise
    except Exception as exc:            # the scheduler went away, a result could not travel, …
        raise DistributedError(address, f"{type(exc).__name__}: {exc} ({done} of {total} rows "
                               f"scored)") from exc
    finally:
        if pending:
            try:
                client.cancel(list(pending))
            except Exception:           # noqa: BLE001 - cleaning up must not mask the failure
                pass
