"""XML a reader may parse: no entity declarations (a few kB that expand to gigabytes).

One owner for user tables (export.formats.read_table_file) and VOTable spectra
(spectra.sdm): both refuse such a document before any XML parser sees it."""

from __future__ import annotations

import re

XML_PROLOG_BYTES = 1 << 20      # a VOTable's prolog is a few hundred bytes; a DTD may not hide
_FIRST_ELEMENT = re.compile(r"<(?![?!])")


def xml_declares_entities(head: bytes) -> str | None:
    """Why the start of an XML document is refused, or None: it declares entities (expanding
    them is how a few kB become gigabytes), or its DOCTYPE runs past `XML_PROLOG_BYTES`."""
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        text = head.decode("utf-16", "replace")
    else:
        text = head.decode("latin-1")       # ASCII-compatible: enough to find markup
    first = _FIRST_ELEMENT.search(text)
    prolog = text[:first.start()] if first else text
    if "<!ENTITY" in prolog:
        return "declares XML entities (a VOTable needs none): refused, nothing expanded"
    if first is None and "<!DOCTYPE" in prolog and len(head) >= XML_PROLOG_BYTES:
        return f"has a DOCTYPE over {XML_PROLOG_BYTES >> 20} MiB: refused, nothing expanded"
    return None


