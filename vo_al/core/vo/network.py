"""The HTTP under every VO request of vo-al: timeouts per read, a deadline across reads, and the
server's Retry-After.

A (connect, read) timeout bounds one socket operation, not a response: a server that sends a
byte every few seconds, in its header or its body, never trips it and holds the caller for ever.
A `Deadline` bounds the whole. Inside ``with deadline:`` a request made through a
`TimeoutSession` gets no more time than is left (its timeouts shrink to the seconds remaining;
one started after the end fails at once with `DeadlinePassed`), and a watchdog thread shuts the
connection's socket down at the end, so that a read blocked on a dripping header or body
returns. What the caller then sees is a broken connection: it asks `deadline.fired` /
`deadline.passed` and reports the deadline instead.

The watchdog knows a connection through vo-al's connection classes (`DeadlineAdapter`, mounted by
`TimeoutSession`): with another `requests.Session` only the checks between reads apply.
"""

from __future__ import annotations

import heapq
import itertools
import math
import os
import socket
import threading
import time
import weakref
from email.utils import parsedate_to_datetime

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

DEFAULT_TIMEOUT = (5.0, 60.0)        # seconds: connect, read (per socket operation)
USER_AGENT = "vo-al (pyvo; +https://github.com/vo-al)"


class DeadlinePassed(requests.Timeout):
    """A request was started after the deadline of its scope had passed."""


# ---------------------------------------------------------------- deadlines

_scopes = threading.local()          # .stack: the Deadlines this thread is inside


def current_deadline() -> "Deadline | None":
    """The innermost Deadline this thread is inside, or None."""
    stack = getattr(_scopes, "stack", None)
    return stack[-1] if stack else None


class Deadline:
    """`seconds` of wall-clock time for what one thread does over the network.

    Counted from its creation; entered (``with``) around each attempt of the work it bounds, so
    one Deadline covers retries and the waits between them. `abort()` ends it early (a cancelled
    harvest): its connections are shut down at once and `aborted` tells why.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = float(seconds)
        self.end = time.monotonic() + self.seconds
        self.aborted = False
        self.fired = False               # the watchdog (or abort) shut its connections down
        self._lock = threading.Lock()
        self._conns: list = []           # connections used inside the scope, now
        _WATCHDOG.watch(self)

    def remaining(self) -> float:
        return 0.0 if self.aborted else max(0.0, self.end - time.monotonic())

    @property
    def passed(self) -> bool:
        return self.fired or self.aborted or time.monotonic() >= self.end

    def __enter__(self) -> "Deadline":
        if not hasattr(_scopes, "stack"):
            _scopes.stack = []
        _scopes.stack.append(self)
        return self

    def __exit__(self, *exc) -> None:
        _scopes.stack.remove(self)
        with self._lock:
            self._conns.clear()

    def attach(self, conn) -> None:
        """`conn` works for this deadline now (see _WatchedConnection)."""
        with self._lock:
            if not any(c is conn for c in self._conns):
                self._conns.append(conn)
        if self.passed:
            self.fire()

    def fire(self) -> None:
        """Shut down the sockets of the connections still working for this deadline."""
        self.fired = True
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            sock = getattr(conn, "sock", None)
            if sock is not None and getattr(conn, "_vo_al_deadline", None) is self:
                try:
                    # socket.socket's own shutdown, also for an SSLSocket: its override would
                    # unwrap TLS under the feet of the thread that is reading
                    socket.socket.shutdown(sock, socket.SHUT_RDWR)
                except OSError:
                    pass                 # already closed

    def abort(self) -> None:
        self.aborted = True
        self.fire()


class _Watchdog:
    """One daemon thread that fires each Deadline at its end."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list = []            # (end, n, weakref to a Deadline)
        self._order = itertools.count()
        self._thread: threading.Thread | None = None
        self._pid = None

    def watch(self, deadline: Deadline) -> None:
        with self._cond:
            heapq.heappush(self._heap, (deadline.end, next(self._order), weakref.ref(deadline)))
            if self._thread is None or self._pid != os.getpid():   # none yet, or forked
                self._pid = os.getpid()
                self._thread = threading.Thread(target=self._run, name="vo-al-deadlines",
                                                daemon=True)
                self._thread.start()
            self._cond.notify()

    def _run(self) -> None:
        while True:
            due = []
            with self._cond:
                while not due:
                    now = time.monotonic()
                    while self._heap and self._heap[0][0] <= now:
                        deadline = heapq.heappop(self._heap)[2]()
                        if deadline is not None:
                            due.append(deadline)
                    if not due:
                        self._cond.wait(self._heap[0][0] - now if self._heap else None)
            for deadline in due:
                deadline.fire()


