"""Reading portal forms: multipart bodies whose CSRF part the middleware already checked."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import BodyPartReader, web

from gateway.errors import BadRequest, TooLarge
from gateway.http.bodies import SMALL_BODY
from gateway.http.multipart import next_part, part_chunks, part_filename, read_text
from gateway.http.params import MAX_INT32, optional_query_int
from web.portal.app_keys import FORM
from web.portal.security import local_target

MAX_FIELD = 4096
MAX_FIELDS_TOTAL = SMALL_BODY
"""Text fields before the file part, all together: an upload's size is for its file only."""
CHUNK = 256 * 1024


async def multipart_fields(
    request: web.Request, allowed: frozenset[str], file_field: str = "file"
) -> tuple[dict[str, list[str]], BodyPartReader | None]:
    """Text fields up to the file part, and the file part (None if the form has none)."""
    reader = request.get(FORM)
    if reader is None:
        raise BadRequest("this form must be sent as multipart/form-data", code="bad_form")
    fields: dict[str, list[str]] = {}
    total = 0
    while True:
        part = await next_part(reader)
        if part is None:
            return fields, None
        if part.name == file_field:
            part_filename(part)  # refuses a NUL in it
            return fields, part
        if part.name not in allowed:
            raise BadRequest(f"unexpected form field {part.name!r}", code="bad_form")
        value = await read_text(part, MAX_FIELD)
        total += len(value)
        if total > MAX_FIELDS_TOTAL:
            raise TooLarge(f"the form's fields are larger than {MAX_FIELDS_TOTAL} characters")
        fields.setdefault(part.name, []).append(value)


def first(fields: dict[str, list[str]], name: str, default: str = "") -> str:
    """The first value of a field."""
    values = fields.get(name)
    return values[0] if values else default


def file_chunks(part: BodyPartReader) -> AsyncIterator[bytes]:
    """The content of a file part, as it arrives."""
    return part_chunks(part, CHUNK)


def int_param(request: web.Request, name: str, *, high: int = MAX_INT32) -> int | None:
    """A non-negative integer query parameter, or None when absent (the shared strict parser)."""
    return optional_query_int(request.query, name, high=high)


PROGRESS_HEADER = "X-Sekisho-Upload"
LOCATION_HEADER = "X-Sekisho-Location"


def after_upload(request: web.Request, location: str) -> web.Response:
    """Where an upload form goes next: a 303, or for the progress script (which cannot
    stop XMLHttpRequest following a redirect, and would open the page twice) a 204
    naming the page; the script then opens it itself."""
    target = local_target(location)
    if request.headers.get(PROGRESS_HEADER) == "progress":
        return web.Response(status=204, headers={LOCATION_HEADER: target})
    return web.Response(status=303, headers={"Location": target})
