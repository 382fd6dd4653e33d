"""Typed errors. Each names the file, value or service that failed."""

from __future__ import annotations

from vo_al.core.base.lock import LockHolder


class VoAlError(Exception):
    """Base class of every error vo-al raises on purpose."""


class SpectrumReadError(VoAlError):
    """A file could not be read as a spectrum. `retryable`: the cause may not be the file's
    content (an I/O error: permissions, a vanished network share), so that another try may
    read it; an ingest does not remember such a file as rejected."""

    def __init__(self, path, reason: str, retryable: bool = False):
        self.path = str(path)
        self.reason = reason
        self.retryable = retryable
        super().__init__(f"{self.path}: {reason}")


class UnusableSpectrumError(VoAlError):
    """A spectrum was read but cannot be preprocessed (no window coverage, all-NaN, constant)."""

    def __init__(self, name: str, reason: str):
        self.name = name
        self.reason = reason
        super().__init__(f"{name}: {reason}")


class ParameterError(VoAlError, ValueError):
    """A parameter is out of its allowed range or of the wrong kind."""

    def __init__(self, name: str, value, expected: str):
        self.name = name
        self.value = value
        self.expected = expected
        super().__init__(f"{name}={value!r}: {expected}")


class TableRowError(ParameterError):
    """A row of a user's file (a labels CSV, a catalogue, a saved query result) holds a value
    vo-al cannot use. Names the file, where in it (`where`: 'line 4' of a CSV read as text,
    'row 3' of a table, counting data rows from 1), the column and the value (cut to 120
    characters in the message: a 100 000-character field is shown, not printed whole; no
    column when the fault is the line itself)."""

    def __init__(self, path, where: str, column: str | None, value, reason: str):
        self.path = str(path)
        self.where = where
        self.name = column
        self.value = value
        self.expected = reason
        text = repr(value)
        text = text if len(text) <= 120 else text[:117] + "..."
        named = f"{column}={text}: " if column is not None else ""
        VoAlError.__init__(self, f"{self.path}, {where}: {named}{reason}")


class ProjectError(VoAlError):
    """A project folder is missing, corrupt or in the wrong state for the requested step."""


class ProjectBusyError(ProjectError):
    """Another process is changing the project (it holds project.lock): this step did not run.

    `pid`, `step` and `since` (a time.time()) are the holder's, from its lock file; pid None
    when the file does not say (it was being written)."""

    def __init__(self, folder, pid: int | None, step: str, since: float | None):
        self.folder = str(folder)
        self.pid, self.step, self.since = pid, step, since
        super().__init__(f"busy: {LockHolder(pid, step, since).describe()} in the project "
                         f"{self.folder}; wait for it to end (or stop it), then run this again")

    def __reduce__(self):
        return type(self), (self.folder, self.pid, self.step, self.since)


class PoolError(VoAlError):
    """The pool store is missing, corrupt or inconsistent."""


class Cancelled(VoAlError):
    """A long job was cancelled by the user between two steps."""


class DistributedError(VoAlError):
    """A job on a Dask cluster could not finish: the scheduler cannot be reached, no worker
    joined (or every one left), a worker cannot see the project's files, or a task kept
    failing. Names the scheduler's address, the worker where one is to blame, and the reason."""

    def __init__(self, scheduler: str, reason: str, worker: str | None = None):
        self.scheduler = str(scheduler)
        self.reason = reason
        self.worker = worker
        on = f", worker {worker}" if worker else ""
        super().__init__(f"Dask scheduler {self.scheduler}{on}: {reason}")

    def __reduce__(self):               # raised on a worker, it travels back pickled
        return type(self), (self.scheduler, self.reason, self.worker)


def reason_text(exc: BaseException) -> str:
    """An exception as the one-line reason a person reads: its whole text (never cut: a cut
    reason hides the word that says what is wrong), white space and line breaks collapsed; the
    exception's type where it has no text. The one owner for VO and SAMP errors."""
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


# ---------------------------------------------------------------- Virtual Observatory

class VOError(VoAlError):
    """A VO service could not answer a query. Names the service, the query and the cause.

    `service` is the service's name or URL, `query` the ADQL text or the SSA parameters,
    `reason` a human-readable explanation and `cause` the underlying exception (usually one of
    pyvo's DALServiceError / DALFormatError / DALQueryError, or a requests exception).
    """

    def __init__(self, service: str, query: str, reason: str, cause: BaseException | None = None,
                 status: int | None = None):
        self.service = str(service)
        self.query = str(query)
        self.reason = reason
        self.cause = cause
        self.status = status            # the HTTP status, where there was one
        short = self.query if len(self.query) <= 300 else self.query[:297] + "..."
        super().__init__(f"{self.service}: {reason} [query: {short}]")


class VOServiceError(VOError):
    """The service is unreachable, timed out or answered with an HTTP error."""


class VOQueryError(VOError):
    """The service ran the query and reported an error (QUERY_STATUS=ERROR, UWS phase ERROR)."""


class VOFormatError(VOError):
    """The service's answer is not a usable VOTable (malformed XML, no result table, ...)."""


class DownloadError(VoAlError):
    """A spectrum could not be downloaded, or what came is not a spectrum.

    `status` is the HTTP status where there was one; `retryable` says whether trying again
    later may help (connection errors, timeouts, 5xx), as opposed to 404 or a bad file.
    """

    def __init__(self, url: str, reason: str, status: int | None = None,
                 retryable: bool = False):
        self.url = str(url)
        self.reason = reason
        self.status = status
        self.retryable = retryable
        super().__init__(f"{self.url}: {reason}")


# ---------------------------------------------------------------- SAMP

class SampError(VoAlError):
    """A SAMP operation failed. `reason` says why; subclasses say what kind of failure."""

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(reason)


class SampHubError(SampError):
    """No SAMP hub can be reached, the hub went away, or it refused to register us."""


class SampTimeoutError(SampError):
    """A SAMP call got no reply within its timeout. Names the recipient and the MType."""

    def __init__(self, recipient: str, mtype: str, timeout: float):
        self.recipient = recipient
        self.mtype = mtype
        self.timeout = timeout
        super().__init__(f"{recipient} did not answer {mtype} within {timeout:g} s")


class SampClientNotFound(SampError):
    """No registered SAMP client has the requested name or id (or subscribes to the MType)."""

    def __init__(self, client: str, reason: str = "is not registered on the hub"):
        self.client = client
        super().__init__(f"SAMP client {client!r} {reason}")


class SampMessageError(SampError, ValueError):
    """A SAMP message (ours or a peer's) is malformed: names the parameter and the value."""

    def __init__(self, name: str, value, expected: str):
        self.name = name
        self.value = value
        text = repr(value)
        super().__init__(f"{name}={text if len(text) <= 120 else text[:117] + '...'}: {expected}")
