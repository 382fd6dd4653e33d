"""Real SAMP peers for the tests, each on a PRIVATE hub lockfile (never ~/.samp).

Load the fixtures from tests/conftest.py with::

    from samp_peers import (samp_lockfile, pyvo_hub, jsamp_hub, snooper, xvfb,  # noqa: F401
                            app_hub, topcat, aladin)

* `samp_lockfile`: SAMP_HUB=std-lockurl:file://<tmp>/samp.lock and HOME=<tmp>/home for one test;
* `pyvo_hub`: pyvo's embedded hub on it; `jsamp_hub`: a JSAMP hub process (kill()/restart());
  `pyvo_hub_process`: pyvo's hub in a process, restarted on the same port (kill()/stop()/start());
* `snooper`: JSAMP's snooper on the JSAMP hub, recording every message it receives;
* `Receiver`: a pyvo client that records what it gets and answers calls (a SPLAT-VO stand-in);
* `xvfb` (session), `app_hub` / `topcat` / `aladin` (module): TOPCAT and Aladin under Xvfb.

Java apps come from `scripts/samp-stack.sh install` (apt). Tests that need them skip, with the
reason, only where they are missing and cannot be installed (not root, or no apt-get); as root
with apt the fixtures install them, and an install that fails is an error.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
STACK = REPO / "scripts" / "samp-stack.sh"
_install_result: dict = {}


def wait_for(pred, timeout: float, what: str, interval: float = 0.05):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        value = pred()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout} s waiting for {what}")


def require_apps(*commands: str) -> None:
    """Skip (with the reason) when `commands` are missing and cannot be installed here."""
    missing = [c for c in commands if not shutil.which(c)]
    if not missing:
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        pytest.skip(f"{', '.join(missing)} not installed and not installable here (needs root "
                    f"and apt-get: run scripts/samp-stack.sh install)")
    if "rc" not in _install_result:
        proc = subprocess.run([str(STACK), "install"], capture_output=True, text=True,
                              timeout=1200)
        _install_result.update(rc=proc.returncode, out=(proc.stdout + proc.stderr)[-2000:])
    missing = [c for c in commands if not shutil.which(c)]
    if _install_result["rc"] != 0 or missing:
        pytest.fail(f"scripts/samp-stack.sh install failed (rc {_install_result['rc']}), "
                    f"missing {missing}:\n{_install_result['out']}")


def _start(cmd, env, log: Path) -> subprocess.Popen:
    """A process in its own session, so that stop() also ends the JVM under a wrapper script."""
    return subprocess.Popen(cmd, env=env, stdout=open(log, "w"), stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True)


def _stop(proc: subprocess.Popen | None, sig=signal.SIGTERM, wait: float = 10.0) -> None:
    if proc is None or proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        return
    try:
        proc.wait(wait)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(5)


def _lockfile_env(lockfile: Path, home: Path) -> dict:
    home.mkdir(parents=True, exist_ok=True)
    return {"SAMP_HUB": f"std-lockurl:file://{lockfile}", "HOME": str(home)}


# ================================================================================ hubs
@pytest.fixture
def samp_lockfile(tmp_path, monkeypatch) -> Path:
    """A private lockfile for this test: SAMP_HUB points at it and HOME is a fresh folder."""
    lockfile = tmp_path / "samp.lock"
    for key, value in _lockfile_env(lockfile, tmp_path / "home").items():
        monkeypatch.setenv(key, value)
    return lockfile


@pytest.fixture
def pyvo_hub(samp_lockfile):
    import pyvo.samp as ps

    with ps.conf.set_temp("use_internet", False):
        hub = ps.SAMPHubServer(web_profile=False, addr="127.0.0.1", label="test pyvo hub")
    hub.start()
    try:
        yield hub
    finally:
        hub.stop()


class HubProcess:
    """A hub in a process of its own on a private lockfile: kill() is a crash (no
    samp.hub.event.shutdown, the lockfile stays behind), stop() a clean stop (the hub tells
    its clients), start() again a new hub (a new secret) on the same lockfile."""

    name = "hub"

    def __init__(self, lockfile: Path, log_dir: Path):
        self.lockfile = Path(lockfile)
        self.log_dir = Path(log_dir)
        self.env = dict(os.environ, **_lockfile_env(self.lockfile, self.log_dir / "home"))
        self.proc = None
        self.starts = 0

    def command(self) -> list[str]:
        raise NotImplementedError

    def start(self, timeout: float = 30.0) -> "HubProcess":
        self.lockfile.unlink(missing_ok=True)
        self.starts += 1
        self.proc = _start(self.command(), self.env,
                           self.log_dir / f"{self.name.replace(' ', '-')}-{self.starts}.log")
        wait_for(lambda: self.lockfile.exists() and self.lockfile.stat().st_size > 0
                 or self.proc.poll() is not None, timeout, f"the {self.name}'s lockfile")
        if self.proc.poll() is not None:
            raise RuntimeError(f"{self.name} exited with {self.proc.returncode}")
        # JSAMP writes the lockfile before its hub service runs (a ping then answers "Hub is
        # stopped"); on a loaded machine that window is long enough for a test to fall into it
        wait_for(self._answers_ping, timeout, f"the {self.name} to answer samp.hub.ping")
        return self

    def params(self) -> dict:
        """The lockfile's key=value lines (samp.hub.xmlrpc.url, samp.secret, ...)."""
        out = {}
        for line in self.lockfile.read_text().splitlines():
            if "=" in line and not line.startswith("#"):
                key, value = line.split("=", 1)
                out[key.strip()] = value.strip().replace("\\", "")
        return out

    def _answers_ping(self) -> bool:
        import xmlrpc.client

        url = self.params().get("samp.hub.xmlrpc.url", "")
        if not url:
            return False
        try:
            xmlrpc.client.ServerProxy(url).samp.hub.ping()
            return True
        except (OSError, xmlrpc.client.Error):
            return False

    def kill(self) -> None:
        """Hard kill: no shutdown message, the lockfile stays behind (stale)."""
        _stop(self.proc, signal.SIGKILL)

    def stop(self) -> None:
        _stop(self.proc)

    def restart(self) -> "HubProcess":
        self.kill()
        return self.start()


