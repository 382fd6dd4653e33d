"""One registration of vo-al on one hub: pyvo's XML-RPC callback server plus the hub proxy.

`HubClient` registers, subscribes to `SUBSCRIPTIONS` and hands every incoming message and
response to the callbacks it was given; it decides nothing. `SampLink` makes a fresh one on
each (re)connection and routes what it receives.
"""

from __future__ import annotations

import logging
import xmlrpc.client as xmlrpc
from typing import Callable

from vo_al.core.samp import messages as msgs
from vo_al.core.samp.hub import HUB_FAILURES, error_text, hub_proxy, hub_url, pyvo_samp

log = logging.getLogger("vo_al.samp")

#: what vo-al subscribes to
SUBSCRIPTIONS = (msgs.TABLE_HIGHLIGHT, msgs.TABLE_SELECT, msgs.POINT_AT_SKY, msgs.PING,
                 "samp.hub.event.shutdown", "samp.hub.disconnect", "samp.hub.event.register",
                 "samp.hub.event.unregister", "samp.hub.event.metadata",
                 "samp.hub.event.subscriptions")

#: on_message(client, sender_id, msg_id, message): msg_id is None for a notification
MessageCallback = Callable[["HubClient", str, "str | None", object], None]
#: on_response(responder_id, msg_tag, response): the reply to a call vo-al made
ResponseCallback = Callable[[str, str, object], None]


class HubClient:
    """One registration on one hub: the XML-RPC callback server plus the hub proxy.

    `name`, `description` and `metadata` are what the hub shows of vo-al; `on_message` gets
    every call and notification, `on_response` every reply to our calls, on pyvo's threads.
    """

    def __init__(self, hub_params: dict, timeout: float, *, name: str, description: str,
                 metadata: dict, on_message: MessageCallback, on_response: ResponseCallback):
        from pyvo.samp.client import SAMPClient
        from pyvo.samp.hub_proxy import SAMPHubProxy

        ps = pyvo_samp()
        self.hub_url = hub_url(hub_params)
        self.secret = str(hub_params.get("samp.secret", ""))
        hub = SAMPHubProxy()
        hub.proxy = hub_proxy(self.hub_url, timeout)
        hub.lockfile = dict(hub_params)
        hub.ping()
        hub._connected = True
        self.hub = hub

        owner = self

        # pyvo's override points; a message signed with another private key is not for us
        class _Receiver(SAMPClient):
            def receive_notification(self, private_key, sender_id, message):
                if private_key == self.get_private_key():
                    on_message(owner, sender_id, None, message)
                return ""

            def receive_call(self, private_key, sender_id, msg_id, message):
                if private_key == self.get_private_key():
                    on_message(owner, sender_id, msg_id, message)
                return ""

            def receive_response(self, private_key, responder_id, msg_tag, response):
                if private_key == self.get_private_key():
                    on_response(responder_id, msg_tag, response)
                return ""

        with ps.conf.set_temp("use_internet", False):
            self.client = _Receiver(hub, name=name, description=description,
                                    metadata=dict(metadata), addr="127.0.0.1")
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

    @property
    def hub_id(self) -> str:
        """The hub's own client id (samp.hub-id of the registration; "" before it)."""
        # read live: the hub's events about our own registration arrive before __init__ ends
        return str(getattr(self.client, "_hub_id", None) or "")

    def is_hub(self, lockfile_params: dict) -> bool:
        """Do these lockfile params name the hub this registration is on (address and secret)?"""
        return (hub_url(lockfile_params) == self.hub_url
                and str(lockfile_params.get("samp.secret", "")) == self.secret)

    def registration_gone(self) -> str | None:
        """Why this registration no longer holds (the hub is gone, or it answers but does
        not know vo-al's private key: a new hub at the same address), or None if it holds."""
        try:
            # a keyed call, not samp.hub.ping: a restarted hub answers a ping too
            self.hub.proxy.samp.hub.getMetadata(self.private_key, self.self_id)
        except xmlrpc.Fault as exc:
            return f"the hub no longer knows vo-al ({error_text(exc)})"
        except HUB_FAILURES as exc:
            return f"the hub does not answer ({error_text(exc)})"
        return None

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


def _unused(*args):                           # subscriptions only: HubClient routes the messages
    return None
