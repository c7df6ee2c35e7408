"""A tiny blocking HTTP client and node set-up helpers for the fault tests (real processes)."""

from __future__ import annotations

import contextlib
import json
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.nodes import run_cli, running_node


def call(
    method: str,
    url: str,
    token: str | None = None,
    body: bytes | None = None,
    *,
    content_type: str | None = None,
    timeout: float = 30,
) -> tuple[int, bytes]:
    """One request; status and body, including for 4xx and 5xx."""
    headers = {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if content_type:
        headers["Content-Type"] = content_type
    request = urllib.request.Request(url, data=body, method=method, headers=headers)  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return int(response.status), response.read()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read()


def call_json(
    method: str, url: str, token: str | None = None, payload: Any = None
) -> tuple[int, Any]:
    """A JSON request; the body parsed as JSON (None if it is not)."""
    body = None if payload is None else json.dumps(payload).encode()
    status, raw = call(method, url, token, body, content_type="application/json")
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, None


def person_token(data_dir: Path, username: str, extra: Mapping[str, str] | None = None) -> str:
    """A personal API token from ``sekisho users token``."""
    result = run_cli(["users", "token", username], data_dir, extra)
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()[-1]


def client_token(
    data_dir: Path,
    name: str,
    scopes: str = "sign,verify,anchor",
    extra: Mapping[str, str] | None = None,
) -> str:
    """An API client of the signing API and its bearer token."""
    command = ["clients", "add", name, "--scopes", scopes, "--keys", "default"]
    result = run_cli(command, data_dir, extra)
    assert result.returncode == 0, result.stderr
    return result.stdout.split("(shown once; store it now): ")[1].split()[0]


def upload_url(base: str, title: str = "doc", label: str = "SECRET") -> str:
    """The raw-body upload URL."""
    return f"{base}/api/v1/documents?title={title}&label={label}&filename={title}.txt"


@dataclass
class DemoServer:
    """A real ``sekisho serve`` on a demo node: base URL, host, port, alice's token, data."""

    base: str
    host: str
    port: int
    token: str
    data_dir: Path


@contextlib.contextmanager
def demo_server(data_dir: Path, extra: Mapping[str, str] | None = None) -> Iterator[DemoServer]:
    """``init --demo``, then serve with ``extra`` settings; alice's token for the calls."""
    assert run_cli(["init", "--demo"], data_dir).returncode == 0
    token = person_token(data_dir, "alice")
    with running_node(data_dir, extra) as base:
        host, port = base.removeprefix("http://").rstrip("/").split(":")
        yield DemoServer(base, host, int(port), token, data_dir)
