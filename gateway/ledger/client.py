"""HTTP client side of the ledger: fetch tlog-tiles resources and the key of a remote node."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp

from gateway.errors import BadRequest, Unavailable

_TIMEOUT = aiohttp.ClientTimeout(total=60, connect=10)


class HttpLedgerClient:
    """Reads ``<url>/ledger/...`` (the tlog-tiles prefix) and ``<url>/api/v1/ledger/...``."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str) -> None:
        self._session = session
        self._base = base_url.rstrip("/")

    async def _get(self, url: str) -> bytes | None:
        try:
            async with self._session.get(url) as response:
                if response.status == 404:
                    return None
                if response.status != 200:
                    raise Unavailable(f"{url} answered HTTP {response.status}")
                return await response.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise Unavailable(f"cannot fetch {url}: {exc or type(exc).__name__}") from None

    async def fetch(self, path: str) -> bytes | None:
        """A resource under the log prefix; None on 404."""
        return await self._get(f"{self._base}/ledger/{path}")

    async def key(self) -> dict[str, Any]:
        """The JSON of ``/api/v1/ledger/key``."""
        url = f"{self._base}/api/v1/ledger/key"
        body = await self._get(url)
        if body is None:
            raise Unavailable(f"{url} does not exist: is this a Sekisho node?")
        try:
            value = json.loads(body)
        except (ValueError, RecursionError):  # a hostile peer's deeply nested answer too
            raise Unavailable(f"{url} did not answer JSON") from None
        if not isinstance(value, dict) or not isinstance(value.get("vkey"), str):
            raise Unavailable(f"{url} did not answer a key")
        return value


@contextlib.asynccontextmanager
async def ledger_client(base_url: str) -> AsyncIterator[HttpLedgerClient]:
    """A client with its own connection pool, closed afterwards."""
    if not base_url.startswith(("http://", "https://")):
        raise BadRequest(f"the URL must start with http:// or https://, not {base_url!r}")
    async with aiohttp.ClientSession(timeout=_TIMEOUT) as session:
        yield HttpLedgerClient(session, base_url)
