"""Pool scoring on a Dask cluster (vo_al.core.learning.distributed): a LocalCluster of two worker
processes on loopback gives the probabilities and the query batch of in-process scoring; a
worker killed mid-run, a cluster without workers, a bad address, a model file the workers cannot
load and a cancel never publish a partial score file."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from session_fixtures import profile_rows
from vo_al.core.base.errors import Cancelled, DistributedError, ParameterError
from vo_al.core.base.progress import CancelToken, run_job

distributed = pytest.importorskip("distributed")

N_ROWS = 3000
CHUNK = 250


def _no_temporaries(folder) -> bool:
    return not [p for p in folder.iterdir() if p.name.startswith(".")]


@pytest.fixture(scope="module")
def cluster():
    """Two worker processes (one thread each) and a client, on 127.0.0.1."""
    with distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                                  host="127.0.0.1", dashboard_address=":0",
                                  silence_logs=logging.ERROR) as local:
        with distributed.Client(local, set_as_default=False) as client:
            client.wait_for_workers(2, timeout=60)
            # Keras's import (seconds per worker) runs while the `scored` fixture trains
            from vo_al.core.learning.device import describe_device

            warming = [client.submit(describe_device, None, workers=[address], pure=False)
                       for address in client.nthreads()]
            yield local, client
            del warming


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    """A pool of 3 000 rows, a briefly trained model saved to a file, and the in-process
    scoring of that pool with that file's model (the reference)."""
    from vo_al.core.learning.model import build_cnn, load_model, save_model, train
    from vo_al.core.learning.scoring import score_pool
    from vo_al.core.pool.store import PoolStore
    from vo_al.core.spectra.settings import PreprocessSettings

    folder = tmp_path_factory.mktemp("dask")
    rng = np.random.default_rng(7)
    labels = rng.choice(3, 400, p=[0.5, 0.35, 0.15])
    model = build_cnn(seed=3)
    run_job(train(model, profile_rows(labels, rng), labels, max_epochs=2, patience=10))
    model_path = folder / "model.keras"
    save_model(model, model_path)
    pool = PoolStore.create(folder / "pool", PreprocessSettings())
    truth = rng.choice(3, N_ROWS, p=[0.9, 0.08, 0.02])
    pool.add_rows(profile_rows(truth, rng, noise=(0.02, 0.6)),
                  [{"name": f"p{i:05d}", "instrument": "lamost"} for i in range(N_ROWS)])
    pool.seal()
    local = run_job(score_pool(load_model(model_path), pool, folder / "local.npy",
                               chunk_rows=CHUNK))
    yield model_path, pool, np.load(local)
    pool.close()


def test_cluster_scoring_equals_local_scoring(cluster, scored, tmp_path):
    from vo_al.core.learning.distributed import score_pool_distributed
    from vo_al.core.learning.strategies import query

    _, client = cluster
    model_path, pool, local = scored
    out = tmp_path / "scores" / "iter-000.npy"
    steps = []
    result = run_job(score_pool_distributed(model_path, pool, out, client, chunk_rows=CHUNK),
                     steps.append)
    assert result == out
    remote = np.load(out)
    assert remote.dtype == np.float32 and remote.shape == (N_ROWS, 3)
    assert np.max(np.abs(remote - local)) <= 1e-6
    available = np.ones(N_ROWS, bool)
    available[::7] = False                      # some rows labelled already
    assert np.array_equal(query("entropy", remote, available, 50),
                          query("entropy", local, available, 50))
    assert [s.stage for s in steps] == ["score"] * len(steps)
    assert steps[0].done == 0 and steps[-1].done == N_ROWS
    assert all(s.total == N_ROWS for s in steps)
    assert len(steps) == 1 + N_ROWS // CHUNK
    assert _no_temporaries(out.parent)


def test_a_worker_killed_mid_run_never_publishes_a_partial_file(cluster, scored, tmp_path):
    """SIGKILL to a worker process busy with a partition, once the first partitions are in:
    Dask runs its tasks on the other worker (the nanny restarts the dead one) and the file is
    the local one; were the cluster unable to finish, DistributedError and no file."""
    from vo_al.core.learning.distributed import score_pool_distributed

    _, client = cluster
    model_path, pool, local = scored
    pids = client.run(os.getpid)
    out = tmp_path / "iter-001.npy"
    job = score_pool_distributed(model_path, pool, out, client, chunk_rows=CHUNK,
                                 max_in_flight=4)
    killed = None
    try:
        while True:
            step = next(job)
            if killed is None and step.done > 0:
                busy = [w for w, keys in client.processing().items() if keys and w in pids]
                killed = busy[0] if busy else next(iter(pids))
                os.kill(pids[killed], signal.SIGKILL)
    except StopIteration as stop:
        assert stop.value == out
        assert np.max(np.abs(np.load(out) - local)) <= 1e-6
    except DistributedError as exc:
        assert "Dask scheduler" in str(exc)
        assert not out.exists()
    assert killed is not None
    assert _no_temporaries(tmp_path)
    client.wait_for_workers(2, timeout=60)      # the nanny's new worker, for the other tests


