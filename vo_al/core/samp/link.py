"""SAMP for vo-al: send candidates to Aladin, SPLAT-VO and TOPCAT, and take selections back.

Qt-free. `SampLink` connects to the hub the user runs (TOPCAT's, Aladin's, JSAMP's; the
``SAMP_HUB`` environment variable is honoured) or, when none runs, starts an embedded pyvo hub
(Standard Profile only; the Web Profile stays off unless asked for) so that other tools can join.

Every exchange with the hub and with peers has a finite timeout: the XML-RPC transport to the
hub has a socket timeout, and calls are sent asynchronously and their replies awaited with a
deadline, so a dead peer or a dead hub never hangs the caller. The link notices a hub that went
away (an XML-RPC failure, the hub's shutdown message or the watchdog's ping) and reconnects with
a fresh client when a hub is there again.

Incoming messages (``table.highlight.row`` / ``table.select.rowList`` about our table,
``coord.pointAt.sky``) become `SampEvent` objects. They arrive on the SAMP client's own threads;
the link puts them on a thread-safe queue (`poll_events`, `wait_event`) and calls the listeners
registered with `add_listener` on that thread. A GUI re-emits them as signals on its own thread.
Every call is answered (samp.ok / samp.warning / samp.error); malformed messages are logged and
answered with samp.error, never raised.
"""

from __future__ import annotations

import itertools
import logging
import os
import queue
import shutil
import tempfile
import threading
import time
import urllib.request
import xmlrpc.client as xmlrpc
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable
from urllib.parse import urlparse

import numpy as np

from vo_al.core.samp import messages as msgs
from vo_al.core.base.sky import separation_arcsec
from vo_al.core.base.errors import (SampClientNotFound, SampError, SampHubError, SampMessageError,
                     SampTimeoutError)

log = logging.getLogger("vo_al.samp")

OK, WARNING, ERROR = "samp.ok", "samp.warning", "samp.error"
HIGHLIGHT_RETRY_S = 0.5       # TOPCAT lists a table it acknowledged within ~0.1-0.3 s
#: what vo-al subscribes to
SUBSCRIPTIONS = (msgs.TABLE_HIGHLIGHT, msgs.TABLE_SELECT, msgs.POINT_AT_SKY, msgs.PING,
                 "samp.hub.event.shutdown", "samp.hub.disconnect", "samp.hub.event.register",
                 "samp.hub.event.unregister", "samp.hub.event.metadata",
                 "samp.hub.event.subscriptions")
#: clients (samp.name, case-insensitive) that get table.load.* as a notification, not a call:
#: Aladin offline never answers the call
NOTIFY_ONLY = ("aladin",)


# ============================================================================= records
@dataclass(frozen=True)
class SampPeer:
    """A client registered on the hub, with its metadata and subscriptions."""

    id: str
    name: str
    metadata: dict = field(default_factory=dict, compare=False)
    subscriptions: tuple = ()

    def subscribes(self, mtype: str) -> bool:
        for sub in self.subscriptions:
            if sub == mtype or sub == "*" or (sub.endswith(".*") and mtype.startswith(sub[:-1])):
                return True
        return False


@dataclass(frozen=True)
class SampReply:
    """The outcome of one message to one client.

    status: samp.ok / samp.warning / samp.error (the peer's answer to a call), "notified"
    (a notification the hub accepted), "timeout" (no answer in time), "failed" (the hub refused).
    """

    client_id: str
    client_name: str
    mtype: str
    status: str
    result: dict = field(default_factory=dict)
    error: str = ""
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status in (OK, "notified")


@dataclass(frozen=True)
class SampEvent:
    """Something a peer asked vo-al to do, or a change of the hub's state.

    kind: "highlight" (one candidate), "select" (a set), "point" (the candidate nearest a sky
    position), "hub" (message: "connected" / "lost"), "clients" (a client came, went or changed).
    rows are row numbers of the candidate table sent with `SampLink.send_table`,
    pool_indices the matching pool indices.
    """

    kind: str
    rows: tuple = ()
    pool_indices: tuple = ()
    sender_id: str = ""
    sender_name: str = ""
    mtype: str = ""
    ra: float | None = None
    dec: float | None = None
    separation_arcsec: float | None = None
    message: str = ""


@dataclass(frozen=True)
class HubInfo:
    url: str
    lockfile: str
    embedded: bool
    hub_id: str = ""
    self_id: str = ""


