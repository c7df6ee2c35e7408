"""Reading multipart/form-data safely: a malformed form is a 400, never a 500.

aiohttp's reader raises ``ValueError`` (and its subclasses) for a missing or
undecodable boundary or a body that does not start with it, and
``HttpProcessingError`` for part headers it cannot parse; these helpers turn
that into :class:`MalformedForm`, and share the size-limited reading of text
fields between the API and the portal.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import BodyPartReader, MultipartReader, web
from aiohttp.http_exceptions import HttpProcessingError

from gateway.errors import BadRequest
from gateway.http.text import refuse_nul


class MalformedForm(BadRequest):
    """The body is not a well-formed multipart/form-data form."""

    code = "bad_form"


def _malformed(detail: str) -> MalformedForm:
    return MalformedForm(f"the form is not well-formed multipart/form-data: {detail}")


async def open_form(request: web.Request) -> MultipartReader:
    """The request body as a multipart reader."""
    try:
        return await request.multipart()
    except (ValueError, HttpProcessingError) as exc:
        raise _malformed("its boundary is missing or invalid") from exc


async def next_part(reader: MultipartReader) -> BodyPartReader | None:
    """The next part (None at the end); nested multipart is refused."""
    try:
        part = await reader.next()
    except (ValueError, HttpProcessingError) as exc:
        raise _malformed("a boundary or part header could not be read") from exc
    if part is not None and not isinstance(part, BodyPartReader):
        raise BadRequest("nested multipart is not supported", code="bad_form")
    return part


async def part_chunks(part: BodyPartReader, size: int) -> AsyncIterator[bytes]:
    """A part's content as it arrives."""
    while True:
        try:
            chunk = await part.read_chunk(size)
        except (ValueError, HttpProcessingError) as exc:
            raise _malformed("a part's content could not be read") from exc
        if not chunk:
            return
        yield chunk


async def read_bytes(part: BodyPartReader, limit: int) -> bytes | None:
    """A small part whole, or None when it is longer than ``limit`` bytes."""
    data = bytearray()
    async for chunk in part_chunks(part, min(limit + 1, 64 * 1024)):
        data += chunk
        if len(data) > limit:
            return None
    return bytes(data)


async def read_text(part: BodyPartReader, limit: int, *, code: str = "bad_form") -> str:
    """A text field as UTF-8, refused when over ``limit`` bytes or not UTF-8."""
    data = await read_bytes(part, limit)
    if data is None:
        raise BadRequest(f"form field {part.name!r} is longer than {limit} bytes", code=code)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest(f"form field {part.name!r} is not UTF-8", code=code) from None
    refuse_nul("form field", part.name or "", text)
    return text


def part_filename(part: BodyPartReader) -> str:
    """The part's file name ("" when none), refused when it holds a NUL."""
    filename = part.filename or ""
    refuse_nul("the file name of form field", part.name or "", filename)
    return filename