_WATCHDOG = _Watchdog()


# ---------------------------------------------------------------- connections and the session

class _WatchedConnection:
    """A urllib3 connection that tells the calling thread's Deadline it works for it: from the
    request (the socket exists once connected) to the next request, which may be another
    thread's (a pooled connection): the old deadline then no longer shuts it down."""

    def _watched(self) -> None:
        deadline = current_deadline()
        self._vo_al_deadline = deadline
        if deadline is not None:
            deadline.attach(self)

    def connect(self):
        result = super().connect()
        self._watched()
        return result

    def request(self, *args, **kwargs):
        self._watched()
        return super().request(*args, **kwargs)

    def getresponse(self, *args, **kwargs):
        self._watched()                  # connected by now: the header is read from here on
        return super().getresponse(*args, **kwargs)


class _HTTPConnection(_WatchedConnection, HTTPConnection):
    pass


class _HTTPSConnection(_WatchedConnection, HTTPSConnection):
    pass


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


_POOLS = {"http": _HTTPPool, "https": _HTTPSPool}


class DeadlineAdapter(HTTPAdapter):
    """requests' adapter with vo-al's watched connections (also through an HTTP(S) proxy)."""

    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _POOLS

    def proxy_manager_for(self, proxy, **proxy_kwargs):
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if not proxy.lower().startswith("socks"):       # SOCKS has connection classes of its own
            manager.pool_classes_by_scheme = _POOLS
        return manager


def _within(timeout, left: float):
    """A requests timeout (seconds, (connect, read) or None) no longer than `left` seconds."""
    if isinstance(timeout, (tuple, list)):
        connect, read = timeout
        return (left if connect is None else min(connect, left),
                left if read is None else min(read, left))
    return left if timeout is None else min(timeout, left)


class TimeoutSession(requests.Session):
    """A requests.Session whose requests get `timeout` unless the caller gives one, and no
    more time than the calling thread's Deadline leaves."""

    def __init__(self, timeout=DEFAULT_TIMEOUT, pool_size: int = 16) -> None:
        super().__init__()
        self.timeout = timeout
        adapter = DeadlineAdapter(pool_connections=pool_size, pool_maxsize=pool_size,
                                  max_retries=0)
        self.mount("http://", adapter)
        self.mount("https://", adapter)
        self.headers["User-Agent"] = USER_AGENT

    def request(self, method, url, *args, **kwargs):
        timeout = kwargs.get("timeout")
        if timeout is None:
            timeout = self.timeout
        deadline = current_deadline()
        if deadline is not None:
            left = deadline.remaining()
            if left <= 0:
                raise DeadlinePassed(f"{method} {url}: the deadline of {deadline.seconds:g} s "
                                     f"had passed")
            timeout = _within(timeout, left)
        kwargs["timeout"] = timeout
        return super().request(method, url, *args, **kwargs)


def make_session(timeout=DEFAULT_TIMEOUT, pool_size: int = 16) -> TimeoutSession:
    """The default HTTP session: finite timeouts, deadlines, a pool for `pool_size` threads."""
    return TimeoutSession(timeout, pool_size)


# ---------------------------------------------------------------- Retry-After

def retry_after_seconds(value, now: float | None = None) -> float | None:
    """The wait a Retry-After header asks for (RFC 9110 10.2.3): delta-seconds or an HTTP-date
    (0 once that date is past); None when absent or not one of the two."""
    if value is None:
        return None
    text = str(value).strip()
    if not text:
        return None
    if text.isascii() and text.isdigit():
        return float(text) if len(text) <= 15 else math.inf
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:                # RFC 5322 '-0000': UTC, said to be of unknown zone
        from datetime import timezone

        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, when.timestamp() - (time.time() if now is None else now))
