"""`SampLink`: vo-al on the SAMP hub, sending candidates to Aladin, SPLAT-VO and TOPCAT and
taking selections back.

Qt-free. `SampLink` connects to the hub the user runs (TOPCAT's, Aladin's, JSAMP's; the
``SAMP_HUB`` environment variable is honoured) or, when none runs, starts an embedded pyvo hub
(Standard Profile only; the Web Profile stays off unless asked for) so that other tools can join.

Every exchange with the hub and with peers has a finite timeout: the XML-RPC transport to the
hub has a socket timeout, and calls are sent asynchronously and their replies awaited with a
deadline, so a dead peer or a dead hub never hangs the caller. The link notices a registration
that no longer holds (an XML-RPC failure, the hub's own shutdown or disconnect message, or the
watchdog's `check`: the hub does not answer, answers without knowing vo-al's key because a new
hub listens at the old address, or the lockfile names another hub now) and registers afresh,
subscriptions and metadata included, on the hub that is there again ("reconnected").

Incoming messages (``table.highlight.row`` / ``table.select.rowList`` about our table,
``coord.pointAt.sky``) become `SampEvent` objects. They arrive on the SAMP client's own threads;
the link puts them on a thread-safe queue (`poll_events`, `wait_event`) and calls the listeners
registered with `add_listener` on that thread. A GUI re-emits them as signals on its own thread.
Every call is answered (samp.ok / samp.warning / samp.error); malformed messages are logged and
answered with samp.error, never raised.

This module holds the link's state, its connection to the hub and its view of the peers; what
it sends is `SendMixin` (sending.py), what it receives `ReceiveMixin` (receiving.py).
"""

from __future__ import annotations

import itertools
import logging
import queue
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Callable, Iterable

from vo_al.core.base.errors import SampClientNotFound, SampError, SampHubError
from vo_al.core.samp.client import HubClient
from vo_al.core.samp.hints import peer_hints
from vo_al.core.samp.hub import (HUB_FAILURES, error_text, find_running_hub, hub_url,
                                 lockfile_location, read_lockfile, start_embedded_hub)
from vo_al.core.samp.receiving import ReceiveMixin
from vo_al.core.samp.records import HubInfo, SampEvent, SampPeer
from vo_al.core.samp.sending import SendMixin
from vo_al.core.samp.table import CandidateTable

log = logging.getLogger("vo_al.samp")

#: clients (samp.name, case-insensitive) that get table.load.* as a notification, not a call:
#: Aladin offline never answers the call
NOTIFY_ONLY = ("aladin",)