class JsampHub(HubProcess):
    """A JSAMP hub process (it picks a new port at each start)."""

    name = "JSAMP hub"

    def command(self) -> list[str]:
        return ["jsamp", "hub", "-mode", "no-gui", "-profiles", "std"]


#: pyvo's hub as a program: listens on 127.0.0.1:<argv[1]>, stops cleanly on SIGTERM
_PYVO_HUB = """
import signal, sys, time
import pyvo.samp as ps
def stop(*_):
    raise SystemExit(0)
signal.signal(signal.SIGTERM, stop)
with ps.conf.set_temp("use_internet", False):
    hub = ps.SAMPHubServer(web_profile=False, addr="127.0.0.1", port=int(sys.argv[1]),
                           label="test pyvo hub process")
hub.start(wait=False)
try:
    while True:
        time.sleep(3600)
finally:
    hub.stop()
"""


class PyvoHubProcess(HubProcess):
    """pyvo's hub in a process of its own, always on the same port: a restarted one answers
    at the address of the one before, with a new secret."""

    name = "pyvo hub"

    def __init__(self, lockfile: Path, log_dir: Path):
        super().__init__(lockfile, log_dir)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]

    def command(self) -> list[str]:
        return [sys.executable, "-c", _PYVO_HUB, str(self.port)]


@pytest.fixture
def pyvo_hub_process(samp_lockfile, tmp_path):
    hub = PyvoHubProcess(samp_lockfile, tmp_path).start()
    try:
        yield hub
    finally:
        hub.stop()


@pytest.fixture
def jsamp_hub(samp_lockfile, tmp_path):
    require_apps("jsamp")
    hub = JsampHub(samp_lockfile, tmp_path).start()
    try:
        yield hub
    finally:
        hub.stop()


def registered_clients(hub_params: dict | None = None) -> dict[str, set]:
    """samp.name (lower case) -> subscribed MTypes of every client on the hub SAMP_HUB names
    (or the hub of the lockfile `hub_params`)."""
    from pyvo.samp import SAMPIntegratedClient

    probe = SAMPIntegratedClient(name="test-probe", callable=False)
    probe.connect(hub_params=hub_params)
    try:
        return {str(probe.get_metadata(i).get("samp.name", "")).lower():
                set(probe.get_subscriptions(i)) for i in probe.get_registered_clients()}
    finally:
        probe.disconnect()


def wait_registered(name: str, timeout: float = 60.0, proc=None, mtype: str | None = None):
    """Until `name` is registered and has declared its subscriptions (`mtype` among them)."""
    def there():
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode} before registering")
        try:
            subs = registered_clients().get(name.lower())
        except Exception:            # noqa: BLE001 - hub still starting
            return False
        return bool(subs) and (mtype is None or mtype in subs)

    wait_for(there, timeout, f"{name} to register on the hub", interval=0.2)


