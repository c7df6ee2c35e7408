"""What the portal reads from a request, checked once: urlencoded forms.

aiohttp's ``request.post()`` decodes a form with whatever charset the request
names (an unknown one raised LookupError), raised UnicodeDecodeError on bytes
that are not UTF-8, and on a multipart body read the parts the CSRF check had
not consumed, files included, as text: each was a 500 or a mangled value on some
page. Here a text form is ``application/x-www-form-urlencoded`` in UTF-8 (or no
body at all), its percent-escapes decode to UTF-8 too, and anything else is a
400 page that says what is wrong.

No form field may hold a NUL (``gateway.http.text``, which refuses one in the
address of every request, and in JSON and multipart text).
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from aiohttp import web
from multidict import MultiDict, MultiDictProxy

from gateway.errors import BadRequest
from gateway.http.text import refuse_nul

URLENCODED = "application/x-www-form-urlencoded"
MAX_FORM_FIELDS = 1000
"""More pairs than any portal form has (a form is at most 64 KiB anyway)."""
FormText = MultiDictProxy[str]
_PARSED: web.RequestKey[FormText] = web.RequestKey("portal_form_text")
_UTF8 = frozenset({"utf-8", "utf8"})


class BadForm(BadRequest):
    """A form body the portal cannot read as the text form it expects."""

    code = "bad_form"


async def form_text(request: web.Request) -> FormText:
    """The request's urlencoded form as text fields (read once; later calls reuse it).

    No body is an empty form. Any other body is a :class:`BadForm`: a multipart or
    JSON body, a charset other than UTF-8, bytes or percent-escapes that are not
    UTF-8, too many fields; and a NUL anywhere. A body over the route's limit is
    a 413 while it is read.
    """
    parsed: FormText | None = request.get(_PARSED)
    if parsed is not None:
        return parsed
    if not request.body_exists:
        parsed = MultiDictProxy(MultiDict[str]())
    else:
        parsed = _parse(await _body(request))
    request[_PARSED] = parsed
    return parsed


async def _body(request: web.Request) -> bytes:
    if request.content_type != URLENCODED:
        raise BadForm(f"this form must be sent as {URLENCODED}, not {request.content_type!r}")
    charset = request.charset
    if charset is not None and charset.lower() not in _UTF8:
        raise BadForm("this form must be sent in UTF-8")
    return await request.read()  # within the route's size limit (413 beyond it)


def _parse(body: bytes) -> FormText:
    try:
        text = body.decode("utf-8")
        pairs = parse_qsl(
            text,
            keep_blank_values=True,
            encoding="utf-8",
            errors="strict",
            max_num_fields=MAX_FORM_FIELDS,
        )
    except UnicodeDecodeError:
        raise BadForm("the form is not UTF-8 text") from None
    except ValueError:
        raise BadForm(f"the form has more than {MAX_FORM_FIELDS} fields") from None
    for name, value in pairs:
        refuse_nul("form field", name, value)
    return MultiDictProxy(MultiDict(pairs))