def test_a_model_the_workers_cannot_load_is_a_typed_error_and_no_file(cluster, scored,
                                                                       tmp_path):
    from vo_al.core.learning.distributed import score_pool_distributed

    _, client = cluster
    _, pool, _ = scored
    broken = tmp_path / "broken.keras"
    broken.write_bytes(b"not a keras archive")
    out = tmp_path / "iter-002.npy"
    with pytest.raises(DistributedError) as caught:
        run_job(score_pool_distributed(broken, pool, out, client, chunk_rows=CHUNK, retries=1))
    assert "failed on every try (2): cannot load the model file" in str(caught.value)
    assert str(broken) in str(caught.value) and caught.value.worker in client.nthreads()
    assert not out.exists() and _no_temporaries(tmp_path)


def test_cancel_with_partitions_in_flight_removes_the_temporary(cluster, scored, tmp_path):
    from vo_al.core.learning.distributed import score_pool_distributed

    _, client = cluster
    model_path, pool, _ = scored
    token = CancelToken()
    out = tmp_path / "iter-003.npy"
    job = score_pool_distributed(model_path, pool, out, client, chunk_rows=CHUNK,
                                 cancel=token)
    with pytest.raises(Cancelled):
        for step in job:                        # cancelled with partitions in flight
            if step.done > 0:
                token.cancel()
    assert 0 < step.done < N_ROWS
    assert not out.exists() and _no_temporaries(tmp_path)


