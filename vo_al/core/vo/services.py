"""The VO services vo-al queries: a small named list, saved as JSON.

Where the list lives (first found wins when reading, see `services_path`):

* ``PROJECT/vo_services.json`` when a project folder is given (services of one project);
* the user's config folder: ``$XDG_CONFIG_HOME/vo-al/vo_services.json`` (default
  ``~/.config/vo-al``), ``%APPDATA%\\vo-al`` on Windows, ``~/Library/Application Support/vo-al``
  on macOS; ``$VO_AL_CONFIG_DIR`` overrides all of them.

Without a file the defaults are the local DaCHS server that ``scripts/dachs.sh`` starts
(SSAP and TAP on 127.0.0.1, port ``$VO_AL_DACHS_PORT`` or 8080).

`PUBLIC_SERVICES` lists public endpoints a user may point vo-al at. They are NOT tested: the test
suite never touches the internet, and their URLs come from documentation (cited per entry), not
from a query made here. LAMOST's own VO services change URL with every data release (DR1 ...
DR10, each on its own host): find the current ones in the IVOA registry, e.g.
``pyvo.registry.search(pyvo.registry.Servicetype("ssa"), pyvo.registry.Freetext("LAMOST"))``,
and add them with ``vo-al vo-services add NAME ssap URL``.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from vo_al.core.base.atomic import atomic_write_text
from vo_al.core.base.errors import ParameterError

SSAP = "ssap"
TAP = "tap"
KINDS = (SSAP, TAP)
SERVICES_FILE = "vo_services.json"
_FORMAT = "vo-al vo services"

# what a server does with the SSA SIZE parameter (see vo_query.ssap_search)
SIZE_DIAMETER = "diameter"      # the SSA 1.1 standard: SIZE is the diameter of the search cone
SIZE_RADIUS = "radius"          # DaCHS 2.7 (and so GAVO-run services): SIZE is used as a radius
SIZE_MEANINGS = (SIZE_DIAMETER, SIZE_RADIUS)


@dataclass
class VOService:
    """One service: a name people use, its protocol (`ssap` or `tap`) and base URL.

    `ssa_size` (SSAP only) says how the server reads SIZE: 'diameter' as SSA 1.1 says, or
    'radius' as DaCHS 2.7 does; vo-al sends what gives a search of the radius the user asked.
    `medium` ('air', 'vacuum' or '') is the wavelength medium of the service's spectra where a
    file does not state it (a file's own statement wins; '' rejects such files, saying why).
    `tested` marks services exercised by the test suite (only the local DaCHS).
    """

    name: str
    kind: str
    url: str
    description: str = ""
    ssa_size: str = SIZE_DIAMETER
    tested: bool = False
    medium: str = ""

    def validate(self) -> "VOService":
        if not self.name or any(c.isspace() for c in self.name):
            raise ParameterError("name", self.name, "a non-empty service name without spaces")
        if self.kind not in KINDS:
            raise ParameterError("kind", self.kind, f"one of {', '.join(KINDS)}")
        if not (self.url.startswith("http://") or self.url.startswith("https://")):
            raise ParameterError("url", self.url, "an http:// or https:// URL")
        if self.ssa_size not in SIZE_MEANINGS:
            raise ParameterError("ssa_size", self.ssa_size, f"one of {', '.join(SIZE_MEANINGS)}")
        from vo_al.core.spectra.media import parse_medium

        self.medium = parse_medium(self.medium, "medium") or ""
        return self

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict, where: str = "") -> "VOService":
        if not isinstance(raw, dict):
            raise ParameterError(f"{where}service", raw, "a JSON object")
        known = {f.name for f in fields(cls)}
        unknown = set(raw) - known
        if unknown:
            raise ParameterError(f"{where}service", sorted(unknown),
                                 f"known keys: {', '.join(sorted(known))}")
        try:
            return cls(**raw).validate()
        except TypeError as exc:
            raise ParameterError(f"{where}service", raw, str(exc)) from None


def local_dachs_base(port: int | None = None) -> str:
    port = port or int(os.environ.get("VO_AL_DACHS_PORT", "8080"))
    return f"http://127.0.0.1:{port}"


def default_services(port: int | None = None) -> list[VOService]:
    """The local DaCHS of scripts/dachs.sh: SSAP on lamost/q/ssa, TAP on /tap (table lamost.data),
    and the Ondřejov-like archive's SSAP on ccd700/q/ssa (SDM VOTables, air wavelengths)."""
    base = local_dachs_base(port)
    return [
        VOService("local-ssap", SSAP, f"{base}/lamost/q/ssa/ssap.xml",
                  "local DaCHS (scripts/dachs.sh): synthetic LAMOST spectra, SSAP",
                  ssa_size=SIZE_RADIUS, tested=True),
        VOService("local-tap", TAP, f"{base}/tap",
                  "local DaCHS (scripts/dachs.sh): tables lamost.data, ccd700.data and "
                  "ivoa.obscore, TAP", tested=True),
        VOService("local-ccd700", SSAP, f"{base}/ccd700/q/ssa/ssap.xml",
                  "local DaCHS (scripts/dachs.sh import-ccd700): synthetic Ondřejov CCD700 "
                  "spectra as SDM VOTables (air wavelengths), SSAP",
                  ssa_size=SIZE_RADIUS, tested=True),
    ]


# Public endpoints, documented only (never contacted by the tests; "not tested offline").
PUBLIC_SERVICES: list[VOService] = [
    VOService("gavo-tap", TAP, "http://dc.g-vo.org/tap",
              "GAVO Data Center TAP (ivoa.obscore and many spectral collections); the TAP "
              "example of the pyvo documentation. Not tested offline.", ssa_size=SIZE_RADIUS),
    VOService("gavo-regtap", TAP, "http://reg.g-vo.org/tap",
              "the IVOA registry (RegTAP) pyvo.registry queries by default: where to find "
              "LAMOST's current SSAP/TAP URLs. Not tested offline."),
]


# ---------------------------------------------------------------- where the file lives

def user_config_dir() -> Path:
    """The platform's per-user config folder for vo-al (not created here)."""
    env = os.environ.get("VO_AL_CONFIG_DIR")
    if env:
        return Path(env)
    if sys.platform.startswith("win"):
        return Path(os.environ.get("APPDATA", Path.home() / "AppData" / "Roaming")) / "vo-al"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "vo-al"
    return Path(os.environ.get("XDG_CONFIG_HOME", Path.home() / ".config")) / "vo-al"


def services_path(project=None) -> Path:
    """The file to read: the project's when given and present, else the user's."""
    if project is not None:
        p = Path(project) / SERVICES_FILE
        if p.is_file():
            return p
    return user_config_dir() / SERVICES_FILE


# ---------------------------------------------------------------- load / save

def load_services(path=None, project=None) -> dict[str, VOService]:
    """Services by name: from `path` (or `services_path(project)`) if it exists, else defaults.

    Raises ParameterError naming the file when it is not a valid service list.
    """
    path = Path(path) if path is not None else services_path(project)
    if not path.is_file():
        return {s.name: s for s in default_services()}
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ParameterError(str(path), "?", f"a readable JSON service list ({exc})") from exc
    if not isinstance(raw, dict) or raw.get("format") != _FORMAT:
        raise ParameterError(str(path), "?", f"a JSON object with format {_FORMAT!r}")
    services = {}
    for i, item in enumerate(raw.get("services", [])):
        s = VOService.from_dict(item, where=f"{path}: entry {i} ")
        services[s.name] = s
    return services


def save_services(services, path=None, project=None) -> Path:
    """Write services (a dict by name or a list) atomically; returns the file written."""
    if isinstance(services, dict):
        services = list(services.values())
    for s in services:
        s.validate()
    if path is None:
        path = (Path(project) / SERVICES_FILE) if project is not None \
            else user_config_dir() / SERVICES_FILE
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps({"format": _FORMAT, "version": 1,
                       "services": [s.as_dict() for s in services]}, indent=2)
    atomic_write_text(path, text + "\n")
    return path


def resolve_service(name_or_url: str, kind: str, services: dict[str, VOService] | None = None
                    ) -> VOService:
    """A service by name from `services` (default: load_services()), or an ad-hoc one from a URL.

    An ad-hoc SSAP URL is assumed standard (SIZE = diameter) unless it is the local DaCHS.
    """
    if kind not in KINDS:
        raise ParameterError("kind", kind, f"one of {', '.join(KINDS)}")
    if name_or_url.startswith(("http://", "https://")):
        size = SIZE_RADIUS if name_or_url.startswith(local_dachs_base()) else SIZE_DIAMETER
        return VOService("adhoc", kind, name_or_url, "given on the command line",
                         ssa_size=size).validate()
    services = load_services() if services is None else services
    if name_or_url not in services:
        raise ParameterError("service", name_or_url,
                             f"a URL or one of the configured services: "
                             f"{', '.join(sorted(services)) or '(none)'}")
    service = services[name_or_url]
    if service.kind != kind:
        raise ParameterError("service", name_or_url, f"a {kind} service (it is {service.kind})")
    return service
