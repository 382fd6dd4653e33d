"""SAMP: vo-al's candidates out to Aladin, SPLAT-VO and TOPCAT, and their selections back.

- `link`: `SampLink`, the link's state, connection (reconnecting, watchdog) and peers
- `sending`: `SendMixin`, what the link sends (calls with replies awaited, the candidate messages)
- `receiving`: `ReceiveMixin`, what the link receives (answers, `SampEvent` queue, listeners)
- `client`: `HubClient`, one registration on one hub (pyvo's callback server and hub proxy)
- `hub`: finding, reaching and starting a hub (lockfile, XML-RPC with timeouts, embedded hub)
- `table`: `CandidateTable`, the shared candidate table (rows, pool indices, nearest position)
- `records`: `SampPeer`, `SampReply`, `Delivery` (who got a send), `SampEvent`, `HubInfo` and
  the reply statuses
- `hints`: what to tell the user about the tools on the hub (TOPCAT's row clicks, Aladin's lockfile)
- `messages`: the MTypes vo-al sends and receives, builders and strict parsers (no networking)

Importing this package does not import pyvo; that happens when a hub is reached or started.
"""

from vo_al.core.samp.hub import find_running_hub
from vo_al.core.samp.link import SampLink
from vo_al.core.samp.records import Delivery, HubInfo, SampEvent, SampPeer, SampReply
from vo_al.core.samp.table import CandidateTable

__all__ = ["CandidateTable", "Delivery", "HubInfo", "SampEvent", "SampLink", "SampPeer",
           "SampReply", "find_running_hub"]
