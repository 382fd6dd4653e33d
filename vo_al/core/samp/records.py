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
