"""What to tell the user about the tools on the hub: what vo-al cannot fix from its side.

Plain text from the hub's state (no networking): the dock and `vo-al samp` show it as it is.
- TOPCAT sends a row click (table.highlight.row) only when its "Send row index" activation
  action is on, and it is off by default: no SAMP message turns it on (TOPCAT 4.8 subscribes to
  no MType that configures its activation actions), so the user is told where it is.
- Aladin reads only ``~/.samp`` (it ignores ``SAMP_HUB``): a hub whose lockfile is elsewhere
  is invisible to it.
"""

from __future__ import annotations

from typing import Iterable

from vo_al.core.samp.hub import is_standard_lockfile
from vo_al.core.samp.records import HubInfo

TOPCAT_ROW_CLICKS = ("TOPCAT sends its row clicks only with its \"Send row index\" activation "
                     "action on, off by default (in TOPCAT: Views › Activation Actions)")

ALADIN_LOCKFILE = "Aladin is not on this hub: Aladin only finds a hub whose lockfile is ~/.samp"
# the hub's lockfile is ~/.samp and something was sent, but Aladin is not there
ALADIN_JOINS_AT_START = ("Aladin is not on this hub: an Aladin started now joins it (it looks for "
                         "~/.samp at its start-up only)")


def peer_hints(hub: HubInfo | None, peer_names: Iterable[str], sent: bool) -> list[str]:
    """The hints for a hub with the clients `peer_names` on it (samp.name).

    TOPCAT's row clicks while TOPCAT is there; Aladin's lockfile while Aladin is not there and
    the hub's lockfile is not ~/.samp, or once something was `sent` (the user expects it there).
    """
    names = {str(n).lower() for n in peer_names}
    hints = []
    if "topcat" in names:
        hints.append(TOPCAT_ROW_CLICKS)
    if hub is not None and "aladin" not in names:
        standard = is_standard_lockfile(hub.lockfile)
        if not standard:
            hints.append(f"{ALADIN_LOCKFILE} (this hub's is {hub.lockfile})")
        elif sent:
            # Aladin joins the hub at its own start-up (tests/samp_peers.py starts it so)
            hints.append(ALADIN_JOINS_AT_START)
    return hints
