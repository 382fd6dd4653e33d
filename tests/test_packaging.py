"""Packaging files: desktop entry, AppStream metainfo, icon, PyInstaller spec, and the wheel."""

from __future__ import annotations

import configparser
import importlib.util
import shlex
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGING = REPO / "packaging"
DESKTOP = PACKAGING / "io.github.vo_al.desktop"
METAINFO = PACKAGING / "io.github.vo_al.metainfo.xml"
ICON = PACKAGING / "vo-al.svg"
SPEC = PACKAGING / "vo-al.spec"
APP_ID = "io.github.vo_al"


# -- desktop entry --------------------------------------------------------------------------------
def _desktop_entry() -> configparser.SectionProxy:
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    parser.optionxform = str  # keys are case-sensitive
    parser.read_string(DESKTOP.read_text(encoding="utf-8"))
    return parser["Desktop Entry"]


def test_desktop_entry_has_the_required_keys():
    entry = _desktop_entry()
    for key in ("Type", "Name", "Comment", "Exec", "Icon", "Categories", "Terminal"):
        assert entry.get(key), f"{key} missing from {DESKTOP.name}"
    assert entry["Type"] == "Application"
    assert entry["Terminal"] == "false"
    assert entry["Icon"] == ICON.stem
    categories = entry["Categories"].split(";")
    assert categories[-1] == "", "Categories must end with ';'"
    assert {"Science", "Astronomy"} <= set(categories)


def test_desktop_entry_runs_the_vo_al_gui_command():
    exec_line = shlex.split(_desktop_entry()["Exec"])
    assert exec_line[0] == "vo-al"
    assert exec_line[1] == "gui"
    assert exec_line[2:] in ([], ["%f"], ["%F"], ["%u"], ["%U"])
    assert _desktop_entry()["TryExec"] == "vo-al"


def test_desktop_entry_exec_matches_the_console_script_and_the_cli():
    tomllib = pytest.importorskip("tomllib", reason="tomllib needs Python 3.11")

    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["vo-al"] == "vo_al.cli:main"
    from vo_al.cli.commands import build_parser

    args = build_parser().parse_args(["gui", "some-project"])
    assert args.command == "gui" and args.project == "some-project"


@pytest.mark.skipif(shutil.which("desktop-file-validate") is None,
                    reason="desktop-file-validate (Debian: desktop-file-utils) not installed")
def test_desktop_entry_validates():
    result = subprocess.run(["desktop-file-validate", str(DESKTOP)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert not result.stdout.strip(), result.stdout       # not even a hint


# -- AppStream metainfo ---------------------------------------------------------------------------
def test_metainfo_is_well_formed_with_the_required_elements():
    root = ET.parse(METAINFO).getroot()
    assert root.tag == "component"
    assert root.get("type") == "desktop-application"
    assert root.findtext("id") == APP_ID
    for tag in ("metadata_license", "project_license", "name", "summary"):
        assert (root.findtext(tag) or "").strip(), f"<{tag}> missing or empty"
    assert root.findtext("project_license") == "MIT"
    assert len(root.findtext("summary")) < 100
    description = root.find("description")
    assert description is not None and description.find("p") is not None
    launchable = root.find("launchable")
    assert launchable is not None and launchable.get("type") == "desktop-id"
    assert launchable.text == DESKTOP.name
    rating = root.find("content_rating")
    assert rating is not None and rating.get("type", "").startswith("oars-")
    assert root.find("provides/binary").text == "vo-al"
    releases = root.findall("releases/release")
    assert releases, "<releases> should list at least the current version"


def test_metainfo_release_matches_the_package_version():
    import re

    version = re.search(r'^version\s*=\s*"([^"]+)"', (REPO / "pyproject.toml").read_text(),
                        re.MULTILINE).group(1)
    versions = [r.get("version") for r in ET.parse(METAINFO).getroot().findall("releases/release")]
    assert version in versions, f"add a <release version=\"{version}\"> to {METAINFO.name}"


@pytest.mark.skipif(shutil.which("appstreamcli") is None,
                    reason="appstreamcli (Debian: appstream) not installed")
def test_metainfo_validates():
    result = subprocess.run(["appstreamcli", "validate", "--no-net", str(METAINFO)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


# -- icon and spec --------------------------------------------------------------------------------
def test_icon_is_well_formed_svg():
    root = ET.parse(ICON).getroot()
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert root.get("viewBox")
    assert len(list(root.iter())) > 2


def test_pyinstaller_spec_compiles_and_names_the_cli():
    text = SPEC.read_text(encoding="utf-8")
    compile(text, str(SPEC), "exec")
    launcher = PACKAGING / "vo_al_launcher.py"
    assert launcher.name in text
    compile(launcher.read_text(encoding="utf-8"), str(launcher), "exec")
    assert "from vo_al.cli import main" in launcher.read_text(encoding="utf-8")


# -- the wheel ------------------------------------------------------------------------------------
def _can_build_without_isolation() -> bool:
    """True when the build backend of pyproject.toml is importable here (no download needed)."""
    try:
        import setuptools
        import wheel  # noqa: F401
    except ImportError:
        return False
    major = int(setuptools.__version__.split(".")[0])
    return major >= 77


@pytest.mark.slow
def test_wheel_builds_and_passes_twine_check(tmp_path):
    for module in ("build", "twine"):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"`{module}` is not installed (pip install build twine)")
    # Build from a copy so that the checkout gets no build/ or egg-info changes.
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(REPO / name, src / name)
    shutil.copytree(REPO / "vo_al", src / "vo_al",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    out = tmp_path / "dist"
    cmd = [sys.executable, "-m", "build", "--wheel", "--outdir", str(out), str(src)]
    if _can_build_without_isolation():
        cmd.insert(4, "--no-isolation")  # offline: use this environment's setuptools
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]

    wheels = list(out.glob("vo_al-*.whl"))
    assert len(wheels) == 1, list(out.iterdir())
    check = subprocess.run([sys.executable, "-m", "twine", "check", "--strict", str(wheels[0])],
                           capture_output=True, text=True, timeout=120)
    assert check.returncode == 0, check.stdout + check.stderr

    with zipfile.ZipFile(wheels[0]) as zf:
        names = set(zf.namelist())
        for package in ("core", "gui", "cli"):
            expected = {f"vo_al/{package}/{p.name}" for p in (REPO / "vo_al" / package).glob("*.py")}
            assert expected and expected <= names, sorted(expected - names)
        entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
        text = zf.read(entry_points).decode()
    parser = configparser.ConfigParser()
    parser.optionxform = str
    parser.read_string(text)
    assert parser["console_scripts"]["vo-al"].strip() == "vo_al.cli:main"