# ================================================================================ snooper
class Snooper:
    """JSAMP's snooper: logs every message it receives (answers calls with samp.warning)."""

    HEADER = re.compile(r"^(\S+)(?: \(([^)]*)\))? --- (notify|call)[^\n]*\n(\{.*?\} \})\s*$",
                        re.M | re.S)

    def __init__(self, env: dict, log: Path, name: str = "snoop"):
        self.name, self.log = name, Path(log)
        self.proc = _start(["jsamp", "snooper", "-clientname", name], env, self.log)

    def messages(self, sender: str | None = None) -> list[dict]:
        """[{sender_id, sender, kind, mtype, params}] in the order received."""
        items, names = [], {}
        for m in self.HEADER.finditer(self.log.read_text(errors="replace")):
            try:
                body = json.loads(m.group(4))
            except json.JSONDecodeError:
                continue
            params = body.get("samp.params", {})
            if body.get("samp.mtype") == "samp.hub.event.metadata":
                # the snooper may log a message before it knows its sender's name
                names[params.get("id")] = params.get("metadata", {}).get("samp.name")
            items.append({"sender_id": m.group(1), "sender": m.group(2), "kind": m.group(3),
                          "mtype": body.get("samp.mtype"), "params": params})
        for item in items:
            item["sender"] = item["sender"] or names.get(item["sender_id"])
        return [i for i in items if sender is None or i["sender"] == sender]

    # a liveness bound, not a speed check: a loaded machine delays the Java snooper's log by
    # seconds (it missed 10 s once, in a fresh-clone run beside the demo)
    def wait(self, n: int, sender: str, timeout: float = 30.0) -> list[dict]:
        return wait_for(lambda: (lambda m: m if len(m) >= n else None)(
            [x for x in self.messages(sender) if not x["mtype"].startswith("samp.")]),
            timeout, f"{n} messages from {sender} in the snooper")

    def stop(self) -> None:
        _stop(self.proc)


@pytest.fixture
def snooper(jsamp_hub, tmp_path):
    s = Snooper(jsamp_hub.env, tmp_path / "snoop.log")
    try:
        wait_registered(s.name, 30, s.proc)
        yield s
    finally:
        s.stop()


# ================================================================================ receivers
_call_tags = itertools.count(1)


class Receiver:
    """A pyvo SAMP client that records every message it subscribes to and answers calls.

    `answer(mtype, params) -> (status, result, error_text)` decides the reply (samp.ok by
    default). Thread-safe: `got` is appended under a lock, `wait(n)` waits on an Event.
    """

    def __init__(self, name: str, mtypes, answer=None):
        from pyvo.samp import SAMPIntegratedClient

        self.name = name
        self.got: list[tuple] = []
        self.answer = answer or (lambda mtype, params: ("samp.ok", {}, ""))
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        import pyvo.samp as ps

        with ps.conf.set_temp("use_internet", False):
            self.client = SAMPIntegratedClient(name=name, addr="127.0.0.1")
        self.client.connect()
        for mtype in mtypes:
            self.client.bind_receive_call(mtype, self._on_call)
            self.client.bind_receive_notification(mtype, self._on_notify)

    @property
    def id(self) -> str:
        return self.client.get_public_id()

    def _record(self, kind, sender, mtype, params):
        with self._changed:
            self.got.append((kind, sender, mtype, params))
            self._changed.notify_all()

    def _on_notify(self, private_key, sender_id, mtype, params, extra):
        self._record("notify", sender_id, mtype, params)

    def _on_call(self, private_key, sender_id, msg_id, mtype, params, extra):
        self._record("call", sender_id, mtype, params)
        status, result, error = self.answer(mtype, params)
        reply = {"samp.status": status, "samp.result": result}
        if error:
            reply["samp.error"] = {"samp.errortxt": error}
        self.client.reply(msg_id, reply)

    def wait(self, n: int, timeout: float = 10.0) -> list[tuple]:
        with self._changed:
            if not self._changed.wait_for(lambda: len(self.got) >= n, timeout):
                raise TimeoutError(f"{self.name} got {len(self.got)} messages, wanted {n}")
            return list(self.got)

    def call(self, recipient: str, mtype: str, params: dict, timeout: int = 10) -> dict:
        """The recipient's response to a call (samp.hub.call, the response awaited here).

        Not samp.hub.callAndWait: pyvo's hub notes such a call only after handing it over, so
        an answer that comes back before that (a fast one, on a loaded machine) is dropped and
        the caller times out. The hub refusing the call (not subscribed) raises at once."""
        tag = f"test-call-{next(_call_tags)}"
        done, box = threading.Event(), {}

        def got(private_key, responder_id, msg_tag, response):
            box["response"] = response
            done.set()

        self.client.bind_receive_response(tag, got)
        try:
            self.client.call(recipient, tag, {"samp.mtype": mtype, "samp.params": params})
            if not done.wait(timeout):
                raise TimeoutError(f"{self.name}: no response to {mtype} within {timeout} s")
        finally:
            self.client.unbind_receive_response(tag)
        return box["response"]

    def notify(self, recipient: str, mtype: str, params: dict) -> None:
        self.client.notify(recipient, {"samp.mtype": mtype, "samp.params": params})

    def close(self) -> None:
        try:
            self.client.disconnect()
        except Exception:        # noqa: BLE001 - the hub may be gone
            pass