# ============================================================================= candidates
class CandidateTable:
    """The candidate table vo-al shares: columns, its own table-id and name, the VOTable file."""

    def __init__(self, columns: dict, table_id: str, name: str, path: Path):
        self.columns = columns
        self.table_id = str(table_id)
        self.name = str(name)
        self.path = Path(path)
        self.n_rows = len(next(iter(columns.values()))) if columns else 0
        self._ra = np.asarray(columns.get("ra", np.full(self.n_rows, np.nan)), dtype=float)
        self._dec = np.asarray(columns.get("dec", np.full(self.n_rows, np.nan)), dtype=float)

    @property
    def url(self) -> str:
        return self.path.resolve().as_uri()

    def pool_index(self, row: int) -> int:
        if "pool_index" in self.columns:
            return int(self.columns["pool_index"][row])
        return int(row)

    def row(self, row: int) -> dict:
        if not 0 <= row < self.n_rows:
            raise SampMessageError("row", row, f"must be in 0..{self.n_rows - 1}")
        return {k: (v[row].item() if hasattr(v[row], "item") else v[row])
                for k, v in self.columns.items()}

    def nearest(self, ra: float, dec: float, radius_arcsec: float) -> tuple[int, float] | None:
        """(row, separation in arcsec) of the candidate nearest (ra, dec) within the radius."""
        if self.n_rows == 0:
            return None
        sep = separation_arcsec(ra, dec, self._ra, self._dec)
        sep = np.where(np.isfinite(sep), sep, np.inf)
        row = int(np.argmin(sep))
        return (row, float(sep[row])) if sep[row] <= radius_arcsec else None


# ============================================================================= transport
class _TimeoutTransport(xmlrpc.Transport):
    """XML-RPC over HTTP with a socket timeout and pyvo's XXE-safe parser."""

    def __init__(self, timeout: float):
        super().__init__()
        self.timeout = timeout

    def make_connection(self, host):
        conn = super().make_connection(host)
        conn.timeout = self.timeout
        return conn

    def getparser(self):
        from pyvo.samp.utils import get_safe_parser

        return get_safe_parser(self._use_datetime, self._use_builtin_types)


def _hub_proxy(url: str, timeout: float, size: int = 4):
    from pyvo.samp.utils import SAMPXXEServerProxy, ServerProxyPool

    if urlparse(url).scheme != "http":
        raise SampHubError(f"hub URL {url!r}: only http XML-RPC hubs are supported")

    def make(u):
        return SAMPXXEServerProxy(u, allow_none=1, transport=_TimeoutTransport(timeout))

    return ServerProxyPool(size, make, url)


def _lockfile_location() -> str:
    """Where the Standard Profile lockfile is: SAMP_HUB=std-lockurl:..., else ~/.samp."""
    env = os.environ.get("SAMP_HUB", "").strip()
    if env:
        if not env.startswith("std-lockurl:"):
            raise SampHubError(f"SAMP_HUB={env!r}: only the std-lockurl: form is supported")
        return env[len("std-lockurl:"):]
    return str(Path.home() / ".samp")


def _read_lockfile(location: str, timeout: float) -> dict | None:
    parsed = urlparse(location)
    try:
        if parsed.scheme in ("", "file"):
            text = Path(parsed.path if parsed.scheme else location).read_text(errors="replace")
        elif parsed.scheme in ("http", "https"):
            with urllib.request.urlopen(location, timeout=timeout) as r:
                text = r.read(65536).decode("utf-8", "replace")
        else:
            return None
    except OSError:
        return None
    params = {}
    for line in text.splitlines():
        if line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        params[key.strip()] = value.strip()
    return params if "samp.hub.xmlrpc.url" in params and "samp.secret" in params else None


def find_running_hub(timeout: float = 3.0) -> tuple[str, dict] | None:
    """(lockfile location, lockfile params) of the running hub SAMP_HUB or ~/.samp names."""
    location = _lockfile_location()
    params = _read_lockfile(location, timeout)
    if params is None:
        return None
    url = params["samp.hub.xmlrpc.url"].replace("\\", "")
    try:
        _hub_proxy(url, timeout, size=1).samp.hub.ping()
    except xmlrpc.ProtocolError:
        return location, params            # alive, but wants authentication
    except Exception as exc:                # noqa: BLE001 - any failure means "not running"
        log.debug("hub in %s does not answer: %s", location, exc)
        return None
    return location, params


# ============================================================================= client
def _pyvo_samp():
    import pyvo.samp as ps

    return ps


