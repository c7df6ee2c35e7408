"""Issue #14's input classes against a real ``sekisho serve`` (SQLite): 4xx, never 5xx.

* integer parameters with Unicode digits or thousands of digits: 400 naming them;
* a ``Range`` with thousands of digits: answered, not a 500;
* deeply nested JSON to any JSON route: 400, not RecursionError;
* an id with a trailing newline: 404 for its sender only, everyone else served;
* bodies before authentication: refused from their declared length, unread;
* a body trickled in: 408 at ``http.body_total_seconds``, although never idle;
* a database write lock: read-only calls with a fresh token still answer.
"""

from __future__ import annotations

import contextlib
import json
import select
import socket
import sqlite3
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest

from tests.gateway.faults.client import DemoServer, call, call_json, demo_server, person_token

TOTAL_SECONDS = 3
SUPERSCRIPT_TWO = "%C2%B2"  # "²": str.isdigit() is true, int() fails


@dataclass(frozen=True)
class Node:
    """The served node, one of alice's documents, and tokens for the officer and the admin."""

    server: DemoServer
    document: str
    officer: str
    admin: str


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    data_dir = tmp_path_factory.mktemp("input") / "var"
    settings = {
        "SEKISHO_HTTP_MAX_BODY_MIB": "1",
        "SEKISHO_HTTP_BODY_IDLE_SECONDS": "2",
        "SEKISHO_HTTP_BODY_TOTAL_SECONDS": str(TOTAL_SECONDS),
    }
    with demo_server(data_dir, settings) as served:
        url = f"{served.base}/api/v1/documents?title=t&label=SECRET&filename=t.txt"
        status, raw = call("POST", url, served.token, b"0123456789" * 100)
        assert status == 201, raw
        officer = person_token(data_dir, "olivia")
        admin = person_token(data_dir, "admin")
        yield Node(served, json.loads(raw)["id"], officer, admin)


def raw_exchange(server: DemoServer, request: bytes, timeout: float = 20) -> bytes:
    """Send raw bytes; read the answer until the server closes the connection."""
    with socket.create_connection((server.host, server.port), timeout=timeout) as sock:
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
        return answer


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


def body_of(answer: bytes) -> dict[str, str]:
    parsed: dict[str, str] = json.loads(answer.split(b"\r\n\r\n", 1)[1])
    return parsed


def test_integer_parameters_take_ascii_digits_only(node: Node) -> None:
    base, doc, alice = node.server.base, node.document, node.server.token
    cases = [
        (f"/api/v1/documents?limit={SUPERSCRIPT_TWO}", alice, "limit"),
        (f"/api/v1/documents?offset={SUPERSCRIPT_TWO}", alice, "offset"),
        ("/api/v1/documents?limit=" + "9" * 5000, alice, "limit"),
        (f"/api/v1/documents/{doc}?version={SUPERSCRIPT_TWO}", alice, "version"),
        (f"/api/v1/documents/{doc}/receipt?version=%D9%A3", alice, "version"),
        (
            f"/api/v1/documents/{doc}/content?version={SUPERSCRIPT_TWO}",
            alice,
            "version",
        ),
        (f"/api/v1/documents/{doc}?version=99999999999", alice, "version"),
        (f"/api/v1/trail?limit={SUPERSCRIPT_TWO}", node.officer, "limit"),
        (f"/api/v1/trail?cursor={SUPERSCRIPT_TWO}", node.officer, "cursor"),
        (f"/api/v1/ledger/entries/{SUPERSCRIPT_TWO}", node.officer, "index"),
        (f"/api/v1/ledger/proof/inclusion?index={SUPERSCRIPT_TWO}", None, "index"),
    ]
    for path, token, parameter in cases:
        status, raw = call("GET", base + path, token)
        assert status == 400, (path, status, raw[:200])
        body = json.loads(raw)
        assert body["error"] == "invalid_parameter" and body["parameter"] == parameter, path


def test_a_range_with_thousands_of_digits_is_answered(node: Node) -> None:
    head = (
        f"GET /api/v1/documents/{node.document}/content HTTP/1.1\r\nHost: x\r\n"
        f"Authorization: Bearer {node.server.token}\r\n"
        f"Range: bytes=10-{'9' * 5000}\r\nConnection: close\r\n\r\n"
    )
    answer = raw_exchange(node.server, head.encode())
    assert status_of(answer) == 206
    assert answer.endswith(b"0123456789" * 99)


