"""DataLink: the URLs of a query's spectra in the form a user asks for (native file, SDM FITS,
SDM VOTable), as the service itself describes them.

An SSAP or TAP result of a DaCHS service (and of other DataLink-enabled archives) carries a
DataLink service descriptor: a RESOURCE type="meta" utype="adhoc:service" whose standardID is
DataLink's `links` endpoint and whose ID parameter refers to the publisher DID column. The links
document of a spectrum lists its `#this` product, its `#progenitor` (the file a derived product
was made from) and `#proc` services: for spectra a SODA/`dlget` service with a FORMAT parameter
whose options are the serialisations the server writes itself (application/fits: the SDM FITS
binary table; application/x-votable+xml: the SDM VOTable).

`product_urls` asks the links endpoint for many DIDs per request (DataLink 1.0 lets a client
send ID several times) and builds each spectrum's URL from the descriptors the document gives,
row by row: nothing is assumed from one row about the others. A DID the service cannot describe
(an error_message row, no such link, no FORMAT option) is reported with the reason; the others go
on. pyvo's `iter_datalinks` does the same batching, but its semantics lookups fetch the IVOA
vocabulary from the internet (VO-STACK pitfall 6), so the document is read here directly.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from urllib.parse import urlencode

import numpy as np

from vo_al.core.base.errors import ParameterError, VOFormatError, VOServiceError
from vo_al.core.base.parsing import library_parse
from vo_al.core.base.xml_prolog import XML_PROLOG_BYTES, xml_declares_entities

DATALINK_LINKS = "ivo://ivoa.net/std/datalink#links"       # compared case-insensitively
NATIVE = "native"
SDM_VOTABLE = "sdm-votable"
SDM_FITS = "sdm-fits"
# a form -> the FORMAT value asked of the #proc (SODA) service; native: the #progenitor/#this file
FORMS = {NATIVE: None, SDM_VOTABLE: "application/x-votable+xml", SDM_FITS: "application/fits"}
_BATCH = 100                     # DIDs per links request (URL length stays well under 8 kB)


@dataclass
class DatalinkService:
    """Where a result's links documents are: the endpoint and the column its ID refers to."""

    url: str
    id_column: str


@dataclass
class ProductUrls:
    """The URL of each DID in the form asked for, and the DIDs that have none (with why)."""

    urls: dict = field(default_factory=dict)             # DID -> URL
    failed: list = field(default_factory=list)           # (DID, reason)


def datalink_service_of(votable) -> DatalinkService | None:
    """The DataLink links descriptor of a parsed result VOTable (astropy VOTableFile), if any."""
    for resource in _all_resources(votable):
        if resource.type != "meta" or str(resource.utype or "").lower() != "adhoc:service":
            continue
        params = {p.name: p for p in resource.params}
        standard = str(getattr(params.get("standardID"), "value", "") or "").lower()
        access = getattr(params.get("accessURL"), "value", None)
        if not standard.startswith(DATALINK_LINKS) or not access:
            continue
        for group in resource.groups:
            if group.name != "inputParams":
                continue
            for entry in group.entries:
                if getattr(entry, "name", "") == "ID" and getattr(entry, "ref", None):
                    return DatalinkService(_text(access), str(entry.ref))
    return None


def product_urls(service: DatalinkService, dids, form: str, session, *, timeout=30.0,
                 batch: int = _BATCH) -> ProductUrls:
    """The `form` URL ('native', 'sdm-votable', 'sdm-fits') of each publisher DID in `dids`."""
    if form not in FORMS:
        raise ParameterError("form", form, f"one of {', '.join(FORMS)}")
    out = ProductUrls()
    dids = list(dict.fromkeys(str(d) for d in dids))
    for start in range(0, len(dids), batch):
        chunk = dids[start:start + batch]
        query = urlencode([("ID", did) for did in chunk])
        url = f"{service.url}{'&' if '?' in service.url else '?'}{query}"
        try:
            response = session.get(url, timeout=timeout)
        except Exception as exc:                           # noqa: BLE001 - requests' many kinds
            raise VOServiceError(service.url, f"links of {len(chunk)} spectra",
                                 f"{type(exc).__name__}: {exc}", exc) from exc
        if response.status_code != 200:
            raise VOServiceError(service.url, f"links of {len(chunk)} spectra",
                                 f"HTTP {response.status_code} {response.reason}")
        links, descriptors = _parse_links(response.content, service.url)
        for did in chunk:
            chosen = _choose(links.get(did, []), descriptors, form, did)
            if isinstance(chosen, Failure):
                out.failed.append((did, chosen.reason))
            else:
                out.urls[did] = chosen
    return out