class _Client:
    """One registration on one hub: the XML-RPC callback server plus the hub proxy.

    A fresh one is made on each (re)connection; the link routes what it receives.
    """

    def __init__(self, link: "SampLink", hub_params: dict, timeout: float):
        from pyvo.samp.client import SAMPClient
        from pyvo.samp.hub_proxy import SAMPHubProxy

        ps = _pyvo_samp()
        self.link = link
        self.hub_url = hub_params["samp.hub.xmlrpc.url"].replace("\\", "")
        hub = SAMPHubProxy()
        hub.proxy = _hub_proxy(self.hub_url, timeout)
        hub.lockfile = dict(hub_params)
        hub.ping()
        hub._connected = True
        self.hub = hub

        client_self = self

        class _Receiver(SAMPClient):
            def receive_notification(self, private_key, sender_id, message):
                if private_key == self.get_private_key():
                    client_self.link._on_message(client_self, sender_id, None, message)
                return ""

            def receive_call(self, private_key, sender_id, msg_id, message):
                if private_key == self.get_private_key():
                    client_self.link._on_message(client_self, sender_id, msg_id, message)
                return ""

            def receive_response(self, private_key, responder_id, msg_tag, response):
                if private_key == self.get_private_key():
                    client_self.link._on_response(responder_id, msg_tag, response)
                return ""

        with ps.conf.set_temp("use_internet", False):
            self.client = _Receiver(hub, name=link.name, description=link.description,
                                    metadata=dict(link.metadata), addr="127.0.0.1")
        for mtype in SUBSCRIPTIONS:
            self.client.bind_receive_call(mtype, _unused, declare=False)
            self.client.bind_receive_notification(mtype, _unused, declare=False)
        self.client.start()
        try:
            self.client.register()
        except Exception:
            self.client.stop(2.0)
            raise
        self.private_key = self.client.get_private_key()
        self.self_id = self.client.get_public_id()
        self.hub_id = self.client._hub_id or ""

    def close(self, unregister: bool = True) -> None:
        if unregister:
            try:
                self.hub.unregister(self.private_key)
            except Exception as exc:          # noqa: BLE001 - the hub may be gone already
                log.debug("unregister: %s", exc)
        try:
            self.client.stop(3.0)
        except Exception as exc:              # noqa: BLE001
            log.debug("stop: %s", exc)
        try:
            self.hub.proxy.shutdown()
        except Exception:                     # noqa: BLE001
            pass


def _unused(*args):                           # subscriptions only: _Client routes the messages
    return None


_HUB_FAILURES = (OSError, xmlrpc.Error, SampError, TimeoutError)


