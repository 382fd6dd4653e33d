"""What `SampLink` receives: peers' messages answered and turned into `SampEvent` objects.

`ReceiveMixin` is one half of `SampLink` (vo_al.core.samp.link), split off so that each half
reads on its own; it is not used alone. `HubClient` hands every incoming call and notification
to `_on_message` on the SAMP client's thread: it parses it, acts (a highlight or selection of
our table, a sky position matched to the nearest candidate, the hub's own events), queues the
`SampEvent` for `poll_events` / `wait_event`, calls the listeners, and always replies to a call
(a notification gets no reply, as SAMP has it). The hub's administrative messages (samp.hub.*:
shutdown, disconnect, register, unregister, metadata, subscriptions) count only when the hub
itself sends them (its id from the registration); a peer's forgery is logged and ignored.
"""

from __future__ import annotations

import logging
import queue
import time
from typing import Callable, Iterable

from vo_al.core.base.errors import SampMessageError
from vo_al.core.samp import messages as msgs
from vo_al.core.samp.client import HubClient
from vo_al.core.samp.hub import error_text
from vo_al.core.samp.records import ERROR, OK, WARNING, SampEvent

log = logging.getLogger("vo_al.samp")

#: the hub's administrative MTypes (samp.hub.event.*, samp.hub.disconnect): the hub's word only
HUB_MTYPES = "samp.hub."


class ReceiveMixin:
    """Receiving for `SampLink`: listeners, the event queue, and the answer to every message.

    Uses the link's candidates, current_row, match_radius_arcsec, received, rejected, _events,
    _listeners, _listeners_lock, _forget_peers and _lost.
    """

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

    def _reply(self, client: HubClient, msg_id, status: str, result: dict | None = None,
               error: str = "") -> None:
        if not isinstance(msg_id, str):
            return
        response = {"samp.status": status, "samp.result": result or {}}
        if error:
            response["samp.error"] = {"samp.errortxt": error[:1000]}
        try:
            client.hub.reply(client.private_key, msg_id, response)
        except Exception as exc:              # noqa: BLE001 - the hub may be gone
            log.warning("could not reply to SAMP message %s: %s", msg_id, error_text(exc))

    def _on_message(self, client: HubClient, sender_id, msg_id, message) -> None:
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
            status, result, text = ERROR, {}, f"{type(exc).__name__}: {error_text(exc)}"
        if is_call:
            self._reply(client, msg_id, status, result, text)

    def _sender_name(self, client: HubClient, sender_id: str) -> str:
        try:
            meta = client.hub.get_metadata(client.private_key, sender_id) or {}
            return str(meta.get("samp.name", sender_id))
        except Exception:                     # noqa: BLE001
            return sender_id

    def _handle(self, client: HubClient, sender: str, mtype: str, params: dict):
        if mtype == msgs.PING:
            return OK, {}, ""
        if mtype.startswith(HUB_MTYPES) and (not client.hub_id or sender != client.hub_id):
            # the hub relays any client's message, so a peer can forge the hub's own: ignored
            self.rejected += 1
            log.warning("ignored %s from %s: it is not the hub (%s)", mtype, sender,
                        client.hub_id or "hub id unknown")
            return ERROR, {}, f"{mtype} comes from the hub only; {sender} is not the hub"
        if mtype in ("samp.hub.event.shutdown", "samp.hub.disconnect"):
            self._lost(client, mtype)
            return OK, {}, ""
        if mtype.startswith("samp.hub.event."):
            self._forget_peers()
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

