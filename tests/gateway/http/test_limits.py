"""HTTP limits on a real server: oversize lines and headers, oversize bodies, slow clients.

The limits themselves are documented in docs/security.md ("Limits").
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from contextlib import ExitStack

import pytest

from tests.gateway.faults.client import DemoServer as Server
from tests.gateway.faults.client import call, demo_server
from tests.nodes import http_get

pytestmark = pytest.mark.slow  # a real server process

IDLE_SECONDS = 1


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data_dir = tmp_path_factory.mktemp("limits") / "var"
    settings = {"SEKISHO_HTTP_MAX_BODY_MIB": "1", "SEKISHO_HTTP_BODY_IDLE_SECONDS": "1"}
    with demo_server(data_dir, settings) as served:
        yield served


def raw_exchange(server: Server, request: bytes, timeout: float = 20) -> bytes:
    """Send raw bytes; read the whole answer until the server closes the connection."""
    with socket.create_connection((server.host, server.port), timeout=timeout) as sock:
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
        return answer


def status_of(answer: bytes) -> int:
    """The status code of a raw HTTP answer."""
    return int(answer.split(b" ", 2)[1])


def documents_of(server: Server) -> list[dict[str, object]]:
    """What alice sees listed."""
    status, raw = call("GET", f"{server.base}/api/v1/documents?limit=200", server.token)
    assert status == 200
    documents: list[dict[str, object]] = json.loads(raw)["documents"]
    return documents


def test_an_oversize_request_line_is_refused_and_the_server_carries_on(server: Server) -> None:
    path = "/api/v1/documents?q=" + "a" * 9000
    answer = raw_exchange(server, f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    assert status_of(answer) in (400, 414)
    assert http_get(server.base + "/healthz")[0] == 200


def test_an_oversize_header_is_refused_and_the_server_carries_on(server: Server) -> None:
    request = f"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {'b' * 9000}\r\n\r\n"
    answer = raw_exchange(server, request.encode())
    assert status_of(answer) in (400, 431)
    assert b"Traceback" not in answer
    assert http_get(server.base + "/healthz")[0] == 200


def test_an_oversize_body_is_refused_before_it_is_read(server: Server) -> None:
    head = (
        "POST /api/v1/documents?title=big&label=SECRET&filename=big.bin HTTP/1.1\r\n"
        f"Host: x\r\nAuthorization: Bearer {server.token}\r\n"
        f"Content-Length: {5 * 1024 * 1024}\r\nConnection: close\r\n\r\n"
    )
    answer = raw_exchange(server, head.encode() + b"x" * 1024)
    assert status_of(answer) == 413
    assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["error"]
    assert all(d["title"] != "big" for d in documents_of(server))


def test_a_stalled_upload_gets_408_and_leaves_nothing_behind(server: Server) -> None:
    before = documents_of(server)
    head = (
        "POST /api/v1/documents?title=stalled&label=SECRET&filename=s.bin HTTP/1.1\r\n"
        f"Host: x\r\nAuthorization: Bearer {server.token}\r\n"
        "Content-Length: 100000\r\n\r\n"
    )
    # 10 bytes of 100,000, then silence: the guard fails the body after IDLE_SECONDS.
    answer = raw_exchange(server, head.encode() + b"0123456789")
    assert status_of(answer) == 408
    body = json.loads(answer.split(b"\r\n\r\n", 1)[1])
    assert body["error"] == "body_timeout"
    assert documents_of(server) == before
    blobs = server.data_dir / "blobs"
    assert (blobs / "tmp").is_dir()
    partial = [p for p in blobs.rglob("*") if p.is_file() and p.suffix in (".part", ".tmp")]
    assert not partial


def test_slow_header_senders_do_not_starve_other_clients(server: Server) -> None:
    with ExitStack() as stack:
        for _ in range(200):
            sock = stack.enter_context(socket.create_connection((server.host, server.port)))
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")  # never finished
        status, _ = http_get(server.base + "/readyz", timeout=10)
        assert status == 200
        upload = call(
            "POST",
            f"{server.base}/api/v1/documents?title=meanwhile&label=SECRET&filename=m.txt",
            server.token,
            b"served while 200 connections dawdle",
        )
        assert upload[0] == 201
