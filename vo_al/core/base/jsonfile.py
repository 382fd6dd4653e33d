"""vo-al's small JSON files (pool.json, harvest.json, ...): one JSON object each, tagged with its
kind in "format", read back with the same two checks everywhere."""

from __future__ import annotations

import json
from pathlib import Path

from vo_al.core.base.errors import VoAlError


def read_json_document(path: Path, fmt: str, error: type[VoAlError], what: str) -> dict:
    """The JSON object in `path` whose "format" is `fmt`.

    Raises `error` naming the file: "<path>: <what> is unreadable: <cause>" when it cannot be read
    or parsed, "<path>: not a <what>" when it is not an object of that format.
    """
    path = Path(path)
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise error(f"{path}: {what} is unreadable: {exc}") from exc
    if not isinstance(raw, dict) or raw.get("format") != fmt:
        raise error(f"{path}: not a {what}")
    return raw
