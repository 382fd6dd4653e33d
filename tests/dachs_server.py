"""The project's own DaCHS server (scripts/dachs.sh) as a session-scoped pytest fixture.

Load it from tests/conftest.py with::

    from dachs_server import dachs  # noqa: F401  (session fixture: the real DaCHS server)

`dachs` yields a DachsServer: it makes sure PostgreSQL + DaCHS serve synthetic LAMOST spectra on
127.0.0.1 (running `scripts/dachs.sh start`, and `install` / `import N` when needed), and
skips only where that cannot work at all: not Linux/Debian, not root (unless a server is
already serving), or DaCHS not installable. Everything else that goes wrong is an error.

Environment: VO_AL_DACHS_PORT (8080), VO_AL_DACHS_N (spectra to import when nothing is
imported yet, 1000), VO_AL_DACHS_SEED (1), VO_AL_DACHS_REIMPORT=1 (import even when some
other N/seed is already imported), VO_AL_DACHS_STOP=1 (stop at the end a server this session
started; by default it is left running for the next session).
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "dachs.sh"
INPUTS = Path("/var/gavo/inputs/lamost")
STATE = Path("/var/gavo/state")
HOST = "127.0.0.1"


def _port() -> int:
    return int(os.environ.get("VO_AL_DACHS_PORT", "8080"))


@dataclass
class DachsServer:
    """Where the server is and what it serves; kill()/restart() for crash tests (root only)."""

    base_url: str
    ssap_url: str
    tap_url: str
    datalink_url: str          # append ?ID=<ssa_pubDID> (dlmeta: the links document)
    n_spectra: int
    seed: int
    truth: Path                # truth.csv of the imported pool: name,label,kind
    data_dir: Path             # the original FITS files the server publishes
    simbad_like_csv: Path      # the rows of lamost.simbad_like
    can_control: bool          # root: kill() and restart() work
    started_here: bool = False

    @property
    def port(self) -> int:
        return int(self.base_url.rsplit(":", 1)[1])

    def answers(self, timeout: float = 5.0) -> bool:
        """True when TAP's capabilities endpoint answers 200."""
        try:
            with urllib.request.urlopen(f"{self.tap_url}/capabilities", timeout=timeout) as r:
                return r.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def port_open(self) -> bool:
        with socket.socket() as s:
            s.settimeout(1.0)
            return s.connect_ex((HOST, self.port)) == 0

    def local_file(self, accref_or_url: str) -> Path:
        """The file in data_dir an accref ('lamost/data/x.fits') or getproduct URL points to."""
        return self.data_dir / accref_or_url.split("?", 1)[0].rsplit("/", 1)[-1]

    def unusable(self, accrefs) -> set[str]:
        """Those of `accrefs` whose spectra preprocessing rejects on their own: the served pool
        has 'gap' artefacts (dead columns, flux 0 and ivar 0, over much of the H-alpha window),
        which a harvest reports as 'not usable' instead of adding."""
        from vo_al.core.spectra.preprocess import preprocess_spectra
        from vo_al.core.spectra.readers import read_spectrum

        return {str(a) for a in accrefs
                if preprocess_spectra([read_spectrum(self.local_file(str(a)))]).reasons[0]}

    def kill(self) -> None:
        """SIGKILL the DaCHS server process (a crash); returns once the port is closed."""
        self._need_control()
        _run(["kill"])
        deadline = time.monotonic() + 10
        while self.port_open() and time.monotonic() < deadline:
            time.sleep(0.1)
        if self.port_open():
            raise RuntimeError(f"port {self.port} still open after killing DaCHS")

    def restart(self) -> float:
        """`scripts/dachs.sh start` (recovers from a kill); returns the seconds it took."""
        self._need_control()
        t0 = time.monotonic()
        _run(["start"])
        return time.monotonic() - t0

    def _need_control(self) -> None:
        if not self.can_control:
            pytest.skip("controlling the DaCHS server (kill/restart) needs root")


class DachsUnavailable(Exception):
    """The server cannot run on this machine at all (reason in the message): skip."""