def _errtext(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text[:500]


class SampLink:
    """vo-al on the SAMP hub: the candidates out to Aladin, SPLAT-VO and TOPCAT, selections back.

    Parameters: `name` (samp.name), `start_hub` (start an embedded pyvo hub when none runs),
    `timeout` (seconds to wait for a peer's reply to a call), `rpc_timeout` (socket timeout of
    each exchange with the hub), `match_radius_arcsec` (coord.pointAt.sky -> nearest candidate),
    `notify_only` (client names that get table.load.* as a notification), `web_profile`
    (embedded hub only; off by default), `work_dir` (where the candidate VOTable is written;
    a private temporary folder by default).
    """

    def __init__(self, name: str = "vo-al", *, start_hub: bool = True, timeout: float = 5.0,
                 rpc_timeout: float = 10.0, match_radius_arcsec: float = 20.0,
                 notify_only: Iterable[str] = NOTIFY_ONLY, web_profile: bool = False,
                 work_dir: Path | None = None, description: str | None = None,
                 metadata: dict | None = None, max_events: int = 10000):
        self.name = name
        self.description = description or "vo-al: emission-line star candidates"
        self.metadata = {"samp.name": name, "samp.description.text": self.description,
                         "vo-al.version": _version(), **(metadata or {})}
        self.start_hub = start_hub
        self.timeout = float(timeout)
        self.rpc_timeout = float(rpc_timeout)
        self.match_radius_arcsec = float(match_radius_arcsec)
        self.notify_only = tuple(n.lower() for n in notify_only)
        self.web_profile = web_profile
        self._own_dir = work_dir is None
        self.work_dir = Path(work_dir) if work_dir else Path(tempfile.mkdtemp(prefix="vo-al-samp-"))
        self._lock = threading.RLock()
        self._client: _Client | None = None
        self._hub_server = None
        self._hub_info: HubInfo | None = None
        self._tags = itertools.count(1)
        self._pending: dict[str, list] = {}
        self._pending_lock = threading.Lock()
        self._listeners: list[Callable[[SampEvent], None]] = []
        self._listeners_lock = threading.Lock()
        self._events: queue.Queue = queue.Queue(maxsize=max_events)
        self._watchdog: threading.Thread | None = None
        self._watchdog_stop = threading.Event()
        self._peers_cache: list[SampPeer] | None = None   # dropped on samp.hub.event.*
        self._peers_gen = 0
        self.candidates: CandidateTable | None = None
        self.current_row: int | None = None
        self.received = 0              # messages received, malformed included
        self.rejected = 0              # messages answered samp.error or dropped as malformed

    # --------------------------------------------------------------------------- connection
    def __enter__(self):
        self.connect()
        return self

    def __exit__(self, *exc):
        self.close()

    @property
    def connected(self) -> bool:
        return self._client is not None

    @property
    def hub_info(self) -> HubInfo | None:
        return self._hub_info

    @property
    def self_id(self) -> str | None:
        client = self._client
        return client.self_id if client else None

    def connect(self) -> HubInfo:
        """Register on the running hub, or start an embedded one (when `start_hub`)."""
        with self._lock:
            if self._client is not None:
                return self._hub_info
            found = find_running_hub(self.rpc_timeout)
            embedded = False
            if found is None:
                if not self.start_hub:
                    raise SampHubError(f"no SAMP hub is running (lockfile {_lockfile_location()})")
                found = self._start_embedded_hub()
                embedded = True
            location, params = found
            try:
                client = _Client(self, params, self.rpc_timeout)
            except Exception as exc:          # noqa: BLE001 - any failure: no registration
                raise SampHubError(f"cannot register on the hub at "
                                   f"{params.get('samp.hub.xmlrpc.url')}: {_errtext(exc)}") from exc
            self._client = client
            self._peers_gen += 1
            self._peers_cache = None
            ours = self._hub_server is not None and client.hub_url == str(
                self._hub_server.params["samp.hub.xmlrpc.url"]).replace("\\", "")
            self._hub_info = HubInfo(url=client.hub_url, lockfile=location,
                                     embedded=embedded or ours, hub_id=client.hub_id,
                                     self_id=client.self_id)
            log.info("registered on the SAMP hub %s as %s", client.hub_url, client.self_id)
        self._emit(SampEvent("hub", message="connected"))
        return self._hub_info

    def _start_embedded_hub(self) -> tuple[str, dict]:
        ps = _pyvo_samp()
        with ps.conf.set_temp("use_internet", False):
            hub = ps.SAMPHubServer(web_profile=self.web_profile, addr="127.0.0.1",
                                   label=f"{self.name} embedded hub")
        try:
            hub.start(wait=False)
        except Exception as exc:             # noqa: BLE001
            raise SampHubError(f"cannot start an embedded SAMP hub: {_errtext(exc)}") from exc
        if not hub._lockfile:
            hub.stop()
            raise SampHubError("cannot start an embedded SAMP hub: its lockfile could not be "
                               f"written ({_lockfile_location()}; another hub running?)")
        self._hub_server = hub
        log.info("started an embedded SAMP hub (lockfile %s)", hub._lockfile)
        return str(hub._lockfile), dict(hub.params)

    def disconnect(self) -> None:
        """Unregister (the embedded hub, if any, keeps running until `close`)."""
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close(unregister=True)
        self._fail_pending("disconnected")

    def close(self) -> None:
        """Stop the watchdog, unregister, stop the embedded hub, remove the temporary folder."""
        self.stop_watchdog()
        self.disconnect()
        with self._lock:
            hub, self._hub_server = self._hub_server, None
        if hub is not None:
            try:
                hub.stop()
            except Exception as exc:          # noqa: BLE001
                log.warning("stopping the embedded hub: %s", exc)
        if self._own_dir:
            shutil.rmtree(self.work_dir, ignore_errors=True)

    def _lost(self, client: _Client | None, why: str) -> None:
        """The hub went away under `client`: drop it (once) and tell the listeners."""
        with self._lock:
            if client is None or self._client is not client:
                return
            self._client = None
        log.warning("lost the SAMP hub %s: %s", client.hub_url, why)
        threading.Thread(target=client.close, args=(False,), daemon=True).start()
        self._fail_pending("hub lost")
        self._emit(SampEvent("hub", message="lost"))

    def check(self) -> bool:
        """Ping the hub; if it is gone, drop the client and try a fresh connection. Connected?"""
        client = self._client
        if client is not None:
            try:
                client.hub.ping()
                return True
            except _HUB_FAILURES as exc:
                self._lost(client, _errtext(exc))
        try:
            with self._lock:
                if self._client is None:
                    start, self.start_hub = self.start_hub, self._hub_server is not None
                    try:
                        self.connect()
                    finally:
                        self.start_hub = start
            return True
        except SampHubError as exc:
            log.debug("reconnect: %s", exc)
            return False

    def start_watchdog(self, interval: float = 2.0) -> None:
        """Check the hub every `interval` seconds in a daemon thread (reconnects when back)."""
        if self._watchdog is not None and self._watchdog.is_alive():
            return
        self._watchdog_stop.clear()

        def run():
            while not self._watchdog_stop.wait(interval):
                try:
                    self.check()
                except Exception:              # noqa: BLE001 - the watchdog must not die
                    log.exception("SAMP watchdog")

        self._watchdog = threading.Thread(target=run, name="vo-al SAMP watchdog", daemon=True)
        self._watchdog.start()

    def stop_watchdog(self) -> None:
        self._watchdog_stop.set()
        if self._watchdog is not None:
            self._watchdog.join(self.rpc_timeout + 2)
            self._watchdog = None

    def _require(self) -> _Client:
        client = self._client
        if client is None and not self.check():
            raise SampHubError("not connected to a SAMP hub")
        client = self._client
        if client is None:
            raise SampHubError("not connected to a SAMP hub")
        return client

    def _hub_call(self, method: str, *args):
        """samp.hub.<method>(private_key, *args) with the hub-loss bookkeeping."""
        client = self._require()
        try:
            return getattr(client.hub.proxy.samp.hub, method)(client.private_key, *args)
        except _HUB_FAILURES as exc:
            if isinstance(exc, (OSError, TimeoutError)) or not self._hub_alive(client):
                self._lost(client, _errtext(exc))
                raise SampHubError(f"the SAMP hub went away: {_errtext(exc)}") from exc
            raise SampError(f"hub refused {method}: {_errtext(exc)}") from exc

    @staticmethod
    def _hub_alive(client: _Client) -> bool:
        try:
            client.hub.ping()
            return True
        except Exception:                     # noqa: BLE001
            return False

    # --------------------------------------------------------------------------- peers
    def peers(self, refresh: bool = False) -> list[SampPeer]:
        """Every other client on the hub (the hub itself included), with its subscriptions.

        Cached between the hub's register / unregister / metadata / subscriptions events.
        """
        cached = self._peers_cache
        if cached is not None and not refresh and self.connected:
            return list(cached)
        self._peers_cache = None
        gen = self._peers_gen
        out = []
        for cid in self._hub_call("getRegisteredClients"):
            try:
                meta = self._hub_call("getMetadata", cid) or {}
                subs = self._hub_call("getSubscriptions", cid) or {}
            except SampHubError:
                raise
            except SampError:
                continue                      # left between the two calls
            out.append(SampPeer(cid, str(meta.get("samp.name", cid)), dict(meta),
                                tuple(sorted(subs))))
        if gen == self._peers_gen:
            self._peers_cache = out
        return list(out)

    def find_peers(self, to: str | Iterable[str]) -> list[SampPeer]:
        """Clients named `to` (a client id, or a samp.name, case-insensitive; or several)."""
        wanted = [to] if isinstance(to, str) else list(to)
        peers = self.peers()
        out = []
        for w in wanted:
            for attempt in (0, 1):
                hits = [p for p in peers if p.id == w] or [p for p in peers if p.name.lower() ==
                                                           str(w).lower()]
                if hits or attempt:
                    break
                peers = self.peers(refresh=True)      # maybe it registered a moment ago
            if not hits:
                raise SampClientNotFound(str(w))
            out += [p for p in hits if p not in out]
        return out

    def status(self) -> dict:
        """Hub, self id and every client with its subscriptions (for `vo-al samp status`)."""
        info = self._hub_info
        peers = self.peers() if self.connected else []
        return {"connected": self.connected,
                "hub": None if info is None else {"url": info.url, "lockfile": info.lockfile,
                                                  "embedded": info.embedded, "id": info.hub_id},
                "self_id": self.self_id,
                "clients": [{"id": p.id, "name": p.name, "subscriptions": list(p.subscriptions)}
                            for p in peers]}

    # --------------------------------------------------------------------------- sending
    def send(self, message: dict, to=None, mode: str = "call",
             timeout: float | None = None) -> list[SampReply]:
        """Send one message to the clients named `to`, or to every subscriber (to=None).

        mode "call": one asynchronous call per recipient, replies awaited together until
        `timeout` (status "timeout" for a silent one); "notify": notifications. A client in
        `notify_only` gets table.load.* as a notification. Never blocks longer than about
        timeout + rpc_timeout.
        """
        if mode not in ("call", "notify"):
            raise SampMessageError("mode", mode, "must be 'call' or 'notify'")
        mtype = message["samp.mtype"]
        timeout = self.timeout if timeout is None else float(timeout)
        if to is None:
            subscribed = self._hub_call("getSubscribedClients", mtype) or {}
            names = {p.id: p.name for p in (self._peers_cache or [])}
            for cid in subscribed:
                if cid in names:
                    continue
                try:
                    names[cid] = str((self._hub_call("getMetadata", cid) or {}).get(
                        "samp.name", cid))
                except SampHubError:
                    raise
                except SampError:
                    names[cid] = cid
            hub_id = self._client.hub_id if self._client else ""
            targets = [(cid, names[cid]) for cid in subscribed if cid != hub_id]
        else:
            peers = self.find_peers(to)
            for p in peers:
                if not p.subscribes(mtype):
                    raise SampClientNotFound(p.name, f"does not subscribe to {mtype}")
            targets = [(p.id, p.name) for p in peers]
        replies: list[SampReply] = []
        waiting: dict[str, tuple] = {}
        t0 = time.monotonic()
        for cid, name in targets:
            as_notify = mode == "notify" or (mtype.startswith("table.load.")
                                              and name.lower() in self.notify_only)
            if as_notify:
                try:
                    self._hub_call("notify", cid, message)
                    replies.append(SampReply(cid, name, mtype, "notified"))
                except SampHubError:
                    raise
                except SampError as exc:
                    replies.append(SampReply(cid, name, mtype, "failed", error=exc.reason))
                continue
            tag = f"vo-al-{next(self._tags)}"
            slot = [threading.Event(), None]
            with self._pending_lock:
                self._pending[tag] = slot
            try:
                self._hub_call("call", cid, tag, message)
                waiting[tag] = (cid, name, slot)
            except SampHubError:
                self._drop_pending(tag)
                raise
            except SampError as exc:
                self._drop_pending(tag)
                replies.append(SampReply(cid, name, mtype, "failed", error=exc.reason))
        deadline = t0 + timeout
        for tag, (cid, name, slot) in waiting.items():
            slot[0].wait(max(0.0, deadline - time.monotonic()))
            self._drop_pending(tag)
            response = slot[1]
            seconds = time.monotonic() - t0
            if response is None:
                replies.append(SampReply(cid, name, mtype, "timeout",
                                         error=f"no reply within {timeout:g} s", seconds=seconds))
            elif isinstance(response, str):
                replies.append(SampReply(cid, name, mtype, "failed", error=response))
            else:
                err = response.get("samp.error") or {}
                replies.append(SampReply(
                    cid, name, mtype, str(response.get("samp.status", ERROR)),
                    result=dict(response.get("samp.result") or {}),
                    error=str(err.get("samp.errortxt", "")) if isinstance(err, dict) else str(err),
                    seconds=float(response.get("_seconds", seconds))))
        return replies

    def call(self, to: str, message: dict, timeout: float | None = None) -> SampReply:
        """One call to one client; SampTimeoutError when it does not answer in time."""
        replies = self.send(message, to=to, mode="call", timeout=timeout)
        if not replies:
            raise SampClientNotFound(str(to))
        reply = replies[0]
        if reply.status == "timeout":
            raise SampTimeoutError(reply.client_name, reply.mtype,
                                   self.timeout if timeout is None else timeout)
        return reply

    def _drop_pending(self, tag: str) -> None:
        with self._pending_lock:
            self._pending.pop(tag, None)

    def _fail_pending(self, why: str) -> None:
        with self._pending_lock:
            slots, self._pending = list(self._pending.values()), {}
        for slot in slots:
            slot[1] = why
            slot[0].set()

    def _on_response(self, responder_id, msg_tag, response) -> None:
        with self._pending_lock:
            slot = self._pending.get(msg_tag)
        if slot is None:
            log.debug("late or unknown SAMP response %r from %s", msg_tag, responder_id)
            return
        slot[1] = response if isinstance(response, dict) else {"samp.status": ERROR}
        slot[0].set()

    # ---- vo-al's messages
    def set_candidates(self, columns, table_id: str | None = None,
                       name: str = "vo-al candidates", params: dict | None = None,
                       path: Path | None = None) -> CandidateTable:
        """Write the candidate table (column dict or astropy Table) as a VOTable to share."""
        from vo_al.core.export.catalogue import write_catalogue

        if hasattr(columns, "colnames"):
            columns = {c: np.asarray(columns[c]) for c in columns.colnames}
        if not columns:
            raise SampMessageError("columns", columns, "the candidate table has no columns")
        table_id = table_id or f"vo-al-candidates-{os.getpid()}-{id(self) & 0xffff:04x}"
        path = Path(path) if path else self.work_dir / "candidates.vot"
        write_catalogue(columns, path, "votable", params=params)
        self.candidates = CandidateTable(columns, table_id, name, path)
        self.current_row = None
        return self.candidates

    def _table(self) -> CandidateTable:
        if self.candidates is None:
            raise SampError("no candidate table yet: call set_candidates first")
        return self.candidates

    def send_table(self, to=None, mode: str = "call", timeout: float | None = None):
        t = self._table()
        return self.send(msgs.table_load(t.url, t.table_id, t.name), to, mode, timeout)

    def point_at(self, ra, dec, to=None, mode: str = "call", timeout: float | None = None):
        return self.send(msgs.point_at_sky(ra, dec), to, mode, timeout)

    def send_spectrum(self, url: str, name: str | None = None, ra=None, dec=None, to=None,
                      mode: str = "call", timeout: float | None = None,
                      fmt: str = "application/fits"):
        return self.send(msgs.spectrum_load(url, name, ra, dec, fmt=fmt), to, mode, timeout)

    def highlight(self, row: int, to=None, mode: str = "notify", timeout: float | None = None):
        t = self._table()
        if not 0 <= int(row) < t.n_rows:
            raise SampMessageError("row", row, f"must be in 0..{t.n_rows - 1}")
        return self.send(msgs.table_highlight(t.url, t.table_id, int(row)), to, mode, timeout)

    def select(self, rows, to=None, mode: str = "notify", timeout: float | None = None):
        t = self._table()
        rows = [int(r) for r in rows]
        if any(not 0 <= r < t.n_rows for r in rows):
            raise SampMessageError("rows", rows, f"must be in 0..{t.n_rows - 1}")
        return self.send(msgs.table_select(t.url, t.table_id, rows), to, mode, timeout)

    def send_candidate(self, row: int, to=None, timeout: float | None = None,
                       mode: str = "call") -> dict:
        """The candidate in `row` everywhere: sky position (Aladin), spectrum (SPLAT-VO) and
        the row highlighted in our table (TOPCAT). With `to`, only what that client takes.

        Returns {mtype: [SampReply]}; an MType nobody (or not `to`) subscribes to is left out.
        """
        t = self._table()
        cand = t.row(int(row))
        out = {}
        plan = [(msgs.POINT_AT_SKY, lambda dest: self.point_at(cand["ra"], cand["dec"], dest,
                                                               mode, timeout))]
        source = str(cand.get("source", "") or "")
        if source:
            try:
                source = msgs.source_url(source)
                plan.append((msgs.SPECTRUM_LOAD, lambda dest: self.send_spectrum(
                    source, cand.get("designation") or cand.get("name"), cand.get("ra"),
                    cand.get("dec"), dest, mode, timeout)))
            except SampMessageError as exc:
                log.info("candidate %s: spectrum not sent (%s)", row, exc)
        def highlight(dest):
            return self.highlight(int(row), dest, mode, timeout)

        plan.append((msgs.TABLE_HIGHLIGHT, highlight))
        dests = None if to is None else self.find_peers(to)
        for mtype, action in plan:
            if dests is None:
                out[mtype] = action(None)
            else:
                takers = [p.id for p in dests if p.subscribes(mtype)]
                if takers:
                    out[mtype] = action(takers)
        out = self._retry_refused_highlight(out, highlight)
        self.current_row = int(row)
        return out

    def _retry_refused_highlight(self, out: dict, highlight) -> dict:
        """TOPCAT answers samp.ok to table.load.votable before the table is in its list, so
        a highlight right after the table was sent is refused ("no such table"): ask the
        refusing clients once more after a moment (the table is loaded by then)."""
        replies = out.get(msgs.TABLE_HIGHLIGHT, [])
        refused = [r.client_id for r in replies if r.status == ERROR]
        if not refused:
            return out
        time.sleep(HIGHLIGHT_RETRY_S)
        again = {r.client_id: r for r in highlight(refused)}
        out[msgs.TABLE_HIGHLIGHT] = [again.get(r.client_id, r) for r in replies]
        return out

    def set_current(self, row: int, to=None) -> list[SampReply]:
        """The current candidate changed: table.highlight.row (only when it really changed)."""
        if self.current_row == int(row):
            return []
        replies = self.highlight(int(row), to)
        self.current_row = int(row)
        return replies

    # --------------------------------------------------------------------------- receiving
    def add_listener(self, callback: Callable[[SampEvent], None]) -> None:
        """Call `callback(event)` for every SampEvent, on the SAMP thread that received it."""
        with self._listeners_lock:
            self._listeners.append(callback)

    def remove_listener(self, callback) -> None:
        with self._listeners_lock:
            if callback in self._listeners:
                self._listeners.remove(callback)

    def poll_events(self, max_events: int | None = None) -> list[SampEvent]:
        """Every event queued so far (non-blocking): for a GUI timer or a CLI loop."""
        out = []
        while max_events is None or len(out) < max_events:
            try:
                out.append(self._events.get_nowait())
            except queue.Empty:
                break
        return out

    def wait_event(self, timeout: float, kinds: Iterable[str] | None = None) -> SampEvent | None:
        """The next event (of one of `kinds`), or None after `timeout` seconds."""
        kinds = None if kinds is None else set(kinds)
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            try:
                event = self._events.get(timeout=left)
            except queue.Empty:
                return None
            if kinds is None or event.kind in kinds:
                return event

    def _emit(self, event: SampEvent) -> None:
        try:
            self._events.put_nowait(event)
        except queue.Full:
            try:
                self._events.get_nowait()
                self._events.put_nowait(event)
            except (queue.Empty, queue.Full):
                pass
        with self._listeners_lock:
            listeners = list(self._listeners)
        for cb in listeners:
            try:
                cb(event)
            except Exception:                 # noqa: BLE001 - a listener must not break SAMP
                log.exception("SAMP listener %r failed on %s", cb, event.kind)

    def _reply(self, client: _Client, msg_id, status: str, result: dict | None = None,
               error: str = "") -> None:
        if not isinstance(msg_id, str):
            return
        response = {"samp.status": status, "samp.result": result or {}}
        if error:
            response["samp.error"] = {"samp.errortxt": error[:1000]}
        try:
            client.hub.reply(client.private_key, msg_id, response)
        except Exception as exc:              # noqa: BLE001 - the hub may be gone
            log.warning("could not reply to SAMP message %s: %s", msg_id, _errtext(exc))

    def _on_message(self, client: _Client, sender_id, msg_id, message) -> None:
        """Every incoming notification (msg_id None) or call: parse, act, always reply."""
        self.received += 1
        is_call = msg_id is not None
        try:
            if not isinstance(message, dict):
                raise SampMessageError("message", message, "must be a map")
            mtype = message.get("samp.mtype")
            if not isinstance(mtype, str):
                raise SampMessageError("samp.mtype", mtype, "must be a string")
            params = message.get("samp.params", {})
            if not isinstance(params, dict):
                raise SampMessageError("samp.params", params, "must be a map")
            status, result, text = self._handle(client, str(sender_id), mtype, params)
        except SampMessageError as exc:
            self.rejected += 1
            log.warning("malformed SAMP message from %s: %s", sender_id, exc)
            status, result, text = ERROR, {}, str(exc)
        except Exception as exc:              # noqa: BLE001 - never crash on a peer's message
            self.rejected += 1
            log.exception("SAMP message from %s failed", sender_id)
            status, result, text = ERROR, {}, f"{type(exc).__name__}: {_errtext(exc)}"
        if is_call:
            self._reply(client, msg_id, status, result, text)

    def _sender_name(self, client: _Client, sender_id: str) -> str:
        try:
            meta = client.hub.get_metadata(client.private_key, sender_id) or {}
            return str(meta.get("samp.name", sender_id))
        except Exception:                     # noqa: BLE001
            return sender_id

    def _handle(self, client: _Client, sender: str, mtype: str, params: dict):
        if mtype == msgs.PING:
            return OK, {}, ""
        if mtype in ("samp.hub.event.shutdown", "samp.hub.disconnect"):
            self._lost(client, mtype)
            return OK, {}, ""
        if mtype.startswith("samp.hub.event."):
            self._peers_gen += 1
            self._peers_cache = None
            self._emit(SampEvent("clients", sender_id=str(params.get("id", "")), mtype=mtype))
            return OK, {}, ""
        if mtype in (msgs.TABLE_HIGHLIGHT, msgs.TABLE_SELECT):
            t = self.candidates
            if t is None or not msgs.is_our_table(params, t.table_id if t else "",
                                                  t.url if t else None):
                return WARNING, {}, "not a vo-al table: ignored"
            if mtype == msgs.TABLE_HIGHLIGHT:
                rows = (msgs.parse_highlight(params, t.n_rows),)
                kind = "highlight"
            else:
                rows = tuple(msgs.parse_select(params, t.n_rows))
                kind = "select"
            self._emit(SampEvent(kind, rows, tuple(t.pool_index(r) for r in rows), sender,
                                 self._sender_name(client, sender), mtype))
            if kind == "highlight":
                self.current_row = rows[0]
            return OK, {}, ""
        if mtype == msgs.POINT_AT_SKY:
            ra, dec = msgs.parse_point(params)
            t = self.candidates
            hit = t.nearest(ra, dec, self.match_radius_arcsec) if t is not None else None
            if hit is None:
                return OK, {"matched": "0"}, ""
            row, sep = hit
            self._emit(SampEvent("point", (row,), (t.pool_index(row),), sender,
                                 self._sender_name(client, sender), mtype, ra, dec, sep))
            return OK, {"matched": "1", "row": str(row)}, ""
        raise SampMessageError("samp.mtype", mtype, "vo-al does not subscribe to it")


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("vo-al")
    except Exception:                         # noqa: BLE001
        return "unknown"