class SampLink(SendMixin, ReceiveMixin):
    """vo-al on the SAMP hub: the candidates out to Aladin, SPLAT-VO and TOPCAT, selections back.

    Parameters: `name` (samp.name), `start_hub` (start an embedded pyvo hub when none runs),
    `timeout` (seconds to wait for a peer's reply to a call), `rpc_timeout` (socket timeout of
    each exchange with the hub), `match_radius_arcsec` (coord.pointAt.sky -> nearest candidate),
    `notify_only` (client names that get table.load.* as a notification), `web_profile`
    (embedded hub only; off by default), `work_dir` (where the candidate VOTable is written;
    a private temporary folder by default).

    Sending (`send`, `call`, `send_candidate`, ...) is inherited from `SendMixin`, receiving
    (`add_listener`, `poll_events`, `wait_event`, the answers to peers) from `ReceiveMixin`.
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
        self._client: HubClient | None = None
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
        self._hub_lost = False         # a hub went away since the last `connect`/`disconnect`
        self._peers_gen = 0
        self.candidates: CandidateTable | None = None
        self.current_row: int | None = None
        self.received = 0              # messages received, malformed included
        self.sends = 0                 # messages sent (to anyone, or no one): see `hints`
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
                    raise SampHubError(f"no SAMP hub is running (lockfile {lockfile_location()})")
                found = self._start_embedded_hub()
                embedded = True
            location, params = found
            try:
                client = HubClient(params, self.rpc_timeout, name=self.name,
                                   description=self.description, metadata=self.metadata,
                                   on_message=self._on_message, on_response=self._on_response)
            except Exception as exc:          # noqa: BLE001 - any failure: no registration
                raise SampHubError(f"cannot register on the hub at "
                                   f"{params.get('samp.hub.xmlrpc.url')}: {error_text(exc)}") from exc
            self._client = client
            self._forget_peers()
            ours = (self._hub_server is not None
                    and client.hub_url == hub_url(self._hub_server.params))
            self._hub_info = HubInfo(url=client.hub_url, lockfile=location,
                                     embedded=embedded or ours, hub_id=client.hub_id,
                                     self_id=client.self_id)
            message = "reconnected" if self._hub_lost else "connected"
            self._hub_lost = False
            log.info("%s to the SAMP hub %s as %s", message, client.hub_url, client.self_id)
        self._emit(SampEvent("hub", message=message))
        return self._hub_info

    def _start_embedded_hub(self) -> tuple[str, dict]:
        hub, location, params = start_embedded_hub(f"{self.name} embedded hub", self.web_profile)
        self._hub_server = hub
        return location, params

    def disconnect(self) -> None:
        """Unregister (the embedded hub, if any, keeps running until `close`)."""
        with self._lock:
            client, self._client = self._client, None
            self._hub_lost = False
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

    def _lost(self, client: HubClient | None, why: str, unregister: bool = False) -> None:
        """The registration `client` no longer holds: drop it (once) and tell the listeners.

        `unregister` when its hub still runs (the lockfile names another one now), so that it
        does not keep listing a vo-al that no longer answers."""
        with self._lock:
            if client is None or self._client is not client:
                return
            self._client = None
            self._hub_lost = True
        log.warning("lost the SAMP hub %s: %s", client.hub_url, why)
        threading.Thread(target=client.close, args=(unregister,), daemon=True).start()
        self._fail_pending("hub lost")
        self._emit(SampEvent("hub", message="lost"))

    def check(self) -> bool:
        """Is vo-al registered on the hub the lockfile names? If not (see the module notes),
        drop that registration and register on the hub there now, if any. Connected?"""
        client = self._client
        if client is not None:
            why = client.registration_gone()
            moved = None if why else self._lockfile_moved(client)
            if why is None and moved is None:
                return True
            self._lost(client, why or moved, unregister=why is None)
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

    def _lockfile_moved(self, client: HubClient) -> str | None:
        """Why `client`'s hub is no longer the one to be on: the lockfile names another hub
        that answers. None while it names ours, or none that runs (ours stays)."""
        if self._hub_server is not None:
            return None                       # our embedded hub holds the lockfile
        params = read_lockfile(lockfile_location(), self.rpc_timeout)
        if params is None or client.is_hub(params):
            return None                       # the usual case: no hub is pinged
        found = find_running_hub(self.rpc_timeout)
        if found is None or client.is_hub(found[1]):
            return None
        return f"the lockfile {found[0]} names another hub now ({hub_url(found[1])})"

    def start_watchdog(self, interval: float = 2.0) -> None:
        """`check` every `interval` seconds in a daemon thread: after a hub loss, vo-al
        registers again when a hub is back (a "reconnected" event); after `disconnect` it
        stays off."""
        if self._watchdog is not None and self._watchdog.is_alive():
            return
        self._watchdog_stop.clear()

        def run():
            while not self._watchdog_stop.wait(interval):
                if self._client is None and not self._hub_lost:
                    continue                  # disconnected on purpose: stay so
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

    def _require(self) -> HubClient:
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
        except HUB_FAILURES as exc:
            # a refusal may be the hub's own (a client that left) or a hub that lost vo-al
            gone = (f"the hub does not answer ({error_text(exc)})"
                    if isinstance(exc, (OSError, TimeoutError)) else client.registration_gone())
            if gone:
                self._lost(client, gone)
                raise SampHubError(f"the SAMP hub went away: {error_text(exc)}") from exc
            raise SampError(f"hub refused {method}: {error_text(exc)}") from exc

    # --------------------------------------------------------------------------- peers
    def _forget_peers(self) -> None:
        """The clients on the hub changed: the next `peers` asks the hub again."""
        # the generation tells a `peers` already under way not to cache its now stale list
        self._peers_gen += 1
        self._peers_cache = None

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

    def clients_on_own_hub(self) -> list[SampPeer]:
        """The clients (not vo-al, not the hub) on the embedded hub vo-al runs: they lose
        their hub when `close` stops it. [] when vo-al runs no hub or is not on it."""
        if self._hub_server is None or not self.connected:
            return []
        hub_id = self._hub_info.hub_id if self._hub_info else ""
        return [p for p in self.peers() if p.id != hub_id]

    def hints(self) -> list[str]:
        """What to tell the user about the tools on the hub (vo_al.core.samp.hints)."""
        if not self.connected:
            return []
        return peer_hints(self._hub_info, [p.name for p in self.peers()], self.sends > 0)

    def status(self) -> dict:
        """Hub, self id, every client with its subscriptions, and the hints about them (for
        `vo-al samp status` and the dock)."""
        info = self._hub_info
        peers = self.peers() if self.connected else []
        return {"connected": self.connected,
                "hub": None if info is None else {"url": info.url, "lockfile": info.lockfile,
                                                  "embedded": info.embedded, "id": info.hub_id},
                "self_id": self.self_id,
                "clients": [{"id": p.id, "name": p.name, "subscriptions": list(p.subscriptions)}
                            for p in peers],
                "hints": self.hints()}


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("vo-al")
    except Exception:                         # noqa: BLE001
        return "unknown"
