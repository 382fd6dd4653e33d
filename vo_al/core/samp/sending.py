"""What `SampLink` sends: calls and notifications with their replies awaited, and vo-al's messages.

`SendMixin` is one half of `SampLink` (vo_al.core.samp.link), split off so that each half
reads on its own; it is not used alone. It sends through the link's `_hub_call` and
`find_peers` and keeps the calls in flight in `_pending` (tag -> [Event, response]), which
`_on_response` fills from the SAMP client's thread and `_fail_pending` ends when the hub goes.
Its messages are about the candidate table set with `set_candidates`: the table itself, a sky
position, a spectrum, and the highlighted / selected rows.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path

import numpy as np

from vo_al.core.base.errors import (SampClientNotFound, SampError, SampHubError,
                                    SampMessageError, SampTimeoutError)
from vo_al.core.samp import messages as msgs
from vo_al.core.samp.records import ERROR, SampReply
from vo_al.core.samp.table import CandidateTable

log = logging.getLogger("vo_al.samp")

HIGHLIGHT_RETRY_S = 0.5       # TOPCAT lists a table it acknowledged within ~0.1-0.3 s


class SendMixin:
    """Sending for `SampLink`: `send` / `call` and the candidate messages built on them.

    Uses the link's timeout, notify_only, candidates, current_row, work_dir, sends, _client,
    _peers_cache, _tags, _pending, _pending_lock, _hub_call and find_peers.
    """

    # --------------------------------------------------------------------------- sending
    def send(self, message: dict, to=None, mode: str = "call",
             timeout: float | None = None) -> list[SampReply]:
        """Send one message to the clients named `to`, or to every subscriber (to=None).

        mode "call": one asynchronous call per recipient, replies awaited together until
        `timeout` (status "timeout" for a silent one); "notify": notifications. A client in
        `notify_only` gets table.load.* as a notification. Never blocks longer than about
        timeout + rpc_timeout. Returns one reply per recipient: [] when nobody subscribes
        (`records.Delivery` says so in words).
        """
        if mode not in ("call", "notify"):
            raise SampMessageError("mode", mode, "must be 'call' or 'notify'")
        mtype = message["samp.mtype"]
        timeout = self.timeout if timeout is None else float(timeout)
        self.sends += 1
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
                      fmt: str | None = None, extra_meta: dict | None = None):
        """spectrum.load.ssa-generic of `url`; `fmt` None: what the file is (spectrum_bytes)."""
        if fmt is None:
            fmt, found = msgs.spectrum_access(url, self.spectrum_bytes(url))
            extra_meta = {**found, **(extra_meta or {})}
        return self.send(msgs.spectrum_load(url, name, ra, dec, fmt=fmt, extra_meta=extra_meta),
                         to, mode, timeout)

    # where the bytes of a harvested spectrum are kept (vo.harvest.SpectrumCache): set by whoever
    # knows the project (the app, `vo-al samp`); None: only file:// URLs are looked at
    spectrum_cache_folder = None

    def spectrum_bytes(self, url: str) -> bytes | None:
        """The bytes of the spectrum at `url` (at most 64 MiB) where they are on this machine:
        a file:// URL, or the project's cached download. None otherwise (nothing is downloaded
        to send it)."""
        from urllib.parse import unquote, urlparse

        path = None
        parsed = urlparse(url)
        if parsed.scheme == "file":
            path = Path(unquote(parsed.path))
        elif self.spectrum_cache_folder is not None:
            from vo_al.core.vo.harvest import SpectrumCache

            path = SpectrumCache(self.spectrum_cache_folder).path_for(url)
        if path is None or not path.is_file():
            return None
        from vo_al.core.spectra.fits_header import read_file_bounded

        try:
            return read_file_bounded(path, 64 << 20)
        except Exception:                    # noqa: BLE001 - unreadable: fall back to the URL
            return None

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

        Returns {mtype: [SampReply]} (`records.Delivery` of it says who got what): an MType
        that nobody on the hub takes has no replies; with `to`, one `to` does not take is
        left out.
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

