"""Personnel pages: documents (list, search, page, download, receipt, check), upload, history.

Every page asks the document catalogue, which asks the one policy decision
point and records the decision; nothing here decides who may see what.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

from aiohttp import web

from gateway.app_keys import DOCUMENTS, LEDGER, TRAIL
from gateway.documents.approvals import CHANGE_RULES
from gateway.documents.catalogue import DocumentCatalogue
from gateway.documents.check import check_file
from gateway.documents.titles import readable_titles
from gateway.documents.writer import NewVersion, check_tags
from gateway.errors import BadRequest, SekishoError
from gateway.http.bodies import LARGE, body_limit
from gateway.http.downloads import send_stream
from gateway.http.headers import attachment
from gateway.http.params import MAX_INT, MAX_INT32, parse_int
from gateway.trail.own_view import as_seen_by_subject
from gateway.trail.query import TrailQuery
from web.portal.anchoring import cosigning
from web.portal.app_keys import Viewer
from web.portal.auth import source_of
from web.portal.forms import after_upload, file_chunks, first, int_param, multipart_fields
from web.portal.labels import label_text, label_widgets, levels_up_to
from web.portal.render import page
from web.portal.security import secure_headers, see_other, viewer_of

routes = web.RouteTableDef()
PAGE_SIZE = 25
MAX_PAGES = 1_000_000
UPLOAD_FIELDS = frozenset({"title", "tags", "level", "compartments", "rel_to"})


def _catalogue(request: web.Request) -> DocumentCatalogue:
    return request.app[DOCUMENTS]


@routes.get("/documents")
async def documents(request: web.Request) -> web.Response:
    """The documents this person is cleared for, with search and filters."""
    viewer = viewer_of(request)
    catalogue = _catalogue(request)
    query = request.query.get("q", "").strip()[:256]
    tag = request.query.get("tag", "").strip()[:64]
    level = request.query.get("level", "").strip()[:64]
    number = max(1, int_param(request, "page", high=MAX_PAGES) or 1)
    found = await catalogue.search(
        viewer.identity,
        source=source_of(request),
        query=query,
        tag=tag,
        level=level,
        limit=PAGE_SIZE + 1,
        offset=(number - 1) * PAGE_SIZE,
    )
    rows = found[:PAGE_SIZE]
    filters = {k: v for k, v in {"q": query, "tag": tag, "level": level}.items() if v}
    context = {
        "title": "Documents",
        "documents": rows,
        "q": query,
        "tag": tag,
        "level": level,
        "levels": levels_up_to(catalogue, viewer.identity.level),
        "page_number": number,
        "previous": _page_link(filters, number - 1) if number > 1 else None,
        "next": _page_link(filters, number + 1) if len(found) > PAGE_SIZE else None,
        "filtered": bool(filters),
    }
    return page(request, "documents.html", context, labels=[d["label"] for d in rows])


def _page_link(filters: dict[str, str], number: int) -> str:
    return "/documents?" + urlencode({**filters, "page": str(number)})


@routes.get("/documents/{id}")
async def document(request: web.Request) -> web.Response:
    """A document: label, versions, hashes, anchoring, download, receipt and the file check."""
    viewer = viewer_of(request)
    view = await _catalogue(request).metadata(
        viewer.identity,
        request.match_info["id"],
        source=source_of(request),
        version=int_param(request, "version"),
    )
    return await _document_page(request, view)


def _step_up_versions(request: web.Request, view: dict[str, Any]) -> set[int]:
    """The versions whose download asks for a security-key step-up first (to link the prompt)."""
    identity = viewer_of(request).identity
    context = _catalogue(request).context
    rows = [view["version"], *view["versions"]]
    return {
        int(v["version"])
        for v in rows
        if context.needs_step_up(identity, "content", str(v["label"]))
    }


async def _document_page(request: web.Request, view: dict[str, Any], **extra: Any) -> web.Response:
    latest = await request.app[LEDGER].latest()
    index = view["version"]["ledger_index"]
    context = {
        "title": view["title"],
        "doc": view,
        "current": view["version"],
        "checkpoint": latest,
        "integrated": index is not None and index < latest.size,
        "cosigning": cosigning(request.app, latest),
        "uploaded": request.query.get("uploaded") == "1",
        "downgraded": request.query.get("downgraded") == "1",
        "check": None,
        "step_up_versions": _step_up_versions(request, view),
        **extra,
    }
    labels = [view["label"], view["version"]["label"], *(v["label"] for v in view["versions"])]
    return page(request, "document.html", context, labels=labels)


@routes.get("/documents/{id}/download")
async def download(request: web.Request) -> web.StreamResponse:
    """The plaintext as an attachment; recorded before the first byte."""
    viewer = viewer_of(request)
    catalogue = _catalogue(request)
    document_id = request.match_info["id"]
    doc, row = await catalogue.find(
        viewer.identity, document_id, "content", source_of(request), int_param(request, "version")
    )
    opened = await catalogue.reader.open(viewer.identity, doc, row, None)
    response = web.StreamResponse()
    response.content_type = "application/octet-stream"
    response.content_length = opened.length
    response.headers["Content-Disposition"] = attachment(row.filename or f"{doc.id}.bin")
    response.headers["ETag"] = f'"{row.plaintext_sha256}"'
    secure_headers(request, response.headers)
    return await send_stream(request, response, opened.body)


@routes.get("/documents/{id}/receipt")
async def receipt(request: web.Request) -> web.Response:
    """The C2SP tlog-proof receipt of the version's registration, as a file."""
    viewer = viewer_of(request)
    version = int_param(request, "version")
    document_id = request.match_info["id"]
    text = await _catalogue(request).receipt(
        viewer.identity, document_id, source=source_of(request), version=version
    )
    name = f"sekisho-receipt-{document_id[:8]}" + (f"-v{version}" if version else "") + ".txt"
    response = web.Response(text=text, content_type="text/plain", charset="utf-8")
    response.headers["Content-Disposition"] = attachment(name)
    return response


