"""HTTP side of asking witnesses to cosign: POST ``<url>/add-checkpoint`` with bounded time-outs."""

from __future__ import annotations

import ssl

import aiohttp

from gateway.errors import Unavailable
from gateway.ledger.witnessing import WitnessReply
from gateway.tlog.witness_protocol import ADD_CHECKPOINT_PATH, MAX_RESPONSE_BODY


class HttpWitnessTransport:
    """One keep-alive connection pool for every witness; each call bounded by ``timeout``."""

    def __init__(self, timeout_seconds: float, ssl_context: ssl.SSLContext | None = None) -> None:
        self._timeout = aiohttp.ClientTimeout(
            total=timeout_seconds, connect=min(timeout_seconds, 3.0)
        )
        self._ssl = ssl_context
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        """Open the connection pool (inside the running event loop)."""
        connector = aiohttp.TCPConnector(ssl=self._ssl if self._ssl is not None else True)
        self._session = aiohttp.ClientSession(timeout=self._timeout, connector=connector)

    async def close(self) -> None:
        """Close the pool."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def add_checkpoint(self, url: str, body: str) -> WitnessReply:
        """The witness's answer; Unavailable when it cannot be reached in time."""
        if self._session is None:
            raise Unavailable("the witness client is not started")
        target = f"{url.rstrip('/')}/{ADD_CHECKPOINT_PATH}"
        try:
            async with self._session.post(
                target, data=body.encode("utf-8"), headers={"Content-Type": "text/plain"}
            ) as response:
                data = await response.content.read(MAX_RESPONSE_BODY + 1)
                return WitnessReply(response.status, response.headers.get("Content-Type", ""), data)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            reason = str(exc) or type(exc).__name__
            raise Unavailable(f"cannot reach the witness at {target}: {reason}") from None
