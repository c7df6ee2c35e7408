"""Bad input to every portal route: a 4xx page (or the ceremony's JSON error), never a 500.

The walk is driven by the router, as in ``test_idor.py``, so a new portal route is
walked without being listed here. Each case sends one kind of bad input to every
route, signed in as a person holding every role, with a valid CSRF token so the
input reaches the handler: a form as urlencoded and as multipart with the same
fields, a JSON body, bad path parameters, bad query parameters, a refused CSRF
token, a method the route does not take. Every answer must be below 500, a refusal
must be an HTML page (or the JSON error the security-key script shows), no
traceback may be in the body or the log, and a refused request must leave the
accounts, clients, keys, documents and requests as they were.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from tortoise import connections

from gateway.auth.tokens import issue_token
from gateway.documents.models import ApprovalRequest
from gateway.http.paths import is_machine_path
from gateway.signing.clients import ClientSpec
from hsm import KeyAlgorithm
from tests.gateway.app_fixtures import operator_managers
from tests.web.conftest import Portal, form_token, person, sign_in
from tests.web.test_idor import path_of

PORTAL_DIR = Path(__file__).resolve().parents[2] / "web" / "portal"
FIELDS = (
    "next",
    "username",
    "password",
    "current",
    "new",
    "repeat",
    "display_name",
    "level",
    "compartments",
    "nationality",
    "roles",
    "certificate",
    "label",
    "name",
    "scopes",
    "keys",
    "rate",
    "chain_writers",
    "remove_certificate",
    "algorithm",
    "purpose",
    "reason",
    "confirm",
    "rel_to",
    "title",
    "tags",
    "version",
)
"""Every field a portal form has (a new form's fields get the others' bad values too)."""
QUERY = (
    "page",
    "cursor",
    "version",
    "q",
    "tag",
    "level",
    "person",
    "document",
    "outcome",
    "action",
    "from",
    "to",
    "period",
    "span",
    "owner",
    "subject",
    "run",
    "key",
    "created",
    "rotated",
    "saved",
    "revoked",
    "signed",
    "status",
    "done",
    "next",
    "view",
)
TRACEBACK = re.compile(r"Traceback|File \"/|\b[A-Z][A-Za-z]*(Error|Exception)\(")
TABLES = (
    "principal",
    "api_client",
    "api_token",
    "signing_key",
    "signing_key_version",
    "person_certificate",
    "security_key",
    "custody_handover",
    "document",
    "document_version",
    "approval_request",
)
TOKEN_VOLATILE = ("last_used_at",)


@dataclass(frozen=True)
class Bad:
    """One request: its path (``{}`` for the filled route), and how it is sent."""

    path: Callable[[str, dict[str, str]], str] | None = None
    form: list[tuple[str, str]] | None = None
    raw: bytes | None = None
    content_type: str | None = None
    json_body: Any = None
    method: str | None = None
    csrf: bool = True
    multipart_too: bool = False


def _fields(value: str) -> list[tuple[str, str]]:
    return [(name, value) for name in FIELDS]


def _raw(text: bytes) -> bytes:
    return b"&".join(name.encode() + b"=" + text for name in FIELDS)


LONG_FIELD = "L" * 2000  # every field at once stays under the 64 KiB form limit
FORM_CASES: dict[str, Bad] = {
    "missing fields": Bad(form=[], multipart_too=True),
    "empty fields": Bad(form=_fields(""), multipart_too=True),
    "letters for numbers": Bad(form=_fields("abc"), multipart_too=True),
    "negative numbers": Bad(form=_fields("-1"), multipart_too=True),
    "huge numbers": Bad(form=_fields(str(10**30)), multipart_too=True),
    "floats": Bad(form=_fields("1.5"), multipart_too=True),
    "unicode digits": Bad(form=_fields("\u00b2"), multipart_too=True),
    "long fields": Bad(form=_fields(LONG_FIELD), multipart_too=True),
    "NUL bytes": Bad(form=_fields("a\x00b"), multipart_too=True),
    "duplicated fields": Bad(form=_fields("1") + _fields("x"), multipart_too=True),
    "non-UTF-8 bytes": Bad(raw=_raw(b"\xff\xfe"), content_type="application/x-www-form-urlencoded"),
    "non-UTF-8 escapes": Bad(raw=_raw(b"%FF%FE"), content_type="application/x-www-form-urlencoded"),
    "unknown charset": Bad(
        raw=_raw(b"x"), content_type="application/x-www-form-urlencoded; charset=x-bogus"
    ),
    "JSON to a form": Bad(json_body={name: [1, None] for name in FIELDS}),
    "text/plain": Bad(raw=b"\xff\x00", content_type="text/plain"),
    "a 100 KB form": Bad(form=[("title", "x" * (100 * 1024))]),
    "bad CSRF token": Bad(form=_fields("1"), csrf=False),
    "method not allowed": Bad(method="PUT"),
}
PATH_VALUES = {
    "long": "p" * 300,
    "NUL": "%00",
    "not a UUID": "not-a-uuid",
    "huge number": str(10**30),
    "unicode digit": "%C2%B2",
    "non-UTF-8 escape": "%FF",
}
QUERY_VALUES = {
    "letters": "abc",
    "huge": str(10**30),
    "unicode digit": "\u00b2",
    "NUL": "a\x00b",
    "bad date": "2024-13-45T99:99",
    "long": "q" * 200,  # every parameter at once stays under the 8 KiB request line
    "non-UTF-8 escape": "%FF",
}


@pytest.fixture
def portal_settings(request: pytest.FixtureRequest) -> dict[str, str]:
    """Room for the walk's failed sign-ins; on PostgreSQL for a test marked ``postgres``."""
    settings = {"SEKISHO_PORTAL_MAX_FAILURES": "50", "SEKISHO_PORTAL_MAX_ADDRESS_FAILURES": "50"}
    if request.node.get_closest_marker("postgres") is not None:
        settings["SEKISHO_DATABASE_URL"] = str(request.getfixturevalue("pg_database_url"))
    return settings


