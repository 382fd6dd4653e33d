"""The jobs behind the main window's step buttons.

Train, score and finish run in a child process (`vo_al.core.jobs.process`): Keras builds and
traces the train step, and loads a model and makes its first prediction, in C++ code that holds
the GIL for 90-350 ms, which on a worker thread froze the event loop for that long
(benchmarks/bench_gui_stall.py). A child costs a few seconds of start-up and TensorFlow import
per step, in the background, against steps that take minutes on a real pool; and the window's own
process then never imports TensorFlow (quicker start, and no second process holding GPU memory).
The child opens the project afresh; the store is SQLite in WAL mode, so this process's session
sees its commits when the job ends. Query and estimate are quick synchronous calls.
"""

from __future__ import annotations

from vo_al.core.jobs.process import finish_project, run_in_process, score_project, train_project

from vo_al.gui.workers import JobFactory, call_job

IN_CHILD_PROCESS = {"train": train_project, "score": score_project, "finish": finish_project}


def in_child_process(target, folder: str, stage: str) -> JobFactory:
    """A job running `target(folder, cancel=...)` in a child process (it reports the device)."""

    def factory(token):
        return run_in_process(target, folder, stage=stage, cancel=token)

    return factory


def step_job_factory(session, name: str) -> JobFactory:
    """The JobWorker factory of the step `name` (one of main_window.STEP_BUTTONS) of `session`."""
    if name in IN_CHILD_PROCESS:
        return in_child_process(IN_CHILD_PROCESS[name], str(session.project.folder), name)
    if name == "query":
        return call_job("query", session.query)
    if name == "estimate":
        return call_job("estimate", session.estimate)
    raise ValueError(f"unknown step {name!r}")
