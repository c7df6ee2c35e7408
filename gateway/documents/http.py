"""HTTP handlers for /api/v1/documents: thin, they parse and call the catalogue."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from gateway.app_keys import DOCUMENTS
from gateway.auth.identity import Identity
from gateway.documents.approvals import request_view
from gateway.documents.bodies import DowngradeBody
from gateway.documents.catalogue import MAX_PAGE, DocumentCatalogue
from gateway.documents.check import check_file
from gateway.documents.models import ApprovalRequest
from gateway.documents.writer import NewVersion, check_tags
from gateway.errors import BadRequest, Forbidden
from gateway.http.auth import client_address, identity
from gateway.http.bodies import LARGE, body_limit, read_json
from gateway.http.downloads import send_stream
from gateway.http.headers import attachment
from gateway.http.models import validate_body
from gateway.http.multipart import next_part, open_form, part_chunks, part_filename, read_text
from gateway.http.params import MAX_INT32, optional_query_int, query_int
from gateway.policy.pdp import UPLOADING

routes = web.RouteTableDef()
CHUNK = 256 * 1024
MAX_FIELD = 4096
TEXT_FIELDS = ("title", "label", "tags", "filename")


def _person(request: web.Request) -> Identity:
    caller = identity(request)
    if not caller.is_person:
        raise Forbidden("the documents API is for people; API clients use the signing API")
    return caller


def _source(request: web.Request) -> str:
    return client_address(request)


def _version(request: web.Request) -> int | None:
    return optional_query_int(request.query, "version", low=1, high=MAX_INT32)


async def _upload_source(
    request: web.Request, max_bytes: int
) -> tuple[dict[str, str], AsyncIterator[bytes], str, str]:
    """Fields, content chunks, filename and media type from multipart or a raw body."""
    declared = request.content_length
    if declared is not None and declared > max_bytes + 64 * 1024:
        raise web.HTTPRequestEntityTooLarge(max_size=max_bytes, actual_size=declared)
    if request.content_type == "multipart/form-data":
        reader = await open_form(request)
        fields: dict[str, str] = {}
        while True:
            part = await next_part(reader)
            if part is None:
                raise BadRequest("the form has no 'file' part", code="missing_file")
            if part.name == "file":
                media = part.headers.get("Content-Type", "application/octet-stream")
                return (
                    fields,
                    part_chunks(part, CHUNK),
                    part_filename(part) or fields.get("filename", ""),
                    media,
                )
            if part.name in TEXT_FIELDS:
                fields[part.name] = await read_text(part, MAX_FIELD, code="bad_field")
            else:
                raise BadRequest(f"unknown form field {part.name!r}", code="bad_form")
    fields = {k: request.query[k] for k in TEXT_FIELDS if k in request.query}
    media = request.headers.get("Content-Type", "application/octet-stream")
    return fields, request.content.iter_chunked(CHUNK), fields.get("filename", ""), media


def _catalogue(request: web.Request) -> DocumentCatalogue:
    return request.app[DOCUMENTS]


@routes.post("/api/v1/documents")
@body_limit(LARGE)
async def upload(request: web.Request) -> web.Response:
    """Upload a new document (multipart form, or raw body with query parameters)."""
    caller = _person(request)
    catalogue = _catalogue(request)
    max_bytes = catalogue.max_bytes
    fields, chunks, filename, media = await _upload_source(request, max_bytes)
    if "label" not in fields:
        raise BadRequest("a document needs a label, e.g. SECRET//LOGISTICS", code="missing_label")
    meta = NewVersion(
        label=catalogue.parse_label(fields["label"]),
        title=fields.get("title", ""),
        tags=check_tags(fields.get("tags", "").split(",")),
        filename=filename,
        media_type=media,
    )
    row = await catalogue.writer.create(caller, meta, chunks, source=_source(request))
    view = await catalogue.created_view(caller, row, source=_source(request))
    return web.json_response(view, status=201)


@routes.post("/api/v1/documents/{id}/versions")
@body_limit(LARGE)
async def new_version(request: web.Request) -> web.Response:
    """Upload the next version of a document."""
    caller = _person(request)
    catalogue = _catalogue(request)
    await catalogue.require_role(  # first: the same refusal for every id
        caller,
        UPLOADING,
        action="new_version",
        source=_source(request),
        document_id=request.match_info["id"],
    )
    document, current = await catalogue.find(  # the writer records the one decision
        caller, request.match_info["id"], "new_version", _source(request), record_grant=False
    )
    fields, chunks, filename, media = await _upload_source(request, catalogue.max_bytes)
    row = await catalogue.new_version(
        caller,
        document,
        current,
        chunks,
        label_text=fields.get("label"),
        filename=filename,
        media_type=media,
        source=_source(request),
    )
    view = await catalogue.created_view(caller, row, source=_source(request))
    return web.json_response(view, status=201)


@routes.post("/api/v1/documents/{id}/check")
@body_limit(LARGE)
async def check(request: web.Request) -> web.Response:
    """Hash a file against the anchor of a readable version (the file is not kept)."""
    caller = _person(request)
    catalogue = _catalogue(request)
    _, chunks, _, _ = await _upload_source(request, catalogue.max_bytes)
    result = await check_file(
        catalogue,
        caller,
        request.match_info["id"],
        chunks,
        source=_source(request),
        version=_version(request),
    )
    return web.json_response(
        {
            "document_id": result.document_id,
            "version": result.version,
            "size": result.size,
            "sha256": result.sha256,
            "anchored_sha256": result.anchored_sha256,
            "matches": result.matches,
            "catalogue_agrees": result.catalogue_agrees,
            "ledger_index": result.ledger_index,
        }
    )


@routes.get("/api/v1/documents")
async def search(request: web.Request) -> web.Response:
    """List or search the documents the caller may see."""
    caller = _person(request)
    results = await _catalogue(request).search(
        caller,
        source=_source(request),
        query=request.query.get("q", ""),
        tag=request.query.get("tag", ""),
        level=request.query.get("level", ""),
        limit=query_int(request.query, "limit", default=50, low=1, high=MAX_PAGE),
        offset=query_int(request.query, "offset", default=0, high=MAX_INT32),
    )
    return web.json_response({"documents": results, "count": len(results)})


@routes.get("/api/v1/documents/{id}")
async def metadata(request: web.Request) -> web.Response:
    """Metadata of a document at its current or a given version."""
    caller = _person(request)
    view = await _catalogue(request).metadata(
        caller,
        request.match_info["id"],
        source=_source(request),
        version=_version(request),
    )
    return web.json_response(view)


@routes.get("/api/v1/documents/{id}/versions")
async def versions(request: web.Request) -> web.Response:
    """The versions the caller may see."""
    caller = _person(request)
    rows = await _catalogue(request).versions(
        caller, request.match_info["id"], source=_source(request)
    )
    return web.json_response({"versions": rows})


@routes.get("/api/v1/documents/{id}/receipt")
async def receipt(request: web.Request) -> web.Response:
    """The C2SP tlog-proof receipt of a version's registration."""
    caller = _person(request)
    text = await _catalogue(request).receipt(
        caller,
        request.match_info["id"],
        source=_source(request),
        version=_version(request),
    )
    return web.Response(text=text, content_type="text/plain", charset="utf-8")