# ---------------------------------------------------------------- the links document

@dataclass
class Failure:
    reason: str


@dataclass
class _Link:
    access_url: str
    service_def: str
    semantics: str
    content_type: str
    error: str


@dataclass
class _Descriptor:
    access_url: str
    id_value: str | None
    formats: list                       # FORMAT options ([] when the service takes any value)
    has_format: bool


def _parse_links(raw: bytes, where: str) -> tuple[dict, dict]:
    from astropy.io.votable import parse
    from astropy.io.votable.exceptions import VOWarning

    refused = xml_declares_entities(raw[:XML_PROLOG_BYTES])
    if refused:
        raise VOFormatError(where, "links", f"the links document {refused}")
    with library_parse(VOWarning):
        try:
            document = parse(io.BytesIO(raw), verify="ignore")
            table = document.get_first_table()
        except Exception as exc:                           # noqa: BLE001 - a broken document
            raise VOFormatError(where, "links", f"not a DataLink document "
                                                 f"({type(exc).__name__}: {exc})", exc) from exc
    rows = table.array
    names = {f.name.lower(): f.name for f in table.fields}
    missing = [c for c in ("id", "access_url", "semantics") if c not in names]
    if missing:
        raise VOFormatError(where, "links", f"a links table without {', '.join(missing)} "
                                             f"(columns: {', '.join(names.values())})")

    def cell(row, column):
        name = names.get(column)
        return "" if name is None else _text(row[name])

    links: dict = {}
    for row in rows:
        links.setdefault(cell(row, "id"), []).append(_Link(
            cell(row, "access_url"), cell(row, "service_def"), cell(row, "semantics"),
            cell(row, "content_type"), cell(row, "error_message")))
    descriptors = {}
    for resource in _all_resources(document):
        if resource.type != "meta" or not resource.ID:
            continue
        params = {p.name: p for p in resource.params}
        access = _text(getattr(params.get("accessURL"), "value", ""))
        id_value, formats, has_format = None, [], False
        for group in resource.groups:
            if group.name != "inputParams":
                continue
            for entry in group.entries:
                name = getattr(entry, "name", "")
                if name == "ID":
                    id_value = _text(entry.value) or None
                elif name.upper() == "FORMAT":
                    has_format = True
                    values = getattr(entry, "values", None)
                    formats = [_text(o[1]) for o in getattr(values, "options", []) or []]
        descriptors[resource.ID] = _Descriptor(access, id_value, formats, has_format)
    return links, descriptors


def _choose(links: list, descriptors: dict, form: str, did: str):
    if not links:
        return Failure("the links document has no row for this DID")
    errors = [link.error for link in links if link.error]
    if form == NATIVE:
        for semantics in ("#progenitor", "#this"):
            for link in links:
                if link.semantics == semantics and link.access_url:
                    return link.access_url
        return Failure("; ".join(errors) or "no #this or #progenitor link")
    mime = FORMS[form]
    for link in links:
        descriptor = descriptors.get(link.service_def)
        if link.semantics != "#proc" or descriptor is None or not descriptor.access_url:
            continue
        if not descriptor.has_format or (descriptor.formats and mime not in descriptor.formats):
            continue
        query = urlencode([("ID", descriptor.id_value or did), ("FORMAT", mime)])
        sep = "&" if "?" in descriptor.access_url else "?"
        return f"{descriptor.access_url}{sep}{query}"
    return Failure("; ".join(errors) or f"no #proc service offers FORMAT={mime} (the server "
                                        "does not write this form)")


def _all_resources(votable):
    def walk(resources):
        for resource in resources:
            yield resource
            yield from walk(resource.resources)
    yield from walk(votable.resources)


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if np.ma.is_masked(value):
        return ""
    return str(value).strip()