def test_every_worker_gone_mid_run_is_a_typed_error_and_no_file(scored, tmp_path):
    """The one worker, without a nanny (nothing restarts it), killed while it runs a partition:
    the job waits `worker_timeout` for a worker to come back, then DistributedError; no file."""
    from vo_al.core.learning.distributed import score_pool_distributed

    model_path, pool, _ = scored
    with distributed.LocalCluster(n_workers=0, processes=True, host="127.0.0.1",
                                  dashboard_address=":0", silence_logs=logging.ERROR) as local:
        worker = subprocess.Popen(
            [sys.executable, "-m", "distributed.cli.dask_worker", local.scheduler_address,
             "--no-nanny", "--nthreads", "1", "--no-dashboard", "--host", "127.0.0.1"],
            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"), stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        try:
            with distributed.Client(local, set_as_default=False) as client:
                client.wait_for_workers(1, timeout=60)

                def kill_once_busy():
                    deadline = time.monotonic() + 60
                    while worker.poll() is None and time.monotonic() < deadline:
                        if any(client.processing().values()):
                            os.kill(worker.pid, signal.SIGKILL)
                            return
                        time.sleep(0.02)

                killer = threading.Thread(target=kill_once_busy, daemon=True)
                killer.start()
                out = tmp_path / "iter-004.npy"
                with pytest.raises(DistributedError) as caught:
                    run_job(score_pool_distributed(model_path, pool, out, client,
                                                   chunk_rows=CHUNK, worker_timeout=2.0))
                killer.join(timeout=60)
                assert worker.poll() == -signal.SIGKILL
                assert "every worker has left the cluster, none came back within 2 s" in str(
                    caught.value)
                assert local.scheduler_address in str(caught.value)
                assert not out.exists() and _no_temporaries(tmp_path)
        finally:
            if worker.poll() is None:
                os.kill(worker.pid, signal.SIGKILL)
            worker.wait(timeout=30)


def test_a_cluster_without_workers_is_a_typed_error(scored, tmp_path):
    from vo_al.core.learning.distributed import score_pool_distributed

    model_path, pool, _ = scored
    with distributed.LocalCluster(n_workers=0, processes=True, host="127.0.0.1",
                                  dashboard_address=":0", silence_logs=logging.ERROR) as local:
        out = tmp_path / "iter-005.npy"
        t0 = time.monotonic()
        with pytest.raises(DistributedError, match="no worker joined the cluster within 1 s"):
            run_job(score_pool_distributed(model_path, pool, out, local.scheduler_address,
                                           worker_timeout=1.0))
        assert time.monotonic() - t0 < 30
        assert not out.exists() and _no_temporaries(tmp_path)


def test_bad_scheduler_addresses_are_typed_errors(scored, tmp_path):
    from vo_al.core.learning.distributed import score_pool_distributed

    model_path, pool, _ = scored
    out = tmp_path / "iter-006.npy"
    with pytest.raises(ParameterError, match="scheduler"):
        run_job(score_pool_distributed(model_path, pool, out, ""))
    with pytest.raises(ParameterError, match="scheduler"):
        run_job(score_pool_distributed(model_path, pool, out, "nonsense://host"))
    with pytest.raises(DistributedError, match="tcp://127.0.0.1:1: cannot reach the scheduler"):
        run_job(score_pool_distributed(model_path, pool, out, "tcp://127.0.0.1:1",
                                       connect_timeout=1.0))
    with pytest.raises(ParameterError, match="chunk_rows"):
        run_job(score_pool_distributed(model_path, pool, out, "tcp://127.0.0.1:1",
                                       chunk_rows=0))
    with pytest.raises(ParameterError, match="model_path"):
        run_job(score_pool_distributed(tmp_path / "none.keras", pool, out, "tcp://127.0.0.1:1"))
    assert not out.exists() and _no_temporaries(tmp_path)


def test_distributed_error_names_the_scheduler_and_pickles():
    import pickle

    exc = DistributedError("tcp://head-node:8786", "rows 0-9: boom", "tcp://node-2:4000")
    assert str(exc) == ("Dask scheduler tcp://head-node:8786, worker tcp://node-2:4000: "
                        "rows 0-9: boom")
    again = pickle.loads(pickle.dumps(exc))
    assert (again.scheduler, again.reason, again.worker) == (exc.scheduler, exc.reason, exc.worker)


def test_a_worker_reads_the_rows_the_client_means(tmp_path):
    """What a worker does with a partition's pool range, in this process: the rows of the range
    once its end names match; a pool whose rows map differently is an error, never shifted rows;
    a pool made anew in the same folder is read anew."""
    import shutil

    from vo_al.core.learning.distributed import _worker_rows
    from vo_al.core.pool.store import PoolStore

    folder = tmp_path / "pool"
    rng = np.random.default_rng(1)
    first = rng.random((40, 140), dtype=np.float32)
    with PoolStore.create(folder) as pool:
        pool.add_rows(first, [{"name": f"a{i}", "instrument": "lamost"} for i in range(40)])
    assert np.array_equal(_worker_rows(str(folder), 10, 20, "a10", "a19"), first[10:20])
    with pytest.raises(DistributedError, match="not the same state of the pool"):
        _worker_rows(str(folder), 10, 20, "a11", "a20")
    shutil.rmtree(folder)
    second = rng.random((30, 140), dtype=np.float32)
    with PoolStore.create(folder) as pool:
        pool.add_rows(second, [{"name": f"b{i}", "instrument": "lamost"} for i in range(30)])
    assert np.array_equal(_worker_rows(str(folder), 0, 30, "b0", "b29"), second)
    with pytest.raises(DistributedError, match="holds 30 rows here, the client scores 40"):
        _worker_rows(str(folder), 20, 40, "b20", "b39")
    from vo_al.core.learning import distributed as in_worker

    in_worker._worker_pools.pop(str(folder))[0].close()


def test_a_project_set_to_a_scheduler_scores_and_finishes_on_the_cluster(cluster, tmp_path,
                                                                        capsys):
    """The project's scoring_scheduler setting sends the score step to the cluster, and
    `vo-al finish --scheduler` the final scoring: each score file is what in-process scoring of
    the same model gives."""
    from vo_al.cli import main
    from vo_al.core.learning.model import load_model
    from vo_al.core.learning.scoring import score_pool
    from vo_al.core.session.loop import ActiveLearningSession
    from vo_al.core.session.project import Project
    from session_fixtures import fill_project, tiny_settings

    local_cluster, _ = cluster
    address = local_cluster.scheduler_address
    project = Project.create(tmp_path / "p", tmp_path / "p" / "pool", tiny_settings())
    truth = fill_project(project, n_train=200, n_pool=1500)
    session = ActiveLearningSession(project)
    run_job(session.train())
    project.change_settings(method={"scoring_scheduler": address})

    def in_process(model_file, name):
        return np.load(run_job(score_pool(load_model(model_file), project.pool,
                                          tmp_path / name)))

    on_cluster = run_job(session.score())
    model_file = project.folder / session.current_row()["model_path"]
    assert np.max(np.abs(np.load(on_cluster) - in_process(model_file, "here.npy"))) <= 1e-6
    session.query()
    for item in session.pending():
        session.label(item.pool_index, int(truth[item.pool_index]))
    session.estimate()
    project.close()

    assert main(["finish", str(tmp_path / "p"), "--scheduler", address]) in (0, None)
    assert f"scoring on the Dask cluster at {address}" in capsys.readouterr().err
    project = Project.open(tmp_path / "p")
    record = project.store.final_record()
    final = np.load(project.folder / record["scores_path"])
    assert np.max(np.abs(final - in_process(project.folder / record["model_path"],
                                            "final-here.npy"))) <= 1e-6
    assert _no_temporaries(project.folder / "scores")
    project.close()


def test_a_bad_scheduler_setting_is_refused_by_name(tmp_path):
    from vo_al.core.session.project import Project
    from session_fixtures import tiny_settings

    project = Project.create(tmp_path / "p", tmp_path / "p" / "pool", tiny_settings())
    with pytest.raises(ParameterError, match="scoring_scheduler"):
        project.change_settings(method={"scoring_scheduler": "tcp://host 8786"})
    assert project.settings.method.scoring_scheduler == ""
    project.close()