@routes.get("/documents/{id}/check")
async def check_form(request: web.Request) -> web.Response:
    """The check form lives on the document page."""
    return see_other(f"/documents/{quote(request.match_info['id'])}#check")


@routes.post("/documents/{id}/check")
@body_limit(LARGE)
async def check(request: web.Request) -> web.Response:
    """Hash an uploaded file against the anchor (the file is not kept)."""
    viewer = viewer_of(request)
    fields, part = await multipart_fields(request, frozenset({"version"}))
    if part is None or not part.filename:
        raise BadRequest("Choose a file to check.", code="missing_file")
    version_text = first(fields, "version")
    version = parse_int("version", version_text, high=MAX_INT32) if version_text else None
    catalogue = _catalogue(request)
    document_id = request.match_info["id"]
    result = await check_file(
        catalogue,
        viewer.identity,
        document_id,
        file_chunks(part),
        source=source_of(request),
        version=version,
    )
    view = await catalogue.view(viewer.identity, result.document, result.row)
    return await _document_page(request, view, check=result, check_name=part.filename)


def _upload_context(viewer: Viewer, catalogue: DocumentCatalogue, **values: Any) -> dict[str, Any]:
    context: dict[str, Any] = {
        "title": "Upload a document",
        **label_widgets(catalogue, viewer),
        "form": {"title": "", "tags": "", "level": "", "compartments": [], "rel_to": ""},
        "error": "",
        "max_mib": catalogue.max_bytes // (1024 * 1024),
    }
    context.update(values)
    return context


@routes.get("/upload")
async def upload_form(request: web.Request) -> web.Response:
    """Upload form; label choices go no higher than the person's clearance.

    A person without the uploader role is refused as an upload is (one entry, action
    ``upload``, reason ``role``, no document), as the API and this form's post record it;
    the form itself shows no document, so showing it records nothing.
    """
    viewer = viewer_of(request)
    catalogue = _catalogue(request)
    await catalogue.require_role(
        viewer.identity,
        CHANGE_RULES["upload"],
        action="upload",
        source=source_of(request),
        document_id="",
    )
    return page(request, "upload.html", _upload_context(viewer, catalogue))


@routes.post("/upload")
@body_limit(LARGE)
async def upload(request: web.Request) -> web.Response:
    """Encrypt, store and anchor the file; then show its page.

    No role check here: the writer decides (role and label) and records that one
    decision, refusals included, as the API's upload does.
    """
    viewer = viewer_of(request)
    catalogue = _catalogue(request)
    fields, part = await multipart_fields(request, UPLOAD_FIELDS)
    form: dict[str, Any] = {
        "title": first(fields, "title"),
        "tags": first(fields, "tags"),
        "level": first(fields, "level"),
        "compartments": fields.get("compartments", []),
        "rel_to": first(fields, "rel_to"),
    }
    try:
        if part is None or not part.filename:
            raise BadRequest("Choose a file to upload.", code="missing_file")
        meta = NewVersion(
            label=catalogue.parse_label(label_text(form)),
            title=str(form["title"]),
            tags=check_tags(str(form["tags"]).split(",")),
            filename=part.filename,
            media_type=part.headers.get("Content-Type", "application/octet-stream"),
        )
        row = await catalogue.writer.create(
            viewer.identity, meta, file_chunks(part), source=source_of(request)
        )
    except SekishoError as exc:
        if exc.status >= 500:
            raise
        context = _upload_context(viewer, catalogue, form=form, error=exc.message)
        return page(request, "upload.html", context, status=exc.status)
    view = await catalogue.created_view(viewer.identity, row, source=source_of(request))
    return after_upload(request, f"/documents/{view['id']}?uploaded=1")


@routes.get("/me/history")
async def history(request: web.Request) -> web.Response:
    """This person's own access decisions, newest first."""
    viewer = viewer_of(request)
    cursor = int_param(request, "cursor", high=MAX_INT)
    service = request.app[TRAIL]
    result = await service.page(TrailQuery(actor=viewer.identity.actor, limit=50, cursor=cursor))
    pdp = _catalogue(request).context.pdp
    ids = (event.document_id for event in result.events)
    context = {
        "title": "My activity",
        "events": [as_seen_by_subject(event) for event in result.events],
        "titles": await readable_titles(pdp, viewer.identity, ids),
        "next": f"/me/history?cursor={result.next_cursor}" if result.next_cursor else None,
        "first_page": cursor is None,
    }
    return page(request, "history.html", context)