def portal_routes(app: web.Application) -> list[tuple[str, str]]:
    """Method and path of every portal page route (not the API, ledger or static files)."""
    found = set()
    for route in app.router.routes():
        if route.method in ("HEAD", "OPTIONS") or route.resource is None:
            continue
        path = path_of(route.resource)
        if is_machine_path(path) or path.startswith("/static/"):
            continue
        found.add((route.method, path))
    return sorted(found)


def fill(template: str, values: dict[str, str], bad: dict[str, str] | None = None) -> str:
    """The route with each parameter replaced by a real object (or by its ``bad`` value)."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if bad and name in bad:
            return bad[name]
        if name == "id" and template.startswith("/approvals/"):
            return values["approval"]
        if name == "id" and template.endswith("{id}/remove"):
            return "1"
        if name == "name" and template.startswith("/admin/keys/"):
            return values["key"]
        return values[name]

    return re.sub(r"\{(\w+)\}", value, template)


@dataclass
class Walker:
    """A signed-in person with every role, and what the walk found."""

    portal: Portal
    values: dict[str, str]
    csrf: str = ""
    found: list[str] | None = None

    async def sign_in(self) -> None:
        client = self.portal.client
        client.session.cookie_jar.clear()
        assert (await sign_in(client, "chief")).status == 303
        self.csrf = await form_token(client, "/")

    async def send(
        self, label: str, method: str, path: str, caplog: pytest.LogCaptureFixture, **kw: Any
    ) -> None:
        """Send one request and note anything wrong with the answer."""
        assert self.found is not None
        refused_state = await snapshot() if method not in ("GET", "HEAD") else None
        caplog.clear()
        response = await self.portal.client.request(method, path, allow_redirects=False, **kw)
        body = (await response.read()).decode("utf-8", errors="replace")
        where = f"{label}: {method} {path[:80]} -> {response.status}"
        if response.status >= 500:
            self.found.append(f"{where}: {body[:200]}")
        location = response.headers.get("Location", "")
        if location.startswith("/login") and "signed_out" not in location:
            self.found.append(f"{where}: not signed in; the walk did not reach the page")
        if TRACEBACK.search(body):
            self.found.append(f"{where}: a traceback or exception in the body")
        logged = [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
        if logged:
            self.found.append(f"{where}: logged {logged[0].getMessage()[:200]}")
        if response.status >= 400:
            self._check_refusal(where, response.headers.get("Content-Type", ""), body)
            if refused_state is not None and await snapshot() != refused_state:
                self.found.append(f"{where}: a refused request changed the stored state")
        if "sekisho-session" not in {c.key for c in self.portal.client.session.cookie_jar}:
            await self.sign_in()  # /logout (or a refusal that ended the session): go on

    def _check_refusal(self, where: str, content_type: str, body: str) -> None:
        assert self.found is not None
        if content_type.startswith("text/html"):
            return
        if content_type.startswith("application/json"):
            answer = json.loads(body)
            if isinstance(answer, dict) and answer.get("error") and answer.get("message"):
                return  # the security-key ceremonies' errors, shown by their script
        self.found.append(f"{where}: a refusal as {content_type!r}, not a page")


async def snapshot() -> list[Any]:
    """Everything a refused request must not change."""
    db = connections.get("default")
    rows = []
    for table in TABLES:
        found = await db.execute_query_dict(f"SELECT * FROM {table} ORDER BY 1")  # noqa: S608
        for row in found:
            for column in TOKEN_VOLATILE:
                row.pop(column, None)
        rows.append(found)
    return rows


async def walker(portal: Portal) -> Walker:
    """A person with every role, a document, a client, a key and a two-person request."""
    chief = await person(
        "chief", level="TOP SECRET", roles=("reader", "uploader", "officer", "auditor", "admin")
    )
    await person("someone", roles=("reader",))
    uploaded = await portal.client.post(
        "/api/v1/documents",
        params={"title": "Walked", "label": "SECRET", "filename": "w.txt"},
        data=b"walked",
        headers={"Authorization": f"Bearer {await issue_token(principal=chief)}"},
    )
    assert uploaded.status == 201, await uploaded.text()
    document = (await uploaded.json())["id"]
    keys, clients = operator_managers(portal.app, portal.settings)
    key = f"walk-{uuid.uuid4().hex[:8]}"  # the session's token is shared: a fresh label
    await keys.create(key, KeyAlgorithm.EC_P256, "sign")
    _, token = await clients.add("walked", ClientSpec(scopes=("sign",), keys=(key,)))
    approval = await ApprovalRequest.create(
        id=str(uuid.uuid4()),
        document_id=document,
        version=1,
        action="destroy",
        requested_by="person:someone",
        requested_at=datetime.now(UTC),
        expires_at=datetime.now(UTC) + timedelta(hours=1),
    )
    values = {
        "id": document,
        "approval": approval.id,
        "username": "someone",
        "name": "walked",
        "key": key,
        "prefix": token[:12],
        "handover": str(uuid.uuid4()),
        "verb": "approve",
    }
    found = Walker(portal, values, found=[])
    await found.sign_in()
    return found


def _requests(walk: Walker, case: Bad, path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """The encodings a form case is sent in: (label, request arguments)."""
    csrf = [("csrf", walk.csrf if case.csrf else "x" * 43)]
    header = {"X-CSRF-Token": walk.csrf}
    if case.method is not None:
        yield case.method, {"headers": header}
    elif case.json_body is not None:
        yield "json", {"json": case.json_body, "headers": header}
    elif case.raw is not None:
        body = b"csrf=" + walk.csrf.encode() + b"&" + case.raw
        assert case.content_type is not None
        yield "raw", {"data": body, "headers": {**header, "Content-Type": case.content_type}}
    else:
        assert case.form is not None
        yield "urlencoded", {"data": csrf + case.form}
        if case.multipart_too:
            data = aiohttp.FormData()
            for name, value in csrf + case.form:
                data.add_field(name, value)
            data.add_field("file", b"walked", filename="walked.txt")
            yield "multipart", {"data": data}


async def walk_forms(walk: Walker, case: str, caplog: pytest.LogCaptureFixture) -> None:
    """Send one kind of bad form to every route that takes a form (or every route)."""
    bad = FORM_CASES[case]
    for method, template in portal_routes(walk.portal.app):
        if method != "POST" and bad.method is None:
            continue
        path = fill(template, walk.values)
        for encoding, arguments in _requests(walk, bad, path):
            await walk.send(f"{case} ({encoding})", bad.method or method, path, caplog, **arguments)


async def walk_paths(walk: Walker, value: str, caplog: pytest.LogCaptureFixture) -> None:
    """Put one bad value in each path parameter of every route, one at a time."""
    for method, template in portal_routes(walk.portal.app):
        for name in re.findall(r"\{(\w+)\}", template):
            path = fill(template, walk.values, {name: PATH_VALUES[value]})
            data = [("csrf", walk.csrf)] if method == "POST" else None
            await walk.send(f"path {name}={value}", method, path, caplog, data=data)


async def walk_queries(walk: Walker, value: str, caplog: pytest.LogCaptureFixture) -> None:
    """Give every page each query parameter a page reads, one at a time, with one bad value;
    then all of them at once, each twice."""
    bad = QUERY_VALUES[value]
    for method, template in portal_routes(walk.portal.app):
        if method != "GET":
            continue
        path = fill(template, walk.values)
        for name in QUERY:
            await walk.send(f"query {name}={value}", method, path, caplog, params={name: bad})
        twice = [(name, v) for name in QUERY for v in ("1", bad)]
        await walk.send(f"query={value} twice", method, path, caplog, params=twice)


@pytest.mark.parametrize("case", sorted(FORM_CASES))
async def test_bad_forms_to_every_portal_route_are_refused_with_a_page(
    portal: Portal, caplog: pytest.LogCaptureFixture, case: str
) -> None:
    walk = await walker(portal)
    await walk_forms(walk, case, caplog)
    assert not walk.found, "\n".join(walk.found)


@pytest.mark.parametrize("value", sorted(PATH_VALUES))
async def test_bad_path_parameters_of_every_portal_route_are_refused_with_a_page(
    portal: Portal, caplog: pytest.LogCaptureFixture, value: str
) -> None:
    walk = await walker(portal)
    await walk_paths(walk, value, caplog)
    assert not walk.found, "\n".join(walk.found)


@pytest.mark.parametrize("value", sorted(QUERY_VALUES))
async def test_bad_query_parameters_to_every_portal_page_are_refused_with_a_page(
    portal: Portal, caplog: pytest.LogCaptureFixture, value: str
) -> None:
    walk = await walker(portal)
    await walk_queries(walk, value, caplog)
    assert not walk.found, "\n".join(walk.found)


@pytest.mark.postgres
async def test_a_nul_anywhere_in_portal_input_is_refused_on_postgresql(
    portal: Portal, caplog: pytest.LogCaptureFixture
) -> None:
    """PostgreSQL refuses NUL in text (SQLite keeps it): every search, filter and lookup
    that reached the database with one was a 500 there."""
    walk = await walker(portal)
    await walk_forms(walk, "NUL bytes", caplog)
    await walk_paths(walk, "NUL", caplog)
    await walk_queries(walk, "NUL", caplog)
    assert not walk.found, "\n".join(walk.found)


def test_portal_handlers_read_forms_through_the_strict_reader() -> None:
    """``request.post()`` decodes any charset, raises on bytes that are not UTF-8 and reads
    multipart bodies the CSRF check began: portal handlers use ``form_text`` instead."""
    offenders = [
        path.name
        for path in sorted(PORTAL_DIR.glob("*.py"))
        if "request.post()" in path.read_text().replace("``request.post()``", "")
    ]
    assert not offenders, f"use web.portal.inputs.form_text in {offenders}"
