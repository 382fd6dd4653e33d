"""The plain records of the SAMP link: peers, replies, events and the hub, plus reply statuses.

Frozen dataclasses with no networking, so that a GUI or the CLI can hold and show them without
touching the hub.
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: the statuses of a SAMP response (what a peer answers to a call, and what vo-al answers)
OK, WARNING, ERROR = "samp.ok", "samp.warning", "samp.error"


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

    @property
    def outcome(self) -> str:
        """What happened, in a few words: "ok", "notified", "no reply within 5 s",
        "error: <the peer's text>", "warning: …", "failed: <the hub's refusal>"."""
        if self.status == OK:
            return "ok"
        if self.status in ("notified", "timeout"):
            return self.error or self.status
        word = {WARNING: "warning", ERROR: "error"}.get(self.status, self.status)
        return f"{word}: {self.error}" if self.error else word


@dataclass(frozen=True)
class Delivery:
    """Who received one send and how each answered: `replies` maps each MType sent (the
    candidate's sky position, spectrum and row; or the table) to its replies, one per
    recipient; an MType with no replies had no subscriber on the hub.

    `text()` says it as the dock and the command line show it: "sent to TOPCAT, Aladin;
    SPLAT-VO: no reply within 5 s" — never a silent success when nobody took it.
    """

    replies: dict

    @property
    def received(self) -> list[str]:
        """Clients that took at least one message (ok, a warning, or a notification)."""
        return _names(r for rs in self.replies.values() for r in rs
                      if r.ok or r.status == WARNING)

    @property
    def problems(self) -> list[str]:
        """"<client>: <outcome>" for every reply that is not a plain ok or notification
        ("<client> (<mtype>): <outcome>" when this send holds several MTypes)."""
        several = len(self.replies) > 1
        return [r.client_name + (f" ({mtype})" if several else "") + f": {r.outcome}"
                for mtype, rs in self.replies.items() for r in rs if not r.ok]

    @property
    def untaken(self) -> list[str]:
        """The MTypes no client on the hub subscribes to."""
        return [mtype for mtype, rs in self.replies.items() if not rs]

    def text(self, what: str = "") -> str:
        """One line: "sent <what> to A, B; C: no reply within 5 s; nobody takes <mtype>", or
        "<what> not sent: nobody on the hub takes <mtype>"."""
        what = f"{what} " if what else ""
        if not any(self.replies.values()):
            mtypes = ", ".join(self.untaken) or "these messages"
            return f"{what}not sent: nobody on the hub takes {mtypes}"
        received = self.received
        parts = [f"sent {what}to {', '.join(received)}" if received else f"{what}not received"]
        parts += self.problems
        if self.untaken:
            parts.append(f"nobody takes {', '.join(self.untaken)}")
        return "; ".join(parts)


def _names(replies) -> list[str]:
    """The clients' names, each once, in the order of `replies`."""
    return list(dict.fromkeys(r.client_name for r in replies))


@dataclass(frozen=True)
class SampEvent:
    """Something a peer asked vo-al to do, or a change of the hub's state.

    kind: "highlight" (one candidate), "select" (a set), "point" (the candidate nearest a sky
    position), "hub" (message: "connected" by `connect`, "lost", "reconnected" when vo-al
    registered again by itself after a loss), "clients" (a client came, went or changed).
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
    """The hub the link is registered on: its URL, lockfile, whether vo-al runs it, the ids."""

    url: str
    lockfile: str
    embedded: bool
    hub_id: str = ""
    self_id: str = ""
