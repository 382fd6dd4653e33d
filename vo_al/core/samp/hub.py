"""Finding, reaching and starting a SAMP hub: the lockfile, the XML-RPC transport, the embedded hub.

The Standard Profile lockfile is found through ``SAMP_HUB`` (std-lockurl: form) or ``~/.samp``.
Every exchange with the hub goes through `hub_proxy`, whose transport has a socket timeout, so
that a dead hub never hangs the caller. pyvo is imported only when a hub is reached or started.
"""

from __future__ import annotations

import logging
import os
import urllib.request
import xmlrpc.client as xmlrpc
from pathlib import Path
from urllib.parse import urlparse

from vo_al.core.base.errors import SampError, SampHubError

log = logging.getLogger("vo_al.samp")

#: what an exchange with the hub raises when the hub is gone or refuses
HUB_FAILURES = (OSError, xmlrpc.Error, SampError, TimeoutError)


def error_text(exc: BaseException) -> str:
    """The exception as one line for a log line or a samp.error reply (never cut)."""
    from vo_al.core.base.errors import reason_text

    return reason_text(exc)


def pyvo_samp():
    """pyvo.samp, imported on first use (it is slow to import and only needed on a hub)."""
    import pyvo.samp as ps

    return ps


def hub_url(params: dict) -> str:
    """The hub's XML-RPC URL from its lockfile params."""
    # a lockfile written as a Java properties file escapes ':' as '\:'
    return str(params["samp.hub.xmlrpc.url"]).replace("\\", "")


class TimeoutTransport(xmlrpc.Transport):
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


def hub_proxy(url: str, timeout: float, size: int = 4):
    """A pool of `size` XML-RPC proxies to the hub at `url`, each with a `timeout` socket."""
    from pyvo.samp.utils import SAMPXXEServerProxy, ServerProxyPool

    if urlparse(url).scheme != "http":
        raise SampHubError(f"hub URL {url!r}: only http XML-RPC hubs are supported")

    def make(u):
        return SAMPXXEServerProxy(u, allow_none=1, transport=TimeoutTransport(timeout))

    return ServerProxyPool(size, make, url)


def standard_lockfile() -> Path:
    """~/.samp: the Standard Profile's default lockfile, the only one Aladin reads."""
    return Path.home() / ".samp"


def lockfile_location() -> str:
    """Where the Standard Profile lockfile is: SAMP_HUB=std-lockurl:..., else ~/.samp."""
    env = os.environ.get("SAMP_HUB", "").strip()
    if env:
        if not env.startswith("std-lockurl:"):
            raise SampHubError(f"SAMP_HUB={env!r}: only the std-lockurl: form is supported")
        return env[len("std-lockurl:"):]
    return str(standard_lockfile())


def is_standard_lockfile(location: str) -> bool:
    """Is `location` (a path or a file: URL) ~/.samp, where every SAMP tool looks?"""
    from urllib.request import url2pathname

    parsed = urlparse(location)
    if parsed.scheme not in ("", "file"):
        return False
    path = Path(url2pathname(parsed.path) if parsed.scheme else location)
    return path.expanduser().resolve() == standard_lockfile().resolve()


def read_lockfile(location: str, timeout: float) -> dict | None:
    """The lockfile's params (a file path, file: or http(s): URL), or None if it is not one."""
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
    location = lockfile_location()
    params = read_lockfile(location, timeout)
    if params is None:
        return None
    url = hub_url(params)
    try:
        hub_proxy(url, timeout, size=1).samp.hub.ping()
    except xmlrpc.ProtocolError:
        return location, params            # alive, but wants authentication
    except Exception as exc:                # noqa: BLE001 - any failure means "not running"
        log.debug("hub in %s does not answer: %s", location, exc)
        return None
    return location, params


def start_embedded_hub(label: str, web_profile: bool = False):
    """Start a pyvo hub on 127.0.0.1 that writes the lockfile; (server, location, params).

    SampHubError when it cannot start or cannot write its lockfile (another hub holds it).
    """
    ps = pyvo_samp()
    with ps.conf.set_temp("use_internet", False):
        hub = ps.SAMPHubServer(web_profile=web_profile, addr="127.0.0.1", label=label)
    try:
        hub.start(wait=False)
    except Exception as exc:             # noqa: BLE001
        raise SampHubError(f"cannot start an embedded SAMP hub: {error_text(exc)}") from exc
    if not hub._lockfile:
        hub.stop()
        raise SampHubError("cannot start an embedded SAMP hub: its lockfile could not be "
                           f"written ({lockfile_location()}; another hub running?)")
    log.info("started an embedded SAMP hub (lockfile %s)", hub._lockfile)
    return hub, str(hub._lockfile), dict(hub.params)