@pytest.mark.parametrize("opener", ["[", '{"a":'])
def test_deeply_nested_json_is_a_400_on_every_json_route(node: Node, opener: str) -> None:
    closer = "]" if opener == "[" else "}"
    deep = (opener * 10_000 + "1" + closer * 10_000).encode()
    base = node.server.base
    routes = [
        (f"{base}/api/v1/documents/{node.document}/downgrade", node.server.token),
        (f"{base}/api/v1/admin/users", node.admin),
        (f"{base}/api/v1/admin/users/alice", node.admin),
    ]
    for url, token in routes:
        method = "PATCH" if url.endswith("/alice") else "POST"
        status, raw = call(method, url, token, deep, content_type="application/json")
        assert (status, json.loads(raw)["error"]) == (400, "bad_json"), url


def test_small_json_routes_refuse_large_bodies_before_parsing(node: Node) -> None:
    body = json.dumps({"label": "SECRET", "reason": "r" * (100 * 1024)}).encode()
    url = f"{node.server.base}/api/v1/documents/{node.document}/downgrade"
    status, raw = call("POST", url, node.server.token, body, content_type="application/json")
    assert (status, json.loads(raw)["error"]) == (413, "too_large")


def test_an_id_with_a_trailing_newline_fails_alone(node: Node) -> None:
    base, token = node.server.base, node.server.token
    good = f"{base}/api/v1/documents/{node.document}/content"
    bad = f"{base}/api/v1/documents/{node.document}%0a"

    def fetch(n: int) -> int:
        return call("GET", bad if n % 5 == 0 else good, token)[0]

    with ThreadPoolExecutor(16) as pool:
        statuses = list(pool.map(fetch, range(100)))
    assert {s for n, s in enumerate(statuses) if n % 5 == 0} == {404}
    assert {s for n, s in enumerate(statuses) if n % 5} == {200}


def test_a_large_form_before_sign_in_is_refused_unread(node: Node) -> None:
    head = (
        "POST /login HTTP/1.1\r\nHost: x\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {300 * 1024 * 1024}\r\n\r\n"
    )
    # Only the head and a few bytes are sent: the answer comes from Content-Length alone.
    answer = raw_exchange(node.server, head.encode() + b"csrf=x&username=")
    assert status_of(answer) == 413
    assert b"Traceback" not in answer


def test_an_upload_is_not_read_before_authentication(node: Node) -> None:
    head = (
        "POST /api/v1/documents?title=x&label=SECRET&filename=x HTTP/1.1\r\nHost: x\r\n"
        f"Content-Length: {512 * 1024}\r\n\r\n"
    )
    answer = raw_exchange(node.server, head.encode() + b"x" * 10)
    assert status_of(answer) == 401


def test_a_trickled_body_hits_the_overall_deadline(node: Node) -> None:
    server = node.server
    head = (
        "POST /api/v1/documents?title=trickle&label=SECRET&filename=t.bin HTTP/1.1\r\n"
        f"Host: x\r\nAuthorization: Bearer {server.token}\r\nContent-Length: 1000\r\n\r\n"
    )
    answer = b""
    with socket.create_connection((server.host, server.port), timeout=30) as sock:
        sock.sendall(head.encode())
        # A byte every half second, so never idle for 2 s; no byte once the answer is in
        # (a byte sent after the server closed would be answered with a reset).
        for _ in range(60):
            readable, _, _ = select.select([sock], [], [], 0.5)
            if readable:
                break
            sock.sendall(b"x")
        with contextlib.suppress(ConnectionResetError):
            while chunk := sock.recv(65536):
                answer += chunk
    assert status_of(answer) == 408
    assert "took longer" in body_of(answer)["message"]


def test_a_database_write_lock_does_not_fail_read_only_calls(node: Node) -> None:
    fresh = person_token(node.server.data_dir, "olivia")  # never used: its first use is noted
    locker = sqlite3.connect(node.server.data_dir / "sekisho.sqlite3", timeout=10)
    try:
        locker.execute("BEGIN IMMEDIATE")  # another writer holds the lock
        started = time.monotonic()
        # a call that writes nothing of its own (trail queries are ledgered since #13)
        status, body = call_json("GET", f"{node.server.base}/api/v1/ledger/entries/0", fresh)
        waited = time.monotonic() - started
    finally:
        locker.rollback()
        locker.close()
    assert status == 200, (status, body, waited)
