"""HTTP client side of the ledger: fetch tlog-tiles resources and the key of a remote node.

Entry bundles need a credential unless the node serves entries publicly: the
client sends ``Authorization: Bearer <token>`` on every request when it has
one, and turns a 401 or 403 into :class:`LedgerReadRefused` (never into a
missing resource, which would look like tampering).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp

from gateway.errors import BadRequest, Unavailable

_TIMEOUT = aiohttp.ClientTimeout(total=60, connect=10)
_REFUSED = (401, 403)


class LedgerReadRefused(Unavailable):
    """The node refused to serve a resource to this caller (HTTP 401 or 403)."""

    code = "ledger_read_refused"

    def __init__(self, url: str, status: int, *, sent_token: bool, hint: str = "") -> None:
        what = "refused the credential sent" if sent_token else "wants a credential; none was sent"
        message = (
            f"{url} answered HTTP {status}: the node serves ledger entries only to officers, "
            f"auditors and registered mirrors and {what}"
        )
        super().__init__(message + (f" ({hint})" if hint else ""))
        self.status = status


class HttpLedgerClient:
    """Reads ``<url>/ledger/...`` (the tlog-tiles prefix) and ``<url>/api/v1/ledger/...``."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        *,
        token: str | None = None,
        hint: str = "",
    ) -> None:
        self._session = session
        self._base = base_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._hint = hint

    async def _get(self, url: str) -> bytes | None:
        try:
            async with self._session.get(
                url, headers=self._headers, allow_redirects=False
            ) as response:
                if response.status == 404:
                    return None
                if 300 <= response.status < 400:
                    target = response.headers.get("Location", "elsewhere")
                    raise Unavailable(
                        f"{url} answered HTTP {response.status} (a redirect to {target}): "
                        f"{self._not_a_ledger}"
                    )
                if response.status in _REFUSED:
                    raise LedgerReadRefused(
                        url, response.status, sent_token=bool(self._headers), hint=self._hint
                    )
                if response.status != 200:
                    raise Unavailable(f"{url} answered HTTP {response.status}")
                return await response.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise Unavailable(f"cannot fetch {url}: {exc or type(exc).__name__}") from None

    @property
    def _not_a_ledger(self) -> str:
        return (
            f"{self._base} is not a Sekisho ledger (give the node's base URL, "
            "or a mirror's /mirror/<hash> prefix)"
        )

    async def fetch(self, path: str) -> bytes | None:
        """A resource under the log prefix; None on 404."""
        return await self._get(f"{self._base}/ledger/{path}")

    async def api(self, path: str) -> bytes:
        """A resource under ``/api/v1/ledger/`` (a 404 is an error: the node lacks it)."""
        url = f"{self._base}/api/v1/ledger/{path}"
        body = await self._get(url)
        if body is None:
            raise Unavailable(f"{url} answered HTTP 404: {self._not_a_ledger}")
        return body

    async def api_json(self, path: str, *, optional: bool = False) -> dict[str, Any] | None:
        """The JSON object of a resource under ``/api/v1/ledger/`` (None on a 404 when
        ``optional``: a mirror's prefix serves the log, not the node's API)."""
        url = f"{self._base}/api/v1/ledger/{path}"
        body = await self._get(url) if optional else await self.api(path)
        if body is None:
            return None
        try:
            value = json.loads(body)
        except (ValueError, RecursionError):  # a hostile peer's deeply nested answer too
            raise Unavailable(f"{url} answered no JSON: {self._not_a_ledger}") from None
        if not isinstance(value, dict):
            raise Unavailable(f"{url} answered no JSON object: {self._not_a_ledger}")
        return value

    async def key(self) -> dict[str, Any]:
        """The JSON of ``/api/v1/ledger/key``."""
        value = await self.api_json("key")
        if value is None or not isinstance(value.get("vkey"), str):
            raise Unavailable(
                f"{self._base}/api/v1/ledger/key answered no ledger key: {self._not_a_ledger}"
            )
        return value


@contextlib.asynccontextmanager
async def ledger_client(
    base_url: str, *, token: str | None = None, hint: str = ""
) -> AsyncIterator[HttpLedgerClient]:
    """A client with its own connection pool, closed afterwards (``token``: a bearer token)."""
    if not base_url.startswith(("http://", "https://")):
        raise BadRequest(f"the URL must start with http:// or https://, not {base_url!r}")
    async with aiohttp.ClientSession(timeout=_TIMEOUT) as session:
        yield HttpLedgerClient(session, base_url, token=token, hint=hint)
