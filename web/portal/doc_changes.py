"""Document page actions: a new version, a downgrade and destruction (officers).

The handlers parse forms and call the catalogue, the same service functions as
the API (so the same checks, trail rows and ledger entries); where the
two-person rule applies the catalogue answers with a stored request instead.

One decision, one entry, as in the API: each page first refuses a person without
the action's role, recording that refusal (``DocumentContext.require_role``) before
the document is looked up, so the 403 is the same for every id. A form shown again
after a change (an error, a stored two-person request) shows the document as found
for that change and records nothing more: the change recorded its one decision, and
input refused before any decision (no file, no reason, a bad label) is recorded by
neither the API nor the portal.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from aiohttp import web

from gateway.app_keys import DOCUMENTS
from gateway.documents.approvals import CHANGE_RULES, ApprovalRequest
from gateway.documents.catalogue import DocumentCatalogue
from gateway.errors import BadRequest, SekishoError
from gateway.http.bodies import LARGE, body_limit
from web.portal.app_keys import Viewer
from web.portal.auth import source_of
from web.portal.forms import after_upload, file_chunks, first, multipart_fields
from web.portal.inputs import form_text
from web.portal.labels import label_form, label_text, label_widgets, levels_up_to
from web.portal.render import page
from web.portal.security import see_other, viewer_of

routes = web.RouteTableDef()
LABEL_FIELDS = frozenset({"level", "compartments", "rel_to"})


def _catalogue(request: web.Request) -> DocumentCatalogue:
    return request.app[DOCUMENTS]


async def _require(request: web.Request, viewer: Viewer, action: str) -> None:
    """Refuse a person without the role ``action`` needs before the document is looked up,
    recording the refusal as the API does (one entry, reason ``role``, one 403 for every id)."""
    await _catalogue(request).require_role(
        viewer.identity,
        CHANGE_RULES[action],
        action=action,
        source=source_of(request),
        document_id=request.match_info["id"],
    )


async def _view(request: web.Request, viewer: Viewer) -> dict[str, Any]:
    """The document at its current readable version (recorded as a metadata access)."""
    return await _catalogue(request).metadata(
        viewer.identity, request.match_info["id"], source=source_of(request)
    )


async def _found_view(request: web.Request, viewer: Viewer, action: str) -> dict[str, Any]:
    """The document for a form shown again after ``action``: its current version, found
    without recording a grant (the action recorded its own decision, or refused input
    before any); a document the person may not read is refused (recorded) with a 404."""
    catalogue = _catalogue(request)
    document, row = await catalogue.find(
        viewer.identity,
        request.match_info["id"],
        action,
        source_of(request),
        record_grant=False,
    )
    return await catalogue.view(viewer.identity, document, row)


def _form_page(
    request: web.Request,
    template: str,
    viewer: Viewer,
    view: dict[str, Any],
    *,
    status: int = 200,
    **values: Any,
) -> web.Response:
    catalogue = _catalogue(request)
    current = view["version"]["label"]
    context: dict[str, Any] = {
        "title": f"{view['title']}",
        "doc": view,
        "current": view["version"],
        "error": "",
        "form": label_form(catalogue, current),
        "reason": "",
        "confirm": "",
        "requested": None,
        "done": None,
        "max_mib": catalogue.max_bytes // (1024 * 1024),
        **label_widgets(catalogue, viewer, current),
        **values,
    }
    return page(request, template, context, labels=[current], status=status)


@routes.get("/documents/{id}/new-version")
async def new_version_form(request: web.Request) -> web.Response:
    """The form for the next version (uploaders)."""
    viewer = viewer_of(request)
    await _require(request, viewer, "new_version")
    view = await _view(request, viewer)
    return _form_page(request, "doc_version.html", viewer, view)


@routes.post("/documents/{id}/new-version")
@body_limit(LARGE)
async def new_version(request: web.Request) -> web.Response:
    """Encrypt, store and anchor the next version; then show the document."""
    viewer = viewer_of(request)
    await _require(request, viewer, "new_version")  # first: the same for every id
    catalogue = _catalogue(request)
    document_id = request.match_info["id"]
    document, current = await catalogue.find(  # the writer records the one decision
        viewer.identity, document_id, "new_version", source_of(request), record_grant=False
    )
    fields, part = await multipart_fields(request, LABEL_FIELDS)
    form = _label_values(fields)
    try:
        if part is None or not part.filename:
            raise BadRequest("Choose a file to upload.", code="missing_file")
        row = await catalogue.new_version(
            viewer.identity,
            document,
            current,
            file_chunks(part),
            label_text=label_text(form),
            filename=part.filename,
            media_type=part.headers.get("Content-Type", "application/octet-stream"),
            source=source_of(request),
        )
    except SekishoError as exc:
        if exc.status >= 500:
            raise
        view = await catalogue.view(viewer.identity, document, current)  # nothing more recorded
        return _form_page(
            request,
            "doc_version.html",
            viewer,
            view,
            form=form,
            error=exc.message,
            status=exc.status,
        )
    await catalogue.created_view(viewer.identity, row, source=source_of(request))
    return after_upload(request, f"/documents/{quote(document_id)}?uploaded=1")


@routes.get("/documents/{id}/downgrade")
async def downgrade_form(request: web.Request) -> web.Response:
    """The downgrade form (officers): a lower label and a reason."""
    viewer = viewer_of(request)
    await _require(request, viewer, "downgrade")
    view = await _view(request, viewer)
    return _form_page(request, "doc_downgrade.html", viewer, view, **_lower_levels(request, view))


@routes.post("/documents/{id}/downgrade")
async def downgrade(request: web.Request) -> web.Response:
    """Downgrade now, or file a two-person request where the rule applies."""
    viewer = viewer_of(request)
    await _require(request, viewer, "downgrade")
    catalogue = _catalogue(request)
    document_id = request.match_info["id"]
    posted = await form_text(request)
    form = {
        "level": str(posted.get("level", "")),
        "compartments": [str(c) for c in posted.getall("compartments", [])],
        "rel_to": str(posted.get("rel_to", "")),
    }
    reason = str(posted.get("reason", ""))
    try:
        result = await catalogue.downgrade(
            viewer.identity, document_id, label_text(form), reason, source=source_of(request)
        )
    except SekishoError as exc:
        if exc.status >= 500 or exc.status == 404:
            raise
        view = await _found_view(request, viewer, "downgrade")
        return _form_page(
            request,
            "doc_downgrade.html",
            viewer,
            view,
            **_lower_levels(request, view),
            form=form,
            reason=reason,
            error=exc.message,
            status=exc.status,
        )
    if isinstance(result, ApprovalRequest):
        view = await _found_view(request, viewer, "downgrade")
        return _form_page(request, "doc_downgrade.html", viewer, view, requested=result)
    await catalogue.created_view(viewer.identity, result, source=source_of(request))
    return see_other(f"/documents/{quote(document_id)}?downgraded=1")


@routes.get("/documents/{id}/destroy")
async def destroy_form(request: web.Request) -> web.Response:
    """The destruction form (officers): type the title or the id to confirm."""
    viewer = viewer_of(request)
    await _require(request, viewer, "destroy")
    view = await _view(request, viewer)
    return _form_page(request, "doc_destroy.html", viewer, view)


@routes.post("/documents/{id}/destroy")
async def destroy(request: web.Request) -> web.Response:
    """Crypto-shred the document once confirmed, or file a two-person request."""
    viewer = viewer_of(request)
    await _require(request, viewer, "destroy")
    catalogue = _catalogue(request)
    document_id = request.match_info["id"]
    posted = await form_text(request)
    confirm = str(posted.get("confirm", "")).strip()
    if not await _confirmed(catalogue, viewer, document_id, confirm):
        view = await _found_view(request, viewer, "destroy")
        message = "To confirm, type the document's title or its id exactly as shown."
        return _form_page(
            request, "doc_destroy.html", viewer, view, confirm=confirm, error=message, status=400
        )
    result = await catalogue.destroy(viewer.identity, document_id, source=source_of(request))
    if isinstance(result, ApprovalRequest):
        view = await _found_view(request, viewer, "destroy")
        return _form_page(request, "doc_destroy.html", viewer, view, requested=result)
    context = {"title": "Document destroyed", "destroyed": result, "document_id": document_id}
    return page(request, "doc_destroyed.html", context)


async def _confirmed(
    catalogue: DocumentCatalogue, viewer: Viewer, document_id: str, typed: str
) -> bool:
    """The typed confirmation names this document (its title only if the person may read it)."""
    if not typed:
        return False
    if typed == document_id:
        return True
    return await catalogue.changes.title_confirms(viewer.identity, document_id, typed)


def _lower_levels(request: web.Request, view: dict[str, Any]) -> dict[str, Any]:
    """A downgrade offers the current level and those below it (a lower label may keep
    the level and drop a compartment or widen REL TO)."""
    catalogue = _catalogue(request)
    level = catalogue.parse_label(view["version"]["label"]).level
    return {"levels": levels_up_to(catalogue, level)}


def _label_values(fields: dict[str, list[str]]) -> dict[str, Any]:
    return {
        "level": first(fields, "level"),
        "compartments": fields.get("compartments", []),
        "rel_to": first(fields, "rel_to"),
    }