def splat_like_answer(mtype: str, params: dict):
    """What SPLAT-VO needs of spectrum.load.ssa-generic: url and meta with Access.Format,
    Access.Reference and Target.Name (keys may carry an `ssa:` prefix)."""
    if mtype != "spectrum.load.ssa-generic":
        return "samp.ok", {}, ""
    url = params.get("url")
    meta = params.get("meta")
    if not isinstance(url, str) or not url.startswith(("http://", "https://", "file:")):
        return "samp.error", {}, f"bad url {url!r}"
    if not isinstance(meta, dict):
        return "samp.error", {}, "no meta map"
    keys = {k.split(":", 1)[-1].lower(): v for k, v in meta.items()}
    for need in ("access.format", "access.reference", "target.name"):
        if not keys.get(need):
            return "samp.error", {}, f"meta lacks {need}"
    if keys["access.format"] not in ("application/fits", "application/x-votable+xml"):
        return "samp.error", {}, f"unsupported Access.Format {keys['access.format']}"
    if keys["access.reference"] != url:
        return "samp.error", {}, "Access.Reference differs from url"
    return "samp.ok", {}, ""


# ================================================================================ GUI apps
def _free_display() -> str:
    for n in range(91, 140):
        if not Path(f"/tmp/.X{n}-lock").exists() and not Path(f"/tmp/.X11-unix/X{n}").exists():
            return f":{n}"
    raise RuntimeError("no free X display number in :91..:139")


@pytest.fixture(scope="session")
def xvfb(tmp_path_factory):
    require_apps("Xvfb", "xdpyinfo")
    display = _free_display()
    log = tmp_path_factory.mktemp("xvfb") / "xvfb.log"
    proc = _start(["Xvfb", display, "-screen", "0", "1600x1000x24", "-nolisten", "tcp"],
                  dict(os.environ), log)

    def up():
        return subprocess.run(["xdpyinfo", "-display", display], capture_output=True).returncode == 0

    try:
        wait_for(up, 20, f"Xvfb on {display}", interval=0.1)
        yield display
    finally:
        _stop(proc)


@pytest.fixture(scope="module")
def app_hub(tmp_path_factory):
    """One private JSAMP hub per test module for the GUI apps (they join a hub at start-up)."""
    require_apps("jsamp")
    folder = tmp_path_factory.mktemp("app-hub")
    hub = JsampHub(folder / "samp.lock", folder).start()
    with pytest.MonkeyPatch.context() as mp:
        for key in ("SAMP_HUB", "HOME"):
            mp.setenv(key, hub.env[key])
        try:
            yield hub
        finally:
            hub.stop()


class JavaApp:
    def __init__(self, name: str, proc: subprocess.Popen, log: Path):
        self.name, self.proc, self.log = name, proc, log

    def stop(self) -> None:
        _stop(self.proc)


@pytest.fixture(scope="module")
def topcat(app_hub, xvfb):
    require_apps("topcat")
    env = dict(app_hub.env, DISPLAY=xvfb)
    log = app_hub.log_dir / "topcat.log"
    app = JavaApp("topcat", _start(["topcat"], env, log), log)
    try:
        wait_registered("topcat", 90, app.proc, "table.load.votable")
        yield app
    finally:
        app.stop()


@pytest.fixture(scope="module")
def aladin(app_hub, xvfb):
    require_apps("aladin")
    home = app_hub.log_dir / "aladin-home"
    home.mkdir(exist_ok=True)
    link = home / ".samp"
    if not link.exists():
        link.symlink_to(app_hub.lockfile)        # Aladin reads only ${user.home}/.samp
    env = dict(app_hub.env, DISPLAY=xvfb, JAVA_TOOL_OPTIONS=f"-Duser.home={home}")
    log = app_hub.log_dir / "aladin.log"
    app = JavaApp("Aladin", _start(["aladin", "-local", "-noreleasetest", "-nolog", "-noplugin"],
                                   env, log), log)
    try:
        wait_registered("Aladin", 120, app.proc, "coord.pointAt.sky")
        yield app
    finally:
        app.stop()