def _run(args: list, timeout: float = 3600) -> str:
    """Run scripts/dachs.sh ARGS; RuntimeError with its output when it fails."""
    proc = subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "VO_AL_DACHS_PORT": str(_port())})
    if proc.returncode != 0:
        raise RuntimeError(f"scripts/dachs.sh {' '.join(args)} failed "
                           f"(exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout + proc.stderr


def _imported() -> dict | None:
    try:
        return json.loads((INPUTS / "imported.json").read_text())
    except (OSError, ValueError):
        return None


def _dachs_installed() -> bool:
    return shutil.which("dachs") is not None and Path("/usr/share/doc/gavodachs2-server").is_dir()


@contextmanager
def _lock():
    """One pytest session at a time sets the server up (two sessions importing collide)."""
    path = STATE / "vo-al-fixture.lock" if STATE.is_dir() else Path("/tmp/vo-al-dachs.lock")
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _server(started_here: bool, imported: dict, can_control: bool) -> DachsServer:
    base = f"http://{HOST}:{_port()}"
    return DachsServer(
        base_url=base, ssap_url=f"{base}/lamost/q/ssa/ssap.xml", tap_url=f"{base}/tap",
        datalink_url=f"{base}/lamost/q/sdl/dlmeta", n_spectra=int(imported["n"]),
        seed=int(imported["seed"]), truth=Path(imported.get("truth", INPUTS / "truth.csv")),
        data_dir=Path(imported.get("data", INPUTS / "data")),
        simbad_like_csv=INPUTS / "simbad_like.csv", can_control=can_control,
        started_here=started_here)


def ensure_dachs() -> DachsServer:
    """Install (if needed), start and import; DachsUnavailable when this machine cannot."""
    if not Path("/etc/debian_version").exists() or shutil.which("apt-get") is None:
        raise DachsUnavailable("the DaCHS test server needs Debian/Ubuntu (apt-get): "
                               "scripts/dachs.sh installs gavodachs2-server from apt")
    is_root = os.geteuid() == 0
    want_n = int(os.environ.get("VO_AL_DACHS_N", "1000"))
    want_seed = int(os.environ.get("VO_AL_DACHS_SEED", "1"))
    base = f"http://{HOST}:{_port()}"
    probe = DachsServer(base, "", f"{base}/tap", "", 0, 0, Path(), Path(), Path(), is_root)
    if not is_root:
        imported = _imported()
        if probe.answers() and imported:
            return _server(False, imported, can_control=False)
        raise DachsUnavailable("the DaCHS test server needs root to install/start it (or run "
                               "'sudo scripts/dachs.sh install && sudo scripts/dachs.sh start' "
                               "and 'import 1000' first)")
    with _lock():
        if not _dachs_installed():
            try:
                _run(["install"])
            except RuntimeError as exc:
                raise DachsUnavailable(f"DaCHS is not installable here: {exc}") from exc
        started_here = not probe.answers()
        _run(["start"], timeout=600)      # fast when serving; re-imports a changed q.rd
        imported = _imported()
        reimport = os.environ.get("VO_AL_DACHS_REIMPORT") == "1" and (
            imported is None or (imported["n"], imported["seed"]) != (want_n, want_seed))
        if imported is None or reimport or not Path(imported.get("data", "")).is_dir():
            _run(["import", str(want_n), str(want_seed)])
            imported = _imported()
        if imported is None:
            raise RuntimeError("scripts/dachs.sh import left no imported.json")
        # after an import the server reloads: wait until SSA answers again
        server = _server(started_here, imported, can_control=True)
        _wait_until(lambda: _http_ok(f"{server.ssap_url}?REQUEST=queryData&MAXREC=1"), 60,
                    f"SSA service {server.ssap_url} does not answer")
        return server


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _wait_until(predicate, seconds: float, message: str) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(message)
        time.sleep(0.2)


@pytest.fixture(scope="session")
def dachs():
    """The real DaCHS server on loopback (see DachsServer); skips where it cannot run."""
    try:
        server = ensure_dachs()
    except DachsUnavailable as exc:
        pytest.skip(str(exc))
    yield server
    # a crash test that failed half-way must not leave the server dead for the next session
    if server.can_control and not server.answers():
        try:
            _run(["start"], timeout=300)
        except RuntimeError:
            pass
    # left running by default (a second session, or a colleague's, reuses it; scripts/dachs.sh
    # stop stops it); VO_AL_DACHS_STOP=1 stops a server this session started
    if server.started_here and os.environ.get("VO_AL_DACHS_STOP") == "1" and server.can_control:
        _run(["stop"])


# ---------------------------------------------------------------- the CCD700 archive

CCD700 = Path("/var/gavo/inputs/ccd700")
GAVO_RC = Path("/etc/gavo.rc")
IMPORT_N, IMPORT_SEED = 300, 1


@dataclass
class Ccd700Archive:
    """The CCD700 resource of the running server and the files behind it."""

    base_url: str
    authority: str
    n_spectra: int
    data_dir: Path          # the native FITS files NAME.fits
    truth: Path             # id,label (publisher DID, the Ondřejov labels file's scheme)
    # the real labels file the names were taken from; None when they are synthetic (the import
    # ran where ../shared had no labels.csv): a test's labels must come from the same place
    labels_source: Path | None = None

    @property
    def ssap_url(self) -> str:
        return f"{self.base_url}/ccd700/q/ssa/ssap.xml"

    def did(self, name: str) -> str:
        return f"ivo://{self.authority}/ccd700/{name}"

    def dlget(self, did: str, mime: str) -> str:
        return (f"{self.base_url}/ccd700/q/sdl/dlget?"
                + urllib.parse.urlencode({"ID": did, "FORMAT": mime}))

    def dlmeta(self, did: str) -> str:
        return f"{self.base_url}/ccd700/q/sdl/dlmeta?" + urllib.parse.urlencode({"ID": did})


def _authority() -> str:
    """[ivoa] authority of /etc/gavo.rc (scripts/dachs.sh writes vo-al.test)."""
    text = GAVO_RC.read_text() if GAVO_RC.is_file() else ""
    found = re.search(r"^\s*authority\s*:\s*(\S+)", text, re.MULTILINE | re.IGNORECASE)
    return found[1] if found else "vo-al.test"


def _ccd700_imported() -> dict | None:
    try:
        return json.loads((CCD700 / "imported.json").read_text())
    except (OSError, ValueError):
        return None


def stilts(*args: str, timeout: float = 120) -> str:
    exe = shutil.which("stilts")
    if exe is None:
        pytest.skip("STILTS is not installed (scripts/dachs.sh install installs it)")
    proc = subprocess.run([exe, *args], capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"stilts {' '.join(args)} failed:\n{proc.stderr[-3000:]}"
    return proc.stdout


def _ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status == 200
    except OSError:
        return False


@pytest.fixture(scope="session")
def ccd700(dachs) -> Ccd700Archive:
    """The CCD700 archive on the `dachs` server; imports it (300 spectra, seed 1) when absent."""
    imported = _ccd700_imported()
    if imported is None:
        if not dachs.can_control:
            pytest.skip("the CCD700 archive is not imported and importing it needs root "
                        "(sudo scripts/dachs.sh import-ccd700 300 1)")
        with _lock():
            if _ccd700_imported() is None:
                _run(["import-ccd700", str(IMPORT_N), str(IMPORT_SEED)])
        imported = _ccd700_imported()
        assert imported is not None, "scripts/dachs.sh import-ccd700 left no imported.json"
    names = Path(str(imported.get("names", "")))
    archive = Ccd700Archive(f"http://{HOST}:{_port()}", _authority(), int(imported["n"]),
                            Path(imported["data"]), Path(imported["truth"]),
                            names if names.is_file() else None)
    _wait_until(lambda: _ok(f"{archive.ssap_url}?REQUEST=queryData&MAXREC=1"), 60,
                f"CCD700 SSA service {archive.ssap_url} does not answer")
    return archive