@routes.get("/api/v1/documents/{id}/anchor")
async def anchor(request: web.Request) -> web.Response:
    """The registration entry, its receipt and the opening a cleared reader may see."""
    caller = _person(request)
    body = await _catalogue(request).anchor(
        caller, request.match_info["id"], source=_source(request), version=_version(request)
    )
    return web.json_response(body)


@routes.get("/api/v1/documents/{id}/content")
async def content(request: web.Request) -> web.StreamResponse:
    """The plaintext, whole or a single byte range; recorded before the first byte."""
    caller = _person(request)
    catalogue = _catalogue(request)
    document, row = await catalogue.find(
        caller,
        request.match_info["id"],
        "content",
        _source(request),
        _version(request),
    )
    opened = await catalogue.reader.open(caller, document, row, request.headers.get("Range"))
    response = web.StreamResponse(status=206 if opened.partial else 200)
    response.content_type = "application/octet-stream"
    response.content_length = opened.length
    response.headers["Accept-Ranges"] = "bytes"
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["ETag"] = f'"{row.plaintext_sha256}"'
    response.headers["X-Sekisho-Media-Type"] = row.media_type
    response.headers["Content-Disposition"] = attachment(row.filename or "document")
    if opened.partial:
        response.headers["Content-Range"] = f"bytes {opened.start}-{opened.end}/{row.size}"
    return await send_stream(request, response, opened.body)


@routes.post("/api/v1/documents/{id}/downgrade")
async def downgrade(request: web.Request) -> web.Response:
    """Re-encrypt under a lower label as a new version (or 202: a two-person request)."""
    caller = _person(request)
    body = validate_body(DowngradeBody, await read_json(request))
    label, reason = body.label, body.reason
    catalogue = _catalogue(request)
    row = await catalogue.downgrade(
        caller, request.match_info["id"], label, reason, source=_source(request)
    )
    if isinstance(row, ApprovalRequest):
        return web.json_response({"approval": request_view(row)}, status=202)
    view = await catalogue.created_view(caller, row, source=_source(request))
    return web.json_response(view, status=201)


@routes.delete("/api/v1/documents/{id}")
async def destroy(request: web.Request) -> web.Response:
    """Crypto-shred a document (officers), or 202: a two-person request."""
    caller = _person(request)
    count = await _catalogue(request).destroy(
        caller, request.match_info["id"], source=_source(request)
    )
    if isinstance(count, ApprovalRequest):
        return web.json_response({"approval": request_view(count)}, status=202)
    return web.json_response({"destroyed_versions": count})
