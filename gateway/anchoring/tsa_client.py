"""HTTP side of anchoring: POST a TimeStampReq to a TSA (RFC 3161 section 3.4), bounded in time."""

from __future__ import annotations

from pathlib import Path

import aiohttp

from gateway.anchoring.tsa import TrustedTsa
from gateway.errors import Unavailable

QUERY_TYPE = "application/timestamp-query"
REPLY_TYPE = "application/timestamp-reply"
MAX_REPLY = 64 * 1024
"""A TimeStampResp with a certificate chain is a few kilobytes."""


class TsaUnreachable(Unavailable):
    """The TSA could not be asked, or did not answer with a time-stamp reply."""

    code = "tsa_unreachable"


class HttpTsaTransport:
    """One connection pool for every TSA; each request bounded by ``timeout_seconds``."""

    def __init__(self, timeout_seconds: float) -> None:
        self._timeout = aiohttp.ClientTimeout(
            total=timeout_seconds, connect=min(timeout_seconds, 5.0)
        )
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        """Open the pool (inside the running event loop)."""
        self._session = aiohttp.ClientSession(timeout=self._timeout)

    async def close(self) -> None:
        """Close the pool."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def ask(self, tsa: TrustedTsa, query: bytes) -> bytes:
        """The TSA's DER reply; TsaUnreachable on any transport or HTTP failure."""
        if self._session is None:
            raise TsaUnreachable("the TSA client is not started")
        headers = {"Content-Type": QUERY_TYPE, "Accept": REPLY_TYPE}
        if tsa.token_file:
            headers["Authorization"] = f"Bearer {_bearer(tsa)}"
        try:
            async with self._session.post(tsa.url, data=query, headers=headers) as response:
                body = await response.content.read(MAX_REPLY + 1)
                kind = response.content_type
                status = response.status
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            reason = str(exc) or type(exc).__name__
            raise TsaUnreachable(f"TSA {tsa.name}: cannot reach {tsa.url}: {reason}") from None
        if status != 200:
            raise TsaUnreachable(f"TSA {tsa.name}: {tsa.url} answered HTTP {status}")
        if kind != REPLY_TYPE:
            raise TsaUnreachable(f"TSA {tsa.name}: {tsa.url} answered {kind!r}, not {REPLY_TYPE}")
        if len(body) > MAX_REPLY:
            raise TsaUnreachable(f"TSA {tsa.name}: the reply is larger than {MAX_REPLY} bytes")
        return body


def _bearer(tsa: TrustedTsa) -> str:
    """The bearer token from the TSA's token file (read each time: it may be rotated)."""
    try:
        token = Path(tsa.token_file).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise TsaUnreachable(
            f"TSA {tsa.name}: cannot read token_file {tsa.token_file}: {exc.strerror}"
        ) from None
    if not token or any(c.isspace() for c in token):
        raise TsaUnreachable(f"TSA {tsa.name}: token_file {tsa.token_file} holds no token")
    return token
